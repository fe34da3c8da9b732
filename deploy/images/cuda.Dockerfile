# syntax=docker/dockerfile:1
# The effcap server and Ray node for NVIDIA GPUs: a CUDA build of torch and Ray, one image for the server, the Ray
# head and the Ray workers (a Ray cluster needs the same Ray and Python everywhere, and its workers import effcap).
# Build from the repository root:
#   docker build -f deploy/images/cuda.Dockerfile -t effcap:cuda .
# The CUDA runtime comes with torch's wheels; the host gives the driver (NVIDIA Container Toolkit, or the Kubernetes
# device plugin). TLS and keys as in cpu.Dockerfile: mount /run/secrets/effcap-tls/, nothing secret is copied in.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# PyTorch's index for the CUDA release to build against (cu126, cu128, ...): it must suit the hosts' drivers.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/effcap
WORKDIR /src
# Only what the package is built from: certificates, keys or data lying in the build context never reach a layer.
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY capacity capacity
COPY clients clients
COPY service service
COPY protos protos
COPY notebook notebook
# ray[default] brings the dashboard agent, whose health endpoint KubeRay's probes ask, and the autoscaler.
RUN /opt/effcap/bin/pip install -c constraints.txt --index-url "${TORCH_INDEX_URL}" torch \
    && /opt/effcap/bin/pip install -c constraints.txt ".[server,ray]" "ray[default]" \
    && /opt/effcap/bin/python -c "import ray, torch; assert torch.version.cuda, torch.__version__"

FROM ${PYTHON_IMAGE} AS runtime
# g++: torch.compile and Triton compile at run time. tini: PID 1 that forwards SIGTERM and reaps children (Ray
# starts many processes).
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 effcap \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/effcap --shell /usr/sbin/nologin effcap \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/effcap /opt/effcap
# NVIDIA_DRIVER_CAPABILITIES: the driver libraries the NVIDIA Container Toolkit mounts. NVIDIA_VISIBLE_DEVICES is
# left unset on purpose: set to "all" in an image, it hands every GPU of a node to pods that requested none (the
# server's); Docker's GPU reservations and Kubernetes' device plugin set it per container. RAY_USAGE_STATS_ENABLED=0:
# Ray sends nothing home. EFFCAP_TLS_SERVER_NAME: a name in the server certificate, for the health probe.
ENV PATH=/opt/effcap/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    RAY_USAGE_STATS_ENABLED=0 \
    EFFCAP_TLS_SERVER_NAME=localhost
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /home/effcap
VOLUME ["/data"]
EXPOSE 50051
# Docker reserves exit code 2 in health checks; `effcap health` uses it for "no answer", so every failure becomes 1.
# Ray head and worker containers run Ray, not the server: compose.yaml gives them Ray's own health check.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD effcap health --server 127.0.0.1:50051 --tls-ca /run/secrets/effcap-tls/ca.crt \
        --tls-server-name "$EFFCAP_TLS_SERVER_NAME" --timeout 5 || exit 1
ENTRYPOINT ["tini", "--"]
CMD ["effcap", "serve", "--host", "0.0.0.0", "--port", "50051", "--data-dir", "/data", "--device", "auto", \
     "--tls-cert", "/run/secrets/effcap-tls/tls.crt", "--tls-key", "/run/secrets/effcap-tls/tls.key"]
