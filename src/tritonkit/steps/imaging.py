"""Encoded image -> the digit model's input, the way ``load_digits`` was made (no Triton imports).

``load_digits`` (UCI optdigits) holds 32x32 bitmaps of handwritten digits, cut into 4x4 blocks whose ink
pixels are counted (0..16). We do the same to any image of one digit: decode it (any Pillow format and mode,
transparency laid on white), find ink against the paper (paper is the median level, either polarity; large
images are averaged down first so noise and JPEG speckle cancel), cut to the ink's box, scale its longer side to
32 px and centre it, average 4x4 blocks: ink 1.0, paper 0.0. A blank image is refused, naming the row.

The digit model trains on this very code's output for renders of its training rows (export/builtin/vision.py).
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
INK_THRESHOLD = 0.5  # of the paper-to-ink range: what counts as the digit's box
INK_FLOOR = 0.2  # of that range: residual paper noise and JPEG ringing below it are paper
MIN_CONTRAST = 0.15  # ink this close to the paper's level is no ink: the image is blank
WORK = 128  # px: larger images are averaged down to this on their longer side first


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


def image_pixels(raw, row: int) -> np.ndarray:
    """Encoded image bytes -> the digit model's input FP32 [1, 8, 8]: what the served step does to every row,
    and what training does to every render of its rows."""
    return digit_pixels(open_image(raw, row), row)


def to_grey(image) -> np.ndarray:
    """Float darkness in 0..1 (1 = black ink) of any mode; transparency is laid on white paper first."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit and float TIFF/PNG: scale by their own range
        values = np.asarray(image, dtype=np.float32)
        top = float(values.max())
        return 1.0 - values / top if top > 0 else np.ones(values.shape, np.float32)
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    return 1.0 - grey


def digit_pixels(image, row: int = 0) -> np.ndarray:
    """A decoded image of one digit -> FP32 [1, 8, 8] ink fractions in 0..1, the way load_digits was made:
    ink found against the paper, cut to its box, scaled to fill 32 px in its longer side, centred, counted in
    4x4 blocks. A blank image (no ink) is a RequestError naming the row."""
    ink = _ink(_reduced(to_grey(image)), row)
    box = _ink_box(ink)
    crop = ink[box]
    scale = BITMAP / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    glyph = np.asarray(_float_image(crop).resize(size, _resampling(crop.shape, size)), dtype=np.float32)
    canvas = np.zeros((BITMAP, BITMAP), dtype=np.float32)
    top, left = (BITMAP - size[1]) // 2, (BITMAP - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = np.clip(glyph, 0.0, 1.0)
    blocks = canvas.reshape(BITMAP // BLOCK, BLOCK, BITMAP // BLOCK, BLOCK).mean(axis=(1, 3))
    return blocks[None, :, :].astype(np.float32)


def _float_image(values: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")


def _resampling(shape: tuple[int, ...], size: tuple[int, int]):
    from PIL import Image

    return Image.Resampling.BOX if max(shape) >= max(size) else Image.Resampling.BILINEAR


def _reduced(darkness: np.ndarray) -> np.ndarray:
    """Large images averaged down to WORK px on their longer side: noise and JPEG speckle average out, a thin
    pen stroke stays as grey."""
    longer = max(darkness.shape)
    if longer <= WORK:
        return darkness
    size = (max(1, round(darkness.shape[1] * WORK / longer)), max(1, round(darkness.shape[0] * WORK / longer)))
    return np.asarray(_float_image(darkness).resize(size, _resampling(darkness.shape, size)), dtype=np.float32)


def _ink(darkness: np.ndarray, row: int) -> np.ndarray:
    """Darkness -> ink in 0..1: paper is the most common level (median), ink the darkest blurred level; light
    digits on dark paper are turned round. Residual paper noise below INK_FLOOR is cut to 0."""
    paper = float(np.median(darkness))
    if paper > 0.5:  # light ink on dark paper (a chalkboard, a negative)
        darkness, paper = 1.0 - darkness, 1.0 - paper
    blurred = _blur(darkness)
    contrast = float(blurred.max()) - paper
    if contrast < MIN_CONTRAST:
        raise RequestError(f"IMAGE row {row} is blank: no ink stands out from the paper (contrast {contrast:.2f}, "
                           f"below {MIN_CONTRAST}); send an image with a digit drawn on it")
    ink = (darkness - paper) / contrast
    return np.clip((ink - INK_FLOOR) / (1.0 - 2 * INK_FLOOR), 0.0, 1.0)


def _blur(values: np.ndarray) -> np.ndarray:
    """A [1, 2, 1] / 4 filter down and across, twice (about a Gaussian of 1 px): one dark pixel of noise drops
    to a seventh of its darkness, a stroke two pixels wide keeps most of it."""
    for _ in range(2):
        rows = np.pad(values, ((1, 1), (0, 0)), mode="edge")
        values = (rows[:-2] + 2 * rows[1:-1] + rows[2:]) / 4
        cols = np.pad(values, ((0, 0), (1, 1)), mode="edge")
        values = (cols[:, :-2] + 2 * cols[:, 1:-1] + cols[:, 2:]) / 4
    return values


def _ink_box(ink: np.ndarray) -> tuple[slice, slice]:
    """The box around the strong ink (half of full), not counting stray specks outside it."""
    rows, cols = np.nonzero(ink >= INK_THRESHOLD)
    return slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1)
