"""Kafka as a source: a kafka-python consumer group over several topics, manual commits.

Offsets are never committed automatically: the pipeline calls :meth:`commit`
with the positions of records whose alerts are delivered, and the consumer
resumes after them. TLS and SASL settings pass straight through to
kafka-python; passwords are ``SecretStr`` so that printing settings masks them,
or files (``*_password_file``) read only when the consumer is built.
Combinations kafka-python would accept and then fail on at connect time (SASL
without a mechanism, a certificate without its key, a missing CA file) are
rejected when the settings are validated.

``poll(max_records=...)`` is used rather than iteration: on a 2-core machine it
is several times faster, and it keeps batches aligned with commits. The
daemon merges the partitions in event-time order (:mod:`detector.merge`); for
that it asks which partitions may still hold records (:meth:`KafkaSource.unfinished`),
pauses the ones it holds enough of (:meth:`KafkaSource.pause_only`) and hears of
revoked partitions (``on_revoked``) to drop what it buffered of them.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from detector.errors import SourceError, UnreachableError
from detector.secrets import read_secret_file
from detector.sources.base import Source
from detector.sources.kafka_python_fixes import adopt_finished_join, free_inline_slot
from detector.sources.record import Position, RawRecord, new_position, new_raw_record, next_offsets
from detector.tls import client_context

__all__ = ["KafkaClient", "KafkaSettings", "KafkaSource", "check_tls"]

KafkaClient = Literal["kafka-python", "confluent"]
"""The client libraries ``service.kafka.client`` may name."""

_SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
_SECRET_FILES = {
    "ssl_password": "ssl_password_file",
    "sasl_plain_password": "sasl_plain_password_file",
}
"""Secret setting → the setting naming a file that holds it instead."""


class KafkaSettings(BaseModel):
    """Connection and consumer-group settings; TLS/SASL fields are kafka-python's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: KafkaClient = "kafka-python"
    """The client library: kafka-python (always installed) or confluent-kafka (librdkafka,
    faster; ``pip install 'ciwatch[fast]'``), see :func:`detector.sources.factory.open_source`."""
    bootstrap_servers: list[str] = Field(default_factory=lambda: ["127.0.0.1:9092"])
    topics: list[str] = Field(min_length=1)
    group_id: str = "ciwatch"
    client_id: str = "ciwatch"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = Field(default=45_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    max_poll_interval_ms: int = Field(default=300_000, ge=1_000)
    bootstrap_timeout_ms: int = Field(default=30_000, ge=100)
    """How long start-up retries the bootstrap servers before giving up (exit status 3)."""
    fetch_max_bytes: int = Field(default=52_428_800, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: SecretStr | None = None
    ssl_password_file: Path | None = None
    """A file holding ``ssl_password``, the key's passphrase; a trailing newline is dropped."""
    ssl_check_hostname: bool = True
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    sasl_plain_password_file: Path | None = None
    """A file holding ``sasl_plain_password``; a trailing newline is dropped."""

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        problem = self._sasl_problem() or self._ssl_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _sasl_problem(self) -> str | None:
        sasl = self.security_protocol in _SASL_PROTOCOLS
        if sasl and self.sasl_mechanism is None:
            return f"security_protocol {self.security_protocol} needs sasl_mechanism"
        if not sasl and self.sasl_mechanism is not None:
            return (
                f"sasl_mechanism needs security_protocol SASL_PLAINTEXT or SASL_SSL,"
                f" not {self.security_protocol}"
            )
        if sasl and not self.sasl_plain_username:
            return f"security_protocol {self.security_protocol} needs sasl_plain_username"
        password_set = self.sasl_plain_password is not None or self.sasl_plain_password_file
        if sasl and not password_set:
            return (
                f"security_protocol {self.security_protocol} needs sasl_plain_password"
                " or sasl_plain_password_file"
            )
        return None

    def _ssl_problem(self) -> str | None:
        if self.ssl_certfile is not None and self.ssl_keyfile is None:
            return "ssl_certfile needs ssl_keyfile"
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            return "ssl_keyfile needs ssl_certfile"
        for secret, file_key in _SECRET_FILES.items():
            if getattr(self, secret) is not None and getattr(self, file_key) is not None:
                return f"give {secret} or {file_key}, not both"
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", *_SECRET_FILES.values()):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                return f"{key}: no such file: {path}"
        return None

    def consumer_config(self) -> dict[str, Any]:
        """Keyword arguments for ``KafkaConsumer``, secrets revealed only here.

        Secret files are read now, so a rotated password is picked up by the
        next consumer; one that is missing, unreadable or empty raises
        :class:`~detector.errors.ConfigError` naming its setting (:mod:`detector.secrets`).
        """
        exclude = {"topics", "client", *_SECRET_FILES.values()}
        config: dict[str, Any] = self.model_dump(exclude=exclude, exclude_none=True)
        for secret, file_key in _SECRET_FILES.items():
            value: SecretStr | None = getattr(self, secret)
            path: Path | None = getattr(self, file_key)
            if value is not None:
                config[secret] = value.get_secret_value()
            elif path is not None:
                config[secret] = read_secret_file(path, name=file_key).get_secret_value()
        return config

    def connection_config(self) -> dict[str, Any]:
        """The connection part of :meth:`consumer_config` (servers, TLS, SASL), for a producer."""
        consumer = self.consumer_config()
        return {key: consumer[key] for key in consumer if key in _CONNECTION or key == "client_id"}


_CONNECTION = frozenset(
    {"bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username"}
    | {"sasl_plain_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password"}
    | {"ssl_check_hostname"}
)
"""Settings a producer to the same cluster shares with the consumer."""


def check_tls(config: Mapping[str, Any], timeout_s: float = 10.0) -> None:
    """Fail fast, naming the cause, when TLS to the bootstrap servers cannot work.

    kafka-python only logs a refused certificate and retries until its
    bootstrap timeout, then reports "Unable to bootstrap". One handshake here
    turns a wrong CA, host name or client key into one clear error. Servers
    that cannot be reached are left to kafka-python, which retries them.
    """
    if not str(config.get("security_protocol", "")).endswith("SSL"):
        return
    context = client_context(
        config.get("ssl_cafile"),
        config.get("ssl_certfile"),
        config.get("ssl_keyfile"),
        config.get("ssl_password"),
        check_hostname=bool(config.get("ssl_check_hostname", True)),
        cafile_key="ssl_cafile",
        certfile_key="ssl_certfile",
    )
    for server in config["bootstrap_servers"]:
        host, _, port = server.rpartition(":")
        host = host.strip("[]")
        try:
            with (
                socket.create_connection((host, int(port)), timeout=timeout_s) as raw,
                context.wrap_socket(raw, server_hostname=host),
            ):
                return
        except ssl.SSLCertVerificationError as exc:
            message = f"TLS certificate refused: {exc.verify_message}"
            raise SourceError(f"{message} (check ssl_cafile)", where=server) from None
        except ssl.SSLEOFError:
            continue  # the connection dropped mid-handshake: not a settings problem
        except ssl.SSLError as exc:
            raise SourceError(f"TLS handshake failed: {exc.reason or exc}", where=server) from None
        except (OSError, ValueError):
            continue


_REBALANCING = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
"""What a commit raises while the group rebalances or after this member was dropped from it."""


class KafkaSource(Source):
    """Consumes ``settings.topics`` in the consumer group ``settings.group_id``.

    ``start_at``: offsets to start from, per (topic, partition), the first time
    each partition is assigned — the offsets a restored state snapshot reflects,
    which may lie before the group's committed offsets (the records between are
    processed again, so the state and the stream agree). A partition the
    snapshot does not list resumes at the group's committed offset (another
    replica handled it; the daemon checkpoints before a partition's first
    commit, so its own partitions are always listed) or, with none, where
    ``auto_offset_reset`` says. ``None`` (no snapshot): every partition resumes
    at the committed offsets. Later assignments (a rebalance) do too.
    Nothing needs committing on revoke: every processed batch is committed
    before the next poll, inside which a rebalance happens; records polled but
    not processed yet were not committed, so the partition's next owner reads
    them. ``on_revoked`` hears the revoked (topic, partition) pairs, so that
    whoever buffers polled records drops theirs. ``on_assigned`` hears the
    newly assigned ones (after ``start_at``) and returns offsets to seek them
    to: where a partition's state restored from a changelog resumes.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        start_at: Mapping[tuple[str, int], int] | None = None,
        on_revoked: Callable[[list[tuple[str, int]]], None] | None = None,
        on_assigned: Callable[[list[tuple[str, int]]], Mapping[tuple[str, int], int]] | None = None,
    ) -> None:
        self.settings = settings
        self._start_at = dict(start_at) if start_at is not None else None
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._placed: set[tuple[str, int]] = set()
        config = settings.consumer_config()
        check_tls(config)
        try:
            self._consumer = KafkaConsumer(enable_auto_commit=False, **config)
            self._consumer.subscribe(settings.topics, listener=_Rewind(self))
        except KafkaError as exc:
            servers = ",".join(settings.bootstrap_servers)
            raise UnreachableError(f"cannot connect: {exc}", where=servers) from None

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        adopt_finished_join(self._consumer)
        free_inline_slot(self._consumer)
        fetched = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return [
            new_raw_record(
                # A tombstone (null value) becomes an empty record: dead-lettered, not dropped.
                message.value or b"",
                new_position(message.topic, message.offset, message.partition),
                message.key,
            )
            for messages in fetched.values()
            for message in messages
        ]

    def commit(self, positions: Iterable[Position]) -> None:
        """Commit, per partition, the offset after the highest position given."""
        self.commit_offsets(next_offsets(positions))

    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        """Commit these next offsets, per (topic, partition) (see :func:`next_offsets`).

        False when the group was rebalancing and refused the commit: the
        records are then read again by the partition's next owner (at least
        once; alert ids are stable), which is no reason to stop the daemon.
        """
        if not offsets:
            return True
        try:
            self._consumer.commit(
                {
                    TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                    for (topic, partition), offset in offsets.items()
                }
            )
        except _REBALANCING:
            return False
        return True

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    def assigned(self) -> set[tuple[str, int]]:
        """The assigned partitions as (topic, partition) pairs."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def unfinished(self) -> set[tuple[str, int]]:
        """Assigned partitions that may hold records not polled yet (KIP-695).

        A partition is finished when its position equals its highwater mark;
        both come from the last fetch responses, without a request. One not
        fetched yet (no highwater known) may hold records.
        """
        found = set()
        for tp in self._consumer.assignment():
            try:
                end = self._consumer.highwater(tp)
                at = self._consumer.position(tp, timeout_ms=0) if end is not None else None
            except (IllegalStateError, KafkaError):  # revoked meanwhile, or no position yet
                end = at = None
            if end is None or at is None or at < end:
                found.add((tp.topic, tp.partition))
        return found

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        """Fetch nothing more from these assigned partitions for now; resume the others."""
        wanted = {TopicPartition(topic, partition) for topic, partition in partitions}
        assigned = set(self._consumer.assignment())
        paused = set(self._consumer.paused())
        if pause := (wanted & assigned) - paused:
            self._consumer.pause(*pause)
        if resume := (paused & assigned) - wanted:
            self._consumer.resume(*resume)

    def unread(self, records: Iterable[RawRecord]) -> None:
        """Seek each partition back to its first record in ``records``: they are read again.

        For records a poll returned while the daemon is paused (a partition
        assigned inside that poll was not paused yet): none is skipped.
        """
        first: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.position.stream, record.position.partition)
            first[tp] = min(first.get(tp, record.position.offset), record.position.offset)
        for tp, offset in first.items():
            self._consumer.seek(tp, offset)

    def lag(self) -> dict[TopicPartition, int]:
        """Records between the consumer's position and the end, per assigned partition."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        ends = self._consumer.end_offsets(assigned)
        return {tp: max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned}

    def _rewind(self, assigned: Iterable[TopicPartition]) -> None:
        if self._start_at is None:
            return
        for tp in assigned:
            key = (tp.topic, tp.partition)
            if key in self._placed:
                continue
            self._placed.add(key)
            offset = self._start_at.get(key)
            if offset is not None:
                self._consumer.seek(tp, offset)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class _Rewind(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no types
    """Seeks newly assigned partitions to ``start_at``; passes revoked ones to ``on_revoked``."""

    def __init__(self, source: KafkaSource) -> None:
        self._source = source

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Processed batches are committed before each poll: nothing to commit.
        if self._source._on_revoked is not None:
            self._source._on_revoked([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._source._rewind(assigned)
        if self._source._on_assigned is not None:
            seeks = self._source._on_assigned([(tp.topic, tp.partition) for tp in assigned])
            for (topic, partition), offset in seeks.items():
                self._source._consumer.seek(TopicPartition(topic, partition), offset)
