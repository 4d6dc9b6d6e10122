"""Feature snapshot rows (version 2): each key in its cold form, checked when read back;
version 1 snapshots, each state spelled out, still restore."""

from __future__ import annotations

import random
import sys
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.errors import ConfigError
from detector.events.model import Event, Outcome
from detector.features.arena import HotSlot
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.streamed import split_sections
from tests.unit.features.helpers import event, spelled_out

VERSION_1 = Path(__file__).parents[2] / "data" / "features" / "snapshot_v1.json"
"""A version 1 snapshot, written by ciwatch 2731756 after :func:`older_events`."""


def older_events() -> list[Event]:
    """The events the version 1 snapshot was taken after (nine actors, a dozen IPs)."""
    rng = random.Random(11)
    time, events = 0.0, []
    for number in range(400):
        time += rng.choice([2.0, 30.0, 700.0, 4000.0])
        events.append(
            event(
                time,
                actor=f"user{rng.randrange(9)}",
                ip=f"203.0.113.{rng.randrange(12)}",
                country=rng.choice(["DE", "FR", "US"]),
                target=f"acme/r{rng.randrange(7)}",
                outcome=rng.choice([Outcome.SUCCESS, Outcome.FAILURE]),
                attributes={"namespace": f"team-{rng.randrange(4)}"},
                number=number,
            )
        )
    return events


def later_events(count: int) -> list[Event]:
    start = older_events()[-1].time.timestamp() - event(0.0).time.timestamp()
    return [
        event(start + 45.0 * step, actor=f"user{step % 11}", ip=f"203.0.113.{step % 14}")
        for step in range(1, count + 1)
    ]


def store_after(events: list[Event], settings: FeatureSettings | None = None) -> FeatureStore:
    store = FeatureStore(settings or FeatureSettings())
    for item in events:
        store.observe(item)
    return store


def round_trip(store: FeatureStore, settings: FeatureSettings | None = None) -> FeatureStore:
    data = orjson.loads(orjson.dumps(store.snapshot()))
    return FeatureStore.restore(settings or FeatureSettings(), data)


@pytest.mark.usefixtures("counter_form")
def test_a_version_1_snapshot_restores_the_state_it_was_written_from() -> None:
    original = store_after(older_events())
    older = FeatureStore.restore(FeatureSettings(), orjson.loads(VERSION_1.read_bytes()))
    assert older.snapshot()["version"] == 2
    assert spelled_out(older.snapshot()) == spelled_out(original.snapshot())
    for item in later_events(60):
        assert older.observe(item) == original.observe(item)
    assert older.baseline("user3") == original.baseline("user3")


def test_an_empty_set_in_a_version_1_snapshot_restores_as_no_values() -> None:
    data = orjson.loads(VERSION_1.read_bytes())
    data["actors"]["user1"]["sets"]["namespace"] = []  # older stores kept emptied sets
    restored = FeatureStore.restore(FeatureSettings(), data)
    assert restored.baseline("user1")["known.namespace"] == 0
    assert restored.baseline("user2")["known.namespace"] > 0


@pytest.mark.usefixtures("counter_form")
def test_rows_are_written_as_read_and_continue_like_the_original() -> None:
    original = store_after(older_events())
    restored = round_trip(original)
    assert restored.snapshot() == round_trip(restored).snapshot()  # cold rows kept as read
    for item in later_events(60):
        assert restored.observe(item) == original.observe(item)
    assert spelled_out(restored.snapshot()) == spelled_out(original.snapshot())


def test_a_field_tracked_since_the_snapshot_keeps_the_values_of_the_others() -> None:
    """Field numbers follow the settings: the rows are renumbered by the fields' names."""
    before = FeatureSettings(tracked=("team", "ip"))
    after = FeatureSettings(tracked=("country",))
    events = [
        event(60.0 * step, ip=f"10.0.0.{step % 5}", attributes={"team": f"t{step % 3}"})
        for step in range(40)
    ]
    original = store_after(events, before)
    restored = round_trip(original, after)
    assert original.known_values("alice", "team") == ("t0", "t2", "t1")
    assert restored.known_values("alice", "team") == ()  # no longer remembered
    for field in ("ip", "country"):
        assert restored.known_values("alice", field) == original.known_values("alice", field)
    assert [name for name, _ in restored.snapshot()["fields"]][:2] == ["country", "ip"]
    assert restored.baseline("alice")["known.country"] == 1


def _replace(row: list[Any], at: int, value: Any) -> list[Any]:
    return [*row[:at], value, *row[at + 1 :]]


def _counter(edit: Callable[[bytearray], None]) -> Callable[[list[Any]], list[Any]]:
    """A change to an IP row's counter bytes."""

    def changed(row: list[Any]) -> list[Any]:
        data = bytearray(a2b_base64(row[1]))
        edit(data)
        return _replace(row, 1, _text(bytes(data)))

    return changed


def _longer_run(data: bytearray) -> None:
    data[1 + 3 * 4] += 1  # the first window's run claims one bucket more than it holds


DAMAGED_IP_ROWS: dict[str, tuple[Callable[[list[Any]], list[Any]], str]] = {
    "not base64": (lambda row: _replace(row, 1, "not base64!"), "base64"),
    "an unknown kind of counter": (
        _counter(lambda data: data.__setitem__(0, 99)),
        "unknown kind",
    ),
    "a run longer than its buckets": (_counter(_longer_run), "lanes for each bucket"),
    "lanes cut short": (
        _counter(lambda data: data.__delitem__(slice(-1, None))),
        "lanes for each bucket",
    ),
    "actors that are not strings": (lambda row: _replace(row, 2, [1, 2]), "not a list of strings"),
    "sightings of another length": (
        lambda row: _replace(row, 3, "AAAAAAAAAAA="),
        "do not match their sightings",
    ),
    "a row cut short": (lambda row: row[:3], "not enough values"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_IP_ROWS))
def test_a_damaged_row_is_refused_naming_the_snapshot(damage: str) -> None:
    data = orjson.loads(orjson.dumps(store_after(older_events()).snapshot()))
    change, reason = DAMAGED_IP_ROWS[damage]
    data["ips"]["203.0.113.4"] = change(data["ips"]["203.0.113.4"])
    with pytest.raises(ConfigError, match=rf"^state\.json: damaged snapshot: .*{reason}"):
        FeatureStore.restore(FeatureSettings(), data, where="state.json")


def _out_of_window(data: bytearray) -> None:
    """Move the first window's oldest bucket a whole window before its newest."""
    newest = int.from_bytes(data[1:5], "little", signed=True)
    at = 1 + 2 * 3 * 4  # after the header of three windows
    data[at : at + 4] = (newest - 60).to_bytes(4, "little", signed=True)


def _text(data: bytes) -> str:
    return b2a_base64(data, newline=False).decode()


DAMAGED_ACTOR_PARTS: dict[str, tuple[int, str, str]] = {
    "a field number past the fields": (4, _text(bytes((200,)) + bytes(16)), "match their fields"),
    "sightings cut short": (4, _text(bytes((0,)) + bytes(15)), "match their fields"),
    "a profile hour past the week": (5, _text(bytes((200, 1))), "profile is damaged"),
    "a profile hour counted 0": (5, _text(bytes((3, 0))), "profile is damaged"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_ACTOR_PARTS))
def test_an_actor_row_with_damaged_values_or_profile_is_refused(damage: str) -> None:
    data = orjson.loads(orjson.dumps(store_after(older_events()).snapshot()))
    at, value, reason = DAMAGED_ACTOR_PARTS[damage]
    row = data["actors"]["user5"]
    if at == 4:  # the sightings of one value
        row = _replace(row, 3, ["10.1.1.1"])
    data["actors"]["user5"] = _replace(row, at, value)
    with pytest.raises(ConfigError, match=f"damaged snapshot: .*{reason}"):
        FeatureStore.restore(FeatureSettings(), data)


def test_a_bucket_out_of_its_window_is_refused() -> None:
    """A counter goes to compiled kernels that trust its runs: its buckets are checked."""
    data = orjson.loads(orjson.dumps(store_after(older_events()).snapshot()))
    ip = max(data["ips"], key=lambda key: len(a2b_base64(data["ips"][key][1])))
    data["ips"][ip] = _counter(_out_of_window)(data["ips"][ip])
    with pytest.raises(ConfigError, match="out of their window"):
        FeatureStore.restore(FeatureSettings(), data)


def test_a_snapshot_of_the_other_byte_order_is_refused() -> None:
    data = orjson.loads(orjson.dumps(store_after(older_events()).snapshot()))
    data["byteorder"] = "big" if sys.byteorder == "little" else "little"
    with pytest.raises(ConfigError, match="-endian machine"):
        FeatureStore.restore(FeatureSettings(), data)


def test_a_streamed_snapshot_holds_its_moment_while_the_keys_count_on(counter_form: str) -> None:
    """Its rows are made as a checkpoint writes them, after later events: from each key's
    parts as they were taken (hot counters dumped from their arena slots)."""
    events = older_events()
    store = store_after(events[:300])
    taken = spelled_out(orjson.loads(orjson.dumps(store.snapshot())))
    hot = [actor for actor in store._actors.values() if isinstance(actor._totals, HotSlot)]
    assert bool(hot) == (counter_form == "compiled")
    skeleton, sections = split_sections(store.snapshot(streamed=True))
    for item in events[300:]:
        store.observe(item)
    for path, section in sections:
        lines = b"".join(chunk for chunk, _ in section.lines()).splitlines()
        skeleton[path[-1]] = dict(orjson.loads(line) for line in lines)
    assert (
        spelled_out(skeleton) == taken != spelled_out(orjson.loads(orjson.dumps(store.snapshot())))
    )
