# mpt-serve: one frozen T5 serving every task of a prompt store over HTTP.
#   build:  docker build -t mpt-serve .
#   run:    docker run -p 8000:8000 -e MPT_ADMIN_TOKEN=... -v mpt-store:/data mpt-serve
# The image serves the embedded demo bundle (demo/) from a writable SQLite store, /data/store.db,
# seeded from the demo's directory store when the image is built (a named volume keeps what was
# uploaded; a volume made from an older image keeps that image's seed). Point MPT_MODEL / MPT_STORE
# elsewhere to serve your own (MPT_STORE: sqlite:////PATH, a directory, or postgresql://...).
# The same image runs a training worker (the jobs of POST /tasks/NAME/train) as its own container:
#   docker run -v mpt-store:/data mpt-serve /opt/venv/bin/mpt worker      (MPT_MODEL, MPT_STORE as above)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
WORKDIR /app

# the same install script as `make` and CI (CPU torch pinned; MPT_TORCH_SPEC for a CUDA build)
COPY pyproject.toml constraints-cpu.txt README.md ./
COPY scripts/install.sh scripts/install.sh
COPY mpt_core mpt_core
COPY prompts_store prompts_store
COPY training training
COPY service service
COPY mpt_cli mpt_cli
COPY mpt_client mpt_client
ARG MPT_TORCH_SPEC=""
RUN MPT_EDITABLE=0 MPT_TORCH_SPEC="$MPT_TORCH_SPEC" scripts/install.sh /opt/venv serve,postgres,client

COPY demo demo
RUN useradd --system --uid 10001 --home /app mpt \
    && chmod -R a+rX /app/demo \
    && mkdir -p /data \
    && /opt/venv/bin/python -m mpt_cli store copy demo/store sqlite:////data/store.db --no-progress \
    && chown -R mpt /data
USER mpt
VOLUME /data

ENV MPT_HOST=0.0.0.0 MPT_PORT=8000 MPT_MODEL=/app/demo/backbone MPT_STORE=sqlite:////data/store.db
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/python", "-m", "service"]
