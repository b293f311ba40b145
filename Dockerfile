# The federator image: `federator serve` (the default command) and `federator agent`.
# Two stages: build a virtualenv with the package and its dependencies, then copy
# only that venv into a slim runtime that runs as a non-root user. The build stage
# compiles the placement core with mypyc (FEDERATOR_COMPILE=1, setup.py): the same
# decisions at about twice the placements per second; its C compiler stays behind.
# The Helm charts run it with a read-only root filesystem: state goes to
# /var/lib/federator and scratch files to /tmp, both volumes.
#
#   docker build -t federator/federator:0.3.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN python -m venv /opt/federator \
 && FEDERATOR_COMPILE=1 /opt/federator/bin/pip install . \
 && /opt/federator/bin/python -c "import federator.scheduler as s; assert s.COMPILED, 'placement core not compiled'" \
 && /opt/federator/bin/python -m compileall -q /opt/federator/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="federator" \
      org.opencontainers.image.description="Multi-cluster scheduler for AI jobs: federator and agent" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 65532 federator \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin federator \
 && mkdir -p /var/lib/federator \
 && chown 65532:65532 /var/lib/federator
COPY --from=build /opt/federator /opt/federator
ENV PATH=/opt/federator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
WORKDIR /var/lib/federator
# gRPC (agents, job API, grpc.health.v1) and /metrics.
EXPOSE 7070 9090
ENTRYPOINT ["federator"]
CMD ["serve", "--listen=0.0.0.0:7070", "--metrics-listen=0.0.0.0:9090", "--db=/var/lib/federator/federator.db"]
