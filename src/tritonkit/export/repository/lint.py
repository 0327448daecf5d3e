"""``python -m tritonkit.export.repository.lint``: every config.pbtxt against its ONNX graph, every ensemble's wiring.

Each problem names the file, the field and the fix. Checks:
  - the config parses with Triton's ``ModelConfig`` protobuf and its ``name`` is its folder's name;
  - ONNX models: every version has its model file; inputs and outputs match the graph by name, data type
    and dims; ``max_batch_size > 0`` only with a dynamic first axis in the graph; label files exist;
  - ensembles: every step's model exists; every ``input_map``/``output_map`` tensor exists on the step
    model with the same data type and shape as the tensor it is wired to; no tensor is produced twice;
    every intermediate is consumed; every ensemble output is produced and every ensemble input used;
  - a Python model that calls a scorer itself (BLS): the scorer exists, takes its calls' rows, answers ``score``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from tritonkit import paths
from tritonkit.export.convert.graph import TRITON_DTYPES, graph_inputs
from tritonkit.export.repository.config import parse_pbtxt

ONNX_BACKENDS = {"onnxruntime"}
ONNX_PLATFORMS = {"onnxruntime_onnx"}


@dataclasses.dataclass(frozen=True)
class Problem:
    path: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


@dataclasses.dataclass
class Model:
    config: object  # ModelConfig
    directory: Path

    @property
    def path(self) -> Path:
        return self.directory / "config.pbtxt"

    def tensors(self, kind: str) -> dict:
        return {tensor.name: tensor for tensor in getattr(self.config, kind)}


def load_models(repositories: list[Path], problems: list[Problem]) -> dict[str, Model]:
    models: dict[str, Model] = {}
    for repository in repositories:
        for path in sorted(Path(repository).glob("*/config.pbtxt")):
            try:
                config = parse_pbtxt(path.read_text())
            except Exception as exc:
                problems.append(Problem(path, "(syntax)", f"{exc}; see model_config.proto for the field names"))
                continue
            if config.name != path.parent.name:
                problems.append(Problem(path, "name", f"is {config.name!r}; Triton needs the folder name "
                                                      f"{path.parent.name!r}"))
            if config.name in models:
                problems.append(Problem(path, "name", f"{config.name!r} is also defined in {models[config.name].path}; "
                                                      "model names must be unique across repositories"))
                continue
            models[config.name] = Model(config, path.parent)
    return models


def lint_repositories(repositories: list[Path]) -> list[Problem]:
    problems: list[Problem] = []
    models = load_models(repositories, problems)
    for model in models.values():
        config = model.config
        if config.backend in ONNX_BACKENDS or config.platform in ONNX_PLATFORMS:
            problems += check_onnx_model(model)
        if config.platform == "ensemble":
            problems += check_ensemble(model, models)
        if "scorer" in config.parameters:
            problems += check_scorer(model, models)
        problems += check_label_files(model)
    return problems


def check_scorer(model: Model, models: dict[str, Model]) -> list[Problem]:
    """A Python model that calls another (BLS, parameter ``scorer``) in calls of ``scorer_batch`` rows: that
    model exists, takes that many rows, and answers ``score``."""
    parameters = model.config.parameters
    name = parameters["scorer"].string_value
    scorer = models.get(name)
    if scorer is None:
        return [Problem(model.path, "parameters scorer", f"names {name!r}, which no repository holds; fix the name "
                                                          "in src/tritonkit/export/builtin/registry.py or export it")]
    problems = []
    batch = parameters["scorer_batch"].string_value if "scorer_batch" in parameters else ""
    if not batch.isdigit() or not 1 <= int(batch) <= scorer.config.max_batch_size:
        problems.append(Problem(model.path, "parameters scorer_batch",
                                f"is {batch!r}; it must be 1..{name}'s max_batch_size "
                                f"({scorer.config.max_batch_size}), or Triton refuses the calls"))
    if "score" not in scorer.tensors("output"):
        problems.append(Problem(model.path, "parameters scorer", f"{name} has no output 'score', which the step reads"))
    return problems


def check_label_files(model: Model) -> list[Problem]:
    return [
        Problem(model.path, f"output {name!r} label_filename",
                f"{tensor.label_filename!r} is missing from {model.directory}; run `make export` to write it")
        for name, tensor in model.tensors("output").items()
        if tensor.label_filename and not (model.directory / tensor.label_filename).is_file()
    ]


def check_onnx_model(model: Model) -> list[Problem]:
    import onnx

    versions = sorted(child for child in model.directory.iterdir() if child.is_dir() and child.name.isdigit())
    if not versions:
        return [Problem(model.path, "versions", "no version folder holds a model; run `make export`")]
    problems = []
    filename = model.config.default_model_filename or "model.onnx"
    for version in versions:
        path = version / filename
        if not path.is_file():
            problems.append(Problem(model.path, f"version {version.name}", f"{path} is missing; run `make export`"))
            continue
        graph = onnx.load(path, load_external_data=False)
        problems += compare_tensors(model, "input", graph_inputs(graph), path)
        problems += compare_tensors(model, "output", graph.graph.output, path)
    return problems


def compare_tensors(model: Model, kind: str, values, onnx_path: Path) -> list[Problem]:
    """Names, data types and dims of a config's inputs or outputs against the graph's."""
    problems = []
    declared = model.tensors(kind)
    batched = model.config.max_batch_size > 0
    in_graph = {value.name: value for value in values}
    for name in sorted(set(in_graph) - set(declared)):
        problems.append(Problem(model.path, kind, f"the graph {onnx_path.name} has {kind} {name!r} but the config "
                                                  f"does not declare it; add it (graph {kind}s: {sorted(in_graph)})"))
    for name, tensor in declared.items():
        field = f"{kind} {name!r}"
        if name not in in_graph:
            problems.append(Problem(model.path, field, f"is not in the graph {onnx_path.name} "
                                                       f"(graph {kind}s: {sorted(in_graph)}); fix the name"))
            continue
        value = in_graph[name].type.tensor_type
        graph_type = TRITON_DTYPES.get(value.elem_type, f"ONNX type {value.elem_type}")
        config_type = _dtype_name(tensor.data_type)
        if graph_type != config_type:
            problems.append(Problem(model.path, f"{field} data_type",
                                    f"is {config_type} but the graph has {graph_type}; set data_type: {graph_type}"))
        graph_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.shape.dim]
        if batched:
            if not graph_dims or graph_dims[0] != -1:
                problems.append(Problem(model.path, "max_batch_size",
                                        f"is {model.config.max_batch_size} but the graph's {kind} {name!r} has a fixed "
                                        f"first axis {graph_dims[:1]}; export with a dynamic batch axis or set "
                                        "max_batch_size: 0"))
                continue
            graph_dims = graph_dims[1:]
        problems += _compare_dims(model, field, list(tensor.dims), graph_dims)
    return problems


def _compare_dims(model: Model, field: str, config_dims: list[int], graph_dims: list[int]) -> list[Problem]:
    compatible = len(config_dims) == len(graph_dims) and all(
        g in (-1, c) for c, g in zip(config_dims, graph_dims, strict=False)
    )
    if compatible:
        return []
    batch_note = " (without the batch axis, since max_batch_size > 0)" if model.config.max_batch_size > 0 else ""
    return [Problem(model.path, f"{field} dims", f"are {config_dims} but the graph has {graph_dims}{batch_note}; "
                                                 f"set dims: {graph_dims}")]


def check_ensemble(model: Model, models: dict[str, Model]) -> list[Problem]:
    """Wiring of ``ensemble_scheduling``: existence, types and shapes, produced once, consumed."""
    steps = list(model.config.ensemble_scheduling.step)
    problems, produced = _step_outputs(model, models, steps)
    consumed: set[str] = set()
    for index, step in enumerate(steps):
        target = models.get(step.model_name)
        field = f"ensemble_scheduling.step[{index}] ({step.model_name}) input_map"
        for step_input, tensor_name in step.input_map.items():
            consumed.add(tensor_name)
            spec = target.tensors("input").get(step_input) if target else None
            if target is not None and spec is None:
                problems.append(Problem(model.path, field, f"{step.model_name} has no input {step_input!r} "
                                                           f"(it has {sorted(target.tensors('input'))})"))
            elif tensor_name not in produced:
                problems.append(Problem(model.path, field, f"tensor {tensor_name!r} is produced by no step and is "
                                                           "not an ensemble input"))
            elif spec is not None:
                problems += _wire_types(model.path, field, tensor_name, produced[tensor_name], spec)
    for name, tensor in model.tensors("output").items():
        consumed.add(name)
        if name not in produced:
            problems.append(Problem(model.path, f"output {name!r}", "no step's output_map produces it"))
        else:
            problems += _wire_types(model.path, f"output {name!r}", name, produced[name], tensor)
    for name, (_, _, who) in produced.items():
        if name not in consumed:
            problems.append(Problem(model.path, "ensemble_scheduling", f"tensor {name!r} from {who} is never "
                                    "consumed; wire it to a step or an ensemble output, or drop it"))
    return problems


def _step_outputs(model: Model, models: dict[str, Model], steps: list) -> tuple[list[Problem], dict[str, tuple]]:
    """The steps' output_maps: their problems, and every tensor produced (name -> (data_type, dims, who))."""
    problems = []
    # tensor name -> (data_type, dims, who): ensemble inputs are produced by the caller
    produced = {name: (t.data_type, list(t.dims), "ensemble input") for name, t in model.tensors("input").items()}
    for index, step in enumerate(steps):
        target = models.get(step.model_name)
        field = f"ensemble_scheduling.step[{index}] ({step.model_name})"
        if target is None:
            problems.append(Problem(model.path, field, f"model {step.model_name!r} is in no repository; "
                                                       "fix model_name or add the model"))
        for step_output, tensor_name in step.output_map.items():
            spec = target.tensors("output").get(step_output) if target else None
            if target is not None and spec is None:
                problems.append(Problem(model.path, f"{field} output_map", f"{step.model_name} has no output "
                                        f"{step_output!r} (it has {sorted(target.tensors('output'))})"))
            if tensor_name in produced:
                problems.append(Problem(model.path, f"{field} output_map", f"tensor {tensor_name!r} is already "
                                        f"produced by {produced[tensor_name][2]}; give it another name"))
                continue
            # An unknown model or output still produces the tensor: report the root cause only.
            who = f"step {index} ({step.model_name})"
            produced[tensor_name] = (spec.data_type, list(spec.dims), who) if spec else (None, None, who)
    return problems, produced


def _wire_types(path: Path, field: str, name: str, producer, consumer) -> list[Problem]:
    data_type, dims, who = producer
    problems = []
    if data_type is None:  # produced by a step whose model or output is unknown: reported already
        return problems
    if data_type != consumer.data_type:
        problems.append(Problem(path, field, f"tensor {name!r} is {_dtype_name(data_type)} from {who} but "
                                             f"{_dtype_name(consumer.data_type)} where it is used"))
    if not _dims_agree(dims, list(consumer.dims)):
        problems.append(Problem(path, field, f"tensor {name!r} has dims {dims} from {who} but {list(consumer.dims)} "
                                             "where it is used"))
    return problems


def _dims_agree(left: list[int], right: list[int]) -> bool:
    return len(left) == len(right) and all(-1 in (a, b) or a == b for a, b in zip(left, right, strict=False))


def _dtype_name(value: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tritonkit.export.repository.lint",
        description="Check config.pbtxt files against their ONNX graphs and ensemble wiring; exit 1 on any problem.",
    )
    parser.add_argument("repositories", nargs="*", type=Path, default=None,
                        help="model repositories to check together (default: model_repository/ ensembles/)")
    args = parser.parse_args(argv)
    args.repositories = args.repositories or list(paths.repositories())
    problems = lint_repositories(args.repositories)
    for problem in problems:
        print(problem, file=sys.stderr)
    checked = ", ".join(str(path) for path in args.repositories)
    if problems:
        print(f"lint-repo: {len(problems)} problem(s) in {checked}", file=sys.stderr)
        return 1
    print(f"lint-repo: ok ({checked})")
    return 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
