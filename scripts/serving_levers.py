"""Serving levers of issues 14 and 38, measured against what they replaced or beside it (bench/results/TUNING.md).

    # 1. Classifier heads in the graph, shipped (issue 38: export/convert/head.py), against the Python step they
    #    replaced: *_python_head pipelines whose classifier answers logits to a Python softmax step (the old
    #    ClassifierPostprocess, rebuilt here); serve them beside the shipped ones and compare in one server:
    .venv/bin/python scripts/serving_levers.py python-heads /tmp/levers
    taskset -c 1 .venv/bin/python -m tritonkit.server --model-repository model_repository \\
        --model-repository ensembles --model-repository /tmp/levers
    taskset -c 0 .venv/bin/python scripts/serving_levers.py load digit_classifier digit_classifier_python_head

    # 2. Fewer hops for digits: one Python step that decodes the image and runs digit_resnet's graph (its head
    #    included) with ONNX Runtime in the same process, against the shipped two-step pipeline:
    .venv/bin/python scripts/serving_levers.py merged-digits /tmp/levers
    (serve as above, then) taskset -c 0 .venv/bin/python scripts/serving_levers.py load digit_classifier \\
        digit_classifier_merged --concurrency 1

    # 3. Static (calibrated) QDQ INT8 of the MiniLM encoder, with and without SmoothQuant, against the shipped
    #    dynamic scheme: min cosine to FP32 over the 180 held-out sentences and rows/s (one ORT thread)
    taskset -c 1 .venv/bin/python scripts/serving_levers.py static-int8

``load`` runs a closed loop of gRPC requests (one short text or one digit PNG each) at a concurrency against each
endpoint in turn, A/B/A/B, and prints its throughput and the CPU a request of the front and tritonserver (their
/proc ticks over the run).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from minilm_variants import min_cosines, rows_per_second, session

from tritonkit import paths

PIPELINES = ("text_sentiment", "lstm_sentiment", "digit_classifier")  # each ends at a classifier with its head
TEXT = "The service was quick and the food was lovely."
# The Python step every classifier pipeline ended with before issue 38, as it was (tritonkit.steps' BatchStep)
PYTHON_HEAD = '''import numpy as np

from tritonkit.steps import labels
from tritonkit.steps.steps import BatchStep


class TritonPythonModel(BatchStep):
    def setup(self):
        self.labels = (self.model_dir / "labels.txt").read_text().split()

    def read(self, request):
        return self.rows(request, "logits")

    def process(self, items):
        results = []
        for logits in items:
            probabilities = labels.softmax(logits.astype(np.float32))
            results.append({"LABEL": labels.top_labels(probabilities, self.labels), "PROBABILITIES": probabilities})
        return results
'''


def python_heads(out: Path) -> None:
    """``<pipeline>_python_head``: the shipped pipeline with its classifier's labels computed by a Python step."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    def parse(path: Path):
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())

    shutil.rmtree(out, ignore_errors=True)
    for pipeline in PIPELINES:
        ensemble = parse(paths.ensembles() / pipeline / "config.pbtxt")
        last = ensemble.ensemble_scheduling.step[-1]
        model = parse(paths.model_repository() / last.model_name / "config.pbtxt")
        logits = next(tensor for tensor in model.output if tensor.name == "logits")
        step = model_config_pb2.ModelConfig(name=f"{pipeline}_python_step", backend="python",
                                            max_batch_size=ensemble.max_batch_size)
        step.input.add(name="logits", data_type=logits.data_type, dims=logits.dims)
        step.output.extend(tensor for tensor in model.output if tensor.name in ("LABEL", "PROBABILITIES"))
        step.dynamic_batching.default_queue_policy.max_queue_size = 4 * ensemble.max_batch_size
        step.instance_group.add(kind=model_config_pb2.ModelInstanceGroup.KIND_CPU, count=1)
        (out / step.name / "1").mkdir(parents=True)
        (out / step.name / "1" / "model.py").write_text(PYTHON_HEAD)
        shutil.copy(paths.model_repository() / last.model_name / "labels.txt", out / step.name / "labels.txt")
        (out / step.name / "config.pbtxt").write_text(text_format.MessageToString(step))
        ensemble.name = f"{pipeline}_python_head"
        last.ClearField("output_map")
        last.output_map["logits"] = "logits"
        added = ensemble.ensemble_scheduling.step.add(model_name=step.name, model_version=-1)
        added.input_map["logits"] = "logits"
        for name in ("LABEL", "PROBABILITIES"):
            added.output_map[name] = name
        (out / ensemble.name / "1").mkdir(parents=True)
        (out / ensemble.name / "config.pbtxt").write_text(text_format.MessageToString(ensemble))
    print(f"{out}: {', '.join(sorted(path.name for path in out.iterdir()))}")


MERGED_DIGITS = '''import numpy as np
import onnxruntime as ort

from tritonkit.steps.steps import DigitImageStep


class TritonPythonModel(DigitImageStep):
    def setup(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.parameters["graph"], options, providers=["CPUExecutionProvider"])

    def process(self, items):
        label, probabilities = self.session.run(["LABEL", "PROBABILITIES"],
                                                {"pixel_values": np.concatenate(items)})
        results, start = [], 0
        for pixels in items:
            end = start + len(pixels)
            results.append({"LABEL": label[start:end].astype(object), "PROBABILITIES": probabilities[start:end]})
            start = end
        return results
'''


def merged_digits(out: Path) -> None:
    """``digit_classifier_merged``: decode + digit_resnet (with its head) in one Python step."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    ensemble = text_format.Parse((paths.ensembles() / "digit_classifier" / "config.pbtxt").read_text(),
                                 model_config_pb2.ModelConfig())
    step = model_config_pb2.ModelConfig(name="digit_classifier_merged", backend="python",
                                        max_batch_size=ensemble.max_batch_size)
    step.input.extend(ensemble.input)
    step.output.extend(ensemble.output)
    step.dynamic_batching.default_queue_policy.max_queue_size = 32
    step.instance_group.add(kind=model_config_pb2.ModelInstanceGroup.KIND_CPU, count=1)
    step.parameters["graph"].string_value = str(paths.model_repository() / "digit_resnet" / "1" / "model.onnx")
    folder = out / step.name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "model.py").write_text(MERGED_DIGITS)
    (folder / "config.pbtxt").write_text(text_format.MessageToString(step))
    print(f"{folder}")


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15])  # utime, stime and their children's


def _inputs(endpoint: str):
    import tritonclient.grpc as grpcclient

    from tritonkit.bench.inputs import digit_pngs

    name, value = ("IMAGE", digit_pngs()[0]) if endpoint.startswith("digit") else ("TEXT", TEXT.encode())
    tensor = grpcclient.InferInput(name, [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[value]], dtype=np.object_))
    return [tensor]


async def _closed_loop(url: str, endpoint: str, concurrency: int, seconds: float, pids: dict[str, int]) -> str:
    import tritonclient.grpc.aio as grpcaio

    client = grpcaio.InferenceServerClient(url)
    tensors = _inputs(endpoint)
    for _ in range(50):
        await client.infer(endpoint, tensors)
    done, stop = 0, time.perf_counter() + seconds

    async def worker():
        nonlocal done
        while time.perf_counter() < stop:
            await client.infer(endpoint, tensors)
            done += 1

    before, start = {name: _ticks(pid) for name, pid in pids.items()}, time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, tick = time.perf_counter() - start, os.sysconf("SC_CLK_TCK")
    await client.close()
    costs = "  ".join(f"{name} {(_ticks(pid) - before[name]) / tick * 1000 / done:.3f} ms/req"
                      for name, pid in pids.items())
    return f"{endpoint} c={concurrency}: {done / elapsed:.1f} req/s  {costs}"


def _pid(pattern: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in command:
                return int(entry.name)
    raise SystemExit(f"no process runs {pattern!r}: start the server first (see --help)")


def load(args) -> None:
    pids = {"front": _pid("tritonkit.server.front"), "tritonserver": _pid("bin/tritonserver ")}
    for _ in range(args.passes):
        for endpoint in args.endpoints:
            print(asyncio.run(_closed_loop(args.url, endpoint, args.concurrency, args.seconds, pids)), flush=True)


def static_int8() -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from tritonkit.export.builtin import builders, text
    from tritonkit.export.convert import quantize

    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    fp32 = paths.model_repository() / "minilm_encoder" / "1" / "model.onnx"
    calibration = list(builders._calibration())

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    graphs = {"FP32": fp32, "shipped: SmoothQuant 0.6 + dynamic, FFN down 0-3 FP32": fp32.parent.parent / "2" /
              "model.onnx"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clean = onnx.load(fp32)
        del clean.graph.value_info[:]
        onnx.save(clean, folder / "source.onnx")
        quant_pre_process(str(folder / "source.onnx"), str(folder / "prepared.onnx"), skip_symbolic_shape=True)
        prepared = onnx.load(folder / "prepared.onnx")
        maxima = quantize.activation_maxima(prepared, calibration)
        for alpha in (None, 0.6, 0.8):
            source = folder / "prepared.onnx"
            if alpha is not None:
                source = folder / f"smooth_{alpha}.onnx"
                onnx.save(quantize.smooth(onnx.load(folder / "prepared.onnx"), maxima, alpha), source)
            for keep in ((), tuple(f"layer.{i}/output/dense/" for i in range(4))):
                label = (f"SmoothQuant {alpha} + " if alpha else "") + "static QDQ (u8 activations, MinMax)" + (
                    ", FFN down 0-3 FP32" if keep else "")
                graphs[label] = folder / f"static_{len(graphs)}.onnx"
                quantize_static(str(source), str(graphs[label]), Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                                op_types_to_quantize=["MatMul"],
                                nodes_to_exclude=quantize.fp32_nodes(onnx.load(source), keep) if keep else [])
        sentences, reference = text.origin_test_texts(), session(fp32)
        print(f"| graph | min cosine to FP32 ({len(sentences)} held-out sentences): alone / in 8s / in one batch "
              "| rows/s b=1 x 16 | b=4 x 16 | b=1 x 128 |\n|---|---:|---:|---:|---:|")
        for label, path in graphs.items():
            graph = session(path)
            cosines = " / ".join(f"{cosine:.4f}" for cosine in min_cosines(graph, reference, sentences))
            speeds = " | ".join(f"{rows_per_second(graph, batch, tokens):.1f}"
                                for batch, tokens in ((1, 16), (4, 16), (1, 128)))
            print(f"| {label} | {cosines} | {speeds} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("python-heads", help="write the *_python_head pipelines (the labels by a Python step, as "
                        "before issue 38)").add_argument("out", type=Path, help="a model repository folder to write")
    loading = commands.add_parser("load", help="A/B/A/B closed-loop gRPC load on endpoints of the running server")
    loading.add_argument("endpoints", nargs="+")
    loading.add_argument("--url", default="127.0.0.1:8001")
    loading.add_argument("--concurrency", type=int, default=8)
    loading.add_argument("--seconds", type=float, default=8.0)
    loading.add_argument("--passes", type=int, default=2)
    commands.add_parser("merged-digits", help="write digit_classifier_merged (decode + model in one Python "
                        "step)").add_argument("out", type=Path, help="a model repository folder to write into")
    commands.add_parser("static-int8", help="static QDQ INT8 of the encoder: fidelity and speed table")
    args = parser.parse_args(argv)
    if args.command == "python-heads":
        python_heads(args.out)
    elif args.command == "merged-digits":
        merged_digits(args.out)
    elif args.command == "load":
        load(args)
    else:
        static_int8()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
