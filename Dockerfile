# syntax=docker/dockerfile:1
# The OpenAI Assistants API v2 emulator as a container.
#
#   docker build -t assistants-emulator .
#   docker run --rm -p 127.0.0.1:8000:8000 -v emulator-data:/data assistants-emulator
#
# State (the SQLite file and uploaded files) lives in /data. For PostgreSQL set
# EMULATOR_DATABASE_URL=postgresql+psycopg://user:password@host:5432/db; uploaded files still go to /data.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap: the code_interpreter sandbox (it needs user namespaces: Docker's default seccomp profile refuses
# them, so run with --security-opt seccomp=unconfined for code_interpreter; else it is refused, see README).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir . \
    && cd / && rm -rf /src

RUN groupadd --system --gid 10001 emulator \
    && useradd --system --uid 10001 --gid emulator --home-dir /data --no-create-home --shell /usr/sbin/nologin emulator \
    && mkdir -p /data \
    && chown emulator:emulator /data

ENV EMULATOR_HOST=0.0.0.0 \
    EMULATOR_PORT=8000 \
    EMULATOR_DATA_DIR=/data

WORKDIR /data
VOLUME ["/data"]
USER emulator:emulator
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('EMULATOR_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/_emulator/health', timeout=4).status == 200 else 1)"]

CMD ["assistants-emulator"]
