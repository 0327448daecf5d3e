"""Text checks and tokenization into length buckets (no Triton imports)."""

from __future__ import annotations

import numpy as np

from tritonkit import catalog
from tritonkit.steps import RequestError

MAX_TEXT_BYTES = 16_384  # a few pages; longer texts are truncated anyway, so refuse them early
LENGTH_BUCKETS = catalog.LENGTH_BUCKETS  # pad each request to the smallest that fits (see catalog.py for why)


def decode_text(raw, row: int, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """UTF-8 bytes of one TEXT row -> str, or RequestError naming the row, the problem and the fix."""
    if not isinstance(raw, (bytes, bytearray)):
        raise RequestError(f"TEXT row {row} is {type(raw).__name__}, not bytes; send TEXT as BYTES (UTF-8)")
    if len(raw) > max_bytes:
        raise RequestError(f"TEXT row {row} is {len(raw)} bytes, above the {max_bytes}-byte limit; split the text")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"TEXT row {row} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                           "encode it as UTF-8") from None
    if not text.strip():
        raise RequestError(f"TEXT row {row} is empty; send at least one non-space character")
    return text


def bucket_length(length: int, buckets: tuple[int, ...] = LENGTH_BUCKETS) -> int:
    """The smallest bucket holding ``length`` tokens; above the last bucket, ``length`` itself (no padding)."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return length


def pad_to_bucket(rows: list[list[int]], buckets: tuple[int, ...] = LENGTH_BUCKETS) -> dict[str, np.ndarray]:
    """Token id rows -> input_ids and attention_mask [rows, bucket], padded with 0 on the right."""
    width = bucket_length(max(len(ids) for ids in rows), buckets)
    input_ids = np.zeros((len(rows), width), dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, ids in enumerate(rows):
        input_ids[index, : len(ids)] = ids[:width]
        attention_mask[index, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def load_tokenizer(path, max_tokens: int):
    """A ``tokenizers`` tokenizer from its JSON file, truncating at ``max_tokens`` and padding nothing."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer
