"""Feature matrices for many events at once, as pandas DataFrames (training, offline scoring).

:func:`build_frame` runs the events through a :class:`FeatureStore` — the
same code as the streaming pipeline, so a row is exactly the features the
daemon would have handed a detector for that event (windows, distinct counts,
lateness, learning, first-seen values, eviction all included) — and lays the
vectors out as one float column per feature next to a few columns describing
the event. A vectorized re-implementation of the windows would be faster but
would drift from the daemon's numbers; training on numbers the daemon never
produces would make the models score a different world than the one they
learned.

>>> from detector.features.settings import FeatureSettings
>>> build_frame([], FeatureSettings()).shape[0]
0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps

from detector.events.model import Event
from detector.features.families import FAMILIES, Family
from detector.features.observation import Observation
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore

__all__ = [
    "EVENT_COLUMNS",
    "build_frame",
    "family_column",
    "family_rows",
    "frame_from_observations",
]

EVENT_COLUMNS = (
    "event_id", "actor", "actor_type", "time", "source", "category", "late", "learning"
)  # fmt: skip
"""Columns describing each row's event, before the feature columns."""


def family_column(family: Family | str) -> str:
    """The name of the boolean column saying which rows a family scores: ``family.<name>``."""
    name = family if isinstance(family, str) else family.name
    return f"family.{name}"


_CHUNK = 50_000
_BATCH = 1_000  # events observed at once (FeatureStore.observe_batch)


def build_frame(
    events: Iterable[Event],
    settings: FeatureSettings | None = None,
    *,
    store: FeatureStore | None = None,
) -> pd.DataFrame:
    """One row per event: :data:`EVENT_COLUMNS`, the store's feature names, family membership.

    Events are observed in the order given (event-time order, as a replay
    reads them). ``store``: continue from existing state (e.g. a restored
    snapshot) instead of a fresh store with ``settings``; it is updated.
    """
    if store is None:
        store = FeatureStore(settings or FeatureSettings())
    # In chunks, so that a long history never holds every event (and its vendor
    # document) in memory at once: only the numbers of each chunk's frame stay.
    chunks = []
    observations: list[Observation] = []
    batch: list[Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == _BATCH:
            observations += store.observe_batch(batch)
            batch = []
        if len(observations) == _CHUNK:
            chunks.append(frame_from_observations(observations, store.feature_names))
            observations = []
    observations += store.observe_batch(batch)
    if observations or not chunks:
        chunks.append(frame_from_observations(observations, store.feature_names))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def frame_from_observations(
    observations: Sequence[Observation], names: Sequence[str]
) -> pd.DataFrame:
    """The frame of :func:`build_frame` from observations already made (``names``: their features).

    Feature columns are float64, in ``names`` order; ``time`` is a UTC
    ``datetime64`` column; ``family.<name>`` columns are booleans.
    """
    events = [observation.event for observation in observations]
    values = np.array(
        [_vector(observation, names) for observation in observations], dtype=np.float64
    ).reshape(len(observations), len(names))
    described = pd.DataFrame(
        {
            "event_id": pd.Series([event.id for event in events], dtype=object),
            "actor": pd.Series([event.actor for event in events], dtype=object),
            "actor_type": pd.Series([e.actor_type.value for e in events], dtype=object),
            "time": pd.to_datetime([event.time for event in events], utc=True),
            "source": pd.Series([event.source for event in events], dtype=object),
            "category": pd.Series([event.category.value for event in events], dtype=object),
            "late": np.array([observation.late for observation in observations], dtype=bool),
            "learning": np.array([o.learning for o in observations], dtype=bool),
        }
    )
    features = pd.DataFrame(values, columns=list(names))
    membership = pd.DataFrame(
        {
            family_column(family): np.array([family.applies(e) for e in events], dtype=bool)
            for family in FAMILIES.values()
        }
    )
    return pd.concat([described, features, membership], axis=1)


def family_rows(frame: pd.DataFrame, family: Family, *, include_late: bool = False) -> pd.DataFrame:
    """The family's feature columns (its order) for the rows it scores; late rows left out.

    Raises ``KeyError`` naming the missing features if the frame was built
    with settings that lack some of them (other windows or tracked fields).
    """
    missing = family.missing(frame.columns)
    if missing:
        raise KeyError(f"family {family.name} needs features the frame lacks: {missing}")
    selected = frame[family_column(family)]
    if not include_late:
        selected = selected & ~frame["late"]
    return frame.loc[selected, list(family.features)]


def _vector(observation: Observation, names: Sequence[str]) -> list[float]:
    features = observation.features
    vector = getattr(features, "vector", None)
    if vector is not None:
        values: list[float] = vector()
        return values
    return [float(features.get(name, 0.0)) for name in names]
