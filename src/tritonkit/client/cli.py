"""``python -m tritonkit.client`` (console script ``tritonkit``): the endpoints and server management from a shell.

Global options (--url, --protocol, --timeout, --retries, --admin-key, --json) go before or after the command:
the top parser holds their defaults, and every command's parser holds them again with ``argparse.SUPPRESS``
defaults, so a value given before the command is not overwritten by the command's parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from tritonkit import catalog
from tritonkit.client import metrics
from tritonkit.client._base import DEFAULT_RETRIES
from tritonkit.client.client import PROTOCOLS, Client
from tritonkit.client.errors import ClientError

DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
TEXT_COLUMN = 48
STATS_HEADERS = ["model", "version", "inferences", "executions", "avg_batch", "avg_queue_ms", "avg_compute_ms"]

# What a command prints: rows (or, for `infer`, one JSON object) and the table's columns (None: JSON only).
Result: TypeAlias = tuple[Any, list[str] | None]


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: global options, then one subcommand per endpoint or management call."""
    parser = argparse.ArgumentParser(
        prog="tritonkit",
        description="Call this repository's Triton endpoints (also `python -m tritonkit.client`). Texts come from "
        "arguments or, when none, from standard input (one a line). Tables by default, --json for scripts.",
        epilog="Global options may come before or after the command: `tritonkit sentiment 'Great food' --json`.",
    )
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_endpoint_commands(commands)
    _add_management_commands(commands)
    return parser


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Adds the global options; with ``suppress``, they have no default and only a value given here is set."""
    group = parser.add_argument_group("global options (before or after the command)")

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group.add_argument("--url", default=default(os.environ.get("TRITON_URL")),
                       help="server host:port [env TRITON_URL; default localhost:8000 (http) or :8001 (grpc)]")
    group.add_argument("--protocol", choices=PROTOCOLS, default=default("http"), help="transport (default http)")
    group.add_argument("--timeout", type=float, default=default(30.0), help="seconds per call (default 30)")
    group.add_argument("--retries", type=int, default=default(DEFAULT_RETRIES),
                       help=f"retries when the server is unavailable or overloaded (default {DEFAULT_RETRIES})")
    group.add_argument("--admin-key", default=default(os.environ.get("TRITON_ADMIN_KEY")),
                       help="admin key for models/load/unload [env TRITON_ADMIN_KEY]")
    group.add_argument("--json", action="store_true", default=default(False), help="print JSON instead of a table")


def _command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    add_global_options(command, suppress=True)
    return command


def _add_endpoint_commands(commands: Any) -> None:
    embed = _command(commands, "embed", "sentence embeddings (text_embedding: INT8 on CPU; text_embedding_fp32)")
    embed.add_argument("texts", nargs="*", help="texts; standard input when none")
    embed.add_argument("--model", choices=catalog.EMBEDDING_ENDPOINTS, default=catalog.EMBEDDING_ENDPOINTS[0],
                       help=f"the endpoint (default {catalog.EMBEDDING_ENDPOINTS[0]})")
    sentiment = _command(commands, "sentiment",
                         "negative/positive (text_sentiment: INT8 on CPU; text_sentiment_fp32; lstm_sentiment)")
    sentiment.add_argument("texts", nargs="*", help="texts; standard input when none")
    sentiment.add_argument("--model", choices=catalog.SENTIMENT_ENDPOINTS, default=catalog.SENTIMENT_ENDPOINTS[0],
                           help=f"the endpoint (default {catalog.SENTIMENT_ENDPOINTS[0]})")
    sentiment.add_argument("--model-version", type=int, help="model version (default: the server's policy)")
    _command(commands, "digit", "read a digit from image files (digit_classifier)").add_argument(
        "paths", nargs="+", type=Path, help="PNG, JPEG, BMP, WebP... files")
    recommend = _command(commands, "recommend", "the top K movies a MovieLens user has not rated "
                         f"({catalog.RECOMMENDER_ENDPOINT}; an unknown user gets the popular ones, flagged)")
    recommend.add_argument("users", nargs="+", type=int, help="MovieLens user ids (1-671 are known)")
    recommend.add_argument("-k", "--k", type=int, default=10, help=f"movies a user, 1..{catalog.MAX_RECOMMENDATIONS} "
                           "(default 10)")
    for name, width in (("diabetes", 10), ("cancer", 30)):
        _command(commands, name, f"{name} model on rows of {width} comma-separated features").add_argument(
            "rows", nargs="*", help=f"rows of {width} numbers (put -- before a row that starts with a minus sign); "
            "standard input (CSV lines) when none")
    infer = _command(commands, "infer", "any model: inputs as JSON, outputs as JSON")
    infer.add_argument("model", help="the model's name, e.g. minilm_encoder")
    infer.add_argument("--inputs", default="-", help='JSON {"NAME": nested list, ...}, @file.json, or - for stdin')
    infer.add_argument("--dtype", action="append", default=[], metavar="NAME=DTYPE",
                       help="numpy dtype for an input (default: float32 for numbers, bytes for strings)")
    infer.add_argument("--model-version", type=int, help="model version (default: the server's policy)")


def _add_management_commands(commands: Any) -> None:
    _command(commands, "health", "is the server live and ready; its version")
    _command(commands, "models", "every model with its version and state (admin)")
    _command(commands, "stats", "inference counts, average batch and queue/compute time per model").add_argument(
        "model", nargs="?", default="", help="one model (default: all)")
    for name in ("load", "unload"):
        _command(commands, name, f"{name} a model (admin; server in MODEL_CONTROL=explicit)").add_argument(
            "model", help="the model's name")


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns the exit status (1 on an error, or for `health` when the server is not ready)."""
    args = build_parser().parse_args(argv)
    url = args.url or f"localhost:{DEFAULT_PORTS[args.protocol]}"
    try:
        with Client(url, protocol=args.protocol, timeout_s=args.timeout, retries=args.retries,
                    admin_key=args.admin_key) as client:
            rows, headers = COMMANDS[args.command](client, args)
    except (ClientError, ValueError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json or headers is None else table(rows, headers))
    if args.command == "health" and not rows[0]["ready"]:
        return 1  # scripts can wait on it
    return 0


def table(rows: list[dict[str, Any]], headers: list[str]) -> str:
    """Rows as a plain-text table with aligned columns; long cells are shortened."""
    cells = [[_cell(row.get(header, "")) for header in headers] for row in rows]
    widths = [max([len(header)] + [len(line[i]) for line in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4f}" for v in value[:4]) + (", ...]" if len(value) > 4 else "]")
    text = str(value)
    return text if len(text) <= TEXT_COLUMN else text[: TEXT_COLUMN - 3] + "..."


def _texts(args: argparse.Namespace) -> list[str]:
    texts: list[str] = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("no text given: pass texts as arguments or on standard input")
    return texts


def _rows(args: argparse.Namespace) -> list[list[float]]:
    lines = args.rows or [line for line in sys.stdin if line.strip()]
    try:
        return [[float(value) for value in line.replace(";", ",").split(",")] for line in lines]
    except ValueError as exc:
        raise ValueError(f"rows must be comma-separated numbers ({exc})") from None


def _health(client: Client, _: argparse.Namespace) -> Result:
    ready = client.is_ready()
    version = client.server_metadata().get("version", "?") if ready else "?"
    return [{"url": client.url, "protocol": client.protocol, "ready": ready, "version": version}], \
        ["url", "protocol", "ready", "version"]


def _models(client: Client, _: argparse.Namespace) -> Result:
    return client.models(), ["name", "version", "state"]


def _embed(client: Client, args: argparse.Namespace) -> Result:
    texts = _texts(args)
    vectors = client.embed(texts, model=args.model)
    return [{"text": t, "dims": len(v), "embedding": v.tolist()} for t, v in zip(texts, vectors, strict=True)], \
        ["text", "dims", "embedding"]


def _sentiment(client: Client, args: argparse.Namespace) -> Result:
    texts = _texts(args)
    found = client.sentiment(texts, model=args.model, version=args.model_version)
    return [{"text": t, "label": p.label, "confidence": p.confidence, "probabilities": p.probabilities}
            for t, p in zip(texts, found, strict=True)], ["text", "label", "confidence"]


def _digit(client: Client, args: argparse.Namespace) -> Result:
    for path in args.paths:
        if not path.is_file():
            raise ValueError(f"{path} is not a file; give the path of an image (PNG, JPEG, BMP, WebP...)")
    found = client.classify_digit(args.paths)
    return [{"image": str(path), "label": p.label, "confidence": p.confidence}
            for path, p in zip(args.paths, found, strict=True)], ["image", "label", "confidence"]


def _recommend(client: Client, args: argparse.Namespace) -> Result:
    found = client.recommend(args.users, args.k)
    return [{"user": user, "rank": rank, "movie_id": movie.movie_id, "title": movie.title, "score": movie.score,
             "popular_fallback": movie.popular_fallback}
            for user, movies in zip(args.users, found, strict=True) for rank, movie in enumerate(movies, 1)], \
        ["user", "rank", "movie_id", "title", "score", "popular_fallback"]


def _diabetes(client: Client, args: argparse.Namespace) -> Result:
    values = client.predict_diabetes(_rows(args))
    return [{"row": i, "prediction": float(v)} for i, v in enumerate(values)], ["row", "prediction"]


def _cancer(client: Client, args: argparse.Namespace) -> Result:
    values = client.predict_cancer(_rows(args))
    return [{"row": i, "probability_benign": float(v)} for i, v in enumerate(values)], ["row", "probability_benign"]


def _infer(client: Client, args: argparse.Namespace) -> Result:
    dtypes = _dtypes(args.dtype)
    inputs = {name: _array(value, dtypes.get(name)) for name, value in _json_inputs(args.inputs).items()}
    outputs = client.infer(args.model, inputs, version=args.model_version)
    return {name: _jsonable(array) for name, array in outputs.items()}, None


def _json_inputs(source: str) -> dict[str, Any]:
    text = sys.stdin.read() if source == "-" else Path(source[1:]).read_text() if source.startswith("@") else source
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--inputs is not JSON ({exc}); give {{\"NAME\": [[...]]}}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"--inputs is a JSON {type(raw).__name__}; give an object {{\"NAME\": [[...]]}}")
    return raw


def _dtypes(items: list[str]) -> dict[str, str]:
    if any("=" not in item for item in items):
        raise ValueError(f"--dtype takes NAME=DTYPE (e.g. input_ids=int64), got {items}")
    return dict(item.split("=", 1) for item in items)


def _array(value: Any, dtype: str | None) -> npt.NDArray[Any]:
    array = np.array(value)
    if dtype:
        return array.astype(dtype)
    if array.dtype.kind in "US":
        return np.char.encode(array, "utf-8").astype(np.object_)  # BYTES tensors are object arrays of bytes
    return array.astype(np.float32)


def _jsonable(array: npt.NDArray[Any]) -> Any:
    if array.dtype == np.object_:
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def _stats(client: Client, args: argparse.Namespace) -> Result:
    rows = []
    for entry in client.statistics(args.model):
        counters = metrics.from_statistics(entry)  # the same averages as the load test's and the benchmark's
        rows.append({"model": entry["name"], "version": entry.get("version", ""),
                     "inferences": int(counters["inferences"]), "executions": int(counters["executions"]),
                     **metrics.averages(counters)})
    return rows, STATS_HEADERS


def _load(client: Client, args: argparse.Namespace) -> Result:
    client.load(args.model)
    return [{"model": args.model, "action": "loaded"}], ["model", "action"]


def _unload(client: Client, args: argparse.Namespace) -> Result:
    client.unload(args.model)
    return [{"model": args.model, "action": "unloaded"}], ["model", "action"]


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Result]] = {
    "health": _health, "models": _models, "embed": _embed, "sentiment": _sentiment, "digit": _digit,
    "recommend": _recommend, "diabetes": _diabetes, "cancer": _cancer, "infer": _infer, "stats": _stats,
    "load": _load, "unload": _unload,
}
