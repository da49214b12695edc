# syntax=docker/dockerfile:1
# segmentd: the gRPC server, installed from the lock file without the development tools.
#   docker build -t segmentd .
#   docker run -p 50051:50051 -v segmentd-data:/data segmentd                     # embedded SQLite
#   docker run -p 50051:50051 -p 9090:9090 -e SEGMENTD_DATABASE_URL=postgresql://segmentd@db.internal/segmentd \
#       -e SEGMENTD_METRICS_PORT=9090 segmentd                                    # PostgreSQL, metrics
# Configuration is by SEGMENTD_* variables only (README: Configuration); OTEL_* switch on tracing.
#
# Both stages start from the same base, pinned by tag and by the digest of its multi-platform
# index; to move to a newer patch release, change both together (the digest of a tag:
# `docker buildx imagetools inspect python:<tag>`).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: resolve nothing, install exactly uv.lock into /app/.venv ---------------------------
FROM ${PYTHON_IMAGE} AS build
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1
WORKDIR /app
# Dependencies first, in a layer of their own that a change to the source does not rebuild.
COPY pyproject.toml uv.lock README.md ./
COPY client/pyproject.toml client/pyproject.toml
RUN uv sync --locked --no-dev --no-editable --extra otel --no-install-project --no-install-workspace
COPY client client
COPY service service
RUN uv sync --locked --no-dev --no-editable --extra otel

# --- runtime: the virtual environment alone, run by an unprivileged user -----------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /data segmentd \
 && mkdir /data && chown segmentd:segmentd /data
# Same path as in the build stage: the environment's scripts name their interpreter by it.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SEGMENTD_DATABASE_URL=sqlite:////data/segmentd.db
# Numeric, so that a runtime refusing root (Kubernetes runAsNonRoot) can check it.
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 50051
# Asks the gRPC health service (SERVING once the store answers); segmentd-probe ships in the
# image, it reads SEGMENTD_PORT.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["segmentd-probe", "--timeout", "3"]
# SIGTERM drains in-flight calls (SEGMENTD_SHUTDOWN_GRACE_SECONDS) before exiting.
STOPSIGNAL SIGTERM
CMD ["segmentd", "serve"]
