"""``python -m tritonkit.deploy.validate`` (``make k8s-validate``): render the Kubernetes manifests, check each object.

For each kustomization under ``deploy/kubernetes/`` (the overlays and ``monitoring``), ``kubectl kustomize`` renders
it without a cluster, and every object is validated against the official Kubernetes OpenAPI schemas bundled in
``kubernetes-validate`` (strict: an unknown field is an error too). Then the house rules for the Deployment: the
three probes on the honest health endpoints, a restricted security context, requests and limits, a preStop grace.
Each error names the kustomization, the object (kind/name) and the field. Exit 0: all valid; 1: errors;
2: a tool is missing (the message says how to install it).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tritonkit import paths

KUBERNETES_VERSION = "1.32"  # the kubectl on these machines; schemas of 1.25-1.37 are bundled
HEALTH = {"startupProbe": "/v2/health/ready", "readinessProbe": "/v2/health/ready", "livenessProbe": "/v2/health/live"}


class ToolMissing(RuntimeError):
    """kubectl or kubernetes-validate is not installed; the message says how to get it."""


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


def house_errors(document: dict) -> list[str]:
    """What every tritonkit Deployment must have beyond a valid schema."""
    if document.get("kind") != "Deployment":
        return []
    pod = document.get("spec", {}).get("template", {}).get("spec", {})
    errors = []
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        errors.append("spec.template.spec.securityContext.runAsNonRoot: must be true")
    for index, container in enumerate(pod.get("containers", [])):
        where = f"spec.template.spec.containers.{index}"
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
            for error in schema_errors(document, version) + house_errors(document):
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
