# syntax=docker/dockerfile:1
#
# ciwatch container image: `docker build -t ciwatch .` (see docs/container.md).
#
# Two stages on the same base. `build` installs ciwatch and its dependencies into a
# virtual environment at /opt/ciwatch; the final stage copies that venv whole, so it
# carries no pip run, no build backend and no compilers. Every dependency ships
# manylinux wheels for CPython 3.11, so neither stage needs a compiler either.
#
# Runtime contract (tests/ops/test_container_runtime.py checks it with bubblewrap):
#   - runs as uid/gid 10001, never root; works with a read-only root filesystem
#   - writes only to the state volume /var/lib/ciwatch and to /tmp (mount a tmpfs)
#   - configured by CIWATCH_* environment variables over the bundled pipeline, or by
#     `run --config /etc/ciwatch/pipeline.yaml` (what the Helm chart passes)
#   - /metrics, /healthz and /readyz on port 9464; SIGTERM stops it cleanly (exit 0)

# Both stages use the same base, pinned by tag (the venv's python links to the base's
# /usr/local/bin/python3.11). For reproducible builds pin the digest too:
#   FROM python:3.11-slim-bookworm@sha256:<digest>

FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/ciwatch

WORKDIR /src
# Only what the wheel is built from (pyproject.toml: packages, package-dir, readme).
COPY pyproject.toml README.md LICENSE ./
COPY detector/ detector/
COPY pipelines/ pipelines/
COPY models/ models/

# A regular (non-editable) install: the package, its bundled pipelines and models and
# the console script land in the venv; bytecode is compiled here, at build time, as
# the read-only runtime could not write it.
RUN /opt/ciwatch/bin/pip install --no-cache-dir . \
    && /opt/ciwatch/bin/ciwatch --help > /dev/null


FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ciwatch" \
      org.opencontainers.image.description="Detects attacks on CI/CD pipelines from CI audit logs in Kafka: rules and anomaly models, alerts to a SIEM." \
      org.opencontainers.image.source="https://github.com/ciwatch/ciwatch" \
      org.opencontainers.image.url="https://github.com/ciwatch/ciwatch" \
      org.opencontainers.image.documentation="https://github.com/ciwatch/ciwatch/blob/main/docs/container.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# A system user without a shell or a home; the state directory is created owned by it
# so that a fresh named volume mounted there inherits the ownership.
RUN groupadd --system --gid 10001 ciwatch \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ciwatch \
    && mkdir -p /var/lib/ciwatch \
    && chown 10001:10001 /var/lib/ciwatch \
    && chmod 0750 /var/lib/ciwatch

COPY --from=build /opt/ciwatch /opt/ciwatch

# numba caches the daemon's compiled kernels in the tmpfs: compiled once per pod (a few
# seconds at start-up), loaded when the container restarts; the root stays read-only.
ENV PATH=/opt/ciwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba \
    CIWATCH_STATE_DIR=/var/lib/ciwatch

# Checkpoint and webhook spool: keep it on a volume so a restart resumes where it was.
VOLUME ["/var/lib/ciwatch"]

USER 10001:10001
EXPOSE 9464
STOPSIGNAL SIGTERM

# /healthz fails when the consume loop is stuck. Standard library only (no curl in
# the image); http.client ignores proxy variables, which must not apply to loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import http.client, os, sys; c = http.client.HTTPConnection('127.0.0.1', int(os.environ.get('CIWATCH_HTTP_PORT') or 9464), timeout=4); c.request('GET', '/healthz'); sys.exit(0 if c.getresponse().status == 200 else 1)"]

# Without --config the bundled pipeline (pipelines/default.yaml) is used with the
# CIWATCH_* variables over it; the Helm chart runs `run --config /etc/ciwatch/pipeline.yaml`.
ENTRYPOINT ["ciwatch"]
CMD ["run"]
