"""Text checks and tokenization into length buckets (no Triton imports)."""

from __future__ import annotations

import numpy as np

from tritonkit import catalog
from tritonkit.steps import RequestError

MAX_TEXT_BYTES = 16_384  # a few pages; longer texts are truncated anyway, so refuse them early
LENGTH_BUCKETS = catalog.LENGTH_BUCKETS  # pad each request to the smallest that fits (see catalog.py for why)


def decode_text(raw, row: int, max_bytes: int = MAX_TEXT_BYTES, *, allow_empty: bool = False) -> str:
    """UTF-8 bytes of one TEXT row -> str, or RequestError naming the row, the problem and the fix.

    ``allow_empty``: an empty or blank text is answered (a user's classifier, whose contract says so) rather than
    refused with a 400 (the built-in endpoints)."""
    if not isinstance(raw, (bytes, bytearray)):
        raise RequestError(f"TEXT row {row} is {type(raw).__name__}, not bytes; send TEXT as BYTES (UTF-8)")
    if len(raw) > max_bytes:
        raise RequestError(f"TEXT row {row} is {len(raw)} bytes, above the {max_bytes}-byte limit; split the text")
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"TEXT row {row} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                           "encode it as UTF-8") from None
    if not text.strip() and not allow_empty:
        raise RequestError(f"TEXT row {row} is empty; send at least one non-space character")
    return text


def bucket_length(length: int, buckets: tuple[int, ...] = LENGTH_BUCKETS) -> int:
    """The smallest bucket holding ``length`` tokens; above the last bucket, ``length`` itself (no padding)."""
    for bucket in buckets:
        if length <= bucket:
            return bucket
    return length


def pad_to_bucket(rows: list[list[int]], buckets: tuple[int, ...] = LENGTH_BUCKETS, *, pad_id: int = 0,
                  type_ids: list[list[int]] | None = None) -> dict[str, np.ndarray]:
    """Token id rows -> input_ids and attention_mask [rows, bucket] padded on the right with ``pad_id`` (and 0),
    plus token_type_ids (padded with 0) when ``type_ids`` are given."""
    width = bucket_length(max(len(ids) for ids in rows), buckets)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, ids in enumerate(rows):
        input_ids[index, : len(ids)] = ids[:width]
        attention_mask[index, : len(ids)] = 1
    tensors = {"input_ids": input_ids, "attention_mask": attention_mask}
    if type_ids is not None:
        tensors["token_type_ids"] = np.zeros((len(rows), width), dtype=np.int64)
        for index, types in enumerate(type_ids):
            tensors["token_type_ids"][index, : len(types)] = types[:width]
    return tensors


def load_tokenizer(path, max_tokens: int):
    """A ``tokenizers`` tokenizer from its JSON file, truncating at ``max_tokens`` and padding nothing."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer
