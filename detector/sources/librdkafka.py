""":class:`~detector.sources.kafka.KafkaSettings` as librdkafka configuration (confluent-kafka).

The settings are kafka-python's names; librdkafka spells the same things with
dots (``ssl_cafile`` → ``ssl.ca.location``). Plain data, no import of
confluent-kafka: the mapping can be checked where the package is not installed.
Secrets are revealed only in the dictionaries returned here, which go straight
to the client.
"""

from __future__ import annotations

from typing import Any

from detector.sources.kafka import KafkaSettings

__all__ = ["FETCH_QUEUE_BACKOFF_MS", "connection_config", "consumer_config"]

FETCH_QUEUE_BACKOFF_MS = 50
"""How long librdkafka waits to fetch a partition again after its fetched queue was full
(librdkafka's default is 1,000 ms)."""

_RENAMED = {
    "client_id": "client.id",
    "security_protocol": "security.protocol",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
}
"""kafka-python connection setting → librdkafka property."""


def connection_config(settings: KafkaSettings) -> dict[str, Any]:
    """Servers, client id, TLS and SASL as librdkafka properties (for a producer too).

    Secret files are read now (:meth:`KafkaSettings.consumer_config`), so a
    rotated password reaches the next client built.
    """
    given = settings.consumer_config()
    config: dict[str, Any] = {"bootstrap.servers": ",".join(settings.bootstrap_servers)}
    config.update({_RENAMED[key]: value for key, value in given.items() if key in _RENAMED})
    if settings.security_protocol.endswith("SSL"):
        # librdkafka checks the server's name by default too; "none" switches it off.
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.ssl_check_hostname else "none"
        )
    return config


def consumer_config(settings: KafkaSettings) -> dict[str, Any]:
    """A consumer in ``settings.group_id`` that commits only when told to."""
    return {
        **connection_config(settings),
        "group.id": settings.group_id,
        "auto.offset.reset": settings.auto_offset_reset,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "fetch.max.bytes": settings.fetch_max_bytes,
        # Offsets are committed explicitly after delivery, never stored or committed by the client.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # kafka-python reads uncommitted too; librdkafka's default would hide open transactions.
        "isolation.level": "read_uncommitted",
        # The daemon pauses a partition it holds enough of; librdkafka drops what it had
        # fetched of it and, by default, fetches a partition whose queue was full again only
        # a second later: the event-time merge then waited on it (docs/performance-history.md,
        # the thirty-fifth session).
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }
