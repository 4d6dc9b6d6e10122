"""What a stage partition's reorder holds goes into its task's changelog snapshot and back."""

from __future__ import annotations

import zlib
from typing import Any, cast

import orjson
import pytest

from detector.config import PipelineConfig
from detector.events.model import Event
from detector.scale.changelog import Changelog
from detector.scale.held import KEY, read_held, snapshot_held
from detector.scale.inbox import Inbox
from detector.scale.reorder import Reorder
from detector.scale.stage import ScaledDaemon
from detector.sources.record import RawRecord
from tests.clock import Clock, at
from tests.unit.test_scale_inbox import ACTOR, Fed, StagePartition, inbox, minutes

KEY_ACTOR_0 = (ACTOR, 0)


def written() -> list[RawRecord]:
    """ip/0 at minutes 1 and 5, ip/1 at 2 and 3, then marks: ip/2 has passed minute 4 only.

    Read at once, minutes 1, 2, 3 (offsets 0, 2, 3) are released and minute 5
    (offset 1) is held: before this, the commit point stayed at offset 1.
    """
    actor = StagePartition(ACTOR)
    return [
        actor.event("ip/0", 1), actor.event("ip/0", 5),
        actor.event("ip/1", 2), actor.event("ip/1", 3),
        actor.mark("ip/0", 9), actor.mark("ip/1", 4), actor.mark("ip/2", 4),
    ]  # fmt: skip


def later(start: int) -> list[RawRecord]:
    """What follows from offset ``start``: ip/1 at minute 6, then ip/1 and ip/2 pass minute 9."""
    actor = StagePartition(ACTOR)
    actor.offset = start
    return [actor.event("ip/1", 6), actor.mark("ip/1", 9), actor.mark("ip/2", 9)]


def through_json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def test_a_reorder_gives_what_it_holds_in_offset_order_and_each_producers_mark() -> None:
    reorder = Reorder[str](wait_s=60)
    reorder.expect(["a", "b", "never"])
    reorder.add("b", 7, at(2), "b2")
    reorder.add("a", 3, at(4), "a4")
    reorder.add("a", 9, at(5), None, idle=True)
    assert reorder.held() == [(3, "a4"), (7, "b2")]
    assert reorder.marks() == {"a": (at(5), True), "b": (at(2), False)}  # never: no mark


def test_held_records_and_marks_refill_a_fresh_reorder_to_release_as_the_first_would() -> None:
    source = Fed()
    first = inbox(source)
    source.feed(*written())
    released = first.poll()
    assert minutes(first, released) == [1, 2, 3]
    first.processed([r.position for r in released])
    found = first.checkpoint(KEY_ACTOR_0)
    assert found is not None
    offset, saved = found
    assert offset == 7  # after the last record read, not at the one held (offset 1)
    assert [record[0] for record in saved["records"]] == [1]
    held = read_held(through_json(saved), KEY_ACTOR_0)
    second_source = Fed()
    second = inbox(second_source)
    second.restore(KEY_ACTOR_0, held, offset)
    assert len(second) == 1
    assert second.watermark(KEY_ACTOR_0) == first.watermark(KEY_ACTOR_0) == at(4)
    assert second.commit_points() == {KEY_ACTOR_0: 7}  # the snapshot is durable
    for box, fed in ((first, source), (second, second_source)):
        fed.feed(*later(7))
        released = box.poll()
        assert minutes(box, released) == [5, 6]
        assert [r.position.offset for r in released] == [1, 7]
        box.processed([r.position for r in released])


def test_the_commit_passes_a_held_record_only_once_a_snapshot_keeps_it() -> None:
    source = Fed()
    box = inbox(source)
    source.feed(*written())
    box.processed([r.position for r in box.poll()])
    assert box.commit_points() == {KEY_ACTOR_0: 1}  # offset 1 is held, in no snapshot
    found = box.checkpoint(KEY_ACTOR_0)
    assert found is not None
    assert box.commit_points() == {}  # taken, not yet durable
    box.saved(KEY_ACTOR_0, found[0])
    assert box.commit_points() == {KEY_ACTOR_0: 7}
    undecodable = StagePartition(ACTOR)
    undecodable.offset = 7
    source.feed(undecodable.raw(b"not internal"))
    assert len(box.poll()) == 1  # undecodable: released at once, to be dead-lettered
    assert box.point(KEY_ACTOR_0) == 7  # not processed yet: a snapshot stops before it
    assert box.commit_points() == {}  # still 7: after the snapshot's point, not before


def test_records_released_and_not_processed_are_kept_with_the_held_ones() -> None:
    source = Fed()
    box = inbox(source)
    source.feed(*written())
    released = box.poll()
    # minute 1; minutes 2 and 3 still in the intake's hands
    box.processed([r.position for r in released[:1]])
    found = box.checkpoint(KEY_ACTOR_0)
    assert found is not None
    assert [record[0] for record in found[1]["records"]] == [1, 2, 3]
    restored = inbox(Fed())
    restored.restore(KEY_ACTOR_0, read_held(through_json(found[1]), KEY_ACTOR_0), found[0])
    assert minutes(restored, restored.poll()) == [2, 3]  # then minute 5 waits, as it did


def test_an_unreadable_held_snapshot_is_refused_before_anything_is_restored() -> None:
    reorder = Reorder[RawRecord](wait_s=60)
    saved = snapshot_held(reorder, [], 0)
    assert read_held(saved, KEY_ACTOR_0).records == []
    assert read_held(None, KEY_ACTOR_0).records == []  # a snapshot from before: nothing
    with pytest.raises(ValueError, match="format"):
        read_held({**saved, "format": 9}, KEY_ACTOR_0)
    mark = StagePartition(ACTOR).mark("ip/0", 1).value.decode("latin-1")
    with pytest.raises(ValueError, match="a mark among"):
        read_held({**saved, "records": [[0, mark]]}, KEY_ACTOR_0)


class Kept:
    """A changelog in memory that keeps what each partition's task saved, through JSON."""

    def __init__(self) -> None:
        self.saved: dict[int, tuple[bytes, int]] = {}

    def save(self, partition: int, state: dict[str, Any], offset: int) -> None:
        self.saved[partition] = (zlib.compress(orjson.dumps(state), 1), offset)

    def restore(self, partition: int) -> tuple[dict[str, Any], int] | None:
        found = self.saved.get(partition)
        return None if found is None else (orjson.loads(zlib.decompress(found[0])), found[1])


def replica(kept: Kept) -> tuple[ScaledDaemon, Fed]:
    """A replica (not consuming: its inbox is fed by hand) saving to ``kept``."""
    config = PipelineConfig.model_validate(
        {"service": {"scale": {"enabled": True, "partitions": 3}}, "models": {"enabled": False}}
    )
    daemon = ScaledDaemon(config, [])
    daemon.owned.changelogs = {stage: cast(Changelog, kept) for stage in daemon.topology.stages}
    source = Fed()
    daemon.owned.inbox = Inbox(
        source, daemon.topology, sources={"vendor": 2}, wait_s=60, clock=Clock()
    )
    return daemon, source


def detect(daemon: ScaledDaemon) -> list[str]:
    """Poll the replica's inbox and detect on what it releases: the events' ids."""
    box = daemon._inbox
    assert box is not None
    released = box.poll()
    events = [cast(Event, box.received.pop(record.position).item) for record in released]
    daemon.tasks[KEY_ACTOR_0].process(events, {})
    box.processed([r.position for r in released])
    return [event.id for event in events]


def test_a_crash_after_the_snapshot_before_the_commit_reads_no_held_record_twice() -> None:
    kept = Kept()
    first, source = replica(kept)
    assert first._assigned([KEY_ACTOR_0]) == {}  # never saved: read from the committed offset
    source.feed(*written())
    assert detect(first) == ["e1", "e2", "e3"]
    first._save_checkpoint(cast(Any, None))  # every snapshot_every: minute 5 is held
    state, offset = kept.restore(0) or ({}, 0)
    assert offset == 7 and [record[0] for record in state[KEY]["records"]] == [1]
    # SIGKILLed before committing: its partition's committed offset is still 0.
    second, second_source = replica(kept)
    assert second._assigned([KEY_ACTOR_0]) == {KEY_ACTOR_0: 7}  # read on after the snapshot
    second_source.feed(*written(), *later(7))  # a seek not applied would read from 0 again
    assert detect(second) == ["e5", "e6"]
    assert second.tasks[KEY_ACTOR_0].pipeline.stats.duplicates == {}


def test_a_snapshot_from_before_held_records_were_kept_restores_and_reads_them_again() -> None:
    kept = Kept()
    first, source = replica(kept)
    first._assigned([KEY_ACTOR_0])
    source.feed(*written())
    detect(first)
    # As this version wrote it: the pipeline's state alone, at the oldest held offset.
    kept.save(0, first.tasks[KEY_ACTOR_0].snapshot(), 1)
    second, second_source = replica(kept)
    assert second._assigned([KEY_ACTOR_0]) == {KEY_ACTOR_0: 1}
    second_source.feed(*written()[1:], *later(7))  # read again from offset 1
    assert detect(second) == ["e2", "e3", "e5", "e6"]
    # Minutes 2 and 3 were processed before: the task leaves them out as duplicates.
    assert second.tasks[KEY_ACTOR_0].pipeline.stats.duplicates == {"github_audit": 2}
