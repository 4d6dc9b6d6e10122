"""A compiled stretch's vectors as rows of one block: the values a plain store gives."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detector.events.model import Event, Outcome
from detector.features import vector_parts
from detector.features.arena import rows_column
from detector.features.families import FAMILIES
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.features.vector import BlockVector, FeatureVector
from detector.features.vector_table import feature_table, packed_counts
from detector.features.windows import WindowSpec
from tests.unit.features.helpers import event

NAMES = tuple(sorted({name for family in FAMILIES.values() for name in family.features}))


def some_without_keys() -> list[Event]:
    """Events of a few actors, one in three without an IP and one in four without a target."""
    return [
        event(
            number * 41.0,
            actor=f"user{number % 3}",
            ip=None if number % 3 == 1 else f"203.0.113.{number % 4}",
            target=None if number % 4 == 2 else f"acme/repo{number % 2}",
            outcome=Outcome.FAILURE if number % 5 == 0 else Outcome.SUCCESS,
            number=number,
        )
        for number in range(90)
    ]


def made(vector: FeatureVector) -> bool:
    """Whether the vector's parts are made (a block's row makes them only when asked)."""
    try:
        FeatureVector.__dict__["_parts"].__get__(vector)
    except AttributeError:
        return False
    return True


def observed(store: FeatureStore, events: list[Event], batch: int = 30) -> list[FeatureVector]:
    found = []
    for start in range(0, len(events), batch):
        for observation in store.observe_batch(events[start : start + batch]):
            assert isinstance(observation.features, FeatureVector)
            found.append(observation.features)
    return found


@pytest.mark.usefixtures("compiled_counters")
def test_a_stretch_with_events_without_keys_is_one_block_and_reads_as_the_plain_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = some_without_keys()
    blocks = observed(FeatureStore(FeatureSettings()), events)
    assert {type(vector) for vector in blocks} == {BlockVector}
    assert len({id(vector.block) for vector in blocks if isinstance(vector, BlockVector)}) == 3
    monkeypatch.setattr(WindowSpec, "arena", lambda self, kind: None)  # the plain store
    plain = observed(FeatureStore(FeatureSettings()), events)
    assert not any(isinstance(vector, BlockVector) for vector in plain)
    assert [dict(vector) for vector in blocks] == [dict(vector) for vector in plain]
    assert any(vector["ip.events.1h"] == 0 for vector in blocks)  # some without an IP
    assert any(vector["ip.events.1h"] > 0 for vector in blocks)
    table = feature_table(blocks, NAMES)  # three blocks, read from their columns
    assert table.tobytes() == feature_table(plain, NAMES).tobytes()
    windows = blocks[0]._layout.windows
    for kind in range(3):
        assert packed_counts(blocks, kind, windows) == packed_counts(plain, kind, windows)


@pytest.mark.usefixtures("compiled_counters")
def test_a_block_vectors_parts_are_made_only_when_asked_and_then_agree() -> None:
    vectors = observed(FeatureStore(FeatureSettings()), some_without_keys())
    vector = vectors[4]  # an event without an IP
    assert isinstance(vector, BlockVector)
    read = dict(vector)  # from the block's columns
    assert not made(vector)
    assert dict(zip(vector, vector.vector(), strict=True)) == read  # from the packed parts
    assert made(vector)
    assert vector.to_dict() == read and dict(vector) == read
    copied = pickle.loads(pickle.dumps(vector))
    assert dict(copied) == read
    with pytest.raises(AttributeError):
        _ = vector.no_such_attribute
    with pytest.raises(KeyError):
        _ = vector["no.such.feature"]


@pytest.mark.usefixtures("compiled_counters")
def test_a_table_of_block_rows_mixed_with_other_vectors_reads_each_alike() -> None:
    vectors = observed(FeatureStore(FeatureSettings()), some_without_keys())
    plain = [FeatureVector(vector._layout, list(vector.packed(0, 10_000))) for vector in vectors]
    mixed = [*vectors[50:70], *plain[:10], *vectors[3:8]]
    expected = np.array([[float(v[name]) for name in NAMES] for v in mixed])
    assert feature_table(mixed, NAMES).tobytes() == expected.tobytes()
    reversed_rows = vectors[::-1]
    expected = np.array([[float(v[name]) for name in NAMES] for v in plain[::-1]])
    assert feature_table(reversed_rows, NAMES).tobytes() == expected.tobytes()


@pytest.mark.usefixtures("compiled_counters")
def test_a_stretch_that_is_no_block_makes_a_vector_per_event_with_the_same_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = some_without_keys()
    blocks = observed(FeatureStore(FeatureSettings()), events)
    monkeypatch.setattr(vector_parts, "_column", lambda totals, no_counts: None)
    each = observed(FeatureStore(FeatureSettings()), events)
    assert not any(isinstance(vector, BlockVector) for vector in each)
    assert [dict(vector) for vector in each] == [dict(vector) for vector in blocks]


@pytest.mark.usefixtures("compiled_counters")
def test_a_stretch_whose_keys_were_counted_in_several_runs_is_one_block_of_the_plain_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty actors in turn through ten actor slots: claims run the keys counted so far
    midway, so a stretch's IP and target totals are rows of several matrices, gathered."""
    events = [
        event(
            number * 0.5,
            actor=f"user{number % 40}",
            ip=f"10.0.{number % 7}.{number % 40}",
            target=f"acme/r{number % 5}",
            number=number,
        )
        for number in range(480)
    ]
    gathered: list[int] = []
    original = vector_parts._gathered

    def counted(rows: list[tuple[object, int]]) -> object:
        gathered.append(len(rows))
        return original(rows)

    monkeypatch.setattr(vector_parts, "_gathered", counted)
    settings = FeatureSettings().model_copy(update={"arena_bytes": 10 * 13_680})
    blocks = observed(FeatureStore(settings), events, batch=160)
    assert gathered
    assert {type(vector) for vector in blocks} == {BlockVector}
    monkeypatch.setattr(WindowSpec, "arena", lambda self, kind: None)  # the plain store
    plain = observed(FeatureStore(settings), events, batch=160)
    assert [dict(vector) for vector in blocks] == [dict(vector) for vector in plain]
    assert feature_table(blocks, NAMES).tobytes() == feature_table(plain, NAMES).tobytes()


def test_rows_of_several_matrices_are_gathered_in_order_unless_their_shapes_differ() -> None:
    first, second = np.arange(6).reshape(3, 1, 2), np.arange(10, 14).reshape(2, 1, 2)
    column = vector_parts._gathered([(first, 2), (second, 0), (first, 0), (second, 1)])
    assert column is not None
    matrix, steps = column
    assert matrix[steps].tolist() == [first[2].tolist(), second[0].tolist(), first[0].tolist(),
                                      second[1].tolist()]  # fmt: skip
    assert vector_parts._gathered([(first, 0), (np.zeros((2, 2, 2)), 1)]) is None


def test_rows_of_one_matrix_make_a_column_and_anything_else_none() -> None:
    first, second = np.zeros((3, 1, 1)), np.zeros((2, 1, 1))
    column = rows_column([(first, 2), (first, 0), (first, 2)])
    assert column is not None and column[0] is first and column[1].tolist() == [2, 0, 2]
    assert rows_column([(first, 0), (second, 1)]) is None
    assert rows_column([(first, 0), [0, 0]]) is None
    assert rows_column([]) is None
