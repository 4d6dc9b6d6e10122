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
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from detector.scoring.quantile_kernel import compiled_update
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


class _Track(NamedTuple):
    """An actor's estimate and how many rows made it; replaced whole, never changed, so a
    checkpoint may write the tracks as they were while later batches update them."""

    estimate: Row
    rows: int


class ActorQuantiles:
    """Per (family, actor): a streaming high-quantile estimate of each feature (log1p scale).

    ``max_actors`` bounds memory: beyond it, the least recently updated
    (family, actor) is forgotten. The estimates are part of the pipeline's
    snapshot (:meth:`snapshot` / :meth:`restore`).
    """

    def __init__(self, quantile: float = 0.95, *, max_actors: int = 200_000) -> None:
        self.quantile = quantile
        self._max = max_actors
        self._tracks: OrderedDict[tuple[str, str], _Track] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracks)

    def current(self, family: str, actor: str, width: int) -> tuple[Row | None, int]:
        """The actor's estimate (log1p scale, ``None`` if unknown) and how many rows made it."""
        track = self._tracks.get((family, actor))
        if track is None or len(track.estimate) != width:
            return None, 0
        return track.estimate, track.rows

    def update(self, family: str, actor: str, logged: Row) -> None:
        """Move the actor's estimate towards its quantile with one more row (log1p scale)."""
        key = (family, actor)
        track = self._tracks.get(key)
        if track is None or len(track.estimate) != len(logged):
            self._tracks[key] = _Track(logged.copy(), 1)
            if len(self._tracks) > self._max:
                self._tracks.popitem(last=False)
            return
        self._tracks.move_to_end(key)
        step = max(_MIN_STEP, 1.0 / math.sqrt(track.rows + 1))
        below = (logged <= track.estimate).astype(np.float64)
        estimate = np.maximum(track.estimate + step * (self.quantile - below), 0.0)
        self._tracks[key] = _Track(estimate, track.rows + 1)

    def update_rows(self, family: str, actors: Sequence[str], logged: Rows) -> None:
        """:meth:`update` with each row of ``logged`` in order (``actors[i]``'s row ``i``),
        in one compiled call when the kernel is running; the same estimates either way."""
        if not actors:
            return
        kernel = compiled_update(len(actors))
        if kernel is None:
            self._update_each(family, actors, logged)
            return
        slots: dict[str, int] = {}
        order = [slots.setdefault(actor, len(slots)) for actor in actors]
        get = self._tracks.get
        tracks = [get((family, actor)) for actor in slots]
        known = [track for track in tracks if track is not None]
        estimates_known = [track.estimate for track in known]
        rows_known = [track.rows for track in known]
        width = logged.shape[1]
        if (
            len(self._tracks) + len(tracks) - len(known) > self._max  # someone is forgotten
            # A restored track of another width, or of no rows, is not what the kernel moves.
            or not set(map(len, estimates_known)) <= {width}
            or min(rows_known, default=1) < 1
        ):
            self._update_each(family, actors, logged)
            return
        estimates = np.zeros((len(slots), width))
        counts = np.zeros(len(slots), dtype=np.int64)
        if known:
            present = [slot for slot, track in enumerate(tracks) if track is not None]
            estimates[present] = estimates_known
            counts[present] = rows_known
        kernel(estimates, counts, np.array(order, dtype=np.int64), logged, self.quantile, _MIN_STEP)
        self._store(family, list(slots), tracks, (estimates, counts), order)

    def _update_each(self, family: str, actors: Sequence[str], logged: Rows) -> None:
        for actor, row in zip(actors, logged, strict=True):
            self.update(family, actor, row)

    def _store(
        self,
        family: str,
        actors: list[str],
        tracks: list[_Track | None],
        moved: tuple[Rows, npt.NDArray[np.int64]],
        order: list[int],
    ) -> None:
        """Write a batch's estimates and counts (``moved``, one row per slot: ``actors[slot]``)
        back, in the recency order its rows one by one leave."""
        estimates, counts = list(moved[0]), moved[1].tolist()
        move_to_end = self._tracks.move_to_end
        # The slots by when their last row came: dict keys keep the order they were first seen in.
        for slot in reversed(dict.fromkeys(reversed(order))):
            track, key = tracks[slot], (family, actors[slot])
            self._tracks[key] = _Track(estimates[slot].copy(), counts[slot])
            if track is not None:
                move_to_end(key)

    def snapshot(self, *, streamed: bool = False) -> dict[str, Any]:
        """Plain JSON data: ``[family, actor, rows, [estimates]]`` per tracked actor; with
        ``streamed``, those rows a :class:`~detector.streamed.Section` (a checkpoint's).

        Estimates are kept whole (JSON floats round-trip exactly): rounded, a
        restored daemon could decide differently from one never stopped.
        """
        taken = list(self._tracks.items())  # as they are now: a track is replaced, not changed

        def rows() -> Iterator[list[Any]]:
            for (family, actor), (estimate, count) in taken:
                yield [family, actor, count, estimate.tolist()]

        found = Section.of_items(rows) if streamed else list(rows())
        return {"version": _STATE_VERSION, "quantile": self.quantile, "tracks": found}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what :meth:`snapshot` returned; state of another version or quantile is dropped."""
        self._tracks.clear()
        if state.get("version") != _STATE_VERSION or state.get("quantile") != self.quantile:
            return
        for family, actor, rows, estimate in state.get("tracks", ()):
            self._tracks[(str(family), str(actor))] = _Track(
                np.asarray(estimate, dtype=np.float64), int(rows)
            )


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
