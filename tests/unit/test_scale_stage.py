"""The scaled daemon's parts that need no broker: start-up checks, decoding."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from detector.config import PipelineConfig
from detector.events.model import DeadLetterReason
from detector.scale.inbox import Inbox
from detector.scale.stage import ScaledDaemon
from detector.scale.wire import encode_event, encode_mark
from detector.sources.factory import ConsumerSource
from detector.sources.record import Position, RawRecord

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def scaled(**models: object) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"service": {"scale": {"enabled": True, "partitions": 3}}, "models": models}
    )


class Polled:
    """A source that hands out fixed records once, caught up as far as it knows."""

    def __init__(self, records: list[RawRecord]) -> None:
        self.records = records

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        taken, self.records = self.records[:max_records], self.records[max_records:]
        return taken

    def unfinished(self) -> set[tuple[str, int]]:
        return set()

    def assigned(self) -> set[tuple[str, int]]:
        return set()

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        pass


def test_source_records_are_normalized_and_stage_records_decoded_or_dead_lettered() -> None:
    daemon = ScaledDaemon(scaled(enabled=False), [])
    assert daemon.topology.stages == ("ip", "actor")  # the bundled spray rule groups by IP
    line = (SAMPLES / "github_audit.jsonl").read_bytes().splitlines()[0]
    source = RawRecord(line, Position("vendor-events", 0, 0))
    event = daemon.pipeline.normalize([source]).events[0]
    internal = daemon.topology.topic("actor")
    good = RawRecord(encode_event(event, {}, producer="ip/0"), Position(internal, 7, 1))
    # The other producers of the actor stage have passed the event: the inbox releases it.
    marks = [
        RawRecord(encode_mark(f"ip/{n}", event.time), Position(internal, 7 + n, 1)) for n in (1, 2)
    ]
    bad = [
        RawRecord(b"not json", Position(internal, 10, 1)),
        RawRecord(b'{"event": {}}', Position(internal, 11, 1)),
        RawRecord(b"[1]", Position(internal, 12, 1)),
    ]
    polled = Polled([source, good, *marks, *bad])
    inbox = daemon.owned.inbox = Inbox(
        polled, daemon.topology, sources={"vendor-events": 1}, wait_s=60
    )
    records = inbox.poll()
    assert [r.position for r in records] == [
        source.position,
        *(r.position for r in bad),
        good.position,
    ]
    outcome = daemon._normalize(records)
    # Only source events have an event time for the merge: stage records are already in order.
    assert [e.position for e in outcome.events] == [source.position]
    assert [d.position for d in outcome.dead_letters] == [r.position for r in bad]
    assert {d.reason for d in outcome.dead_letters} == {DeadLetterReason.PARSER_ERROR}
    assert all(d.detail.startswith("not an internal record") for d in outcome.dead_letters)
    assert set(daemon._decoded) == {good.position}  # held until the merge releases it
    decoded = daemon._decoded[good.position]
    assert isinstance(decoded, tuple) and decoded[0].id == event.id
    assert inbox.received == {}  # taken by the daemon


class Committing(Polled):
    """:class:`Polled`, keeping what the daemon commits."""

    def __init__(self, records: list[RawRecord]) -> None:
        super().__init__(records)
        self.committed: dict[tuple[str, int], int] = {}

    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> bool:
        self.committed.update(offsets)
        return True


def test_stage_partitions_are_committed_when_their_inbox_holds_nothing() -> None:
    # The inbox's truth value is how many records it holds: the commit once asked it
    # instead of whether there was one, so an idle stage's last reads stayed uncommitted.
    daemon = ScaledDaemon(scaled(enabled=False), [])
    internal = daemon.topology.topic("actor")
    mark = encode_mark("ip/0", datetime(2026, 1, 1, tzinfo=UTC))
    source = Committing([RawRecord(mark, Position(internal, offset=4, partition=1))])
    inbox = daemon.owned.inbox = Inbox(source, daemon.topology, sources={}, wait_s=60)
    assert inbox.poll() == [] and len(inbox) == 0
    daemon._commit(cast(ConsumerSource, source), {})
    assert source.committed == {(internal, 1): 5}
