"""The ceiling: the served ONNX graphs in process with ONNX Runtime, no server, no client, no Python
steps, at each batch size up to the model's ``max_batch_size``; the best one is the ceiling.

Inputs are prepared the way the serving steps prepare them (tokenizer.json + length buckets; the digit
image step's pixels) before the clock starts. For digits that leaves out most of the work (the model takes about
a tenth of a request), so ``digit_classifier`` is also measured as the whole pipeline in one process: the
encoded PNGs decoded and reduced by the served step's own code inside the clock, then the model (issue 38).
Run pinned like the servers:

    taskset -c 1 python -m tritonkit.bench.ceiling --seconds 1.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from tritonkit import catalog, paths
from tritonkit.bench import inputs

BATCHES = (1, 2, 4, 8, 16, 32)
PIPELINE = "digit_classifier"  # the digits' whole pipeline in process: decode + reduce + model


def _session(model: str, version: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    path = paths.model_repository() / model / str(version) / "model.onnx"
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def text_feeds(texts: tuple[str, ...], batch: int) -> list[dict[str, np.ndarray]]:
    """Batches of ``batch`` texts, each padded to its length bucket as the tokenizer step pads them."""
    from tritonkit.steps import texts as steps

    tokenizer = steps.load_tokenizer(paths.ensembles() / "minilm_tokenizer" / "1" / "tokenizer.json",
                                     catalog.MAX_TOKENS)
    rows = [encoding.ids for encoding in tokenizer.encode_batch(list(texts))]
    return [steps.pad_to_bucket(rows[start : start + batch]) for start in range(0, len(rows) - batch + 1, batch)]


def digit_feeds(batch: int) -> list[dict[str, np.ndarray]]:
    from tritonkit.steps.imaging import image_pixels

    pixels = np.stack([image_pixels(png, row) for row, png in enumerate(inputs.digit_pngs())])
    return [{"pixel_values": pixels[start : start + batch]} for start in range(0, len(pixels) - batch + 1, batch)]


def digit_pipeline(session):
    """One batch of encoded images -> the model's answers, as the served pipeline does it, in one process."""
    from tritonkit.steps.imaging import image_pixels

    def run(feed):
        pixels = np.stack([image_pixels(png, row) for row, png in enumerate(feed["IMAGE"])])
        return session.run(None, {"pixel_values": pixels})

    return run


def png_feeds(batch: int) -> list[dict[str, list[bytes]]]:
    pngs = inputs.digit_pngs()
    return [{"IMAGE": pngs[start : start + batch]} for start in range(0, len(pngs) - batch + 1, batch)]


def rate(run, feeds: list[dict], seconds: float) -> float:
    """Rows per second over ``seconds`` of back-to-back ``run(feed)`` calls (after one pass of warm-up)."""
    for feed in feeds[: max(1, len(feeds) // 4)]:
        run(feed)
    rows, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for feed in feeds:
            run(feed)
            rows += len(next(iter(feed.values())))
            if time.perf_counter() - started >= seconds:
                break
    return rows / (time.perf_counter() - started)


def measure(seconds: float) -> list[dict]:
    """Rows/s per (graph, workload, batch size)."""
    results = []
    cases = [("minilm_sentiment", version, name) for version in (1, 2) for name in inputs.TEXT_SETS]
    cases += [("digit_resnet", 1, "digits"), (PIPELINE, 1, "digits")]
    for model, version, workload in cases:
        session = _session("digit_resnet" if model == PIPELINE else model, version)
        for batch in BATCHES:
            if model == PIPELINE:
                value = rate(digit_pipeline(session), png_feeds(batch), seconds)
            else:
                feeds = digit_feeds(batch) if workload == "digits" else text_feeds(inputs.TEXT_SETS[workload](), batch)
                value = rate(lambda feed, session=session: session.run(None, feed), feeds, seconds)
            results.append({"model": model, "version": version, "workload": workload, "batch": batch,
                            "rows_per_s": round(value, 2)})
            print(f"ceiling {model} v{version} {workload} batch {batch}: {value:.1f} rows/s", file=sys.stderr,
                  flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.bench.ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per batch size")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
