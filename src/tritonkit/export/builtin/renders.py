"""``load_digits`` rows drawn as the image files users send: sizes, aspect ratios, margins, formats, modes,
strokes, rotations, noise.

Two uses, one drawing code: the digit model trains on renders of its training rows passed through the served
step's own preprocessing (``tritonkit.steps.imaging``), and the render suite (``SUITE``) draws every held-out
row once per condition to measure the served endpoint. Everything is seeded: a condition draws the same files
on every machine with the same Pillow.

A row is drawn smooth (the 8x8 ink map upsampled, thresholded into a pen stroke, then placed, rotated, coloured
and encoded) or blocky (its 8x8 cells as grey squares stretched over the whole image, as a user who upscales a
dataset row would draw it).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import numpy as np

GLYPH = 120  # px of the smooth glyph: the 8x8 map padded to 10x10 cells, 12 px a cell
STROKE_EDGE = 0.08  # the pen's soft edge, in ink-map units around the threshold
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")
MODES_BY_FORMAT = {  # what each format stores (Pillow 13); JPEG has no alpha, palette or bilevel
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA"),
    "JPEG": ("L", "RGB"),
    "BMP": ("1", "L", "P", "RGB"),
    "WEBP": ("RGB", "RGBA"),
    "GIF": ("P", "L"),
    "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA"),
}


@dataclasses.dataclass(frozen=True)
class Look:
    """How one file is drawn. Sizes are the file's pixels; fractions are of the canvas."""

    width: int = 64
    height: int = 64
    digit_height: float = 0.7  # the digit's height over the canvas's (less if it would not fit across)
    offset: tuple[float, float] = (0.5, 0.5)  # where the digit sits in the room left around it (0 left/top)
    stroke: int = 0  # px at GLYPH scale the pen is widened (+) or narrowed (-) on each side
    rotation_deg: float = 0.0
    noise: float = 0.0  # standard deviation of grey noise, in 0..1 of the intensity range
    ink: tuple[int, int, int] = BLACK
    paper: tuple[int, int, int] = WHITE
    transparent: bool = False  # paper fully transparent (its colour hidden as black), ink in the alpha
    mode: str = "L"
    fmt: str = "PNG"
    quality: int = 90  # JPEG and WebP
    blocky: bool = False

    def __post_init__(self):
        if not (min(self.width, self.height) >= 16 and max(self.width, self.height) <= 512):
            raise ValueError(f"{self.width}x{self.height} is outside 16-512 px; draw a size the suite covers")
        if self.mode not in MODES_BY_FORMAT[self.fmt]:
            raise ValueError(f"{self.fmt} cannot hold mode {self.mode}; pick one of {MODES_BY_FORMAT[self.fmt]}")
        if self.transparent and self.mode not in ("LA", "RGBA"):
            raise ValueError(f"transparent paper needs an alpha channel (LA or RGBA), not {self.mode}")


def draw(digit: np.ndarray, look: Look, seed: int) -> bytes:
    """One ``load_digits`` row (ink in 0..1, shape [8, 8] or [1, 8, 8]) -> the bytes of an encoded image file."""
    cells = np.asarray(digit, dtype=np.float32).reshape(8, 8)
    coverage = _blocky(cells, look) if look.blocky else _smooth(cells, look)
    rng = np.random.default_rng(seed)
    if look.noise:
        coverage = coverage + rng.normal(0.0, look.noise, coverage.shape).astype(np.float32)
    return _encode(np.clip(coverage, 0.0, 1.0), look)


def _blocky(cells: np.ndarray, look: Look) -> np.ndarray:
    from PIL import Image

    grid = Image.fromarray(cells, mode="F").resize((look.width, look.height), Image.Resampling.NEAREST)
    return np.asarray(grid, dtype=np.float32)


def _pen(cells: np.ndarray, stroke: int) -> np.ndarray:
    """The ink map as a pen would draw it: smooth, thresholded at half ink, widened or narrowed."""
    from PIL import Image, ImageFilter

    padded = np.pad(cells, 1)
    smooth = np.asarray(Image.fromarray(padded, mode="F").resize((GLYPH, GLYPH), Image.Resampling.BICUBIC))
    ink = np.clip((smooth - 0.5) / STROKE_EDGE + 0.5, 0.0, 1.0).astype(np.float32)
    if stroke:
        size = 2 * abs(stroke) + 1
        kind = ImageFilter.MaxFilter(size) if stroke > 0 else ImageFilter.MinFilter(size)
        ink = np.asarray(Image.fromarray(ink, mode="F").filter(kind), dtype=np.float32)
    return ink


def _smooth(cells: np.ndarray, look: Look) -> np.ndarray:
    from PIL import Image

    glyph = Image.fromarray(_pen(cells, look.stroke), mode="F")
    if look.rotation_deg:
        glyph = glyph.rotate(look.rotation_deg, Image.Resampling.BICUBIC, expand=True, fillcolor=0.0)
    ink = np.asarray(glyph, dtype=np.float32)
    rows, cols = np.nonzero(ink > 0.5)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    supersample = max(1, min(4, 256 // max(look.width, look.height)))  # smooth edges on small files
    width, height = look.width * supersample, look.height * supersample
    scale = min(look.digit_height * height / ink.shape[0], 0.95 * width / ink.shape[1])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    placed = np.asarray(Image.fromarray(ink, mode="F").resize(size, Image.Resampling.BILINEAR))
    canvas = np.zeros((height, width), dtype=np.float32)
    top = round((height - size[1]) * look.offset[1])
    left = round((width - size[0]) * look.offset[0])
    canvas[top : top + size[1], left : left + size[0]] = placed
    if supersample > 1:
        canvas = canvas.reshape(look.height, supersample, look.width, supersample).mean(axis=(1, 3))
    return canvas


def _encode(coverage: np.ndarray, look: Look) -> bytes:
    from PIL import Image

    alpha = coverage[..., None]
    ink, paper = np.array(look.ink, np.float32), np.array(look.paper, np.float32)
    if look.transparent:
        rgba = np.concatenate([np.broadcast_to(ink, coverage.shape + (3,)) * (alpha > 0), alpha * 255], axis=-1)
        image = Image.fromarray(np.round(rgba).astype(np.uint8), mode="RGBA")
        image = image if look.mode == "RGBA" else image.convert("LA")
    else:
        rgb = paper * (1.0 - alpha) + ink * alpha
        image = _to_mode(Image.fromarray(np.round(rgb).astype(np.uint8), mode="RGB"), look.mode)
    buffer = io.BytesIO()
    options = {"quality": look.quality} if look.fmt in ("JPEG", "WEBP") else {}
    image.save(buffer, look.fmt, **options)
    return buffer.getvalue()


def _to_mode(image, mode: str):
    from PIL import Image

    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    if mode == "1":
        return image.convert("L").convert("1")  # Pillow's default: Floyd-Steinberg dithering, as users get it
    return image.convert(mode)


def random_look(rng: np.random.Generator) -> Look:
    """Every factor drawn at once, across the ranges the suite covers: the training renders, and the suite's
    'everything at once' condition (with its own seed)."""
    fmt = str(rng.choice(FORMATS))
    mode = str(rng.choice(MODES_BY_FORMAT[fmt]))
    if rng.random() < 0.2:
        size = int(rng.integers(16, 129))
        return Look(width=size, height=size, mode=mode, fmt=fmt, blocky=True, quality=int(rng.integers(50, 96)))
    shorter = int(np.exp(rng.uniform(np.log(16), np.log(512))))
    longer = min(512, int(shorter * np.exp(rng.uniform(0.0, np.log(3.0)))))
    width, height = (shorter, longer) if rng.random() < 0.5 else (longer, shorter)
    dark = int(rng.integers(0, 90))
    pen = (dark, dark, min(255, dark + int(rng.integers(0, 120))))  # black to blue ink
    light = int(rng.integers(200, 256))
    return Look(
        width=width, height=height, digit_height=float(rng.uniform(0.3, 1.0)),
        offset=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))), stroke=int(rng.integers(-3, 6)),
        rotation_deg=float(rng.uniform(-10, 10)), noise=float(rng.choice([0.0, 0.0, rng.uniform(0.0, 0.08)])),
        ink=pen, paper=(light, light, max(0, light - int(rng.integers(0, 25)))),
        transparent=mode in ("LA", "RGBA") and rng.random() < 0.5, mode=mode, fmt=fmt,
        quality=int(rng.integers(50, 96)),
    )


@dataclasses.dataclass(frozen=True)
class Condition:
    """One row of the render suite: every held-out row drawn with ``look`` (a Look, or one drawn per row)."""

    name: str
    look: Look | Callable[[np.random.Generator], Look]

    def look_for(self, rng: np.random.Generator) -> Look:
        return self.look if isinstance(self.look, Look) else self.look(rng)


def _sized(size: int, **rest) -> Look:
    return Look(width=size, height=size, **rest)


SUITE: tuple[Condition, ...] = (
    Condition("16 px", _sized(16)),
    Condition("28 px", _sized(28)),
    Condition("128 px", _sized(128)),
    Condition("512 px", _sized(512)),
    Condition("wide 192x64", Look(width=192, height=64)),
    Condition("tall 48x144", Look(width=48, height=144)),
    Condition("no margin", Look(digit_height=1.0)),
    Condition("small in a wide margin", Look(width=128, height=128, digit_height=0.3)),
    Condition("off centre (top left)", Look(width=96, height=96, digit_height=0.5, offset=(0.0, 0.0))),
    Condition("off centre (bottom right)", Look(width=96, height=96, digit_height=0.5, offset=(1.0, 1.0))),
    Condition("JPEG quality 50", Look(mode="RGB", fmt="JPEG", quality=50)),
    Condition("JPEG quality 95", Look(mode="L", fmt="JPEG", quality=95)),
    Condition("BMP", Look(mode="RGB", fmt="BMP")),
    Condition("WebP", Look(mode="RGB", fmt="WEBP", quality=80)),
    Condition("GIF", Look(mode="P", fmt="GIF")),
    Condition("TIFF", Look(mode="RGB", fmt="TIFF")),
    Condition("mode 1 (bilevel)", Look(mode="1")),
    Condition("mode LA, transparent paper", Look(mode="LA", transparent=True)),
    Condition("mode P (palette)", Look(mode="P")),
    Condition("mode RGB, blue ink on cream", Look(mode="RGB", ink=(20, 40, 160), paper=(245, 240, 220))),
    Condition("mode RGBA, opaque", Look(mode="RGBA")),
    Condition("mode RGBA, transparent paper", Look(mode="RGBA", transparent=True)),
    Condition("thin strokes", Look(width=128, height=128, stroke=-3)),
    Condition("thick strokes", Look(stroke=5)),
    Condition("rotated -10 deg", Look(rotation_deg=-10.0)),
    Condition("rotated +10 deg", Look(rotation_deg=10.0)),
    Condition("light noise", Look(noise=0.08)),
    Condition("grey ink on grey paper", Look(ink=(90, 90, 90), paper=(200, 200, 200))),
    Condition("blocky 28 px RGBA PNG", _sized(28, mode="RGBA", blocky=True)),
    Condition("blocky 32 px greyscale PNG", _sized(32, blocky=True)),
    Condition("blocky 64 px JPEG", _sized(64, mode="RGB", fmt="JPEG", quality=75, blocky=True)),
    Condition("blocky 100 px BMP", _sized(100, mode="RGB", fmt="BMP", blocky=True)),
    Condition("everything at once", random_look),
)

SUITE_SEED = 16  # the suite's draws; training renders use other seeds (TRAIN_SEED in vision.py)


def suite_files(rows: np.ndarray, condition: Condition) -> list[bytes]:
    """Every row drawn under one condition, the same files on every call."""
    index = [c.name for c in SUITE].index(condition.name) if condition in SUITE else 0
    rng = np.random.default_rng([SUITE_SEED, index])
    files = []
    for row, digit in enumerate(rows):
        look = condition.look_for(rng)
        files.append(draw(digit, look, seed=SUITE_SEED * 1_000_003 + index * 10_007 + row))
    return files


def training_files(rows: np.ndarray, per_row: int, seed: int) -> list[bytes]:
    """``per_row`` random renders of every row (row-major: row 0's renders first)."""
    rng = np.random.default_rng(seed)
    return [draw(digit, random_look(rng), seed=seed + 7919 * i + r)
            for i, digit in enumerate(rows) for r in range(per_row)]
