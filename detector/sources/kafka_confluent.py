"""Kafka as a source through confluent-kafka (librdkafka): :class:`KafkaSource`'s twin, faster.

Chosen with ``service.kafka.client: confluent`` (``pip install 'ciwatch[fast]'``).
Same settings, same methods, same meaning as
:class:`~detector.sources.kafka.KafkaSource`: manual commits only (neither
auto-commit nor the offset store), partitions rewound to ``start_at`` when
first assigned, ``on_revoked`` told of revoked (or lost) partitions,
``unfinished`` from the high watermarks of the last fetches. The one module
that imports confluent-kafka for consuming.

librdkafka differs from kafka-python in ways this class hides:

- ``consume`` waits until it has ``max_records`` or the timeout passes;
  :meth:`ConfluentSource.poll` instead waits for the first record only, then
  takes what is already fetched, as kafka-python's ``poll`` does.
- It reports no position for a partition before the first record is
  consumed, so the next offset of each partition is tracked here: from
  ``start_at``, the group's committed offset or ``auto_offset_reset``, then
  from the records returned.
- Connecting is lazy; the constructor asks for the cluster's metadata within
  ``bootstrap_timeout_ms`` so that an unreachable cluster fails at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from detector.errors import SourceError, UnreachableError
from detector.sources import librdkafka
from detector.sources.base import Source
from detector.sources.kafka import KafkaSettings, check_tls
from detector.sources.record import Position, RawRecord, new_position, new_raw_record, next_offsets

__all__ = ["ConfluentSource"]

_LOG = logging.getLogger("ciwatch.kafka")
_METADATA_TIMEOUT_S = 10.0
"""Longest a committed-offsets or watermark request waits."""
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # untyped upstream
_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]

_REBALANCING = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,  # librdkafka: the assignment was lost (session timed out)
    }
)
"""What a commit fails with while the group rebalances or after this member was dropped."""

Partition = tuple[str, int]


class ConfluentSource(Source):
    """Consumes ``settings.topics`` in the group ``settings.group_id`` (see the module)."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        start_at: Mapping[Partition, int] | None = None,
        on_revoked: Callable[[list[Partition]], None] | None = None,
        on_assigned: Callable[[list[Partition]], Mapping[Partition, int]] | None = None,
    ) -> None:
        self.settings = settings
        self._start_at = dict(start_at) if start_at is not None else None
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned  # offsets to seek newly assigned partitions to
        self._placed: set[Partition] = set()
        self._next: dict[Partition, int] = {}  # the offset each partition reads next
        self._paused: set[Partition] = set()
        self._admin: AdminClient | None = None  # asks for the partitions' ends (lag)
        check_tls(settings.consumer_config())
        servers = ",".join(settings.bootstrap_servers)
        try:
            self._consumer = Consumer(librdkafka.consumer_config(settings), logger=_LOG)
            self._consumer.list_topics(timeout=settings.bootstrap_timeout_ms / 1000)
            self._consumer.subscribe(
                settings.topics,
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._revoked,
            )
        except KafkaException as exc:
            raise UnreachableError(f"cannot connect: {_reason(exc)}", where=servers) from None

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        """Up to ``max_records``: waits up to ``timeout_s`` for the first, not for all."""
        messages = self._consumer.consume(max_records, 0)
        if not messages and timeout_s > 0:
            first = self._consumer.poll(timeout_s)
            if first is not None:
                rest = self._consumer.consume(max_records - 1, 0) if max_records > 1 else []
                messages = [first, *rest]
        records = []
        for message in messages:
            record = self._record(message)
            if record is not None:
                records.append(record)
                position = record.position
                self._next[(position.stream, position.partition or 0)] = position.offset + 1
        return records

    def _record(self, message: Message) -> RawRecord | None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise SourceError(f"consumer failed: {error.str()}", where=message.topic())
            _LOG.warning("kafka: %s", error.str())  # librdkafka retries by itself
            return None
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            return None  # only error events lack them
        # A tombstone (null value) becomes an empty record: dead-lettered, not dropped.
        return new_raw_record(
            message.value() or b"", new_position(topic, offset, partition), message.key()
        )

    def commit(self, positions: Iterable[Position]) -> None:
        """Commit, per partition, the offset after the highest position given."""
        self.commit_offsets(next_offsets(positions))

    def commit_offsets(self, offsets: Mapping[Partition, int]) -> bool:
        """Commit these next offsets; False when the group was rebalancing (see KafkaSource)."""
        if not offsets:
            return True
        wanted = [TopicPartition(t, p, offset) for (t, p), offset in offsets.items()]
        try:
            answered = self._consumer.commit(offsets=wanted, asynchronous=False)
        except KafkaException as exc:
            return _refused(_code(exc), _reason(exc))
        for tp in answered or []:
            if tp.error is not None:
                return _refused(tp.error.code(), tp.error.str())
        return True

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    def assigned(self) -> set[Partition]:
        """The assigned partitions as (topic, partition) pairs."""
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def unfinished(self) -> set[Partition]:
        """Assigned partitions that may hold records not polled yet (KIP-695).

        Finished: the next offset is at the high watermark of the last fetch
        (no request). One not fetched yet (no watermark known) may hold records.
        """
        found = set()
        for tp in self._consumer.assignment():
            key = (tp.topic, tp.partition)
            low, high = self._consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
            at = self._at(key, low, high)
            if high < 0 or at is None or at < high:
                found.add(key)
        return found

    def _at(self, key: Partition, low: int, high: int) -> int | None:
        """The offset ``key`` reads next, None while unknown."""
        at = self._next.get(key)
        if at is not None and at >= 0:
            return at
        if at is None:
            return None
        # No committed offset: where auto_offset_reset starts, once the watermarks are known.
        start = low if self.settings.auto_offset_reset == "earliest" else high
        return start if start >= 0 else None

    def pause_only(self, partitions: Collection[Partition]) -> None:
        """Fetch nothing more from these assigned partitions for now; resume the others."""
        wanted = set(partitions)
        assigned = self.assigned()
        if pause := (wanted & assigned) - self._paused:
            self._consumer.pause([TopicPartition(t, p) for t, p in pause])
            self._paused |= pause
        if resume := (self._paused & assigned) - wanted:
            self._consumer.resume([TopicPartition(t, p) for t, p in resume])
            self._paused -= resume

    def unread(self, records: Iterable[RawRecord]) -> None:
        """Seek each partition back to its first record in ``records``: they are read again."""
        first: dict[Partition, int] = {}
        for record in records:
            key = (record.position.stream, record.position.partition or 0)
            first[key] = min(first.get(key, record.position.offset), record.position.offset)
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
            self._next[(topic, partition)] = offset

    def lag(self) -> dict[TopicPartition, int]:
        """Records between the consumer's position and the end, per assigned partition.

        The ends come in one ListOffsets request per broker, as kafka-python's
        ``end_offsets``: ``get_watermark_offsets`` asks per partition, one after
        the other, and took half a second each (9 s for 18 partitions, blocking
        the loop). A partition whose end is not answered is left out until the
        next update.
        """
        assigned = [TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()]
        if not assigned:
            return {}
        if self._admin is None:
            self._admin = AdminClient(librdkafka.connection_config(self.settings), logger=_LOG)
        ends = _offsets(self._admin, assigned, _LATEST)
        # No record read and no offset committed: the start is where auto_offset_reset says.
        unplaced = [tp for tp in assigned if self._next.get((tp.topic, tp.partition), 0) < 0]
        starts = _offsets(self._admin, unplaced, _EARLIEST) if unplaced else {}
        behind = {}
        for tp, high in ends.items():
            at = self._at((tp.topic, tp.partition), starts.get(tp, -1), high)
            if high >= 0 and at is not None:
                behind[tp] = max(0, high - at)
        return behind

    def close(self) -> None:
        self._consumer.close()  # auto-commit is off: closing commits nothing

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Rewind first-time partitions to ``start_at``; note where each reads next."""
        committed = _committed(consumer, partitions)
        for tp in partitions:
            key = (tp.topic, tp.partition)
            offset = None
            if self._start_at is not None and key not in self._placed:
                self._placed.add(key)
                offset = self._start_at.get(key)
            if offset is not None:
                tp.offset = offset
            self._next.pop(key, None)
            start = offset if offset is not None else committed.get(key)
            if start is not None:
                self._next[key] = start
            self._paused.discard(key)
        if self._on_assigned is not None:
            seeks = self._on_assigned([(tp.topic, tp.partition) for tp in partitions])
            for tp in partitions:
                if (offset := seeks.get((tp.topic, tp.partition))) is not None:
                    tp.offset = self._next[(tp.topic, tp.partition)] = offset
        consumer.assign(partitions)
        # librdkafka may keep a partition's pause across a rebalance; the tracked set does not.
        consumer.resume(partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Processed batches are committed before each poll: nothing to commit.
        keys = [(tp.topic, tp.partition) for tp in partitions]
        for key in keys:
            self._next.pop(key, None)
            self._paused.discard(key)
        if self._on_revoked is not None:
            self._on_revoked(keys)


def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> dict[Partition, int]:
    """The group's committed offsets; OFFSET_INVALID (-1001) where it has none.

    An unanswered request leaves the partitions out: their position is then
    known from the first record returned.
    """
    try:
        answered = consumer.committed(partitions, timeout=_METADATA_TIMEOUT_S)
    except KafkaException as exc:
        _LOG.warning("kafka: committed offsets not read: %s", _reason(exc))
        return {}
    return {
        (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else OFFSET_INVALID
        for tp in answered
        if tp.error is None
    }


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec
) -> dict[TopicPartition, int]:
    """Each partition's offset at ``spec``, asked in one request per broker; the unanswered
    left out."""
    asked = admin.list_offsets(dict.fromkeys(partitions, spec), request_timeout=_METADATA_TIMEOUT_S)
    found = {}
    for tp, answer in asked.items():
        try:
            found[tp] = answer.result(timeout=_METADATA_TIMEOUT_S).offset
        except (KafkaException, TimeoutError):
            continue
    return found


def _refused(code: int, reason: str) -> bool:
    if code in _REBALANCING:
        return False
    raise SourceError(f"commit failed: {reason}", where="offsets")


def _code(exc: KafkaException) -> int:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else KafkaError.UNKNOWN


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
