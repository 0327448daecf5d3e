"""deploy/kubernetes/: every kustomization renders offline and every object is valid; a broken one is named.

Needs kubectl (it bundles kustomize; in these machines' image) and kubernetes-validate (the dev extra).
"""

import shutil
from pathlib import Path

import pytest
import yaml

from tritonkit import paths
from tritonkit.deploy.validate import check, main

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None,
                                reason="kubectl is not installed: `make k8s-validate` needs it to render the overlays")
MANIFESTS = paths.root() / "deploy" / "kubernetes"


def test_every_kustomization_renders_and_validates():
    lines = list(check(MANIFESTS))
    assert [line for line in lines if line.startswith("error")] == []
    assert {line.split(":")[0] for line in lines} == {"ok monitoring", "ok overlays/cpu", "ok overlays/gpu",
                                                      "ok overlays/kserve"}
    assert main(["--root", str(MANIFESTS)]) == 0


@pytest.mark.parametrize(("old", "new", "named"), [
    ("  replicas: 2\n", "  replicas: two\n", "Deployment/tritonkit: spec.replicas: 'two' is not of type 'integer'"),
    ("          image: tritonkit\n", "          image: tritonkit\n          imagePullPolice: Always\n",
     "Deployment/tritonkit: spec.template.spec.containers.0: Additional properties are not allowed "
     "('imagePullPolice' was unexpected)"),
    ("              path: /v2/health/live\n", "              path: /v2/health/ready\n",
     "Deployment/tritonkit: spec.template.spec.containers.0.livenessProbe: must GET /v2/health/live"),
    ("            readOnlyRootFilesystem: true\n", "", "containers.0.securityContext.readOnlyRootFilesystem: must be"),
], ids=["wrong-type", "unknown-field", "liveness-on-readiness", "writable-root"])
def test_a_broken_manifest_fails_naming_the_overlay_object_and_field(tmp_path, old, new, named):
    root = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, root)
    deployment = root / "base" / "deployment.yaml"
    text = deployment.read_text()
    assert old in text
    deployment.write_text(text.replace(old, new, 1))
    errors = [line for line in check(root) if line.startswith("error")]
    assert any(line.startswith("error overlays/cpu: ") and named in line for line in errors), errors
    assert main(["--root", str(root)]) == 1


@pytest.mark.parametrize(("file", "old", "new", "named"), [
    ("inferenceservice.yaml", "    minReplicas: 2\n", "    minReplica: 2\n",
     "InferenceService/tritonkit: spec.predictor.minReplica: unknown field (KServe V1beta1PredictorSpec)"),
    ("inferenceservice.yaml", "    maxReplicas: 8\n", "    maxReplicas: eight\n",
     "InferenceService/tritonkit: spec.predictor.maxReplicas: 'eight' is not of type int"),
    ("servingruntime.yaml", "          protocol: TCP\n", "          protocoll: TCP\n",
     "ServingRuntime/tritonkit: spec.containers.0.ports.0: Additional properties are not allowed ('protocoll'"),
    ("servingruntime.yaml", "          path: /v2/health/live\n", "          path: /v2/health/ready\n",
     "ServingRuntime/tritonkit: spec.containers.0.livenessProbe: must GET /v2/health/live"),
    ("inferenceservice.yaml", "      runAsNonRoot: true\n", "",
     "InferenceService/tritonkit: spec.predictor.securityContext.runAsNonRoot: must be true"),
], ids=["kserve-unknown-field", "kserve-wrong-type", "kubernetes-type-inside-kserve", "kserve-liveness", "kserve-root"])
def test_a_broken_kserve_manifest_fails_naming_the_object_and_field(tmp_path, file, old, new, named):
    # KServe's CRDs have no schema in kubernetes-validate: its fields come from the KServe SDK's generated models,
    # and the Kubernetes types inside (containers, ports, probes) from the strict Kubernetes schemas.
    root = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, root)
    manifest = root / "overlays" / "kserve" / file
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new, 1))
    errors = [line for line in check(root) if line.startswith("error")]
    assert any(line.startswith("error overlays/kserve: ") and named in line for line in errors), errors


def test_a_missing_tool_is_named_with_the_fix(monkeypatch, capsys, tmp_path: Path):
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert main(["--root", str(MANIFESTS)]) == 2
    assert "kubectl is not installed" in capsys.readouterr().err


def test_the_kserve_autoscaler_scales_on_the_same_rule_and_target_as_the_hpa():
    hpa = yaml.safe_load((MANIFESTS / "base" / "horizontalpodautoscaler.yaml").read_text())
    (metric,) = hpa["spec"]["metrics"]
    isvc = yaml.safe_load((MANIFESTS / "overlays" / "kserve" / "inferenceservice.yaml").read_text())
    (keda,) = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
    assert metric["pods"]["metric"]["name"] in keda["external"]["metric"]["query"]
    assert keda["external"]["target"]["value"] == metric["pods"]["target"]["averageValue"]
