"""The pure parts of the ensembles' Python steps: text checks, buckets, image conversion, labels."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tritonkit.export.builtin import renders, vision
from tritonkit.steps import RequestError, imaging, labels, texts


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "TEXT row 0 is empty"),
        (b"   \n", "TEXT row 0 is empty"),
        (b"\xff\xfe oops", "TEXT row 0 is not valid UTF-8 \\(invalid start byte at byte 0\\)"),
        (b"a" * (texts.MAX_TEXT_BYTES + 1),
         f"is {texts.MAX_TEXT_BYTES + 1} bytes, above the {texts.MAX_TEXT_BYTES}-byte"),
        ("not bytes", "TEXT row 0 is str, not bytes"),
    ],
)
def test_decode_text_raises_named_error_when_text_is_bad(raw, message):
    with pytest.raises(RequestError, match=message):
        texts.decode_text(raw, 0)


def test_decode_text_keeps_unicode():
    assert texts.decode_text("Un café très bon".encode(), 3) == "Un café très bon"


@pytest.mark.parametrize(("length", "bucket"),
                         [(1, 16), (16, 16), (17, 24), (49, 64), (65, 65), (130, 130), (256, 256)])
def test_bucket_is_the_smallest_that_fits(length, bucket):
    assert texts.bucket_length(length) == bucket


def test_pad_to_bucket_never_pads_a_short_text_to_the_longest_bucket():
    padded = texts.pad_to_bucket([[101, 7, 102], [101, 102]])
    assert padded["input_ids"].shape == (2, 16)
    assert padded["attention_mask"].sum(axis=1).tolist() == [3, 2]


def _png(array: np.ndarray, mode: str = "L", size=(64, 64), fmt="PNG") -> bytes:
    image = Image.fromarray(array).convert(mode).resize(size, Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _dark_on_light(digit: np.ndarray) -> np.ndarray:
    return (255 - digit[0] * 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "IMAGE row 0 is empty"),
        (b"GIF89a-not-really", "IMAGE row 0 is not a decodable image"),
        (b"plain text", "is not a decodable image \\(it starts with b'plain te'\\)"),
    ],
)
def test_open_image_raises_named_error_when_bytes_are_bad(raw, message):
    with pytest.raises(RequestError, match=message):
        imaging.open_image(raw, 0)


def _zero_size_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0)  # width 0, height 0
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_open_image_refuses_zero_size_image():
    with pytest.raises(RequestError, match="IMAGE row 0 is not a decodable image"):
        imaging.open_image(_zero_size_png(), 0)


def test_open_image_refuses_decompression_bomb_before_decoding():
    bomb = _png(np.zeros((8, 8), np.uint8), size=(5000, 5000))  # 25 Mpixel, a few KB on the wire
    assert len(bomb) < 200_000
    with pytest.raises(RequestError, match="5000x5000 pixels, above the 16777216-pixel limit"):
        imaging.open_image(bomb, 0)


@pytest.mark.parametrize("cut", [None, 60], ids=["whole", "truncated"])
def test_open_image_refuses_a_header_beyond_pil_bomb_limit_as_bad_input(cut, declared_png):
    # 30000x30000 trips PIL's own DecompressionBombError inside Image.open, before our size check.
    bomb = declared_png(30000, 30000)[:cut]
    with pytest.raises(RequestError, match="900000000 pixels by its header, above the 16777216-pixel limit"):
        imaging.open_image(bomb, 0)


def test_open_image_refuses_truncated_file():
    with pytest.raises(RequestError, match="could not be decoded"):
        imaging.open_image(_png(np.zeros((8, 8), np.uint8))[:60], 0)


@pytest.mark.parametrize(("mode", "fmt"),
                         [("L", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"), ("RGB", "BMP"), ("RGB", "WEBP")])
def test_digit_pixels_recover_the_dataset_image_from_any_format(mode, fmt):
    split = vision.digits()
    digit = split.x_test[5]
    pixels = imaging.image_pixels(_png(_dark_on_light(digit), mode, fmt=fmt), 0)
    assert pixels.shape == (1, 8, 8) and pixels.dtype == np.float32
    assert np.abs(pixels - digit).mean() < 0.12  # same digit, re-centred and re-scaled


def test_transparent_background_counts_as_paper():
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 14:18] = (0, 0, 0, 255)  # an opaque black stroke on a fully transparent page
    pixels = imaging.image_pixels(_png(rgba, "RGBA"), 0)
    assert pixels.max() > 0.9 and pixels.min() == 0.0


@pytest.mark.parametrize("level", [255, 128, 0], ids=["white", "grey", "black"])
def test_blank_page_is_refused_naming_the_row(level):
    with pytest.raises(RequestError, match="IMAGE row 3 is blank: no ink stands out from the paper"):
        imaging.image_pixels(_png(np.full((8, 8), level, np.uint8)), 3)


def test_light_digit_on_dark_paper_reads_like_dark_on_light():
    digit = vision.digits().x_test[5]
    dark_on_light = imaging.image_pixels(_png(_dark_on_light(digit)), 0)
    light_on_dark = imaging.image_pixels(_png(255 - _dark_on_light(digit)), 0)
    np.testing.assert_allclose(light_on_dark, dark_on_light, atol=1e-6)


def test_noise_and_paper_tone_barely_change_the_input():
    digit = vision.digits().x_test[5]
    clean = imaging.image_pixels(renders.draw(digit, renders.Look(width=256, height=256), seed=0), 0)
    noisy = imaging.image_pixels(renders.draw(digit, renders.Look(width=256, height=256, noise=0.08,
                                                                  paper=(215, 215, 200)), seed=0), 0)
    assert np.abs(noisy - clean).mean() < 0.05  # 0.034 measured


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_sixteen_bit_and_float_images_are_read(mode):
    digit = vision.digits().x_test[5]
    grey = _dark_on_light(digit).astype(np.float32) / 255
    image = Image.fromarray((grey * 65535).astype(np.uint16)).convert(mode) if mode != "F" else Image.fromarray(grey)
    reference = imaging.image_pixels(_png(_dark_on_light(digit)), 0)
    np.testing.assert_allclose(imaging.digit_pixels(image.resize((64, 64), Image.Resampling.NEAREST)), reference,
                               atol=0.02)


def test_softmax_and_top_label():
    probabilities = labels.softmax(np.array([[0.0, 2.0], [3.0, -1.0]], dtype=np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert labels.top_labels(probabilities, ["negative", "positive"]).tolist() == [[b"positive"], [b"negative"]]
