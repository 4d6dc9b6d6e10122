"""Evidence for an anomaly: features beyond both the actor's own and the population's usual.

A model's score says *that* a row is unusual, not *what* about it; the score
alone raised alerts whose explanations named nothing unusual ("1 distinct user
agents in 1h vs 1 typical"). An anomaly becomes an alert only when at least one
feature lies beyond both

- the **actor's own high quantile** (``actor_quantile``, default 0.95) of that
  feature for that family, tracked per actor by :class:`ActorQuantiles`, and
- the **population's high quantile** (``population_quantile``, default 0.95)
  recorded in the model when it was trained (:class:`FeatureStats`).

Those features are the evidence; the explanation names only them. Two
refinements keep the habits of a busy organisation from reading as attacks:

- **Clearly beyond the population**: a count must exceed the population's
  quantile by ``population_margin`` on the ``log1p`` scale (default 0.5, about
  1.65 times on the count + 1 scale): with the organisation's 95th percentile
  at 1 distinct namespace in an hour, 3 are evidence, 2 are not (one more than
  the organisation's usual high is what its busiest people do every day).
  Context features (below) need only exceed the quantile: they are flags and
  an hour's rarity, not counts.
- **Context needs company**: :func:`is_context` features, the hour's rarity
  for the actor and the first-seen flags (``actor.new.*``), say *when* or
  *that something is new*, not what is wrong: a dependency bot whose schedule
  drifts through the week meets a new hour every few hours, a person their
  first namespace every week. Such a feature alone is no evidence; beside any
  other evidencing feature (another first sighting included: a bot's token
  with a new client on a new repository) it is.

The actor's quantile is a streaming estimate on the ``log1p`` scale, updated
with every row of the actor in event order (``m += step * (q - [x <= m])``,
the step shrinking from 1 to ``_MIN_STEP`` as rows accumulate). It depends on
the order of the events only, never on how they were batched, and it is
computed *before* the row it judges, so a burst is measured against the
actor's past, not against itself. A value is beyond it when it exceeds the
estimate by more than the estimate's own jitter (``_RESOLUTION``): integer
counts that tie with the usual are not evidence.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.scoring.quantile_kernel import compiled_update
from detector.scoring.track_rows import TrackRows
from detector.streamed import Section

__all__ = [
    "ActorQuantiles",
    "EvidenceRule",
    "could_be_evidence",
    "is_context",
    "is_evidence_capable",
    "population_bounds",
]

_MIN_STEP = 0.05
_RESOLUTION = 0.1
"""Log1p units: about the most the estimate moves on one row once settled, plus margin."""
_STATE_VERSION = 1

Row = npt.NDArray[np.float64]
Rows = npt.NDArray[np.float64]
Slots = npt.NDArray[np.int64]


def is_evidence_capable(feature: str) -> bool:
    """Whether a feature can be evidence on its own.

    ``event.*`` flags describe the event itself (a failure, a change), not
    behaviour, and ``actor.active_hours_of_week`` grows with ordinary habit:
    neither says on its own that something is wrong.
    """
    return not feature.startswith("event.") and feature != "actor.active_hours_of_week"


def is_context(feature: str) -> bool:
    """Whether a feature is context: evidence only beside another evidencing feature.

    The hour's rarity for the actor and the first-seen flags (``actor.new.*``)
    say when something happened or that it is new to the actor, which
    ordinary work produces every week (a bot's drifting schedule, a person's
    first change in a namespace); they corroborate, they do not accuse.
    """
    return feature == "actor.hour_of_week_rarity" or feature.startswith("actor.new.")


@dataclass(frozen=True, slots=True)
class EvidenceRule:
    """The two quantiles a feature must exceed, and how many rows make an actor's own usual.

    ``min_actor_rows``: below this many rows of a family, the actor's estimate
    is not yet trusted and only the population's quantile applies (an actor
    the daemon has not seen since a restart without state, a rare signer-in).
    ``population_margin``: how far (``log1p`` units) a count must lie beyond
    the population's quantile; context features need only exceed it.
    ``score_every_row``: also score the rows in which no feature lies beyond the
    population's quantile. They can never alert (:func:`could_be_evidence`), so
    by default the model is not asked about them; scored, their high scores are
    counted as without evidence too.
    """

    actor_quantile: float = 0.95
    population_quantile: float = 0.95
    min_actor_rows: int = 10
    population_margin: float = 0.5
    score_every_row: bool = False


class ActorQuantiles:
    """Per (family, actor): a streaming high-quantile estimate of each feature (log1p scale).

    ``max_actors`` bounds memory: beyond it, the least recently updated
    (family, actor) is forgotten. The estimates are part of the pipeline's
    snapshot (:meth:`snapshot` / :meth:`restore`). Each is a row of the
    :class:`~.track_rows.TrackRows` of its width, which the actor keeps while tracked.
    """

    def __init__(self, quantile: float = 0.95, *, max_actors: int = 200_000) -> None:
        self.quantile = quantile
        self._max = max_actors
        self._places: OrderedDict[tuple[str, str], tuple[TrackRows, int]] = OrderedDict()
        """(family, actor) → its rows and slot there, least recently updated first."""
        self._rows: dict[int, TrackRows] = {}

    def __len__(self) -> int:
        return len(self._places)

    def current(self, family: str, actor: str, width: int) -> tuple[Row | None, int]:
        """The actor's estimate (log1p scale, ``None`` if unknown) and how many rows made it."""
        place = self._places.get((family, actor))
        if place is None or place[0].width != width:
            return None, 0
        rows, slot = place
        return rows.row(slot)

    def update(self, family: str, actor: str, logged: Row) -> None:
        """Move the actor's estimate towards its quantile with one more row (log1p scale)."""
        key = (family, actor)
        place = self._places.get(key)
        if place is None or place[0].width != len(logged):
            self._track(key, logged, 1)
            if len(self._places) > self._max:
                _, (rows, slot) = self._places.popitem(last=False)
                rows.release(slot)
            return
        self._places.move_to_end(key)
        rows, slot = place
        count, estimate = int(rows.counts[slot]), rows.estimates[slot]
        step = max(_MIN_STEP, 1.0 / math.sqrt(count + 1))
        below = (logged <= estimate).astype(np.float64)
        rows.set(slot, np.maximum(estimate + step * (self.quantile - below), 0.0), count + 1)

    def _track(self, key: tuple[str, str], estimate: Row, count: int) -> None:
        """``key``'s estimate set anew, in the rows of its width (its place in the order kept)."""
        place = self._places.get(key)
        if place is not None:
            place[0].release(place[1])
        rows = self._rows_of(len(estimate))
        slot = rows.take()
        rows.set(slot, estimate, count)
        self._places[key] = (rows, slot)

    def _rows_of(self, width: int) -> TrackRows:
        rows = self._rows.get(width)
        if rows is None:
            # One more than the bound: update() adds an actor before it forgets one.
            rows = self._rows[width] = TrackRows(width, self._max + 1)
        return rows

    def update_rows(self, family: str, actors: Sequence[str], logged: Rows) -> None:
        """:meth:`update` with each row of ``logged`` in order (``actors[i]``'s row ``i``),
        in one compiled call when the kernel is running; the same estimates either way."""
        if not actors:
            return
        kernel = compiled_update(len(actors))
        rows = self._rows_of(logged.shape[1])
        slots = None if kernel is None else self._slots(family, actors, rows)
        if kernel is None or slots is None:
            for actor, row in zip(actors, logged, strict=True):
                self.update(family, actor, row)
            return
        kernel(rows.estimates, rows.counts, slots, logged, self.quantile, _MIN_STEP)
        # The recency order the rows one by one leave: the actors by when their last row came.
        move_to_end = self._places.move_to_end
        for actor in reversed(dict.fromkeys(reversed(actors))):
            move_to_end((family, actor))

    def _slots(self, family: str, actors: Sequence[str], rows: TrackRows) -> Slots | None:
        """Each row's slot in ``rows`` (new actors given one), or None when the kernel
        cannot move them: someone would be forgotten, or a restored track has another
        width or no rows (the first row moves such a track a whole step)."""
        distinct = dict.fromkeys(actors)
        get = self._places.get
        places = [get((family, actor)) for actor in distinct]
        new = places.count(None)
        if len(self._places) + new > self._max:
            return None
        known = [place[1] for place in places if place is not None and place[0] is rows]
        if len(known) < len(places) - new or (known and rows.counts[known].min() < 1):
            return None
        rows.changing(known)  # the kernel moves them in place
        for actor, place in zip(distinct, places, strict=True):
            if place is None:
                place = self._places[(family, actor)] = (rows, rows.take())
            distinct[actor] = place[1]
        return np.fromiter(map(distinct.__getitem__, actors), np.int64, count=len(actors))

    def snapshot(self, *, streamed: bool = False) -> dict[str, Any]:
        """Plain JSON data: ``[family, actor, rows, [estimates]]`` per tracked actor; with
        ``streamed``, those rows a :class:`~detector.streamed.Section` (a checkpoint's).

        Estimates are kept whole (JSON floats round-trip exactly): rounded, a
        restored daemon could decide differently from one never stopped.
        """
        # As they are now: each row a later batch moves before they are read is kept as it was.
        taken = list(self._places.items())
        kept = [(rows, rows.keep()) for rows in self._rows.values()]
        logs = {id(rows): log for rows, log in kept}

        def forget() -> None:
            for rows, log in kept:
                rows.forget(log)

        def tracks() -> Iterator[list[Any]]:
            try:
                for (family, actor), (rows, slot) in taken:
                    estimate, count = rows.row(slot, logs[id(rows)])
                    yield [family, actor, count, estimate.tolist()]
            finally:
                forget()

        weakref.finalize(tracks, forget)  # a snapshot never written keeps nothing either
        found = Section.of_items(tracks) if streamed else list(tracks())
        return {"version": _STATE_VERSION, "quantile": self.quantile, "tracks": found}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what :meth:`snapshot` returned; state of another version or quantile is dropped."""
        self._places.clear()
        self._rows.clear()
        if state.get("version") != _STATE_VERSION or state.get("quantile") != self.quantile:
            return
        for family, actor, rows, estimate in state.get("tracks", ()):
            self._track((str(family), str(actor)), np.asarray(estimate, np.float64), int(rows))


def beyond(
    logged: Row,
    estimate: Row | None,
    population_high: Sequence[float],
    capable: Sequence[bool],
    *,
    context: Sequence[bool] | None = None,
    population_margin: float = 0.0,
) -> list[int]:
    """Indices of the features that are evidence (see the module docs).

    ``context`` marks the :func:`is_context` features (none when omitted): they
    need no margin, and one of them alone is no evidence.
    """
    found = []
    for index, value in enumerate(logged):
        is_flag = context is not None and context[index]
        margin = 0.0 if is_flag else population_margin
        if not capable[index] or value <= _population_bound(population_high[index], margin):
            continue
        if estimate is not None and value <= estimate[index] + _RESOLUTION:
            continue
        found.append(index)
    if context is not None and len(found) == 1 and context[found[0]]:
        return []
    return found


def _population_bound(high: float, margin: float) -> float:
    """What a feature's ``log1p`` value must exceed to lie beyond the population's ``high``."""
    return math.log1p(max(high, 0.0)) + margin


def population_bounds(
    population_high: Sequence[float], context: Sequence[bool], population_margin: float
) -> Row:
    """Per feature, the value :func:`beyond` requires it to exceed on the population's side."""
    return np.array(
        [
            _population_bound(high, 0.0 if is_flag else population_margin)
            for high, is_flag in zip(population_high, context, strict=True)
        ],
        dtype=np.float64,
    )


def could_be_evidence(
    logged: Rows, bounds: Row, capable: Sequence[bool], context: Sequence[bool]
) -> npt.NDArray[np.bool_]:
    """Per row of ``logged``, whether :func:`beyond` finds evidence in it for some actor.

    An actor's estimate only takes features away, so a row has evidence for
    some actor exactly when it has some without one: a non-context feature
    beyond the population's bound (:func:`population_bounds`), or two context
    features. A row without is never an alert, whatever its score.
    """
    flags = np.asarray(context, dtype=bool)
    over = ~(logged <= bounds) & np.asarray(capable, dtype=bool)  # NaN is over, as in beyond
    found: npt.NDArray[np.bool_] = over[:, ~flags].any(axis=1) | (
        np.count_nonzero(over[:, flags], axis=1) >= 2
    )
    return found
