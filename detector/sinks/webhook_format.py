"""Webhook request bodies and headers: the pure half of the SIEM webhook sink.

Turning a batch of alerts into the bytes and headers of one HTTP request is
kept apart from sending it (connections, retries, spooling), so that what a
SIEM receives can be tested without a network and documented exactly
(docs/webhook.md). Three body formats are registered by name in
:data:`FORMATS`: ``json`` (the alert schema, docs/alert-schema.json),
``splunk_hec`` (Splunk HTTP Event Collector) and ``ecs`` (Elastic Common
Schema). Every request carries an ``Idempotency-Key`` and, when signing keys
are configured, an HMAC-SHA256 signature that receivers check with
:func:`verify_signature` or the standard-library recipe in docs/webhook.md.

Secrets (the token, the signing keys; read by :mod:`detector.secrets`) travel
as :class:`pydantic.SecretStr` and are masked wherever this module prints them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import SecretStr

from detector.alerts.model import Alert
from detector.detections import Severity
from detector.errors import ConfigError

__all__ = [
    "ALERT_IDS_HEADER",
    "ECS_VERSION",
    "FORMATS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookFormat",
    "WebhookRequest",
    "build_request",
    "ecs_document",
    "hec_event",
    "idempotency_key",
    "sign",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Ciwatch-Timestamp"
SIGNATURE_HEADER = "X-Ciwatch-Signature"
ALERT_IDS_HEADER = "X-Ciwatch-Alert-Ids"
ECS_VERSION = "8.11.0"

Secret = str | SecretStr
"""A token or signing key: plain strings are accepted, ``SecretStr`` is preferred."""

_MASK = "**********"
_MASKED_HEADERS = frozenset({"authorization"})

# ECS event.severity is numeric and source-specific; these are the upper bounds
# of Elastic Security's risk-score bands, so Kibana filters read naturally.
_ECS_SEVERITY = {
    Severity.INFO: 1,
    Severity.LOW: 21,
    Severity.MEDIUM: 47,
    Severity.HIGH: 73,
    Severity.CRITICAL: 99,
}
_TECHNIQUE = re.compile(r"attack\.(t\d{4})(?:\.(\d{3}))?", re.IGNORECASE)
_TACTIC = re.compile(r"attack\.([a-z]+(?:_[a-z]+)*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WebhookFormat:
    """One body format: how a batch becomes bytes, and how the token is presented."""

    name: str
    content_type: str
    auth_scheme: str
    """``Authorization: <scheme> <token>`` when a token is configured."""
    requires_token: bool
    encode: Callable[[Sequence[Alert], str], bytes]
    """(alerts, host) -> body."""


@dataclass(frozen=True, slots=True, repr=False)
class WebhookRequest:
    """What to POST: the body and its headers. Printing it masks ``Authorization``."""

    body: bytes
    headers: Mapping[str, str]

    def __repr__(self) -> str:
        shown = {
            name: _MASK if name.lower() in _MASKED_HEADERS else value
            for name, value in self.headers.items()
        }
        return f"WebhookRequest(body=<{len(self.body)} bytes>, headers={shown!r})"


def hec_event(alert: Alert, host: str) -> dict[str, Any]:
    """One Splunk HEC event: the alert under ``event``, indexed at its event time."""
    return {
        "time": alert.time.timestamp(),
        "host": host,
        "source": "ciwatch",
        "sourcetype": "ciwatch:alert",
        "event": alert.to_dict(),
    }


def ecs_document(alert: Alert) -> dict[str, Any]:
    """One Elastic Common Schema document for ``alert``; the full alert is under ``ciwatch``."""
    data = alert.to_dict()
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["intrusion_detection"],
        "type": ["info"],
        "severity": _ECS_SEVERITY[alert.severity],
        "id": alert.id,
        "created": data["detected_at"],
        "start": data["first_time"],
        "end": data["last_time"],
        "module": "ciwatch",
        "dataset": "ciwatch.alert",
    }
    if alert.detection.score is not None:
        event["risk_score"] = round(alert.detection.score * 100, 2)
    document: dict[str, Any] = {
        "@timestamp": data["time"],
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "rule": {"id": alert.detection.name, "name": data["title"], "ruleset": data["kind"]},
        "message": data["summary"],
        "tags": data["tags"],
    }
    if alert.detection.actor is not None:
        document["user"] = {"name": alert.detection.actor}
    ip = _source_ip(alert)
    if ip is not None:
        document["source"] = {"ip": ip}
    threat = _threat(alert.detection.tags)
    if threat is not None:
        document["threat"] = threat
    document["ciwatch"] = data
    return document


def _source_ip(alert: Alert) -> str | None:
    """The alert's ``ip`` group value, when it is one (spray rules group by source IP)."""
    value = dict(alert.detection.key).get("ip")
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        # Elasticsearch rejects a document whose source.ip is not an address.
        return None


def _threat(tags: Sequence[str]) -> dict[str, Any] | None:
    """ECS ``threat`` from ATT&CK tags (``attack.t1110.001``, ``attack.credential_access``)."""
    techniques: list[str] = []
    subtechniques: list[str] = []
    tactics: list[str] = []
    for tag in tags:
        if found := _TECHNIQUE.fullmatch(tag):
            parent = found.group(1).upper()
            if parent not in techniques:
                techniques.append(parent)
            if found.group(2) is not None:
                subtechniques.append(f"{parent}.{found.group(2)}")
        elif found := _TACTIC.fullmatch(tag):
            words = found.group(1).lower().split("_")
            tactics.append(" ".join(w if w == "and" else w.capitalize() for w in words))
    if not (techniques or tactics):
        return None
    threat: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if techniques:
        threat["technique"] = {"id": techniques}
        if subtechniques:
            threat["technique"]["subtechnique"] = {"id": subtechniques}
    if tactics:
        threat["tactic"] = {"name": tactics}
    return threat


def _encode_json(alerts: Sequence[Alert], host: str) -> bytes:
    return orjson.dumps([alert.to_dict() for alert in alerts])


def _encode_hec(alerts: Sequence[Alert], host: str) -> bytes:
    # HEC takes several events in one request as JSON objects one after another;
    # a newline between them keeps the body readable and is allowed.
    return b"\n".join(orjson.dumps(hec_event(alert, host)) for alert in alerts)


def _encode_ecs(alerts: Sequence[Alert], host: str) -> bytes:
    return orjson.dumps([ecs_document(alert) for alert in alerts])


FORMATS: Mapping[str, WebhookFormat] = {
    spec.name: spec
    for spec in (
        WebhookFormat("json", "application/json", "Bearer", False, _encode_json),
        WebhookFormat("splunk_hec", "application/json", "Splunk", True, _encode_hec),
        WebhookFormat("ecs", "application/json", "Bearer", False, _encode_ecs),
    )
}
"""Body formats by name, as ``webhook.format`` in a pipeline names them."""


def idempotency_key(alerts: Sequence[Alert]) -> str:
    """The ``Idempotency-Key`` of a request carrying ``alerts``.

    One alert: its id, with ``.<revision>`` appended once it has been revised,
    so that a revised alert (same id, higher count) is not mistaken for a
    retry of the first send. Several: the SHA-256 (64 hex digits) of the
    sorted, distinct ``id`` / ``id.revision`` tokens joined by ``,``, which
    does not depend on the order of the batch.
    """
    tokens = sorted({_token(alert) for alert in alerts})
    if len(alerts) == 1:
        return tokens[0]
    return hashlib.sha256(",".join(tokens).encode()).hexdigest()


def _token(alert: Alert) -> str:
    return alert.id if alert.revision == 0 else f"{alert.id}.{alert.revision}"


def sign(body: bytes, timestamp: int, keys: Sequence[Secret]) -> str:
    """``X-Ciwatch-Signature``: ``v1=<hex HMAC-SHA256 of b"<timestamp>." + body>`` per key.

    Keys are given newest first and their entries keep that order, joined by
    ``,``; each key is the UTF-8 bytes of the secret.
    """
    if not keys:
        raise ValueError("sign() needs at least one key")
    signed = f"{timestamp}.".encode() + body
    return ",".join(f"v1={_hmac(key, signed)}" for key in keys)


def _hmac(key: Secret, message: bytes) -> str:
    raw = _reveal(key).encode()
    if not raw:
        raise ValueError("a signing key is empty")
    return hmac.new(raw, message, hashlib.sha256).hexdigest()


def _reveal(secret: Secret) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def build_request(
    alerts: Sequence[Alert],
    *,
    format: str,
    token: Secret | None = None,
    signing_keys: Sequence[Secret] = (),
    now: float | None = None,
    host: str | None = None,
) -> WebhookRequest:
    """Body and headers for one POST of ``alerts`` in ``format`` (a :data:`FORMATS` name).

    ``signing_keys`` (newest first) add ``X-Ciwatch-Timestamp`` (``now``, unix
    seconds; the wall clock by default) and ``X-Ciwatch-Signature``. ``host``
    is Splunk's ``host`` field, this machine's name by default. Raises
    :class:`ConfigError` for an unknown format or ``splunk_hec`` without a token.
    """
    if not alerts:
        raise ValueError("build_request() needs at least one alert")
    spec = FORMATS.get(format)
    if spec is None:
        known = ", ".join(sorted(FORMATS))
        raise ConfigError(f"unknown format {format!r} (known: {known})", where="webhook.format")
    if spec.requires_token and token is None:
        raise ConfigError(f"the {format} format needs a token", where="webhook.token")
    body = spec.encode(alerts, host or socket.gethostname())
    headers = {
        "Content-Type": spec.content_type,
        "Idempotency-Key": idempotency_key(alerts),
        ALERT_IDS_HEADER: ",".join(alert.id for alert in alerts),
    }
    if token is not None:
        headers["Authorization"] = f"{spec.auth_scheme} {_reveal(token)}"
    if signing_keys:
        timestamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(body, timestamp, signing_keys)
    return WebhookRequest(body=body, headers=headers)


def verify_signature(
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    keys: Sequence[Secret],
    *,
    now: float,
    tolerance: float = 300,
) -> bool:
    """True when one ``v1=`` entry of ``signature_header`` matches one of ``keys``.

    ``body`` must be the raw bytes received. A missing or malformed timestamp,
    or one more than ``tolerance`` seconds from ``now`` (either way), fails,
    so a captured request cannot be replayed later. Digests are compared with
    :func:`hmac.compare_digest`; entries of other versions are ignored.
    """
    if not timestamp_header or not signature_header:
        return False
    if not (timestamp_header.isascii() and timestamp_header.isdigit()):
        return False
    if abs(now - int(timestamp_header)) > tolerance:
        return False
    signed = timestamp_header.encode() + b"." + body
    given = [
        part.strip()[3:].encode()
        for part in signature_header.split(",")
        if part.strip().startswith("v1=")
    ]
    expected = [_hmac(key, signed).encode() for key in keys]
    return any(hmac.compare_digest(want, got) for want in expected for got in given)
