# The production image: Triton, the exported repositories baked in, and the project's launcher as the entrypoint
# (`python -m tritonkit.server`: the watchdog, honest health, admission and the front on the three ports), run as a
# non-root user. `make image` builds it after `make export`; `make serve-container` runs it; deploy/kubernetes runs it.
#
# One definition, two bases (build argument BASE):
#   ngc    nvcr.io/nvidia/tritonserver (production): its native tritonserver, C++ ONNX Runtime and Python backends;
#   local  a Debian base made here (scripts/local-base.sh: debootstrap, no registry) with the embedded tritonserver
#          of the nvidia-pytriton wheel and the project's Python-based ONNX Runtime backend, as `make serve` runs.
# Everything after the base (packages of the steps, the repositories, the user, the entrypoint, the ports) is shared.
ARG BASE=ngc
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
ARG LOCAL_BASE=localhost/tritonkit-local-base:bookworm

FROM ${TRITON_IMAGE} AS ngc
# Keep in step with the `models` and `front` extras of pyproject.toml (tests/unit/test_docker.py checks it).
RUN python3 -m pip install --no-cache-dir \
        "numpy==1.26.4" "tokenizers==0.23.3" "pillow==13.0.0" "aiohttp==3.14.5" "tritonclient[grpc]==2.73.0"
# The launcher runs this native binary with its own backends instead of the embedded one.
ENV TRITONSERVER=/opt/tritonserver/bin/tritonserver

FROM ${LOCAL_BASE} AS local
# The same packages plus the embedded server: the `server` extra of pyproject.toml (tests/unit/test_docker.py).
RUN python3 -m venv /opt/venv && /opt/venv/bin/python -m pip install --no-cache-dir \
        "numpy==1.26.4" "tokenizers==0.23.3" "pillow==13.0.0" "aiohttp==3.14.5" "tritonclient[grpc]==2.73.0" \
        "nvidia-pytriton==0.7.0" "onnxruntime==1.31.1"
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin

FROM ${BASE}
# What .dockerignore admits, in one COPY: the tritonkit package (the launcher, the front, the watchdog and the steps
# the ensembles import) and the repositories `make export` wrote (models, generated configs, tokenizers, labels),
# with gpu_repository/ where `python -m tritonkit.export --tensorrt` built one on a GPU host (the gpu overlay serves it
# in place of model_repository/). Read-only at run time.
COPY . /srv/tritonkit/
RUN echo /srv/tritonkit/src > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/tritonkit.pth"

# HOST: inside the container's own network namespace; `-p 127.0.0.1:...` decides who reaches it.
# TRITONKIT_RUNTIME: what the launcher writes at start (the local base's backend folder) goes to the /tmp tmpfs.
ENV TRITONKIT_ROOT=/srv/tritonkit \
    TRITONKIT_RUNTIME=/tmp/tritonkit \
    HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /srv/tritonkit
# The watchdog's health file and the stubs' busy marks go to /tmp (a tmpfs or emptyDir with a read-only root).
USER 1000:1000
EXPOSE 8000 8001 8002
ENTRYPOINT ["python3", "-m", "tritonkit.server"]
