"""Settings of the long-running service (``ciwatch run``): Kafka, HTTP, state, outputs.

They live in the ``service:`` section of the pipeline YAML; detection settings
stay in the other sections, identical for run, replay and demo. A few keys can
be set from the environment, which wins over the file (the usual way to
configure a container)::

    CIWATCH_KAFKA_BOOTSTRAP   service.kafka.bootstrap_servers  (comma list)
    CIWATCH_TOPICS            service.kafka.topics             (comma list)
    CIWATCH_GROUP_ID          service.kafka.group_id
    CIWATCH_WEBHOOK_URL       service.webhook.url
    CIWATCH_WEBHOOK_FORMAT    service.webhook.format           (json, splunk_hec, ecs)
    CIWATCH_HTTP_PORT         service.http_port
    CIWATCH_STATE_DIR         service.state_dir
    CIWATCH_MODELS            models.dir

Secrets (webhook token, signing keys, Kafka passwords) are never values in the
file: the settings name a file or an environment variable to read them from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from detector.detections import Severity
from detector.features.durations import Duration, DurationOrZero
from detector.scale.topology import ScaleSettings
from detector.sources.kafka import KafkaSettings

__all__ = [
    "ENVIRONMENT",
    "AlertsTopicSettings",
    "ServiceSettings",
    "WebhookSettings",
    "apply_environment",
    "is_loopback_host",
    "redact_url",
]

_HIDDEN = "***"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookSettings(_Section):
    """Where and how alerts reach the SIEM (see docs/webhook.md)."""

    # A url may hold credentials: keep it out of validation messages.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    allow_insecure_http: bool = False
    """Accept a plain ``http://`` url to a host other than loopback (alerts and token in clear)."""
    # Declared before ``url`` so that the url's check can see it.
    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "splunk_hec", "ecs"] = "json"
    min_severity: Severity = Severity.LOW
    token_file: Path | None = None
    """A file holding the token (Splunk HEC token, or a bearer token for the others)."""
    token_env: str | None = None
    """Or the environment variable holding it."""
    signing_key_files: tuple[Path, ...] = ()
    """HMAC-SHA256 keys, newest first; each signs every request (key rotation)."""
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    batch_size: int = Field(default=100, gt=0, le=10_000)
    timeout: Duration = timedelta(seconds=10)
    max_backoff: Duration = timedelta(seconds=60)
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    dead_letter_file: Path | None = None
    """Alerts the SIEM refuses for good (4xx), with its response; None: the state dir."""
    splunk_ack: bool = False
    """Splunk HEC indexer acknowledgement: a request counts as delivered once indexed."""
    ack_timeout: Duration = timedelta(seconds=60)
    """How long to wait for Splunk's acknowledgement before sending the request again."""

    @field_validator("url")
    @classmethod
    def _https_unless_loopback(cls, url: str, info: ValidationInfo) -> str:
        parts = urlsplit(url)
        if parts.scheme.lower() != "http" or info.data.get("allow_insecure_http"):
            return url
        if not is_loopback_host(parts.hostname or ""):
            raise PydanticCustomError(
                "insecure_http",
                "plain http:// to {host} sends alerts and the token in clear text: use "
                "https://, or set service.webhook.allow_insecure_http: true",
                {"host": parts.hostname or "(no host)"},
            )
        return url

    @model_validator(mode="after")
    def _check_combinations(self) -> WebhookSettings:
        if self.client_key_file is not None and self.client_cert_file is None:
            raise ValueError("client_key_file needs client_cert_file")
        if self.splunk_ack and self.format != "splunk_hec":
            raise ValueError("splunk_ack needs format splunk_hec")
        return self


class AlertsTopicSettings(_Section):
    """Alerts also produced to a Kafka topic of the same cluster (connection settings shared)."""

    topic: str = Field(min_length=1)
    min_severity: Severity = Severity.INFO


def _default_kafka() -> KafkaSettings:
    return KafkaSettings(topics=["ciwatch-events"])


class ServiceSettings(_Section):
    """The ``service:`` section: what ``ciwatch run`` connects to and keeps."""

    kafka: KafkaSettings = Field(default_factory=_default_kafka)
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=9464, ge=0, le=65_535)
    state_dir: Path | None = None
    """Where per-actor state, the offsets it reflects and the webhook spool live."""
    snapshot_every: Duration = timedelta(seconds=30)
    max_records: int = Field(default=2_000, gt=0)
    """Records per poll, and so per batch."""
    max_batch_wait: Duration = timedelta(seconds=1)
    """Longest a poll waits when no records are there (records that are, return at once)."""
    partition_wait: DurationOrZero = timedelta(seconds=2)
    """How long the event-time merge of the assigned partitions waits for one that has
    nothing buffered and is not caught up before going on without it (0: never waits)."""
    partition_buffer: int = Field(default=20_000, gt=0)
    """Most polled records held for that merge; at the cap the oldest go on regardless."""
    buffered_per_partition: int = Field(default=10_000, gt=0)
    """Records each assigned partition may hold, at least (Kafka Streams'
    ``buffered.records.per.partition``): past ``partition_buffer`` divided by the assigned
    partitions, the cap is this many per partition."""
    reload_every: Duration = timedelta(seconds=30)
    """How often the model directory is checked for a new training."""
    alerts_file: Path | None = None
    """Also append every alert to this JSONL file."""
    webhook: WebhookSettings | None = None
    alerts_topic: AlertsTopicSettings | None = None
    scale: ScaleSettings = Field(default_factory=ScaleSettings)
    """Run as keyed stages over internal topics, state in changelogs (docs/scaling.md)."""


def redact_url(url: str) -> str:
    """``url`` fit for a log line: user info, query values and token-like path segments as ``***``.

    ``https://user:pw@siem/in?token=s3cret&x=1#f`` → ``https://***@siem/in?token=***&x=***``.
    Slack, Teams and Discord webhooks carry their secret in the path
    (``/services/T0/B0/XXXXXXXXXXXXXXXXXXXXXXXX``), so a path segment that looks
    like a token is hidden too. A url that does not parse at all is not shown.
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    if "@" in parts.netloc:
        netloc = f"{_HIDDEN}@{netloc}"
    names = (field.split("=", 1)[0] for field in parts.query.split("&") if field)
    query = "&".join(f"{name}={_HIDDEN}" for name in names)
    path = "/".join(_HIDDEN if _looks_like_token(part) else part for part in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, query, ""))


_TOKEN_LENGTH = 16
"""A path segment this long with a digit in it, or half as long again, is taken for a secret."""


def _looks_like_token(segment: str) -> bool:
    if len(segment) < _TOKEN_LENGTH:
        return False
    return any(c.isdigit() for c in segment) or len(segment) >= _TOKEN_LENGTH * 3 // 2


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


ENVIRONMENT: Mapping[str, tuple[tuple[str, ...], Literal["text", "list"]]] = {
    "CIWATCH_KAFKA_BOOTSTRAP": (("service", "kafka", "bootstrap_servers"), "list"),
    "CIWATCH_TOPICS": (("service", "kafka", "topics"), "list"),
    "CIWATCH_GROUP_ID": (("service", "kafka", "group_id"), "text"),
    "CIWATCH_WEBHOOK_URL": (("service", "webhook", "url"), "text"),
    "CIWATCH_WEBHOOK_FORMAT": (("service", "webhook", "format"), "text"),
    "CIWATCH_HTTP_PORT": (("service", "http_port"), "text"),
    "CIWATCH_STATE_DIR": (("service", "state_dir"), "text"),
    "CIWATCH_MODELS": (("models", "dir"), "text"),
}
"""Environment variable → (settings path, how its text is read)."""


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Put the :data:`ENVIRONMENT` variables set in ``environ`` into ``data`` (in place).

    Returns the names applied. Empty variables are ignored; values are
    validated with the rest of the settings, so a bad one fails at start-up
    naming its key.
    """
    applied = []
    for name, (path, kind) in ENVIRONMENT.items():
        text = environ.get(name, "").strip()
        if not text:
            continue
        value: Any = [part.strip() for part in text.split(",") if part.strip()]
        if kind != "list":
            value = text
        section = data
        for key in path[:-1]:
            child = section.get(key)
            if not isinstance(child, dict):
                child = section[key] = {}
            section = child
        section[path[-1]] = value
        applied.append(name)
    return applied
