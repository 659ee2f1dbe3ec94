# bidroom application image: one process per container (`bidroom serve` or `bidroom migrate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # glibc's per-thread arenas (aiortc's and PyAV's threads) otherwise grow a media node's memory
    # several-fold without a leak (docs/operations.md, "Memory").
    MALLOC_ARENA_MAX=2

RUN useradd --system --create-home --home-dir /home/bidroom --shell /usr/sbin/nologin bidroom

# Install exactly what uv.lock lists (versions and hashes; `--locked` fails if pyproject.toml and
# the lock disagree), from a throwaway source tree into /opt/bidroom; only that venv and web/ remain.
# uv is pinned to the version the Makefile bootstraps (and the lock lists in the test extra).
ARG UV_VERSION=0.13.10
ENV UV_PROJECT_ENVIRONMENT=/opt/bidroom \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY bidroom ./bidroom
COPY signaling ./signaling
COPY ca ./ca
RUN pip install "uv==${UV_VERSION}" \
    && uv sync --locked --no-dev --no-editable --python /usr/local/bin/python3 \
    && pip uninstall --yes uv \
    && rm -rf /src
ENV PATH=/opt/bidroom/bin:$PATH

COPY web /app/web
WORKDIR /app
# The node's files (BIDROOM_VAR_DIR); a volume shared by the nodes in docker-compose.yml.
RUN mkdir -p /app/var && chown bidroom:bidroom /app/var && chmod 0700 /app/var

USER bidroom

ENV BIDROOM_HOST=0.0.0.0 \
    BIDROOM_PORT=8000 \
    BIDROOM_WEB_DIR=/app/web \
    BIDROOM_VAR_DIR=/app/var

EXPOSE 8000

# No curl in the slim image: ask Python. urlopen raises on a non-2xx status or no answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["bidroom", "serve"]
