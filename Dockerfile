# The production path: the NGC Triton image plus the Python packages our Python-backend models import.
# `make serve-docker` builds it and runs it with the same repositories, ports and flags as `make serve`
# (see src/tritonkit/server/docker.py). ONNX models use the image's native C++ onnxruntime backend.
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_IMAGE}

# Keep in step with the `models` extra of pyproject.toml (tests/unit/test_docker.py checks it).
RUN python3 -m pip install --no-cache-dir \
        "numpy==1.26.4" "tokenizers==0.23.3" "pillow==13.0.0"

# The ensembles' Python steps import tritonkit.steps (each ensembles/<step>/1/model.py is one import line):
# the package's light __init__, the catalog the steps read their limits from, and the steps; nothing else.
COPY src/tritonkit/__init__.py src/tritonkit/catalog.py /opt/tritonkit/tritonkit/
COPY src/tritonkit/steps /opt/tritonkit/tritonkit/steps
RUN echo /opt/tritonkit > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/tritonkit.pth"

# Repositories are mounted read-only at run time, not baked in: `make export` produces the models.
WORKDIR /workspace
EXPOSE 8000 8001 8002
