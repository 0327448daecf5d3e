"""The render suite and the training renders: deterministic, the declared file, every condition of issue 16."""

import io

import numpy as np
import pytest
from PIL import Image

from tritonkit.export.builtin import renders, vision

ROWS = vision.digits().x_test[:4]


def test_suite_draws_the_same_files_every_time():
    for condition in renders.SUITE:
        assert renders.suite_files(ROWS, condition) == renders.suite_files(ROWS, condition), condition.name


def test_suite_covers_every_format_mode_and_a_size_range_of_16_to_512_px():
    looks = [condition.look for condition in renders.SUITE if isinstance(condition.look, renders.Look)]
    assert {look.fmt for look in looks} == set(renders.FORMATS)
    assert {look.mode for look in looks} >= {"1", "L", "LA", "P", "RGB", "RGBA"}
    sides = [side for look in looks for side in (look.width, look.height)]
    assert min(sides) == 16 and max(sides) == 512
    assert {look.rotation_deg for look in looks} >= {-10.0, 10.0}
    assert any(look.stroke < 0 for look in looks) and any(look.stroke > 0 for look in looks)
    assert any(look.noise for look in looks) and any(look.blocky for look in looks)


@pytest.mark.parametrize("condition", [c for c in renders.SUITE if isinstance(c.look, renders.Look)],
                         ids=lambda condition: condition.name)
def test_each_condition_writes_the_file_it_declares(condition):
    image = Image.open(io.BytesIO(renders.suite_files(ROWS[:1], condition)[0]))
    look = condition.look
    assert image.format == look.fmt and image.size == (look.width, look.height)
    expected = "P" if look.fmt == "GIF" else look.mode
    assert image.mode == expected


def test_training_renders_are_never_suite_files():
    suite = {file for condition in renders.SUITE for file in renders.suite_files(ROWS, condition)}
    assert not suite & set(renders.training_files(ROWS, 8, vision.TRAIN_RENDER_SEED))


@pytest.mark.parametrize(("options", "message"), [
    ({"width": 8}, "8x64 is outside 16-512 px"),
    ({"mode": "RGBA", "fmt": "JPEG"}, "JPEG cannot hold mode RGBA"),
    ({"mode": "L", "transparent": True}, "transparent paper needs an alpha channel"),
])
def test_a_look_that_cannot_be_drawn_says_why(options, message):
    with pytest.raises(ValueError, match=message):
        renders.Look(**options)


def test_training_set_is_the_raw_rows_then_their_served_renders():
    split = vision.DigitSplit(ROWS, np.arange(4), ROWS, np.arange(4))
    images, labels = vision.training_set(split)
    assert images.shape == (4 * (1 + vision.TRAIN_RENDERS_PER_ROW), 1, 8, 8) and images.dtype == np.float32
    np.testing.assert_array_equal(images[:4], ROWS)
    assert labels.tolist() == [0, 1, 2, 3] + np.repeat(np.arange(4), vision.TRAIN_RENDERS_PER_ROW).tolist()
