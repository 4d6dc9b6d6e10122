"""feature_table: a batch of vectors as one matrix, equal bit for bit to reading row by row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pytest

from detector.events.model import Category, Outcome
from detector.features import vector_table as vector_module
from detector.features.families import FAMILIES
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.features.vector import FeatureLayout, FeatureVector
from detector.features.vector_table import feature_table, packed_counts, row_groups
from detector.features.windows import LANE_BITS, LANE_MASK
from tests.unit.features.helpers import event

AGE = "actor.age_days"
pytestmark = pytest.mark.usefixtures("counter_form")  # totals packed, or in arena rows


def by_rows(vectors: Sequence[Mapping[str, float]], names: tuple[str, ...]) -> list[list[float]]:
    return [[float(vector[name]) for name in names] for vector in vectors]


def same_bits(table: npt.NDArray[np.float64], rows: list[list[float]]) -> bool:
    expected = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    return table.dtype == np.float64 and table.tobytes() == expected.tobytes()


def busy_vectors(settings: FeatureSettings | None = None) -> list[FeatureVector]:
    """Vectors of a store that saw failures, privileged and category events, several IPs
    (observed 40 at a time: compiled, a batch's totals are rows of one matrix)."""
    store = FeatureStore(settings or FeatureSettings())
    events = [
        event(
            number * 37.0,
            actor=f"user{number % 4}",
            ip=f"198.51.100.{number % 9}",
            target=f"acme/repo{number % 5}",
            outcome=Outcome.FAILURE if number % 3 == 0 else Outcome.SUCCESS,
            privileged=number % 7 == 0,
            category=(Category.CODE_ACCESS, Category.AUTHENTICATION, Category.SECRET_ACCESS)[
                number % 3
            ],
            number=number,
        )
        for number in range(120)
    ]
    found = []
    for start in range(0, len(events), 40):
        for observation in store.observe_batch(events[start : start + 40]):
            assert isinstance(observation.features, FeatureVector)
            found.append(observation.features)
    return found


@pytest.fixture
def batch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the row-by-row path is taken."""

    def refuse(vectors: object, names: object) -> None:
        raise AssertionError("row by row")

    monkeypatch.setattr(vector_module, "_row_table", refuse)


@pytest.mark.usefixtures("batch_only")
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_family_table_is_the_vectors_values_bit_for_bit(family: str) -> None:
    vectors = busy_vectors()
    names = (*FAMILIES[family].features, AGE)
    table = feature_table(vectors, names)
    assert table.shape == (len(vectors), len(names)) and table.flags.c_contiguous
    assert same_bits(table, by_rows(vectors, names))
    assert same_bits(table, [vector.take(names) for vector in vectors])


@pytest.mark.usefixtures("batch_only")
def test_one_batchs_vectors_and_a_mix_of_batches_and_packed_totals_alike() -> None:
    vectors = busy_vectors()
    names = (*FAMILIES["auth"].features, AGE)
    one_batch = vectors[40:80]  # rows of one flush when compiled: read without a step per row
    assert same_bits(feature_table(one_batch, names), by_rows(one_batch, names))
    packed = [FeatureVector(vector._layout, vector.vector()) for vector in vectors[::3]]
    mixed = [*vectors[70:90], *packed, *vectors[5:15]]
    assert same_bits(feature_table(mixed, names), by_rows(mixed, names))


def test_row_groups_keep_each_rows_position_and_step() -> None:
    first, second = np.zeros((3, 1, 1)), np.zeros((2, 1, 1))
    column = [(first, 2), None, (second, 0), (first, 0), (second, 1)]
    groups = [(id(m), where.tolist(), steps.tolist()) for m, where, steps in row_groups(column)]
    assert groups == [(id(first), [0, 3], [2, 0]), (id(second), [2, 4], [0, 1])]
    ((matrix, where, steps),) = row_groups([(first, 1), (first, 0)])
    assert matrix is first and where.tolist() == [0, 1] and steps.tolist() == [1, 0]
    assert row_groups([]) == [] and row_groups([None, None]) == []


@pytest.mark.usefixtures("batch_only")
def test_every_feature_in_any_order_with_repeats() -> None:
    vectors = busy_vectors(FeatureSettings.model_validate({"windows": ["10m", "2h", "7d"]}))
    names = tuple(vectors[0])[::-1]
    assert same_bits(feature_table(vectors, names), by_rows(vectors, names))
    repeated = (names[3], names[-1], names[3], names[0])
    assert same_bits(feature_table(vectors, repeated), by_rows(vectors, repeated))
    assert feature_table(vectors, ()).shape == (len(vectors), 0)


@pytest.mark.usefixtures("batch_only")
def test_only_packed_or_only_scalar_columns() -> None:
    vectors = busy_vectors()
    for names in (("actor.events.1h",), ("ip.distinct_actors.24h", "actor.failures.5m"), (AGE,)):
        assert same_bits(feature_table(vectors, names), by_rows(vectors, names))


@pytest.mark.usefixtures("batch_only")
def test_a_store_without_actor_counts() -> None:
    store = FeatureStore(FeatureSettings(), kinds=("ip",))
    vectors = [store.observe(event(float(n), ip=f"192.0.2.{n % 3}")).features for n in range(20)]
    names = tuple(vectors[0])
    assert same_bits(feature_table(vectors, names), by_rows(vectors, names))


@pytest.mark.usefixtures("batch_only")
def test_channels_at_their_largest_count() -> None:
    layout = FeatureLayout(FeatureSettings())
    parts: list[float] = [0.0] * (1 + max(part for part, _ in layout.positions))
    for part, shift in layout.positions:
        if shift >= 0:
            parts[part] = LANE_MASK << shift | int(parts[part])
    parts[0] = sum((channel * 12345 + 1) << (channel * LANE_BITS) for channel in range(17))
    vectors = [FeatureVector(layout, parts), FeatureVector(layout, [0] * len(parts))]
    assert same_bits(feature_table(vectors, layout.names), by_rows(vectors, layout.names))
    assert feature_table(vectors, ("ip.events.5m",))[0, 0] == LANE_MASK


def test_values_the_batch_cannot_read_go_row_by_row_with_the_same_result() -> None:
    vectors = busy_vectors()
    layout = vectors[0]._layout
    names = (*FAMILIES["auth"].features, AGE)
    every = 1 + max(part for part, _ in layout.positions)  # all parts, the scalars too
    five, six, seven = (list(vectors[n].packed(0, every)) for n in (5, 6, 7))
    awkward = [
        FeatureVector(layout, [float(value) for value in five]),  # float totals
        FeatureVector(layout, [1 << (LANE_BITS * 40), *six[1:]]),  # too wide
        FeatureVector(layout, [*seven[:3], -5, *seven[4:]]),  # negative
    ]
    for odd in awkward:
        batch = [*vectors[:5], odd, *vectors[5:]]
        assert same_bits(feature_table(batch, names), by_rows(batch, names))
    other = busy_vectors(FeatureSettings.model_validate({"windows": ["5m", "1h", "24h", "7d"]}))
    mixed: list[Mapping[str, float]] = [vectors[0], other[1], dict(vectors[2])]
    assert same_bits(feature_table(mixed, names), by_rows(mixed, names))


def test_carried_counts_are_each_vectors_packed_totals_of_the_kind() -> None:
    vectors = busy_vectors()
    windows = vectors[0]._layout.windows
    others: list[object] = [{"actor.events.5m": 1.0}]  # not the store's: nothing to carry
    carried = [packed_counts([*vectors, *others], kind, windows) for kind in range(3)]
    for kind, counts in enumerate(carried):  # read after: packed() packs the rows for good
        start = kind * windows
        expected = [[int(n) for n in vector.packed(start, start + windows)] for vector in vectors]
        assert counts == [*expected, [0] * windows]
    assert any(n > 0 for counts in carried[1] for n in counts)


def test_unknown_names_raise_key_error_and_no_vectors_make_an_empty_table() -> None:
    vectors = busy_vectors()
    with pytest.raises(KeyError):
        feature_table(vectors, ("actor.events.1h", "no.such.feature"))
    with pytest.raises(KeyError):
        feature_table([{"a": 1.0}], ("b",))
    empty = feature_table([], ("a", "b"))
    assert empty.shape == (0, 2) and empty.dtype == np.float64
