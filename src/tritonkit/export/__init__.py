"""Train, convert and verify models, then write them into a Triton model repository.

``python -m tritonkit.export`` runs every built-in model (``export/builtin/registry.py``): train the source model
(seeded), convert it to ONNX, check the graph, compare ONNX Runtime against the source framework on
held-out rows within the model's tolerance, report the held-out metric, and write
``<repository>/<model>/<version>/model.onnx`` plus a ``config.pbtxt`` generated through Triton's
``ModelConfig`` protobuf. ``python -m tritonkit.export add NAME SOURCE`` does the same for a user's own model
(``export/add``), with the same converters, checks and config generation.

Layout: ``convert/`` the format converters, ``builtin/`` the trainers of the built-in models, ``repository/``
what is written (configs, ensembles, records, cards, the linter), ``add/`` a user's model; ``pipeline.py``,
``verify.py`` and ``spec.py`` are the steps every export shares.

Exceptions::

    ExportError            an export cannot be completed; the message names the model and the fix
    ├── GraphError         the ONNX graph fails onnx.checker or shape inference, or lacks named axes
    ├── ParityError        ONNX Runtime disagrees with the source framework beyond the tolerance
    ├── SourceError        a user's source, sample or card cannot be used as given (export add)
    └── CheckpointError    a checkpoint does not fit its built-in architecture (builtin/checkpoint.py)
"""


class ExportError(RuntimeError):
    """An export cannot be completed; the message names the model and the fix."""


class GraphError(ExportError):
    """The ONNX graph is malformed or does not fit Triton (names, axes, dtypes)."""


class ParityError(ExportError):
    """The exported graph disagrees with its source model beyond the model's tolerance."""


class SourceError(ExportError):
    """A source file, sample or option of ``export add`` cannot be used; the message names the problem and the fix."""


class CheckpointError(ExportError):
    """A ``--checkpoint`` file cannot be read or does not fit its built-in architecture; the message names the fix."""
