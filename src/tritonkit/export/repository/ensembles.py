"""The pipelines of ``ensembles/`` and their Python steps, generated from data like the models' configs.

A ``StepSpec`` is a Python-backend model (its code: a class of ``tritonkit.steps.steps``); an
``EnsembleSpec`` wires steps and exported models, stage by stage. Nothing is declared twice:
  - a step's tensor that faces a model is ``Like(model, tensor)``: its data type and dims come from that
    model's config, which export generated from the ONNX graph;
  - a step's ``max_batch_size`` is the smallest of the exported models in the pipelines that use it, and an
    ensemble's is the smallest of its stages';
  - an ensemble's inputs are the tensors its stages consume before any stage produces them, its outputs
    those produced and consumed by no later stage, each typed by the stage that touches it;
  - labels come from ``tritonkit.catalog`` and are written to ``labels.txt`` beside the step.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping

from tritonkit.export.repository.config import attach_labels

HEADER_WIDTH = 110
STEP_QUEUE_BATCHES = 4
# The classes of tritonkit/steps/steps.py
STEP_CLASSES = ("TokenizerStep", "DigitImageStep", "RecommenderStep")


@dataclasses.dataclass(frozen=True)
class Tensor:
    """A tensor declared here (one that no exported model has: raw text, encoded images, labels)."""

    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Like:
    """A tensor with the data type and dims of ``tensor`` of ``model``, named ``name`` (default: the same)."""

    model: str
    tensor: str
    name: str = ""


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """A Python-backend step of ``ensembles/``.

    Attributes:
        name: the model (folder) name.
        step_class: the class of ``tritonkit.steps.steps`` its ``1/model.py`` imports.
        summary: one line for the config's header comment.
        inputs: its input tensors.
        outputs: its output tensors.
        labels: class names for ``labels.txt``; the output whose last dim has this size gets ``label_filename``.
        parameters: ``parameters`` of the config, read by the step's ``setup``.
        instance_count: instances on the CPU.
    """

    name: str
    step_class: str
    summary: str
    inputs: tuple[Tensor | Like, ...]
    outputs: tuple[Tensor | Like, ...]
    labels: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    instance_count: int = 1
    batch_limit: int | None = None  # a public step outside any ensemble (it calls its model itself) sets its own

    def __post_init__(self):
        if self.step_class not in STEP_CLASSES:
            raise ValueError(f"step {self.name}: step_class {self.step_class!r} is not one of {STEP_CLASSES}; "
                             "add the class to tritonkit/steps/steps.py and to STEP_CLASSES")
        if not self.inputs or not self.outputs:
            raise ValueError(f"step {self.name}: a step needs at least one input and one output")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One model of a pipeline; its tensors keep their names in the ensemble unless ``rename`` maps them, and
    ``outputs`` (when given) are the only ones of its outputs the pipeline takes (a classifier's ``logits`` beside
    the ``LABEL`` and ``PROBABILITIES`` its graph also answers)."""

    model: str
    version: int = -1  # -1: the version the model's policy serves
    rename: tuple[tuple[str, str], ...] = ()
    outputs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class EnsembleSpec:
    """A public endpoint: ``stages`` run in order, each feeding the next through named tensors."""

    name: str
    summary: str
    stages: tuple[Stage, ...]

    def __post_init__(self):
        if len(self.stages) < 2:
            raise ValueError(f"ensemble {self.name}: needs at least two stages")

    def with_version(self, model: str, version: int, name: str, summary: str = "") -> EnsembleSpec:
        """The same pipeline under ``name`` with ``model`` pinned to ``version`` (the FP32 endpoints)."""
        if model not in {stage.model for stage in self.stages}:
            raise ValueError(f"ensemble {self.name} has no stage {model!r}")
        stages = tuple(dataclasses.replace(s, version=version) if s.model == model else s for s in self.stages)
        return dataclasses.replace(self, name=name, stages=stages, summary=summary or self.summary)


def step_configs(steps: tuple[StepSpec, ...], ensembles: tuple[EnsembleSpec, ...],
                 models: Mapping[str, object]) -> dict[str, object]:
    """``ModelConfig`` of every step, typed from ``models`` (the exported models' configs by name)."""
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2

    configs = {}
    for step in steps:
        limit = step.batch_limit or _step_batch_limit(step.name, ensembles, models)
        config = {
            "name": step.name,
            "backend": "python",
            "max_batch_size": limit,
            "input": [_tensor(item, models, step.name) for item in step.inputs],
            "output": [_tensor(item, models, step.name) for item in step.outputs],
            # No wait: batches form from what queues while an instance is busy. Bounded, but at four full batches:
            # steps are fast, so overload is refused at the model behind them (registry.TEXT_SERVING), while a
            # client's burst (40 texts at once) passes; a queue of one batch here refused part of such a burst.
            "dynamic_batching": {"default_queue_policy": {"max_queue_size": STEP_QUEUE_BATCHES * limit}},
            "instance_group": [{"kind": "KIND_CPU", "count": step.instance_count}],
        }
        if step.labels:
            attach_labels(step.name, config["output"], step.labels)
        if step.parameters:
            config["parameters"] = {key: {"string_value": value} for key, value in step.parameters}
        configs[step.name] = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    return configs


def ensemble_config(spec: EnsembleSpec, configs: Mapping[str, object]):
    """``ModelConfig`` of one ensemble from the configs of the models and steps it wires."""
    from google.protobuf import json_format
    from tritonclient.grpc import model_config_pb2

    produced: dict[str, dict] = {}
    inputs: dict[str, dict] = {}
    consumed: set[str] = set()
    steps = []
    for stage in spec.stages:
        config = _config_of(configs, stage.model, spec.name)
        rename = dict(stage.rename)
        taken = _taken_outputs(stage, config, spec.name)
        input_map = {tensor.name: rename.get(tensor.name, tensor.name) for tensor in config.input}
        output_map = {tensor.name: rename.get(tensor.name, tensor.name) for tensor in taken}
        for tensor in config.input:
            outer = input_map[tensor.name]
            if outer not in produced:
                inputs.setdefault(outer, _typed(outer, tensor))
            consumed.add(outer)
        for tensor in taken:
            produced[output_map[tensor.name]] = _typed(output_map[tensor.name], tensor)
        steps.append({"model_name": stage.model, "model_version": stage.version,
                      "input_map": input_map, "output_map": output_map})
    last_consumers = _consumed_after_production(spec, configs)
    outputs = [typed for name, typed in produced.items() if name not in last_consumers]
    config = {
        "name": spec.name,
        "platform": "ensemble",
        "max_batch_size": min(_config_of(configs, s.model, spec.name).max_batch_size for s in spec.stages),
        "input": list(inputs.values()),
        "output": outputs,
        "ensemble_scheduling": {"step": steps},
    }
    return json_format.ParseDict(config, model_config_pb2.ModelConfig())


def header(summary: str) -> str:
    """The comment a generated ensemble or step config starts with."""
    lines = ["Generated by `python -m tritonkit.export` from src/tritonkit/export/builtin/registry.py; edit that, "
             "not this file.", *textwrap.wrap(summary, HEADER_WIDTH)]
    return "".join(f"# {line}\n" for line in lines)


def labels_text(labels: tuple[str, ...]) -> str:
    """``labels.txt``: one class name a line, index = class id."""
    return "".join(f"{label}\n" for label in labels)


def _consumed_after_production(spec: EnsembleSpec, configs: Mapping[str, object]) -> set[str]:
    """Tensors some stage consumes after an earlier stage produced them (the intermediates)."""
    produced: set[str] = set()
    intermediates: set[str] = set()
    for stage in spec.stages:
        config = _config_of(configs, stage.model, spec.name)
        rename = dict(stage.rename)
        intermediates |= {rename.get(t.name, t.name) for t in config.input} & produced
        produced |= {rename.get(t.name, t.name) for t in _taken_outputs(stage, config, spec.name)}
    return intermediates


def _taken_outputs(stage: Stage, config, user: str) -> list:
    if not stage.outputs:
        return list(config.output)
    missing = set(stage.outputs) - {tensor.name for tensor in config.output}
    if missing:
        raise ValueError(f"{user}: stage {stage.model} has no output {', '.join(sorted(missing))}; it has "
                         f"{', '.join(tensor.name for tensor in config.output)}")
    return [tensor for tensor in config.output if tensor.name in stage.outputs]


def _step_batch_limit(step: str, ensembles: tuple[EnsembleSpec, ...], models: Mapping[str, object]) -> int:
    limits = [models[stage.model].max_batch_size for spec in ensembles if step in {s.model for s in spec.stages}
              for stage in spec.stages if stage.model in models]
    if not limits:
        raise ValueError(f"step {step} is in no ensemble with an exported model: its max_batch_size has no source")
    return min(limits)


def _tensor(item: Tensor | Like, models: Mapping[str, object], step: str) -> dict:
    if isinstance(item, Tensor):
        return {"name": item.name, "data_type": item.data_type, "dims": list(item.dims)}
    config = _config_of(models, item.model, step)
    for tensor in [*config.input, *config.output]:
        if tensor.name == item.tensor:
            return _typed(item.name or item.tensor, tensor)
    raise ValueError(f"step {step}: model {item.model} has no tensor {item.tensor!r}; "
                     f"it has {', '.join(t.name for t in [*config.input, *config.output])}")


def _typed(name: str, tensor) -> dict:
    from tritonclient.grpc import model_config_pb2

    return {"name": name, "data_type": model_config_pb2.DataType.Name(tensor.data_type), "dims": list(tensor.dims)}


def _config_of(configs: Mapping[str, object], model: str, user: str):
    if model not in configs:
        raise ValueError(f"{user} wires model {model!r}, which has no config; export it first (`make export`) "
                         "or fix the name in src/tritonkit/export/builtin/registry.py")
    return configs[model]
