# arbot: `arbot serve` (the Slack app, the webhooks, /healthz and the scheduled jobs) in one process.
#   docker build -t arbot .
#   docker run --env-file .env -p 8000:8000 -v arbot-data:/data arbot
# Without DATABASE_URL it keeps a SQLite file in the /data volume; set DATABASE_URL to a
# PostgreSQL database to run several replicas (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY integrations ./integrations
COPY playbooks ./playbooks
COPY scheduler ./scheduler
RUN pip install . \
    && useradd --create-home --uid 10001 --user-group arbot \
    && mkdir /data \
    && chown arbot:arbot /data

USER arbot
WORKDIR /data
VOLUME ["/data"]
ENV DATABASE_URL=sqlite:////data/arbot.db \
    ARBOT_LOG_JSON=true
EXPOSE 8000

# 200 when the database answers and the scheduler runs; 503 (a failed check) otherwise.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# SIGTERM (docker stop) lets the send worker finish its tick; give it time with --stop-timeout.
STOPSIGNAL SIGTERM
CMD ["arbot", "serve", "--host", "0.0.0.0", "--port", "8000"]
