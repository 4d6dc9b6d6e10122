"""ValuePool: the compiled form of RememberedValues gives its answers, trims and order."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pytest

from detector.features.remembered import RememberedValues
from detector.features.seen import FirstSeenSet, SetLimits
from detector.features.value_pool import Answers, PoolField, ValuePool
from detector.jit import LazyKernel

FIELDS = (
    PoolField(SetLimits(400.0, 3), unit=True, tracked=True),
    PoolField(SetLimits(900.0, 2), unit=False, tracked=True),
    PoolField(SetLimits(250.0, 4, remember_first=False), unit=True, tracked=False),
)
Event = tuple[int, float, list[str | None], bool]
Found = tuple[
    list[int],
    list[list[tuple[float, int]]],
    dict[int, list[tuple[int, float]]],
    dict[int, dict[int, list[str]]],
]
"""New fields, moves, drops and known values per event."""


@pytest.fixture(params=["compiled", "plain"])
def form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs with the compiled kernels, then with their plain bodies."""
    if request.param == "plain":
        monkeypatch.setattr(LazyKernel, "compiled", lambda self: None)
    yield request.param


def events(seed: int, count: int, owners: int = 5, alphabet: int = 6) -> list[Event]:
    """Owners seeing values of three fields, mostly forward in time, now and then back."""
    chosen = random.Random(seed)
    moment = 0.0
    found: list[Event] = []
    for _ in range(count):
        moment += chosen.choice((0.0, 1.0, 7.0, 60.0, 300.0))
        at = moment - chosen.choice((0.0, 0.0, 0.0, 30.0))
        values = [chosen.choice([None, "", *(f"v{n}" for n in range(alphabet))]) for _ in FIELDS]
        found.append((chosen.randrange(owners), at, values, chosen.random() < 0.3))
    return found


def reference(batch: list[Event], remembered: dict[int, RememberedValues]) -> Found:
    """What the feature store's loop over RememberedValues answers for ``batch``."""
    new, groups = [], []
    drops: dict[int, list[tuple[int, float]]] = {}
    known: dict[int, dict[int, list[str]]] = {}
    for index, (owner, moment, values, learning) in enumerate(batch):
        table = remembered[owner]
        fresh, moved, full = 0, [], []
        moving, moving_from = 0, 0.0
        for field, value in enumerate(values):
            if not value:
                continue
            limits = FIELDS[field].limits
            previous = table.observe(field, value, moment, limits)
            if previous is None:
                fresh |= 1 << field
                if table.full(field, limits):
                    full.append(field)
            elif FIELDS[field].unit and previous < moment:
                if previous != moving_from and moving:
                    moved.append((moving_from, moving))
                    moving = 0
                moving_from, moving = previous, moving | 1 << field
        if moving:
            moved.append((moving_from, moving))
        for field in full:
            for last in table.trim(field, moment, FIELDS[field].limits):
                drops.setdefault(index, []).append((field, last))
        for field in range(len(FIELDS)):
            if fresh >> field & 1 and FIELDS[field].tracked and not learning:
                known.setdefault(index, {})[field] = table.recent(field, 10)
        new.append(fresh)
        groups.append(moved)
    return new, groups, drops, known


def observed(pool: ValuePool, batch: list[Event]) -> Found:
    slots = np.array([owner for owner, _, _, _ in batch], np.int64)
    moments = np.array([moment for _, moment, _, _ in batch])
    values = np.array([pool.ids(event[2][field] for event in batch) for field in range(3)])
    learning = np.array([event[3] for event in batch], np.bool_)
    answers = pool.observe(slots, moments, values.reshape(3, len(batch)), learning)
    return listed(answers)


def listed(answers: Answers) -> Found:
    moves = [answers.moves(event) for event in range(len(answers.new))]
    return answers.new, moves, answers.drops(), answers.known


@pytest.mark.usefixtures("form")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_pool_answers_as_each_owners_remembered_values_do(seed: int) -> None:
    pool = ValuePool(FIELDS)
    remembered: dict[int, RememberedValues] = defaultdict(RememberedValues)
    stream = events(seed, 900)
    for start in range(0, len(stream), 150):
        batch = stream[start : start + 150]
        assert observed(pool, batch) == reference(batch, remembered)
    for owner, table in remembered.items():
        assert pool.frozen(owner) == table.frozen()
        for field in range(len(FIELDS)):
            assert pool.count(owner, field) == table.count(field)
            assert pool.recent(owner, field, 2) == table.recent(field, 2)


@pytest.mark.usefixtures("form")
def test_the_pool_grows_past_its_first_arrays_and_table() -> None:
    pool = ValuePool(FIELDS)
    remembered: dict[int, RememberedValues] = defaultdict(RememberedValues)
    stream = events(11, 6000, owners=300, alphabet=40)
    for start in range(0, len(stream), 1000):
        batch = stream[start : start + 1000]
        assert observed(pool, batch) == reference(batch, remembered)
    assert sum(len(table.frozen()) - 1 for table in remembered.values()) > 1024
    assert all(pool.frozen(owner) == table.frozen() for owner, table in remembered.items())


@pytest.mark.usefixtures("form")
def test_owners_go_cold_and_hot_again_through_the_frozen_form() -> None:
    pool = ValuePool(FIELDS)
    remembered: dict[int, RememberedValues] = defaultdict(RememberedValues)
    stream = events(7, 1200)
    for start in range(0, len(stream), 100):
        batch = stream[start : start + 100]
        assert observed(pool, batch) == reference(batch, remembered)
        owner = start // 100 % 5
        frozen = pool.release(owner)
        assert pool.frozen(owner) == (b"",)  # nothing held
        pool.load(owner, frozen)
        assert pool.frozen(owner) == remembered[owner].frozen()


@pytest.mark.usefixtures("form")
def test_an_owner_with_more_values_than_the_release_buffer_goes_cold_whole() -> None:
    def frozen_form(numbers: range) -> tuple[str | bytes, ...]:
        fields = bytes(number % len(FIELDS) for number in numbers)
        sightings = np.array([[number + 0.5, float(number)] for number in numbers])
        return (*(f"value{number}" for number in numbers), fields + sightings.tobytes())

    pool = ValuePool(FIELDS)
    many, few = frozen_form(range(150)), frozen_form(range(147, 150))  # 64 rows read at first
    pool.load(3, many)
    pool.load(4, few)  # three values shared with another owner
    assert pool.release(3) == many
    assert pool.frozen(3) == (b"",)
    assert pool.interned == 3  # the ids of the values no owner holds are free again
    assert pool.release(4) == few


@pytest.mark.usefixtures("form")
def test_ids_of_values_no_owner_holds_are_handed_out_again() -> None:
    pool = ValuePool(FIELDS)
    remembered: dict[int, RememberedValues] = defaultdict(RememberedValues)
    stream = [(0, float(n * 5), [f"ip{n}", None, None], False) for n in range(400)]
    for start in range(0, len(stream), 50):  # field 0 keeps at most 3: the rest are dropped
        batch = stream[start : start + 50]
        assert observed(pool, batch) == reference(batch, remembered)
    assert pool.interned == len(remembered[0].frozen()) - 1  # the values held, no more
    assert pool.frozen(0) == remembered[0].frozen()


def test_no_owner_observes_nothing() -> None:
    pool = ValuePool(FIELDS)
    batch: list[Event] = [(-1, 5.0, ["a", "b", "c"], False)]
    slots = np.array([-1], np.int64)
    values = np.array([pool.ids([value]) for value in batch[0][2]]).reshape(3, 1)
    answers = pool.observe(slots, np.array([5.0]), values, np.array([False]))
    assert listed(answers) == ([0], [[]], {}, {})
    assert pool.frozen(0) == (b"",) and pool.interned == 0


@pytest.mark.usefixtures("form")
@pytest.mark.parametrize("seed", [4, 5])
def test_a_key_pool_answers_as_each_keys_first_seen_set_and_keeps_its_form(seed: int) -> None:
    """An IP's or target's actors (one field, empty names too): the pool's new values and
    drops are a FirstSeenSet's, and it goes cold (:meth:`release_set`) and hot again
    (:meth:`load_set`) through the set's frozen form."""
    limits = SetLimits(250.0, 4, remember_first=False)
    pool = ValuePool([PoolField(limits, unit=True, tracked=False)], empty_is_value=True)
    sets: dict[int, FirstSeenSet] = defaultdict(lambda: FirstSeenSet(limits))
    chosen = random.Random(seed)
    moment, dropped = 0.0, 0
    for round_number in range(12):
        batch = []
        for _ in range(80):
            moment += chosen.choice((0.0, 1.0, 7.0, 60.0))
            at = moment - chosen.choice((0.0, 0.0, 30.0))
            batch.append((chosen.randrange(4), at, chosen.choice(["", "a", "b", "c", "d", "e"])))
        slots = np.array([owner for owner, _, _ in batch], np.int64)
        values = pool.ids(actor for _, _, actor in batch).reshape(1, len(batch))
        moments = np.array([at for _, at, _ in batch])
        answers = pool.observe(slots, moments, values, np.ones(len(batch), np.bool_))
        expected: Found = ([], [], {}, {})
        for index, (owner, at, actor) in enumerate(batch):
            seen = sets[owner]
            previous = seen.observe(actor, at)
            expected[0].append(1 if previous is None else 0)
            expected[1].append([] if previous is None or previous >= at else [(previous, 1)])
            if seen.full:
                expected[2][index] = [(0, last) for last in seen.trim(at)]
                dropped += len(expected[2][index])
        assert listed(answers) == expected
        owner = round_number % 4
        values_held, lasts = pool.release_set(owner)
        assert (limits, *values_held, lasts) == sets[owner].frozen()
        pool.load_set(owner, values_held, lasts)
        assert pool.set_of(owner) == (values_held, lasts)
    assert dropped > 20  # full sets trimmed
