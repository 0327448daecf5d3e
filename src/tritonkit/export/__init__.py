"""Train, convert and verify models, then write them into a Triton model repository.

``python -m tritonkit.export`` runs every registered model (``export/builtin/registry.py``): train the source model
(seeded), convert it to ONNX, check the graph, compare ONNX Runtime against the source framework on
held-out rows within the model's tolerance, report the held-out metric, and write
``<repository>/<model>/<version>/model.onnx`` plus a ``config.pbtxt`` generated through Triton's
``ModelConfig`` protobuf.

Exceptions::

    ExportError            an export cannot be completed; the message names the model and the fix
    ├── GraphError         the ONNX graph fails onnx.checker or shape inference, or lacks named axes
    └── ParityError        ONNX Runtime disagrees with the source framework beyond the tolerance
"""


class ExportError(RuntimeError):
    """An export cannot be completed; the message names the model and the fix."""


class GraphError(ExportError):
    """The ONNX graph is malformed or does not fit Triton (names, axes, dtypes)."""


class ParityError(ExportError):
    """The exported graph disagrees with its source model beyond the model's tolerance."""
