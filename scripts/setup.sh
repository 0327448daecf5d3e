#!/usr/bin/env bash
# Creates the virtual environment and installs the pinned dependencies: scripts/setup.sh PYTHON VENV EXTRAS
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
extras=${3:-server,export,client,loadtest,dev}

if ! "$python" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' 2>/dev/null; then
  echo "error: $python is not Python 3.10-3.13 (the embedded server ships Python backend stubs for 3.8-3.13)." >&2
  echo "fix: make setup PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
echo "== installing .[$extras] into $venv (first run: about 2 minutes, 2 GB)"
# torch==2.13.0 resolves to the CPU build where the machine's pip index carries it (see pyproject.toml).
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --progress-bar off -e ".[$extras]"
# KServe has no schema in kubernetes-validate: `make k8s-validate` reads the field names and types of its CRDs from
# the KServe SDK's generated models, inside the wheel. Downloaded, not installed (its dependencies clash with
# tritonclient's protobuf and bring a web server); the version pins the KServe API the manifests are checked against.
"$venv/bin/python" -m pip download --quiet --no-deps --dest "$venv/share/kserve" "kserve==0.21.0"
"$venv/bin/python" - <<'PY'
import numpy
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__} installed; the Python backend needs numpy<2"
PY
echo "== $venv is ready"
