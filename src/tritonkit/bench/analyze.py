"""``python -m tritonkit.bench.analyze`` (``make analyze``): Triton's Model Analyzer sweeps a model's serving settings.

Model Analyzer 1.51 in its local launch mode starts the embedded tritonserver itself (the ``nvidia-pytriton``
binary, our backend directory and the environment ``embedded.server_environment`` gives the stubs), writes one
variant of the model's config per point of the sweep (instance count, max batch size, dynamic batcher queue delay),
loads each and measures it with perf_analyzer at each concurrency. Its results (CSV per model and measurement) and
summary go to ``reports/analyze/``.

Model Analyzer pins ``tritonclient[all]==2.51.0`` (grpcio<1.68, protobuf<5), which clash with the project's pins, so
``make tools`` installs it into a virtual environment of its own under ``.triton/analyze/`` (about 90 s, 620 MB).
perf_analyzer comes from ``make perf``'s (``bench/perf.py``). Each point takes about a minute here: perf_analyzer
measures until two windows agree within ``--stability`` percent, which a shared 2-core machine makes slow, so the
default sweep is small; widen it with the flags.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tritonkit import tools
from tritonkit.bench.perf import ensure_perf_analyzer
from tritonkit.server.ports import free_ports
from tritonkit.server.settings import LOOPBACK
from tritonkit.server.supervisor import embedded


def ensure_model_analyzer() -> Path:
    """The ``model-analyzer`` executable (``ToolMissing`` when ``make tools`` has not installed it)."""
    return tools.require("model-analyzer")


def config(args: argparse.Namespace, perf_analyzer: Path, out: Path) -> dict:
    """Model Analyzer's profile config (JSON, which its YAML reader takes) for the embedded server."""
    http, grpc, metrics = free_ports(3)
    environment = embedded.server_environment({"PATH": "/usr/bin:/bin"})
    models = {
        model: {
            "cpu_only": True,
            "model_config_parameters": {
                "max_batch_size": args.max_batch_size,
                "instance_group": [{"kind": "KIND_CPU", "count": args.instance_count}],
                "dynamic_batching": {"max_queue_delay_microseconds": args.queue_delay_us},
            },
            "parameters": {"concurrency": args.concurrency},
            "perf_analyzer_flags": {"stability-percentage": args.stability},
        }
        for model in args.model
    }
    return {
        "model_repository": str(args.repository.resolve()),
        "profile_models": models,
        "triton_launch_mode": "local",
        "triton_server_path": str(embedded.pytriton_root() / "bin" / "tritonserver"),
        # Loopback only, as every server of ours: Model Analyzer's own default is every address, with the model
        # repository API open.
        "triton_server_flags": {"backend_directory": str(embedded.prepare_backends()), "http_address": LOOPBACK,
                                "grpc_address": LOOPBACK, "metrics_address": LOOPBACK},
        "triton_server_environment": {"LD_LIBRARY_PATH": environment["LD_LIBRARY_PATH"], "PATH": environment["PATH"]},
        "perf_analyzer_path": str(perf_analyzer),
        "triton_http_endpoint": f"{LOOPBACK}:{http}",
        "triton_grpc_endpoint": f"{LOOPBACK}:{grpc}",
        "triton_metrics_url": f"http://{LOOPBACK}:{metrics}/metrics",
        "output_model_repository_path": str(out / "models"),
        "override_output_model_repository": True,
        "export_path": str(out),
        "checkpoint_directory": str(out / "checkpoints"),
        "triton_output_path": str(out / "tritonserver.log"),
        "perf_output_path": str(out / "perf_analyzer.log"),
        "perf_output": True,
        "perf_analyzer_timeout": 300,
    }


def _numbers(kind):
    return lambda text: [kind(part) for part in text.split(",")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench.analyze", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", action="append", help="a model of the repository to sweep (repeat for several; "
                        "default: digit_resnet)")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--instance-count", type=_numbers(int), default=[1, 2], metavar="N,N")
    parser.add_argument("--max-batch-size", type=_numbers(int), default=[8, 32], metavar="N,N")
    parser.add_argument("--queue-delay-us", type=_numbers(int), default=[0], metavar="US,US")
    parser.add_argument("--concurrency", type=_numbers(int), default=[1, 8], metavar="N,N")
    parser.add_argument("--stability", type=int, default=50, help="perf_analyzer's --stability-percentage")
    parser.add_argument("--out", type=Path, default=Path("reports/analyze"))
    args = parser.parse_args(argv)
    args.model = args.model or ["digit_resnet"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [model for model in args.model if not (args.repository / model / "config.pbtxt").is_file()]
    if missing:
        print(f"error: not in {args.repository}: {', '.join(missing)}; fix: name a model folder there "
              "(`make export` writes them)", file=sys.stderr)
        return 2
    try:
        analyzer, perf_analyzer = ensure_model_analyzer(), ensure_perf_analyzer()
    except tools.ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.yaml"
    config_path.write_text(json.dumps(config(args, perf_analyzer, out), indent=1))
    points = (len(args.instance_count) * len(args.max_batch_size) * len(args.queue_delay_us) + 1) * len(
        args.concurrency)
    print(f"analyze: {points} measurements per model (about a minute each here); Model Analyzer's log follows",
          file=sys.stderr, flush=True)
    done = subprocess.run([str(analyzer), "profile", "-f", str(config_path)], cwd=out, check=False)
    if done.returncode != 0:
        print(f"error: Model Analyzer failed (exit {done.returncode}); see {out}/perf_analyzer.log and "
              f"{out}/tritonserver.log", file=sys.stderr)
        return 1
    print(f"analyze: results in {out}/results, summaries in {out}/reports", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
