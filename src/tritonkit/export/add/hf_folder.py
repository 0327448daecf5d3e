"""A Hugging Face folder (``save_pretrained``) with a BERT-family sequence classifier and its tokenizer, served
as a text endpoint with the contract of ``text_sentiment``: ``TEXT`` in, ``LABEL`` (from ``id2label``) and
``PROBABILITIES`` (softmax) out.

Checked before anything is written:
  - the served tokenizer (the folder's fast tokenizer as ``tokenizers`` loads it in the tokenizer step) gives
    the very ids the folder's own tokenizer gives, on every parity text (truncation included);
  - the ONNX graph's logits match the PyTorch model's on the texts in one padded batch, and on texts of
    different lengths one at a time (a graph traced at one length must not serve another wrongly).
Texts longer than the model's maximum length are truncated; an empty text is answered.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from tritonkit.export import ParityError, SourceError
from tritonkit.export.add import detect
from tritonkit.export.add.sample import InputSpec
from tritonkit.export.add.source import Loaded, TextModel
from tritonkit.export.convert import hf2onnx
from tritonkit.export.progress import step
from tritonkit.export.verify import run_onnx

ATOL = 1e-3  # logits of a float32 transformer, PyTorch against ONNX Runtime: a few 1e-5 typically, up to 1e-4
FAMILY = ("bert", "distilbert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "mpnet")
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2}  # positions start after the padding index
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model")
REFERENCE_BATCH = 16
WORD_DROP = 0.2  # share of words a synthesized text leaves out
MAX_TEXTS = 256
ALONE = 8  # texts of different lengths also checked one at a time
# Parity texts besides the sample's: short and long, punctuation, accents, other scripts, emoji, an empty one, and
# one far beyond any model's maximum length (truncation).
TEXTS = (
    "Great food and friendly staff.",
    "The plot was thin, the acting wooden, and I left before the end.",
    "Not bad at all, though I expected more from the second half.",
    "I can't say I'd recommend it; then again, my friends loved it!",
    "Café crème, naïve façade, São Paulo, Zürich.",
    "Das Essen war ausgezeichnet, aber der Service war langsam.",
    "これは本当に素晴らしい映画でした。",
    "Loved it 😍🔥 would go again!!!",
    "OK.",
    "",
    "   ",
    "The first hour drags, yet the finale redeems almost everything that came before it, and the score is superb.",
    " ".join(["a long review that goes on and on"] * 120),
)


def load(folder: Path, sample: dict[str, np.ndarray] | None) -> Loaded:
    config = _config(folder)
    tokenizer = _tokenizer(folder)
    classifier = _classifier(folder)
    forward = set(inspect.signature(classifier.forward).parameters)
    names = tuple(name for name in tokenizer.model_input_names if name in forward)
    if "input_ids" not in names or "attention_mask" not in names:
        raise SourceError(f"{folder}: the tokenizer gives {tokenizer.model_input_names} but the model takes "
                          f"{sorted(forward)}; input_ids and attention_mask are needed")
    max_tokens = _max_tokens(config, tokenizer)
    texts = synthesize_texts([*(_sample_texts(sample) if sample is not None else []), *TEXTS])

    def tokenize(batch: list[str]) -> dict[str, np.ndarray]:
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=max_tokens, return_tensors="np")
        return {name: encoded[name].astype(np.int64) for name in names}

    served = _served_tokenizer(tokenizer, max_tokens)
    _check_tokenizer(served, tokenizer, texts, max_tokens, names)
    module = hf2onnx.logits_module(classifier, names)
    with step(f"converting {type(classifier).__name__} to ONNX (TorchScript tracer, dynamic batch and sequence)"):
        onnx_model = hf2onnx.convert_classifier(module, tokenize(list(TEXTS[:2])), max_tokens)
    reference = _reference(module, names)
    _check_lengths(onnx_model, reference, tokenize, texts)
    labels = tuple(str(config.id2label.get(index, f"LABEL_{index}")) for index in range(config.num_labels))
    text = TextModel(served.to_str(), max_tokens, int(tokenizer.pad_token_id or 0), names, labels, tokenize,
                     tuple(texts))
    specs = [InputSpec(name, np.dtype(np.int64), (-1, -1)) for name in names]
    return Loaded(detect.HUGGING_FACE, onnx_model, specs, reference, f"transformers {type(classifier).__name__}",
                  tokenize(texts), ATOL, (f"texts truncated at {max_tokens} tokens",), text)


def _config(folder: Path):
    from transformers import AutoConfig

    hf2onnx.quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise SourceError(f"{folder}/config.json cannot be read by transformers ({str(exc).splitlines()[0][:200]})"
                          ) from None
    heads = [name for name in (config.architectures or []) if name.endswith("ForSequenceClassification")]
    if config.model_type not in FAMILY:
        raise SourceError(f"{folder}: model_type {config.model_type!r} is not a BERT-family encoder this tool "
                          f"serves ({', '.join(FAMILY)})")
    if not heads:
        raise SourceError(f"{folder}: the model is {config.architectures or 'of no declared architecture'}, not a "
                          "sequence classifier; fine-tune an AutoModelForSequenceClassification and save_pretrained it")
    if getattr(config, "problem_type", None) == "multi_label_classification":
        raise SourceError(f"{folder}: a multi-label classifier (sigmoid per label) is not served as a text endpoint "
                          "(its PROBABILITIES are a softmax); export its ONNX graph and add that instead")
    return config


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise SourceError(f"{folder} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it beside the "
                          "model with tokenizer.save_pretrained(folder)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, use_fast=True)
    except Exception as exc:
        raise SourceError(f"{folder}: the tokenizer cannot be loaded ({str(exc).splitlines()[0][:200]}); save it "
                          "again with tokenizer.save_pretrained(folder)") from None
    if not getattr(tokenizer, "is_fast", False):
        raise SourceError(f"{folder}: the tokenizer has no fast (Rust) version, which the served tokenizer step "
                          "needs; save a fast tokenizer (tokenizer.json)")
    return tokenizer


def _classifier(folder: Path):
    from transformers import AutoModelForSequenceClassification

    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True,
                                                                         output_loading_info=True)
    except Exception as exc:
        raise SourceError(f"{folder}: the model's weights cannot be loaded ({str(exc).splitlines()[0][:200]})"
                          ) from None
    if info.get("missing_keys"):
        raise SourceError(f"{folder}: the weights lack {sorted(info['missing_keys'])[:3]}: the folder holds a base "
                          "model, not a fine-tuned classifier; fine-tune it and save_pretrained the classifier")
    return model.eval()


def _max_tokens(config, tokenizer) -> int:
    positions = getattr(config, "max_position_embeddings", 512) - POSITION_OFFSET.get(config.model_type, 0)
    declared = tokenizer.model_max_length if tokenizer.model_max_length < 100_000 else positions
    return int(min(declared, positions))


def _sample_texts(sample: dict[str, np.ndarray]) -> list[str]:
    arrays = [array for name, array in sample.items() if name == "TEXT"] or list(sample.values())
    if len(arrays) != 1 or arrays[0].dtype.kind not in "US":
        raise SourceError(f"a text model's sample is one array of strings named TEXT (it holds {sorted(sample)}); "
                          "numpy.savez(path, TEXT=np.array(['a text', 'another']))")
    return [item.decode() if isinstance(item, bytes) else str(item) for item in arrays[0].reshape(-1)]


def synthesize_texts(texts: list[str], seed: int = 0) -> list[str]:
    """The texts, then for each a copy with words dropped and one joined to the next: new texts near the given."""
    import random

    rng = random.Random(seed)
    made = []
    for index, text in enumerate(texts):
        words = text.split()
        kept = [word for word in words if rng.random() > WORD_DROP] or words[:1]
        made += [" ".join(kept), f"{text} {texts[(index + 1) % len(texts)]}".strip()]
    return list(dict.fromkeys([*texts, *made]))[:MAX_TEXTS]


def _served_tokenizer(tokenizer, max_tokens: int):
    """The tokenizer as the tokenizer step will load it: ``tokenizers`` from JSON, truncating, no padding."""
    from tokenizers import Tokenizer

    served = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    served.no_padding()
    served.enable_truncation(max_tokens)
    return served


def _check_tokenizer(served, tokenizer, texts: list[str], max_tokens: int, names: tuple[str, ...]) -> None:
    for text in texts:
        expected = tokenizer(text, truncation=True, max_length=max_tokens)
        got = served.encode(text)
        if got.ids != list(expected["input_ids"]) or (
                "token_type_ids" in names and got.type_ids != list(expected["token_type_ids"])):
            raise SourceError(f"the served tokenizer cuts {text[:60]!r} into other ids than the folder's tokenizer "
                              f"({got.ids[:8]}... against {list(expected['input_ids'])[:8]}...); its tokenizer.json "
                              "and tokenizer_config.json disagree: save the tokenizer again with save_pretrained")


def _reference(module, names: tuple[str, ...]):
    import torch

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(feeds[names[0]])
        parts = []
        with torch.no_grad():
            for start in range(0, rows, REFERENCE_BATCH):
                parts.append(module(*(torch.from_numpy(feeds[name][start : start + REFERENCE_BATCH])
                                      for name in names)).numpy())
        return {"logits": np.concatenate(parts)}

    return run


def _check_lengths(onnx_model, reference, tokenize, texts: list[str]) -> None:
    """Texts of different lengths, one at a time, unpadded, as the tokenizer step sends single texts."""
    chosen = sorted(set(texts), key=len)[:: max(1, len(set(texts)) // ALONE)][:ALONE]
    for text in chosen:
        feed = tokenize([text])
        got, expected = run_onnx(onnx_model, feed)["logits"], reference(feed)["logits"]
        error = float(np.abs(got - expected).max())
        if error > ATOL:
            raise ParityError(f"the ONNX graph's logits differ from PyTorch's by {error:.3g} on {text[:60]!r} "
                              f"({feed['input_ids'].shape[1]} tokens) run alone; the tolerance is {ATOL:g}")
