"""``python -m tritonkit.client`` (console script ``tritonkit``): the endpoints and server management from a shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from tritonkit.client.client import Client
from tritonkit.client.errors import ClientError

DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
TEXT_COLUMN = 48


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.client",
        description="Call this repository's Triton endpoints. Texts come from arguments or, when none, from "
        "standard input (one a line). Tables by default, --json for scripts.",
    )
    parser.add_argument("--url", default=os.environ.get("TRITON_URL"),
                        help="server host:port [env TRITON_URL; default localhost:8000 (http) or :8001 (grpc)]")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http", help="transport (default http)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    parser.add_argument("--retries", type=int, default=3, help="retries when the server is unavailable (default 3)")
    parser.add_argument("--admin-key", default=os.environ.get("TRITON_ADMIN_KEY"),
                        help="admin key for models/load/unload [env TRITON_ADMIN_KEY]")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("health", help="is the server live and ready; its version")
    commands.add_parser("models", help="every model with its version and state (admin)")
    embed = commands.add_parser("embed", help="sentence embeddings (text_embedding)")
    embed.add_argument("texts", nargs="*", help="texts; standard input when none")
    sentiment = commands.add_parser("sentiment", help="negative/positive (text_sentiment or lstm_sentiment)")
    sentiment.add_argument("texts", nargs="*", help="texts; standard input when none")
    sentiment.add_argument("--model", choices=("text_sentiment", "lstm_sentiment"), default="text_sentiment")
    sentiment.add_argument("--model-version", type=int, help="model version (default: the server's policy)")
    digit = commands.add_parser("digit", help="read a digit from image files (digit_classifier)")
    digit.add_argument("paths", nargs="+", type=Path, help="PNG, JPEG, BMP, WebP... files")
    for name, width in (("diabetes", 10), ("cancer", 30)):
        rows = commands.add_parser(name, help=f"{name} model on rows of {width} comma-separated features")
        rows.add_argument("rows", nargs="*", help=f"rows of {width} numbers (put -- before a row that starts with "
                          "a minus sign); standard input (CSV lines) when none")
    infer = commands.add_parser("infer", help="any model: inputs as JSON, outputs as JSON")
    infer.add_argument("model")
    infer.add_argument("--inputs", default="-", help='JSON {"NAME": nested list, ...}, @file.json, or - for stdin')
    infer.add_argument("--dtype", action="append", default=[], metavar="NAME=DTYPE",
                       help="numpy dtype for an input (default: float32 for numbers, bytes for strings)")
    infer.add_argument("--model-version", type=int)
    stats = commands.add_parser("stats", help="inference counts and average queue/compute time per model")
    stats.add_argument("model", nargs="?", default="")
    for name in ("load", "unload"):
        command = commands.add_parser(name, help=f"{name} a model (admin; server in MODEL_CONTROL=explicit)")
        command.add_argument("model")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = args.url or f"localhost:{DEFAULT_PORTS[args.protocol]}"
    try:
        with Client(url, protocol=args.protocol, timeout_s=args.timeout, retries=args.retries,
                    admin_key=args.admin_key) as client:
            rows, headers = COMMANDS[args.command](client, args)
    except (ClientError, ValueError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if args.json or headers is None:  # generic outputs have no table shape
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows, headers))
    if args.command == "health" and not rows[0]["ready"]:
        return 1  # scripts can wait on it
    return 0


def table(rows: list[dict], headers: list[str]) -> str:
    cells = [[_cell(row.get(header, "")) for header in headers] for row in rows]
    widths = [max([len(header)] + [len(line[i]) for line in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4f}" for v in value[:4]) + (", ...]" if len(value) > 4 else "]")
    text = str(value)
    return text if len(text) <= TEXT_COLUMN else text[: TEXT_COLUMN - 3] + "..."


def _texts(args) -> list[str]:
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no text given: pass texts as arguments or on standard input")
    return texts


def _rows(args) -> list[list[float]]:
    lines = args.rows or [line for line in sys.stdin if line.strip()]
    try:
        return [[float(value) for value in line.replace(";", ",").split(",")] for line in lines]
    except ValueError as exc:
        raise ValueError(f"rows must be comma-separated numbers ({exc})") from None


def _health(client: Client, _):
    ready = client.is_ready()
    version = client.server_metadata().get("version", "?") if ready else "?"
    return [{"url": client.url, "protocol": client.protocol, "ready": ready, "version": version}], \
        ["url", "protocol", "ready", "version"]


def _models(client: Client, _):
    return client.models(), ["name", "version", "state"]


def _embed(client: Client, args):
    texts = _texts(args)
    vectors = client.embed(texts)
    return [{"text": t, "dims": len(v), "embedding": v.tolist()} for t, v in zip(texts, vectors)], \
        ["text", "dims", "embedding"]


def _sentiment(client: Client, args):
    texts = _texts(args)
    found = client.sentiment(texts, model=args.model, version=args.model_version)
    return [{"text": t, "label": p.label, "confidence": p.confidence, "probabilities": p.probabilities}
            for t, p in zip(texts, found)], ["text", "label", "confidence"]


def _digit(client: Client, args):
    for path in args.paths:
        if not path.is_file():
            raise ValueError(f"{path} is not a file")
    found = client.classify_digit(args.paths)
    return [{"image": str(path), "label": p.label, "confidence": p.confidence} for path, p in zip(args.paths, found)], \
        ["image", "label", "confidence"]


def _diabetes(client: Client, args):
    values = client.predict_diabetes(_rows(args))
    return [{"row": i, "prediction": float(v)} for i, v in enumerate(values)], ["row", "prediction"]


def _cancer(client: Client, args):
    values = client.predict_cancer(_rows(args))
    return [{"row": i, "probability_benign": float(v)} for i, v in enumerate(values)], ["row", "probability_benign"]


def _infer(client: Client, args):
    source = args.inputs
    text = sys.stdin.read() if source == "-" else Path(source[1:]).read_text() if source.startswith("@") else source
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--inputs is not JSON ({exc}); give {{\"NAME\": [[...]]}}") from None
    dtypes = dict(item.split("=", 1) for item in args.dtype)
    inputs = {name: _array(value, dtypes.get(name)) for name, value in raw.items()}
    outputs = client.infer(args.model, inputs, version=args.model_version)
    return {name: _jsonable(array) for name, array in outputs.items()}, None


def _array(value, dtype: str | None) -> np.ndarray:
    array = np.array(value)
    if dtype:
        return array.astype(dtype)
    if array.dtype.kind in "US":
        return np.vectorize(lambda s: s.encode("utf-8"), otypes=[np.object_])(array)
    return array.astype(np.float32)


def _jsonable(array: np.ndarray):
    if array.dtype == np.object_:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def _stats(client: Client, args):
    rows = []
    for entry in client.statistics(args.model):
        stats = entry.get("inference_stats", {})
        count = int(entry.get("inference_count", 0) or 0)
        rows.append({
            "model": entry["name"], "version": entry.get("version", ""), "inferences": count,
            "executions": int(entry.get("execution_count", 0) or 0),
            "avg_queue_ms": _average_ms(stats.get("queue", {})), "avg_compute_ms": _average_ms(stats.get("compute_infer", {})),
        })
    return rows, ["model", "version", "inferences", "executions", "avg_queue_ms", "avg_compute_ms"]


def _average_ms(bucket: dict) -> float:
    count = int(bucket.get("count", 0) or 0)
    return int(bucket.get("ns", 0) or 0) / count / 1e6 if count else 0.0


def _load(client: Client, args):
    client.load(args.model)
    return [{"model": args.model, "action": "loaded"}], ["model", "action"]


def _unload(client: Client, args):
    client.unload(args.model)
    return [{"model": args.model, "action": "unloaded"}], ["model", "action"]


COMMANDS = {
    "health": _health, "models": _models, "embed": _embed, "sentiment": _sentiment, "digit": _digit,
    "diabetes": _diabetes, "cancer": _cancer, "infer": _infer, "stats": _stats, "load": _load, "unload": _unload,
}
