# The production image: the NGC Triton image, the exported repositories baked in, and the project's launcher as the
# entrypoint (`python -m tritonkit.server`: the watchdog, honest health and the front on the three ports), run as a
# non-root user. `make image` builds it after `make export`; `make serve-docker` runs it; deploy/kubernetes runs it.
# ONNX models use the image's native C++ onnxruntime backend; the Python steps use its Python backend.
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_IMAGE}

# Keep in step with the `models` and `front` extras of pyproject.toml (tests/unit/test_docker.py checks it).
RUN python3 -m pip install --no-cache-dir \
        "numpy==1.26.4" "tokenizers==0.23.3" "pillow==13.0.0" "aiohttp==3.14.5" "tritonclient[grpc]==2.73.0"

# What .dockerignore admits, in one COPY: the tritonkit package (the launcher, the front, the watchdog and the steps
# the ensembles import) and the repositories `make export` wrote (models, generated configs, tokenizers, labels),
# with gpu_repository/ where `python -m tritonkit.export --tensorrt` built one on a GPU host. Read-only at run time.
COPY . /srv/tritonkit/
RUN echo /srv/tritonkit/src > "$(python3 -c 'import site; print(site.getsitepackages()[0])')/tritonkit.pth"

# TRITONSERVER: the launcher runs this native binary with its own backends instead of the embedded one.
# HOST: inside the container's own network namespace; `docker run -p 127.0.0.1:...` decides who reaches it.
ENV TRITONKIT_ROOT=/srv/tritonkit \
    TRITONSERVER=/opt/tritonserver/bin/tritonserver \
    HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /srv/tritonkit
# The watchdog's health file and the stubs' busy marks go to /tmp (a tmpfs or emptyDir with a read-only root).
USER 1000:1000
EXPOSE 8000 8001 8002
ENTRYPOINT ["python3", "-m", "tritonkit.server"]
