"""MiniLM graph variants side by side in one process: exporter, ORT's transformer optimizer, INT8 schemes.

Reproduces the in-process figures of bench/results/TUNING.md (steps 6-7 and "Tried and not kept"):

    taskset -c 1 .venv/bin/python scripts/minilm_variants.py            # speed of each graph, then INT8 fidelity
    taskset -c 1 .venv/bin/python scripts/minilm_variants.py --speed    # speed only (about 1 min)

Every graph is the pretrained all-MiniLM-L6-v2 encoder with mean pooling (minilm_encoder's source), built from
the local weights; one ONNX Runtime thread, as on the bench's server CPU. Fidelity is the min cosine of each INT8
graph's embeddings to the FP32 graph's over the 180 held-out sentences, each run alone, in padded batches of 8 and
all in one batch (dynamic INT8 scales activations per tensor, so the batch matters). The SmoothQuant graphs are
made by the export's own code (export/convert/quantize.py) with its calibration sentences.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SHAPES = ((1, 16), (4, 16), (1, 128), (1, 160), (2, 128))  # (batch, tokens): short texts and ~100-word ones
SECONDS = 1.5
BATCHES = (1, 8, 180)  # sentences a run: alone, a dynamic batch under load, every held-out sentence at once


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def rows_per_second(graph, batch: int, tokens: int) -> float:
    ids = np.random.default_rng(0).integers(1000, 2000, (batch, tokens)).astype(np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones((batch, tokens), np.int64)}
    graph.run(None, feed)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        graph.run(None, feed)
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def export(folder: Path) -> dict[str, Path]:
    """The FP32 graphs: dynamo (the exporter before step 6), TorchScript (shipped), TorchScript + ORT optimizer."""
    import onnx
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel

    from tritonkit.export.builtin import text
    from tritonkit.export.convert import hf2onnx, torch2onnx

    examples = text.tokenize(["an example sentence to trace", "and a second, longer one to trace the padding"])
    tensors = tuple(torch.from_numpy(examples[name]) for name in hf2onnx.INPUT_NAMES)
    graphs = {}
    for label, attention, torchscript in (("dynamo", "sdpa", False), ("torchscript", "sdpa", True),
                                          ("torchscript eager attention", "eager", True)):
        bert = AutoModel.from_pretrained(str(text.minilm_path()), local_files_only=True,
                                         attn_implementation=attention).eval()
        model = torch2onnx.convert(hf2onnx.mean_pooled_encoder(bert), tensors, input_names=hf2onnx.INPUT_NAMES,
                                   output_names=["sentence_embedding"], max_sequence=text.MAX_SEQUENCE,
                                   torchscript=torchscript)
        graphs[label] = folder / f"{label.replace(' ', '_')}.onnx"
        onnx.save(model, graphs[label])
    fused = optimizer.optimize_model(str(graphs["torchscript eager attention"]), model_type="bert", num_heads=12,
                                     hidden_size=384)
    print("ORT transformer optimizer on the eager-attention trace:", {
        name: count for name, count in fused.get_fused_operator_statistics().items() if count})
    graphs["torchscript + ORT transformer optimizer"] = folder / "fused.onnx"
    fused.save_model_to_file(str(graphs["torchscript + ORT transformer optimizer"]))
    return graphs


def int8_variants(source: Path, folder: Path) -> dict[str, Path]:
    """Dynamic INT8 schemes and ORT's weight-only block quantization, from the shipped (TorchScript) graph."""
    import onnx
    from onnxruntime.quantization import QuantType, matmul_nbits_quantizer, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    matmuls = [node.name for node in onnx.load(prepared).graph.node if node.op_type == "MatMul"]
    dynamic = {
        "dynamic, 8-bit weights": {},
        "dynamic, 7-bit weights (shipped classifier)": {"reduce_range": True},
        "dynamic, MatMul only (embeddings FP32)": {"op_types_to_quantize": ["MatMul"]},
        "dynamic, FFN down + attention output FP32": {
            "nodes_to_exclude": [name for name in matmuls if "/output/dense" in name]},
        "dynamic, attention projections FP32": {
            "nodes_to_exclude": [name for name in matmuls if "/attention/" in name]},
        "dynamic, FFN up FP32": {"nodes_to_exclude": [name for name in matmuls if "/intermediate/" in name]},
    }
    graphs = {}
    for label, options in dynamic.items():
        graphs[label] = folder / f"int8_{len(graphs)}.onnx"
        quantize_dynamic(str(prepared), str(graphs[label]), weight_type=QuantType.QInt8, per_channel=True, **options)
    for bits, block, level in ((8, 32, 4), (8, 128, 4), (4, 32, 4), (8, 32, None)):
        label = f"weight-only {bits}-bit, block {block}, " + ("int8 compute" if level == 4 else "FP32 compute")
        quantizer = matmul_nbits_quantizer.MatMulNBitsQuantizer(onnx.load(source), bits=bits, block_size=block,
                                                                 is_symmetric=True, accuracy_level=level)
        quantizer.process()
        graphs[label] = folder / f"nbits_{len(graphs)}.onnx"
        quantizer.model.save_model_to_file(str(graphs[label]), False)
    from tritonkit.export.builtin import builders, registry
    from tritonkit.export.convert import quantize

    calibration = builders._calibration()
    for label, scheme in (("SmoothQuant 0.7", quantize.Int8Scheme(smooth_alpha=0.7)),
                          ("SmoothQuant 0.6, FFN down of layers 0-2 FP32",
                           quantize.Int8Scheme(0.6, tuple(f"layer.{i}/output/dense/" for i in range(3)))),
                          ("SmoothQuant 0.6, FFN down of layers 0-3 FP32 (shipped encoder)", registry.MINILM_INT8)):
        graphs[label] = folder / f"smooth_{len(graphs)}.onnx"
        onnx.save(quantize.quantize_int8(onnx.load(source), scheme, calibration), graphs[label])
    return graphs


def min_cosines(graph, fp32, sentences: list[str]) -> list[float]:
    """Min cosine to the FP32 graph over ``sentences``, each run alone, in padded batches of 8, and all in one batch
    (INT8 scales its activations per tensor, so the batch a sentence runs in matters)."""
    from tritonkit.export.builtin import text

    found = []
    for size in BATCHES:
        feeds = [text.tokenize(sentences[i : i + size]) for i in range(0, len(sentences), size)]
        embeddings, reference = (np.concatenate([model.run(None, feed)[0] for feed in feeds])
                                 for model in (graph, fp32))
        cosine = np.sum(embeddings * reference, axis=1) / np.linalg.norm(embeddings, axis=1) / np.linalg.norm(
            reference, axis=1)
        found.append(float(cosine.min()))
    return found


def speed_table(graphs: dict[str, Path]) -> None:
    print("\n| graph | " + " | ".join(f"b={b}, {t} tokens" for b, t in SHAPES) + " |")
    print("|---|" + "---:|" * len(SHAPES))
    for label, path in graphs.items():
        graph = session(path)
        print(f"| {label} | " + " | ".join(f"{rows_per_second(graph, b, t):.1f}" for b, t in SHAPES) + " |",
              flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speed", action="store_true", help="only the FP32 speed table")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)  # the quantizers narrate every node on the root logger
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)  # ... and on ORT's own (matmul_nbits_quantizer)
    from tritonkit.export.builtin import text
    from tritonkit.export.convert import hf2onnx

    hf2onnx.quiet_transformers()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fp32 = export(folder)
        speed_table(fp32)
        if args.speed:
            return 0
        quantized = int8_variants(fp32["torchscript"], folder)
        sentences, reference = text.origin_test_texts(), session(fp32["torchscript"])
        print(f"\n| INT8 graph | min cosine to FP32 ({len(sentences)} held-out sentences): alone, in batches of 8, "
              "in one batch |\n|---|---:|")
        for label, path in quantized.items():
            found = " / ".join(f"{cosine:.4f}" for cosine in min_cosines(session(path), reference, sentences))
            print(f"| {label} | {found} |", flush=True)
        speed_table({"FP32 (torchscript)": fp32["torchscript"], **quantized})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
