# segmentd: the gRPC server, installed from the lock file, without the development tools.
#   docker build -t segmentd .
#   docker run -p 50051:50051 -v segmentd-data:/data segmentd                     # embedded SQLite
#   docker run -p 50051:50051 -e SEGMENTD_DATABASE_URL=postgresql://user@db/segmentd segmentd
FROM python:3.11-slim

RUN pip install --no-cache-dir "uv==0.13.9" \
 && useradd --system --uid 10001 --home-dir /data segmentd \
 && mkdir /data && chown segmentd /data

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY client/pyproject.toml client/pyproject.toml
COPY client/segmentd_client client/segmentd_client
COPY service service
RUN uv sync --locked --no-dev --no-editable && rm -rf /root/.cache

ENV PATH=/app/.venv/bin:$PATH \
    SEGMENTD_DATABASE_URL=sqlite:////data/segmentd.db \
    PYTHONUNBUFFERED=1
USER segmentd
VOLUME /data
EXPOSE 50051
# SIGTERM drains in-flight calls (SEGMENTD_SHUTDOWN_GRACE_SECONDS) before exiting.
STOPSIGNAL SIGTERM
CMD ["segmentd", "serve"]
