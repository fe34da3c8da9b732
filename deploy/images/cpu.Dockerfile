# syntax=docker/dockerfile:1
# The effcap server for CPUs. Build from the repository root:
#   docker build -f deploy/images/cpu.Dockerfile -t effcap:cpu .
# It serves TLS and needs API keys: mount the certificate, its key and the CA at /run/secrets/effcap-tls/
# (tls.crt, tls.key, ca.crt) and create a key first (deploy/README.md). Nothing secret is copied into the image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# effcap's extras; "server,ray" adds the Ray executor (its version must match the cluster's).
ARG EXTRAS=server
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
# torch first, from PyTorch's CPU index: on Linux, PyPI's torch is the CUDA build, gigabytes larger.
RUN /opt/effcap/bin/pip install -c constraints.txt --index-url https://download.pytorch.org/whl/cpu torch \
    && /opt/effcap/bin/pip install -c constraints.txt ".[${EXTRAS}]" \
    && /opt/effcap/bin/python -c "import torch; assert torch.version.cuda is None, torch.__version__"

FROM ${PYTHON_IMAGE} AS runtime
# g++: torch.compile (the opt-in grouped-compiled strategy) compiles C++ at run time. tini: PID 1 that forwards
# SIGTERM and reaps the audit workers' children.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 effcap \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/effcap --shell /usr/sbin/nologin effcap \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /opt/effcap /opt/effcap
# EFFCAP_TLS_SERVER_NAME: a name in the server certificate, checked by the health probe that dials 127.0.0.1.
ENV PATH=/opt/effcap/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    EFFCAP_TLS_SERVER_NAME=localhost
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /home/effcap
VOLUME ["/data"]
EXPOSE 50051
# Docker reserves exit code 2 in health checks; `effcap health` uses it for "no answer", so every failure becomes 1.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD effcap health --server 127.0.0.1:50051 --tls-ca /run/secrets/effcap-tls/ca.crt \
        --tls-server-name "$EFFCAP_TLS_SERVER_NAME" --timeout 5 || exit 1
ENTRYPOINT ["tini", "--"]
CMD ["effcap", "serve", "--host", "0.0.0.0", "--port", "50051", "--data-dir", "/data", \
     "--tls-cert", "/run/secrets/effcap-tls/tls.crt", "--tls-key", "/run/secrets/effcap-tls/tls.key"]
