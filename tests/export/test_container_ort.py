"""Every exported ONNX graph loads and answers alike in the ONNX Runtime of the NGC container the docs name
(24.10 ships ORT 1.19.2 in its native backend), so the repository the embedded server runs serves there too."""

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from tritonkit import tools

ATOL = 1e-4  # the same FP32 graph in two ORT versions: kernels may sum in another order (2e-6 measured)
INT8_ATOL = 1e-2  # dynamic quantization rounds activations differently across versions (encoder v2: 2e-3 of 0.3)

# Runs in the container's ORT: each graph's outputs for the inputs saved beside it, saved as outputs.npz.
_RUN = """
import json, sys
import numpy as np, onnxruntime as ort
for path in json.loads(sys.argv[1]):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = dict(np.load(path + ".inputs.npz"))
    names = [output.name for output in session.get_outputs()]
    answers = [value.astype(str) if value.dtype == object else value for value in session.run(names, feeds)]
    np.savez(path + ".outputs.npz", **dict(zip(names, answers)))  # labels as fixed-width text: no pickle
print(ort.__version__)
"""


def _feeds(session: ort.InferenceSession, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Small valid inputs from the graph's own signature: ids and indices in 0..3, masks of ones, floats in [0, 1)."""
    feeds = {}
    for tensor in session.get_inputs():
        shape = [dim if isinstance(dim, int) else (2 if index == 0 else 8) for index, dim in enumerate(tensor.shape)]
        if "int" in tensor.type:
            low = 1 if "mask" in tensor.name else 0
            feeds[tensor.name] = rng.integers(low, 4, size=shape).astype(np.int64 if "64" in tensor.type else np.int32)
        else:
            feeds[tensor.name] = rng.random(shape, dtype=np.float32)
    return feeds


@pytest.fixture(scope="module")
def container_python():
    why = tools.install(["container-ort"])  # test setup: `make tools` installs it too
    if why is not None:
        pytest.fail(why)
    return tools.require("container-ort")


def test_every_exported_graph_answers_alike_in_the_containers_onnxruntime(exported_repository, container_python,
                                                                          tmp_path):
    graphs = sorted(exported_repository.glob("*/[0-9]*/model.onnx"))
    assert len(graphs) >= 8, graphs  # every model and version the export writes
    rng, expected, copies, tolerance = np.random.default_rng(0), {}, [], {}
    for graph in graphs:
        copy = tmp_path / f"{graph.parent.parent.name}_v{graph.parent.name}.onnx"
        copy.symlink_to(graph)
        session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        feeds = _feeds(session, rng)
        np.savez(f"{copy}.inputs.npz", **feeds)
        names = [output.name for output in session.get_outputs()]
        expected[copy] = dict(zip(names, session.run(names, feeds), strict=True))
        copies.append(str(copy))
        record = json.loads((graph.parent / "export.json").read_text())  # the export's own word on its format
        tolerance[copy] = INT8_ATOL if "INT8" in record["format"] else ATOL
    done = subprocess.run([str(container_python), "-c", _RUN, json.dumps(copies)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split()[-1] == "1.19.2"
    for copy, outputs in expected.items():
        theirs = np.load(f"{copy}.outputs.npz")
        for name, ours in outputs.items():
            if ours.dtype == object:  # a classifier's labels (its head): the same strings
                assert theirs[name].tolist() == ours.astype(str).tolist(), f"{copy.name}: {name}"
            else:
                np.testing.assert_allclose(theirs[name], ours, atol=tolerance[copy], err_msg=f"{copy.name}: {name}")
