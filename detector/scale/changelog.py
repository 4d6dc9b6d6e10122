"""Partition state in a compacted Kafka topic, the changelog, as Kafka Streams keeps it.

Input partition ``p`` is a task whose whole detection state is one JSON-able
dict; :meth:`Changelog.save` writes it to changelog partition ``p`` and
:meth:`Changelog.restore` reads it back on whichever replica owns ``p`` next.

A state of several MB exceeds a Kafka message (1 MB by default), so it is
serialised (orjson), compressed (zlib) and cut into chunks of at most
``chunk_bytes``. Chunks go to one of two slots, keyed ``A/0``, ``A/1``, ...
or ``B/0``, ..., each value prefixed with its snapshot's generation; a
``manifest`` record written last names the slot, chunk count, generation,
input offset and the SHA-256 of the compressed state. A save writes the slot
the manifest does not name, waits for ``acks=all``, then writes the manifest
and waits again: a crash at any point leaves the previous snapshot whole, and
compaction (which keeps the latest value per key, eventually: a reader keeps
the last it sees) holds the keys to two slots and one manifest.

One writer per partition is assumed (the group's assignment); a replica that
lost a partition but still saves it (a zombie) is not fenced.

Restore reads up to the end offset ListOffsets reports. Tansu (the test
broker) reports the last batch's base offset plus one, short of the real end;
a fetch returns whole batches and the manifest is sent alone, so the last
manifest is still read.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field

from detector.errors import ConfigError, SourceError, UnreachableError

__all__ = ["Changelog", "ChangelogSettings", "ensure_topics"]

MANIFEST_KEY = b"manifest"
_SLOTS = ("A", "B")
_GENERATION = struct.Struct(">Q")
"""Prefix of every chunk value: the generation of the snapshot it belongs to."""
_FORMAT = 1
_COMPRESSION_LEVEL = 1
"""zlib's fastest level: states are mostly repeated keys, which it already squeezes well."""
_COMPACTED = {"cleanup.policy": "compact", "segment.bytes": str(64 * 1024 * 1024)}
"""Only closed segments are compacted: with Kafka's default 1 GiB segments a
restore could read a gigabyte of superseded snapshots per partition."""
_UNKNOWN_TOPIC = 3
_TOPIC_EXISTS = 36


class ChangelogSettings(BaseModel):
    """How a changelog splits states; one Kafka message must hold a chunk and its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_bytes: int = Field(default=512 * 1024, ge=1024, le=1_000_000)


@dataclass(frozen=True)
class _Manifest:
    """The record naming a partition's newest complete snapshot."""

    slot: str
    chunks: int
    generation: int
    offset: int
    sha256: str

    def to_bytes(self) -> bytes:
        return orjson.dumps({"format": _FORMAT, **self.__dict__})

    @classmethod
    def from_bytes(cls, raw: bytes, where: str) -> _Manifest:
        try:
            fields = orjson.loads(raw)
            if fields.pop("format") != _FORMAT or fields["slot"] not in _SLOTS:
                raise ValueError("unknown format or slot")
            return cls(**fields)
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"unreadable changelog manifest: {exc}", where=where) from None


class Changelog:
    """Saves and restores partition states in the compacted topic ``topic``.

    ``connection``: ``KafkaSettings.connection_config()`` (servers, TLS, SASL).

    >>> changelog = Changelog(settings.connection_config(), "actors-changelog")  # doctest: +SKIP
    >>> changelog.save(3, pipeline.snapshot(), offset=1_204)  # doctest: +SKIP
    >>> changelog.restore(3)  # doctest: +SKIP
    ({...}, 1204)
    """

    def __init__(
        self,
        connection: dict[str, Any],
        topic: str,
        *,
        chunk_bytes: int = 512 * 1024,
        log: Callable[[str], None] | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.topic = topic
        self.chunk_bytes = ChangelogSettings(chunk_bytes=chunk_bytes).chunk_bytes
        self._connection = dict(connection)
        self._log = log or (lambda _message: None)
        self._timeout_s = timeout_s
        self._manifests: dict[int, _Manifest | None] = {}
        """The manifest each partition's changelog holds, as last read or written."""
        try:
            self._producer = KafkaProducer(
                acks="all", linger_ms=0, retries=2_147_483_647, **self._connection
            )
        except KafkaError as exc:
            message = f"cannot connect the changelog producer: {exc}"
            raise UnreachableError(message, where=topic) from None

    def save(self, partition: int, state: dict[str, Any], offset: int) -> None:
        """Store ``state``, which reflects the input up to ``offset`` (the next to read).

        Durable when this returns: every record is acknowledged by all in-sync replicas.
        """
        blob = zlib.compress(orjson.dumps(state), _COMPRESSION_LEVEL)
        previous = self._current(partition)
        manifest = _Manifest(
            slot=_SLOTS[1] if previous is not None and previous.slot == _SLOTS[0] else _SLOTS[0],
            chunks=-(-len(blob) // self._payload_bytes),  # zlib output is never empty
            generation=previous.generation + 1 if previous is not None else 1,
            offset=offset,
            sha256=hashlib.sha256(blob).hexdigest(),
        )
        self._write_chunks(partition, manifest, blob)
        self._send(partition, [(MANIFEST_KEY, manifest.to_bytes())])
        self._manifests[partition] = manifest

    def restore(self, partition: int) -> tuple[dict[str, Any], int] | None:
        """The newest complete snapshot of ``partition`` and its offset; None if never saved.

        Raises :class:`~detector.errors.SourceError` when the snapshot the
        manifest names is incomplete or corrupt: the caller decides whether
        to start afresh.
        """
        started = time.monotonic()
        latest = self._read(partition)
        manifest = self._manifest_in(latest, partition)
        if manifest is None:
            return None
        blob = self._assemble(latest, manifest, partition)
        try:
            state = orjson.loads(zlib.decompress(blob))
        except (zlib.error, orjson.JSONDecodeError) as exc:
            raise SourceError(f"undecodable state: {exc}", where=self._where(partition)) from None
        if not isinstance(state, dict):
            raise SourceError("state is not a mapping", where=self._where(partition))
        self._log(
            f"changelog {self._where(partition)}: restored generation {manifest.generation}"
            f" ({len(blob)} bytes compressed, offset {manifest.offset})"
            f" in {time.monotonic() - started:.2f}s"
        )
        return state, manifest.offset

    def close(self) -> None:
        self._producer.close(timeout=self._timeout_s)

    @property
    def _payload_bytes(self) -> int:
        return self.chunk_bytes - _GENERATION.size

    def _where(self, partition: int) -> str:
        return f"{self.topic}[{partition}]"

    def _current(self, partition: int) -> _Manifest | None:
        """The manifest the partition holds now: cached, else read from the changelog."""
        if partition not in self._manifests:
            latest = self._read(partition)
            try:
                self._manifest_in(latest, partition)
            except SourceError as exc:
                self._log(f"changelog {exc}: the next snapshot replaces it")
        return self._manifests[partition]

    def _write_chunks(self, partition: int, manifest: _Manifest, blob: bytes) -> None:
        """Send the snapshot's chunks to its slot and wait until all are acknowledged."""
        prefix, size = _GENERATION.pack(manifest.generation), self._payload_bytes
        chunks = [prefix + blob[start : start + size] for start in range(0, len(blob), size)]
        keys = [f"{manifest.slot}/{index}".encode() for index in range(manifest.chunks)]
        self._send(partition, list(zip(keys, chunks, strict=True)))

    def _send(self, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        try:
            futures = [
                self._producer.send(self.topic, key=key, value=value, partition=partition)
                for key, value in records
            ]
            self._producer.flush(timeout=self._timeout_s)
            for future in futures:
                future.get(timeout=self._timeout_s)  # raises the send's error, if any
        except KafkaError as exc:
            message = f"changelog write failed: {exc}"
            raise UnreachableError(message, where=self._where(partition)) from None

    def _read(self, partition: int) -> dict[bytes, bytes]:
        """The latest value of each key in the changelog partition, from its start to its end."""
        consumer = KafkaConsumer(
            group_id=None, enable_auto_commit=False, max_poll_records=100_000, **self._connection
        )
        try:
            return self._latest_values(consumer, TopicPartition(self.topic, partition))
        except KafkaError as exc:
            message = f"changelog read failed: {exc}"
            raise UnreachableError(message, where=self._where(partition)) from None
        finally:
            consumer.close(autocommit=False)

    def _latest_values(self, consumer: Any, tp: Any) -> dict[bytes, bytes]:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end: int = consumer.end_offsets([tp])[tp]
        latest: dict[bytes, bytes] = {}
        deadline = time.monotonic() + self._timeout_s
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                at = consumer.position(tp)
                message = f"read only to offset {at} of {end} within {self._timeout_s:.0f}s"
                raise UnreachableError(message, where=self._where(tp.partition))
            for messages in consumer.poll(timeout_ms=500).values():
                for message in messages:
                    if message.value is None:  # a tombstone deletes the key
                        latest.pop(message.key, None)
                    elif message.key is not None:
                        latest[message.key] = message.value
        return latest

    def _manifest_in(self, latest: Mapping[bytes, bytes], partition: int) -> _Manifest | None:
        """The partition's manifest, remembered for the next save (None if unreadable)."""
        raw = latest.get(MANIFEST_KEY)
        self._manifests[partition] = None
        if raw is not None:
            self._manifests[partition] = _Manifest.from_bytes(raw, self._where(partition))
        return self._manifests[partition]

    def _assemble(
        self, latest: Mapping[bytes, bytes], manifest: _Manifest, partition: int
    ) -> bytes:
        """The compressed state from the chunks the manifest names, checked against it."""
        where = self._where(partition)
        parts = []
        for index in range(manifest.chunks):
            value = latest.get(f"{manifest.slot}/{index}".encode())
            if value is None:
                raise SourceError(f"chunk {manifest.slot}/{index} is missing", where=where)
            (generation,) = _GENERATION.unpack_from(value)
            if generation != manifest.generation:
                raise SourceError(
                    f"chunk {manifest.slot}/{index} is of generation {generation},"
                    f" the manifest names {manifest.generation}",
                    where=where,
                )
            parts.append(value[_GENERATION.size :])
        blob = b"".join(parts)
        if hashlib.sha256(blob).hexdigest() != manifest.sha256:
            message = f"checksum mismatch for generation {manifest.generation}"
            raise SourceError(message, where=where)
        return blob


def ensure_topics(
    connection: dict[str, Any],
    topics: Mapping[str, int],
    *,
    compacted: Collection[str] = (),
    timeout_s: float = 30.0,
) -> None:
    """Create each missing topic with its partition count; ``compacted`` ones compacted.

    A topic that exists with another partition count raises
    :class:`~detector.errors.ConfigError`: its partitions would no longer
    line up with the input's. Creation races with other replicas are fine.
    """
    admin = _admin(connection)
    try:
        missing = _check_partitions(admin, topics)
        if missing:
            _create(admin, {name: topics[name] for name in missing}, compacted)
            _check_partitions(admin, topics)  # another replica may have won the race
            admin.wait_for_topics(missing, timeout_ms=int(timeout_s * 1000))
    except KafkaError as exc:
        raise UnreachableError(f"topic set-up failed: {exc}", where=",".join(topics)) from None
    finally:
        admin.close()


def partition_counts(connection: dict[str, Any], topics: Collection[str]) -> dict[str, int]:
    """Each topic's partitions; a topic not there (yet) is left out."""
    admin = _admin(connection)
    try:
        described = admin.describe_topics(list(topics))
    except KafkaError as exc:
        raise UnreachableError(f"cannot describe topics: {exc}", where=",".join(topics)) from None
    finally:
        admin.close()
    return {d["name"]: len(d["partitions"]) for d in described if not d["error_code"]}


def _admin(connection: dict[str, Any]) -> Any:
    try:
        return KafkaAdminClient(**connection)
    except KafkaError as exc:
        servers = ",".join(connection.get("bootstrap_servers", []))
        raise UnreachableError(f"cannot connect the admin client: {exc}", where=servers) from None


def _check_partitions(admin: Any, topics: Mapping[str, int]) -> list[str]:
    """The topics that do not exist yet; raise ConfigError on a partition count mismatch."""
    missing = []
    for described in admin.describe_topics(list(topics)):
        name, error = described["name"], described["error_code"]
        if error == _UNKNOWN_TOPIC:
            missing.append(name)
        elif error:
            raise SourceError(f"cannot describe topic: error {error}", where=name)
        elif (actual := len(described["partitions"])) != (wanted := topics[name]):
            raise ConfigError(
                f"has {actual} partitions, {wanted} expected (a changelog needs as many as its"
                f" input topic): delete it to have it created with {wanted}, or expect {actual}",
                where=f"topic {name}",
            )
    return missing


def _create(admin: Any, topics: Mapping[str, int], compacted: Collection[str]) -> None:
    requests = {
        name: {
            "num_partitions": count,
            "replication_factor": -1,  # the cluster's default
            "configs": _COMPACTED if name in compacted else {},
        }
        for name, count in topics.items()
    }
    response = admin.create_topics(requests, raise_errors=False)
    for created in response["topics"]:
        if created["error_code"] not in (0, _TOPIC_EXISTS):
            message = created["error_message"] or f"error {created['error_code']}"
            raise SourceError(f"cannot create topic: {message}", where=created["name"])
