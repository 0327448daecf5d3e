"""The origins' ResNet-style image classifier, scaled to ``load_digits`` (no torchvision here).

Input ``pixel_values`` FP32 ``[1, 8, 8]``: the dataset's 8x8 ink counts divided by 16, so ink is 1.0 and
paper is 0.0. Trained as served: besides its raw training rows, the model learns from renders of them
(``renders.py``: sizes, formats, modes, strokes, rotations, noise) turned into its input by the served step's
own code (``tritonkit.steps.imaging.image_pixels``), so training and serving cannot drift apart.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tritonkit import catalog
from tritonkit.export.progress import Progress, step

SEED = 0
TRAIN_IMAGES = catalog.DIGITS_TRAIN_IMAGES
IMAGE_SIZE = 8
INK_SCALE = 16.0  # load_digits counts ink in 4x4 blocks of a 32x32 bitmap: 0..16
LABELS = catalog.DIGIT_LABELS
TRAIN_RENDERS_PER_ROW = 8  # random renders of each training row: the render suite's worst condition 0.93 at 8
TRAIN_RENDER_SEED = 1  # the suite draws with renders.SUITE_SEED: no training file is a suite file
EPOCHS = 20  # over nine times the rows of the raw set (40 epochs of the raw rows alone before renders)
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
CHANNELS = (32, 64)


@dataclasses.dataclass(frozen=True)
class DigitSplit:
    x_train: np.ndarray  # [n, 1, 8, 8] float32 in 0..1
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits() -> DigitSplit:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / INK_SCALE).astype(np.float32)[:, None, :, :]
    labels = data.target.astype(np.int64)
    return DigitSplit(images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES], images[TRAIN_IMAGES:], labels[TRAIN_IMAGES:])


def served_inputs(files: list[bytes]) -> np.ndarray:
    """Encoded image files -> FP32 [n, 1, 8, 8], exactly as the served digit_preprocess step makes them."""
    from tritonkit.steps import imaging

    return np.stack([imaging.image_pixels(raw, row) for row, raw in enumerate(files)])


def training_set(split: DigitSplit) -> tuple[np.ndarray, np.ndarray]:
    """The raw training rows, then TRAIN_RENDERS_PER_ROW renders of each as the served step reads them."""
    from tritonkit.export.builtin import renders

    with step(f"rendering {TRAIN_RENDERS_PER_ROW} training images per row and reading them as served"):
        files = renders.training_files(split.x_train, TRAIN_RENDERS_PER_ROW, TRAIN_RENDER_SEED)
        images = np.concatenate([split.x_train, served_inputs(files)])
    labels = np.concatenate([split.y_train, np.repeat(split.y_train, TRAIN_RENDERS_PER_ROW)])
    return images.astype(np.float32), labels


def digit_resnet():
    """stem conv -> residual block -> strided residual block -> global average pool -> linear (10 logits)."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, channels_in, channels_out, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(channels_out),
                nn.ReLU(),
                nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels_out),
            )
            self.shortcut = nn.Identity()
            if stride != 1 or channels_in != channels_out:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm2d(channels_out)
                )

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    first, second = CHANNELS
    return nn.Sequential(
        nn.Conv2d(1, first, 3, padding=1, bias=False),
        nn.BatchNorm2d(first),
        nn.ReLU(),
        Residual(first, first, 1),
        Residual(first, second, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(second, len(LABELS)),
    )


def _shift(images, generator):
    """Random shifts of up to one pixel: scanned digits are rarely centred the way the dataset's are."""
    import torch

    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + IMAGE_SIZE, dx : dx + IMAGE_SIZE]


def train_digit_resnet(split: DigitSplit | None = None):
    """Trains on the first TRAIN_IMAGES rows and their served renders (seeded, shift augmentation); returns the
    model in eval mode."""
    import torch

    split = split or digits()
    x_train, y_train = training_set(split)
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    model = digit_resnet()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    images, labels = torch.from_numpy(x_train), torch.from_numpy(y_train)
    model.train()
    progress = Progress(f"training the digit ResNet on {len(images)} images", EPOCHS, "epochs")
    for _ in range(EPOCHS):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            optimizer.zero_grad()
            logits = model(_shift(images[batch], generator))
            torch.nn.functional.cross_entropy(logits, labels[batch]).backward()
            optimizer.step()
        schedule.step()
        progress.advance()
    return model.eval()
