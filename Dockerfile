# bidroom application image: one process per container (`bidroom serve` or `bidroom migrate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/bidroom --shell /usr/sbin/nologin bidroom

# Install the package from a throwaway source tree; only the installed package and web/ remain.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bidroom ./bidroom
COPY signaling ./signaling
COPY ca ./ca
RUN pip install . && rm -rf /src

COPY web /app/web
WORKDIR /app

USER bidroom

ENV BIDROOM_HOST=0.0.0.0 \
    BIDROOM_PORT=8000 \
    BIDROOM_WEB_DIR=/app/web

EXPOSE 8000

# No curl in the slim image: ask Python. urlopen raises on a non-2xx status or no answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["bidroom", "serve"]
