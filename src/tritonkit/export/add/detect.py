"""What kind of model a SOURCE is, read from its content (a file's suffix is only a hint users get wrong).

  a folder with ``config.json``                          Hugging Face (transformers)
  a zip archive with ``archive_format`` / ``models/``    torch.export program (``torch.export.save``, ``.pt2``)
  a zip archive with ``code/`` and ``constants.pkl``     TorchScript (``torch.jit.save``)
  a zip archive with only ``data.pkl``                   ``torch.save`` of a state_dict or a pickled module: refused
  a pickle (protocol 2+) or a joblib-compressed file     scikit-learn estimator (``joblib.dump``, ``pickle.dump``)
  a protobuf that parses as an ONNX ``ModelProto``       ONNX
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tritonkit.export import SourceError

ONNX, TORCHSCRIPT, TORCH_EXPORT, SKLEARN, HUGGING_FACE = "ONNX", "TorchScript", "torch.export", "scikit-learn", \
    "Hugging Face"
KINDS = (ONNX, TORCHSCRIPT, TORCH_EXPORT, SKLEARN, HUGGING_FACE)
# The first bytes of joblib's compressed formats (zlib, gzip, bz2, xz, lzma) and of a pickle of protocol 2 or more.
COMPRESSED = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00")
PICKLE = b"\x80"
STATE_DICT_FIX = ("a torch.save file (a state_dict or a pickled module) holds weights without the code of its "
                  "architecture; save the model with torch.jit.save(torch.jit.script(model), 'model.pt') or "
                  "torch.export.save(torch.export.export(model, example_inputs), 'model.pt2'); weights for a built-in "
                  "model's architecture go to `python -m tritonkit.export --model NAME --checkpoint FILE`")


def detect(source: Path) -> str:
    """One of ``KINDS``; ``SourceError`` naming what the file is and the fix when it is none of them."""
    source = Path(source)
    if not source.exists():
        raise SourceError(f"{source}: no such file or folder")
    if source.is_dir():
        if (source / "config.json").is_file():
            return HUGGING_FACE
        raise SourceError(f"{source} is a folder without config.json; a Hugging Face model folder is what "
                          "model.save_pretrained(folder) and tokenizer.save_pretrained(folder) write")
    with open(source, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise SourceError(f"{source} is empty")
    if zipfile.is_zipfile(source):
        return _zip_kind(source)
    if head.startswith(PICKLE) or any(head.startswith(magic) for magic in COMPRESSED):
        return SKLEARN
    if _is_onnx(source):
        return ONNX
    raise SourceError(f"{source} is not a model file this tool reads (ONNX, TorchScript, torch.export .pt2, a "
                      "scikit-learn estimator saved with joblib or pickle, or a Hugging Face folder); a corrupt or "
                      "truncated file looks like this too: export it again")


def _zip_kind(source: Path) -> str:
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise SourceError(f"{source} is a damaged zip archive ({exc}); save the model again") from None
    parts = {part for name in names for part in name.split("/")[1:2]}  # the entries under the archive's root
    if "archive_format" in parts or "models" in parts:
        return TORCH_EXPORT
    if "code" in parts and "constants.pkl" in parts:
        return TORCHSCRIPT
    if "data.pkl" in parts:
        raise SourceError(f"{source}: {STATE_DICT_FIX}")
    raise SourceError(f"{source} is a zip archive but neither a TorchScript file nor a torch.export program")


def _is_onnx(source: Path) -> bool:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(source), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError):
        return False
    return model.ir_version > 0 and len(model.graph.output) > 0
