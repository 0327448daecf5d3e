"""``python -m tritonkit.deploy.validate`` (``make k8s-validate``): render the Kubernetes manifests, check each object.

For each kustomization under ``deploy/kubernetes/`` (the overlays and ``monitoring``), ``kubectl kustomize`` renders
it without a cluster, and every object is validated against the official Kubernetes OpenAPI schemas bundled in
``kubernetes-validate`` (strict: an unknown field is an error too). KServe's objects (InferenceService,
ServingRuntime) have no schema there: their fields are checked against the KServe SDK's generated models (the
CRDs' field names and types, read from the pinned wheel ``scripts/setup.sh`` downloads, not installed), and every
Kubernetes type inside them (containers, probes, volumes...) against the same strict Kubernetes schemas. Then the
house rules for every pod we run: the three probes on the honest health endpoints, a restricted security context,
requests and limits, a preStop grace.
Each error names the kustomization, the object (kind/name) and the field. Exit 0: all valid; 1: errors;
2: a tool is missing (the message says how to install it).
"""

from __future__ import annotations

import argparse
import ast
import functools
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from tritonkit import paths
from tritonkit.tools import ToolMissing

KUBERNETES_VERSION = "1.32"  # the kubectl on these machines; schemas of 1.25-1.37 are bundled
HEALTH = {"startupProbe": "/v2/health/ready", "readinessProbe": "/v2/health/ready", "livenessProbe": "/v2/health/live"}


KSERVE_WHEEL = "kserve-0.21.0-py3-none-any.whl"  # pinned in scripts/setup.sh, which downloads it into .venv/share
KSERVE_KINDS = {("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
                ("serving.kserve.io/v1alpha1", "ServingRuntime"): "V1alpha1ServingRuntime"}
PRIMITIVES = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float), "object": (object,),
              "datetime": (str,), "V1Time": (str,),
              "V1beta1MetricQuantity": (str, int, float)}  # a Kubernetes quantity: "50", 50 or "500m"


def kustomizations(root: Path) -> list[Path]:
    """Every folder under ``root`` that can be rendered on its own (base is rendered through the overlays)."""
    return sorted(path.parent for path in root.rglob("kustomization.yaml") if path.parent.name != "base")


def render(folder: Path) -> list[dict]:
    """The objects ``kubectl kustomize folder`` produces."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ToolMissing("kubectl is not installed: install it (it bundles kustomize), "
                          "e.g. https://kubernetes.io/docs/tasks/tools/")
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize failed: {done.stderr.strip()}")
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def schema_errors(document: dict, version: str = KUBERNETES_VERSION) -> list[str]:
    try:
        import kubernetes_validate
    except ImportError:
        raise ToolMissing("kubernetes-validate is not installed: run `make setup` (dev extra)") from None
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        field = ".".join(str(part) for part in error.path) or "(the object)"
        return [f"{field}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"apiVersion/kind: no Kubernetes {version} schema for {document.get('apiVersion')} "
                f"{document.get('kind')}"]
    return []


@functools.cache
def kserve_types() -> dict[str, dict[str, str]]:
    """KServe's types: class name -> {field as written in YAML: its type}, from the SDK wheel's generated models."""
    wheel = Path(sys.prefix) / "share" / "kserve" / KSERVE_WHEEL
    if not wheel.is_file():
        raise ToolMissing(f"{wheel} is missing (the KServe SDK's models are the schema of its CRDs): run `make setup`")
    types = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not (name.startswith("kserve/models/") and name.endswith(".py")):
                continue
            for node in ast.parse(archive.read(name)).body:
                if isinstance(node, ast.ClassDef):
                    tables = {target.id: ast.literal_eval(statement.value) for statement in node.body
                              if isinstance(statement, ast.Assign)
                              for target in statement.targets if isinstance(target, ast.Name)
                              and target.id in ("openapi_types", "attribute_map")}
                    if len(tables) == 2:
                        types[node.name] = {tables["attribute_map"][field]: kind
                                            for field, kind in tables["openapi_types"].items()}
    return types


def kserve_errors(document: dict, version: str = KUBERNETES_VERSION) -> list[str] | None:
    """Problems of a KServe object, or None when the document is not one."""
    kind = KSERVE_KINDS.get((document.get("apiVersion"), document.get("kind")))
    if kind is None:
        return None
    return _typed_errors(document, kind, "", version)


def _typed_errors(value, kind: str, where: str, version: str) -> list[str]:
    if kind.startswith(("list[", "dict(")):
        return _collection_errors(value, kind, where, version)
    if kind in PRIMITIVES:
        wrong = not isinstance(value, PRIMITIVES[kind]) or (kind == "int" and isinstance(value, bool))
        return [f"{where or '(the object)'}: {value!r} is not of type {kind}"] if wrong else []
    fields = kserve_types().get(kind)
    if fields is None:
        return _kubernetes_type_errors(value, kind, where, version)
    if not isinstance(value, dict):
        return [f"{where or '(the object)'}: must be an object ({kind})"]
    errors = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            errors.append(f"{path}: unknown field (KServe {kind})")
        else:
            errors += _typed_errors(item, fields[key], path, version)
    return errors


def _collection_errors(value, kind: str, where: str, version: str) -> list[str]:
    """``list[T]`` or ``dict(str, T)``: the container's type, then each item's."""
    if kind.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: must be a list"]
        items, inner = enumerate(value), kind[5:-1]
    else:
        if not isinstance(value, dict):
            return [f"{where}: must be a map"]
        items, inner = value.items(), kind[5:-1].split(", ", 1)[1]
    return [error for key, item in items for error in _typed_errors(item, inner, f"{where}.{key}", version)]


def _kubernetes_type_errors(value, kind: str, where: str, version: str) -> list[str]:
    """A Kubernetes type inside a KServe object (``V1Container``, ``K8sIoApiAppsV1DeploymentStrategy``...)."""
    import jsonschema
    from kubernetes_validate.utils import schema_contents
    from referencing import Registry, Resource

    directory = f"kubernetes-json-schema/v{version}.0-local-strict"
    group = re.fullmatch(r"K8sIoApi([A-Z][a-z]+)V(\d+)(\w+)", kind)
    names = ([f"{group.group(3).lower()}-{group.group(1).lower()}-v{group.group(2)}"] if group
             else [f"{kind.removeprefix('V1').lower()}-v1", f"{kind.removeprefix('V1').lower()}-meta-v1"])
    for name in names:
        try:
            schema = schema_contents(f"{directory}/{name}.json", version)
        except FileNotFoundError:
            continue
        registry = Resource.from_contents(schema_contents(f"{directory}/_definitions.json", version)) @ Registry()
        validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
        return [f"{'.'.join([where, *map(str, error.path)]).strip('.') or '(the object)'}: {error.message}"
                for error in validator.iter_errors(value)]
    return [f"{where}: no Kubernetes {version} schema for {kind}"]


def house_errors(document: dict) -> list[str]:
    """What every pod tritonkit runs must have beyond a valid schema (a Deployment's, a KServe runtime's)."""
    kind, spec = document.get("kind"), document.get("spec", {})
    if kind == "Deployment":
        pod, prefix = spec.get("template", {}).get("spec", {}), "spec.template.spec"
    elif kind == "ServingRuntime":
        pod, prefix = spec, "spec"  # the pod's security context is the InferenceService's predictor's
    elif kind == "InferenceService":
        predictor = spec.get("predictor", {})
        if not predictor.get("securityContext", {}).get("runAsNonRoot"):
            return ["spec.predictor.securityContext.runAsNonRoot: must be true"]
        return []
    else:
        return []
    errors = []
    if kind == "Deployment" and not pod.get("securityContext", {}).get("runAsNonRoot"):
        errors.append("spec.template.spec.securityContext.runAsNonRoot: must be true")
    for index, container in enumerate(pod.get("containers", [])):
        where = f"{prefix}.containers.{index}"
        errors += [f"{where}.{probe}: must GET {path}" for probe, path in HEALTH.items()
                   if container.get(probe, {}).get("httpGet", {}).get("path") != path]
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{where}.securityContext.allowPrivilegeEscalation: must be false")
        if security.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{where}.securityContext.readOnlyRootFilesystem: must be true")
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})):
                errors.append(f"{where}.resources.{kind}: must set cpu and memory")
        if "preStop" not in container.get("lifecycle", {}):
            errors.append(f"{where}.lifecycle.preStop: must wait for the pod to leave the Service")
    return errors


def check(root: Path, version: str = KUBERNETES_VERSION) -> Iterator[str]:
    """Yields ``<kustomization>: <kind>/<name>: <field>: <problem>`` for every problem, after a line per folder."""
    for folder in kustomizations(root):
        name = folder.relative_to(root)
        try:
            documents = render(folder)
        except ValueError as exc:
            yield f"error {name}: {exc}"
            continue
        problems = 0
        for document in documents:
            what = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
            kserve = kserve_errors(document, version)
            schema = kserve if kserve is not None else schema_errors(document, version)
            for error in schema + house_errors(document):
                problems += 1
                yield f"error {name}: {what}: {error}"
        if not problems:
            yield f"ok {name}: {len(documents)} objects valid for Kubernetes {version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.deploy.validate", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="the manifests (default: deploy/kubernetes/ of the project)")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION, help="schemas to validate against")
    args = parser.parse_args(argv)
    root = args.root or paths.root() / "deploy" / "kubernetes"
    failed = False
    try:
        for line in check(root, args.kubernetes_version):
            print(line, file=sys.stderr if line.startswith("error") else sys.stdout, flush=True)
            failed |= line.startswith("error")
    except ToolMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
