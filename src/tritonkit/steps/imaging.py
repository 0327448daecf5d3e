"""Encoded image -> the digit model's input, exactly as ``load_digits`` was made (no Triton imports).

``load_digits`` (UCI optdigits) holds 32x32 black-and-white bitmaps of handwritten digits, cut into 4x4
blocks whose ink pixels are counted (0..16). We do the same to a scanned digit: grey, ink = dark, cut to
the ink's bounding box, scale its longer side to 32 pixels and centre it, binarize, count ink per 4x4
block, and divide by 16 as the model was trained (ink 1.0, paper 0.0).
"""

from __future__ import annotations

import io
import re

import numpy as np

from tritonkit.steps import RequestError

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096  # decompression bombs: refuse before decoding the pixels
BITMAP = 32
BLOCK = 4
INK_THRESHOLD = 0.5  # of the (stretched) darkness range


def open_image(raw, row: int, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS):
    """Bytes -> decoded PIL image, or RequestError naming the row, the problem and the fix."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise RequestError(f"IMAGE row {row} is empty; send the encoded image file's bytes (PNG, JPEG, BMP, WebP)")
    if len(raw) > max_bytes:
        raise RequestError(f"IMAGE row {row} is {len(raw)} bytes, above the {max_bytes}-byte limit; "
                           "send a smaller or compressed image")
    try:
        image = Image.open(io.BytesIO(bytes(raw)))
    except Image.DecompressionBombError as exc:  # the header alone declares a huge image (whole or truncated)
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{declared.group(1)} pixels by its header" if declared else "a decompression bomb by its header"
        raise RequestError(_too_large(row, size, max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise RequestError(f"IMAGE row {row} is not a decodable image (it starts with {bytes(raw[:8])!r}); "
                           "send the bytes of a PNG, JPEG, BMP or WebP file") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise RequestError(f"IMAGE row {row} is {width}x{height} pixels; send an image with pixels in it")
    if width * height > max_pixels:
        raise RequestError(_too_large(row, f"{width}x{height} pixels", max_pixels))
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RequestError(f"IMAGE row {row} could not be decoded ({exc}); send a complete image file") from None
    return image


def _too_large(row: int, size: str, max_pixels: int) -> str:
    return (f"IMAGE row {row} is {size}, above the {max_pixels}-pixel limit (4096x4096); "
            "resize it before sending")


def to_grey(image) -> np.ndarray:
    """Float darkness in 0..1 (1 = black ink); transparency is laid on white paper first."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return 1.0 - grey


def digit_pixels(image) -> np.ndarray:
    """A decoded image of one dark digit on light paper -> FP32 [1, 8, 8] ink fractions in 0..1."""
    from PIL import Image

    darkness = to_grey(image)
    low, high = float(darkness.min()), float(darkness.max())
    if high - low < 1e-3:  # blank page: nothing to centre
        return np.zeros((1, BITMAP // BLOCK, BITMAP // BLOCK), dtype=np.float32)
    ink = (darkness - low) / (high - low)
    rows, cols = np.nonzero(ink >= INK_THRESHOLD)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BITMAP / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    glyph = Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.BOX)
    canvas = np.zeros((BITMAP, BITMAP), dtype=np.float32)
    top, left = (BITMAP - size[1]) // 2, (BITMAP - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = np.asarray(glyph, dtype=np.float32) / 255.0
    blocks = canvas.reshape(BITMAP // BLOCK, BLOCK, BITMAP // BLOCK, BLOCK).sum(axis=(1, 3))
    return (blocks / (BLOCK * BLOCK))[None, :, :].astype(np.float32)
