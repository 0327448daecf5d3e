"""Shared test setup: each tier's marker from its folder, and GPU tests skipped (with the reason) without a GPU.

Tiers: ``tests/unit`` trains nothing and starts nothing; ``tests/export`` trains and exports (slow);
``tests/integration`` starts a real tritonserver. ``pytest -m "not export and not integration"`` is the unit tier.
"""

from __future__ import annotations

import shutil
import struct
import zlib

import pytest


def _gpu_reason() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU on this machine (nvidia-smi not found)"
    try:
        import tensorrt  # noqa: F401 - imported only to learn whether TensorRT is installed
    except ImportError:
        return "TensorRT is not installed (pip install '.[tensorrt]' on a GPU host)"
    return None


TIERS = {"export": pytest.mark.export, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = item.path.parent.name
        if tier in TIERS:
            item.add_marker(TIERS[tier])
    reason = _gpu_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="session")
def declared_png():
    """``declared_png(width, height)``: a valid-looking grey PNG whose header declares that size, a few dozen
    bytes long (a decompression bomb without spending the memory to build one)."""

    def build(width: int, height: int) -> bytes:
        header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
        return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                + _chunk(b"IEND", b""))

    return build
