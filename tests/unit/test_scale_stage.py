"""The scaled daemon's parts that need no broker: start-up checks, decoding, own writes."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest

from detector.config import PipelineConfig
from detector.errors import ConfigError
from detector.events.model import DeadLetterReason, Event
from detector.scale.pending import OwnWrites
from detector.scale.stage import ScaledDaemon, refuse_learning
from detector.scale.wire import encode_event
from detector.sources.record import Position, RawRecord

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def scaled(**models: object) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"service": {"scale": {"enabled": True, "partitions": 3}}, "models": models}
    )


def test_learning_models_is_refused_naming_service_scale() -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_learning(scaled())  # models.dir null, learning on: learnt per process
    assert "service.scale" in str(refused.value)
    assert "models.dir: bundled" in str(refused.value)
    refuse_learning(scaled(dir="bundled"))
    refuse_learning(scaled(enabled=False))
    with pytest.raises(ConfigError):
        ScaledDaemon(scaled(), [])


def test_source_records_are_normalized_and_stage_records_decoded_or_dead_lettered() -> None:
    daemon = ScaledDaemon(scaled(enabled=False), [])
    assert daemon.topology.stages == ("ip", "actor")  # the bundled spray rule groups by IP
    line = (SAMPLES / "github_audit.jsonl").read_bytes().splitlines()[0]
    source = RawRecord(line, Position("vendor-events", 0, 0))
    event = daemon.pipeline.normalize([source]).events[0]
    internal = daemon.topology.topic("actor")
    good = RawRecord(encode_event(event, {}), Position(internal, 7, 1))
    bad = [
        RawRecord(b"not json", Position(internal, 8, 1)),
        RawRecord(b'{"event": {}}', Position(internal, 9, 1)),
        RawRecord(b"[1]", Position(internal, 10, 1)),
    ]
    outcome = daemon._normalize([source, good, *bad])
    assert [e.position for e in outcome.events] == [source.position, good.position]
    decoded = outcome.events[1]
    assert isinstance(decoded, Event) and decoded.id == event.id
    assert [d.position for d in outcome.dead_letters] == [r.position for r in bad]
    assert {d.reason for d in outcome.dead_letters} == {DeadLetterReason.PARSER_ERROR}
    assert all(d.detail.startswith("not an internal record") for d in outcome.dead_letters)
    assert set(daemon._decoded) == {good.position}  # held until the merge releases it


class Polled:
    """A source of fixed records, assigned two partitions, caught up as far as it knows."""

    def __init__(self, records: list[RawRecord]) -> None:
        self.records = records

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        taken, self.records = self.records[:max_records], self.records[max_records:]
        return taken

    def unfinished(self) -> set[tuple[str, int]]:
        return set()

    def assigned(self) -> set[tuple[str, int]]:
        return {("s", 0), ("s", 1)}

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        pass


def test_partitions_written_to_are_pending_until_polled_up_to_what_was_written() -> None:
    records = [RawRecord(b"{}", Position("s", offset, 0)) for offset in range(3)]
    writes = OwnWrites(Polled(records))
    writes.wrote({("s", 0): 3, ("s", 1): 1, ("other", 0): 5})  # other: not assigned here
    assert writes.unfinished() == {("s", 0), ("s", 1)}
    writes.poll(2)
    assert writes.unfinished() == {("s", 0), ("s", 1)}
    writes.poll(2)
    assert writes.unfinished() == {("s", 1)}
    writes.forget([("s", 1)])
    assert writes.unfinished() == set()
