# Herald on the official Deno image (same Deno as CI; it brings the user `deno`, DENO_DIR and
# tini, which forwards SIGTERM to the hub).
#   docker build -t herald .
#   docker run -p 8800:8800 -e HERALD_PUBLISH_TOKEN=... herald
# main.ts is also the CLI (a first argument naming a CLI command):
#   docker exec <container> deno run -A --cached-only main.ts apps
FROM denoland/deno:2.9.6

# The data directory (a generated publish token, a KV history file) must be writable by `deno`.
RUN mkdir -p /var/lib/herald && chown deno:deno /var/lib/herald

WORKDIR /app
COPY deno.json deno.lock ./
COPY main.ts ./
COPY events/ ./events/
COPY hub/ ./hub/
COPY server/ ./server/
COPY state/ ./state/
COPY agents/ ./agents/
# The CLI main.ts runs for CLI commands, and the client it is built on.
COPY cli/ ./cli/
COPY client/ ./client/
# The built dashboard (a module server/dashboard.ts imports); its sources are not needed.
COPY web/dist/ ./web/dist/
COPY deploy/healthcheck.ts ./deploy/

USER deno
# Dependencies are fetched at build time, exactly as locked; the container never downloads.
RUN deno install --frozen --entrypoint main.ts

ENV PORT=8800 \
    HERALD_DATA_DIR=/var/lib/herald \
    HERALD_LOG_FORMAT=json \
    HERALD_SHUTDOWN_TIMEOUT_MS=8000
EXPOSE 8800

HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["deno", "run", "--allow-net=127.0.0.1", "--allow-env=PORT", "--cached-only", "deploy/healthcheck.ts"]

# SIGTERM (docker stop) drains: 1001 to every client, then exit 0 within
# HERALD_SHUTDOWN_TIMEOUT_MS, before docker's default 10 s grace period ends.
STOPSIGNAL SIGTERM
CMD ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys", "--cached-only", "--frozen", "main.ts"]
