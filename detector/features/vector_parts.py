"""The parts of a feature vector after the window counts, and late events described.

Every vector the store makes holds, after the packed window counts of the
actor, the IP and the target, the actor's scalars (hour-of-week share and
rarity, active hours, age, learning, ratios per window), one
``actor.new.<field>`` flag per tracked field and four event flags
(docs/features.md). :class:`VectorParts` computes those parts from an actor's
state; :meth:`VectorParts.describe_late` makes a late event's whole vector from
the current state of its keys, changing nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import cast

import numpy as np
import numpy.typing as npt

from detector.events.model import Event, Outcome
from detector.features.arena import CountRow, Counts, Pending, Results, RowsColumn
from detector.features.arena_numbers import packed_row
from detector.features.derived import ProductionMatcher, actor_ratio_rows, actor_ratios
from detector.features.observation import Observation, new_observation
from detector.features.profile import HourOfWeekProfile, hour_of_week
from detector.features.schema import ACTOR_RATIOS, MUTATING_CATEGORIES
from detector.features.settings import FeatureSettings
from detector.features.state import ActorState, KeyState
from detector.features.vector import BlockVector, FeatureBlock, FeatureLayout, FeatureVector
from detector.features.vector_table import row_groups
from detector.features.windows import WindowSpec

__all__ = ["Draft", "Totals", "VectorParts", "event_flags"]

_FAILURE = Outcome.FAILURE
_SECONDS_PER_DAY = 86_400.0
Totals = list[int] | Pending | CountRow
"""Packed window totals, the arena step that will give them, or a row of a batch's."""
_ROWS_ONLY = {tuple}
"""The types of a stretch's totals when each is a row of a batch's matrix (:class:`CountRow`)."""
Drafted = tuple[
    Event, bool, Mapping[str, str], Mapping[str, tuple[str, ...]], Totals | None, Totals,
    Totals, list[float], int, float, list[int],
]  # fmt: skip
"""An event observed, its counts queued (:meth:`VectorParts.finish`): the event, learning,
the new values reported and their known values; the actor's (None: not counted), IP's
and target's totals; the actor's scalars before the ratios, its past events and history;
the flags after."""
Draft = Observation | Drafted
Report = tuple[Mapping[str, str], Mapping[str, tuple[str, ...]]]
"""The new tracked values an event reports, and the values known for each."""
_NO_REPORT: Report = ({}, {})
_HEAD = itemgetter(0)
_STEP = itemgetter(1)


class VectorParts:
    """What follows the window counts in the vectors of one store's settings.

    ``no_counts`` stands for the window counts of a key the event lacks,
    ``no_new_values`` for the flags of an event showing nothing new, and
    ``no_actor`` for everything after the key counts in a store without actor
    state (no scalars, no flags). ``production`` tells production events.
    """

    def __init__(self, settings: FeatureSettings, spec: WindowSpec, layout: FeatureLayout) -> None:
        self._layout = layout
        self._tracked = settings.tracked
        self._learning_period = settings.learning_period.total_seconds()
        self._window_hours = [seconds / 3600.0 for seconds in spec.seconds]
        self.production = ProductionMatcher(settings.production_namespaces)
        self.no_counts = [0] * len(spec.widths)
        self._unread: list[float | None] = [None] * len(spec.widths)  # totals in a row
        self.no_new_values = [0] * len(settings.tracked)
        scalars = self.actor_scalars(HourOfWeekProfile(), 0.0, 0.0, True, self.no_counts)
        self.no_actor = [0.0] * (len(scalars) + len(self.no_new_values) + 4)

    def actor_scalars(
        self,
        profile: HourOfWeekProfile,
        history: float,
        time: float,
        learning: bool,
        counts: list[int],
    ) -> list[float]:
        """Hour-of-week share and rarity, active hours, age, learning, ratios per window."""
        return [
            *self.actor_head(profile, history, hour_of_week(time), learning),
            *self.ratios(counts, profile.total, history),
        ]

    def actor_head(
        self, profile: HourOfWeekProfile, history: float, hour: int, learning: bool
    ) -> list[float]:
        """The actor scalars before the ratios (:meth:`actor_scalars`), at hour of week ``hour``."""
        share, rarity = profile.share_and_rarity_in(hour)
        return _head(share, rarity, profile.active_hours, history, learning)

    @staticmethod
    def head_then_add(
        profile: HourOfWeekProfile, history: float, hour: int, learning: bool
    ) -> tuple[list[float], int]:
        """:meth:`actor_head` and the profile's total, then the event added to the profile
        at hour of week ``hour`` (:meth:`HourOfWeekProfile.read_then_add`)."""
        share, rarity, active, total = profile.read_then_add(hour)
        return _head(share, rarity, active, history, learning), total

    def ratios(self, counts: Sequence[int], past_events: int, history: float) -> list[float]:
        """The ratios per window of :meth:`actor_scalars` (``past_events``: the profile's total
        before the event)."""
        return actor_ratios(counts, self._window_hours, past_events, history)

    def finish(self, drafts: Sequence[Draft]) -> list[Observation]:
        """The observations of drafts, their totals read from their arenas (rows, packed when
        read: :class:`FeatureVector`)."""
        places = [index for index, draft in enumerate(drafts) if type(draft) is not Observation]
        finished = list(drafts)
        if places:
            made = self.observations(*self._columns([cast(Drafted, drafts[i]) for i in places]))
            for index, observation in zip(places, made, strict=True):
                finished[index] = observation
        return cast("list[Observation]", finished)

    def _columns(self, drafted: list[Drafted]) -> tuple[
        list[Event], list[bool], dict[int, Report], list[Counts], list[tuple[Totals, Totals]],
        list[list[float]],
    ]:  # fmt: skip
        """:meth:`observations`' arguments for drafts made the plain way."""
        events, learning, keys, scalars = [], [], [], []
        actors: list[Counts] = []
        reports: dict[int, Report] = {}
        for index, draft in enumerate(drafted):
            event, learns, reported, known, actor, ip, target, head, total, history, tail = draft
            events.append(event)
            keys.append((ip, target))
            if actor is None:  # a store without actors
                learning.append(False)
                actors.append(self.no_counts)
                scalars.append(self.no_actor)
                continue
            learning.append(learns)
            if reported or known:
                reports[index] = (reported, known)
            counts = _read(actor)
            actors.append(counts)
            ratios = self.ratios(
                counts if isinstance(counts, list) else packed(counts), total, history
            )
            scalars.append([*head, *ratios, *tail])
        return events, learning, reports, actors, keys, scalars

    def observations(
        self, events: Sequence[Event], learning: Sequence[bool], reports: Mapping[int, Report],
        actors: Sequence[Counts] | RowsColumn, keys: Sequence[tuple[Totals, Totals]],
        scalars: np.ndarray | Sequence[list[float]],
    ) -> list[Observation]:  # fmt: skip
        """The observations of events with their actors' totals (each one's, or a column of
        one matrix's rows), their keys' (the IPs' and
        targets' read here) and the scalars after them (:meth:`actor_scalars`, new value and
        event flags): a list per event, or a matrix of them (a stretch's, a row an event:
        :class:`FeatureVector`). ``reports``: by event, the new values it reports and the
        values known for each, where it reports any.

        A stretch whose totals are rows of one matrix per key kind (or the same totals for
        all, a kind not counted), its scalars a matrix, is one :class:`FeatureBlock`, each
        event's vector a row of it: the compiled store's usual stretch."""
        block = self._block(actors, keys, scalars)
        if block is None:
            if type(actors) is tuple:
                matrix, steps = actors
                actors = list(zip(repeat(matrix), steps.tolist()))
            return self._one_by_one(
                events, learning, reports, cast("Sequence[Counts]", actors), keys, scalars
            )
        count = len(events)
        reported, known = [_NO_REPORT[0]] * count, [_NO_REPORT[1]] * count
        for index, (values, values_known) in reports.items():
            reported[index], known[index] = values, values_known
        vectors = map(BlockVector, repeat(block), range(count))
        return list(map(new_observation, events, repeat(False), learning, reported, vectors, known))

    def _block(
        self, actors: Sequence[Counts] | RowsColumn, keys: Sequence[tuple[Totals, Totals]],
        scalars: np.ndarray | Sequence[list[float]],
    ) -> FeatureBlock | None:  # fmt: skip
        """The stretch's features as one block, if its totals and scalars are columns."""
        if type(scalars) is not np.ndarray or not keys:
            return None
        ips, targets = zip(*keys, strict=True)
        no_counts = self.no_counts
        actor_column: list[int] | RowsColumn | None = cast(RowsColumn, actors)
        if type(actors) is not tuple:  # each event's own totals
            actor_column = _column(cast("Sequence[Counts]", actors), no_counts)
        parts: list[float | None] = []
        totals: list[RowsColumn | None] = []
        for found in (actor_column, _column(ips, no_counts), _column(targets, no_counts)):
            if found is None:
                return None
            if type(found) is list:
                parts += found
                totals.append(None)
            else:
                parts += self._unread
                totals.append(cast(RowsColumn, found))
        return FeatureBlock(self._layout, tuple(parts), tuple(totals), scalars)

    def _one_by_one(
        self, events: Sequence[Event], learning: Sequence[bool], reports: Mapping[int, Report],
        actors: Sequence[Counts], keys: Sequence[tuple[Totals, Totals]],
        scalars: np.ndarray | Sequence[list[float]],
    ) -> list[Observation]:  # fmt: skip
        """:meth:`observations`, a vector made per event from its own totals and scalars."""
        unread, layout, matrix = self._unread, self._layout, None
        if type(scalars) is np.ndarray:
            matrix = scalars
        out = []
        for index, (event, actor, (ip, target)) in enumerate(
            zip(events, actors, keys, strict=True)
        ):
            if type(ip) is not list:  # a list is read already
                ip = _read(ip)
            if type(target) is not list:
                target = _read(target)
            # Totals in a batch's rows are read from them when the vector is read (None here).
            actor_row = actor if type(actor) is tuple else None
            ip_row = ip if type(ip) is tuple else None
            target_row = target if type(target) is tuple else None
            values: list[float | None] = [
                *(actor if actor_row is None else unread),
                *(ip if ip_row is None else unread),
                *(target if target_row is None else unread),
            ]
            if matrix is None:
                values += scalars[index]
            rows = None
            if actor_row is not None or ip_row is not None or target_row is not None:
                rows = [actor_row, ip_row, target_row]
            reported, known = reports.get(index, _NO_REPORT)
            features = FeatureVector(
                layout, values, rows, None if matrix is None else (matrix, index)
            )
            out.append(new_observation(event, False, learning[index], reported, features, known))
        return out

    def ratio_rows(
        self, actors: Sequence[Counts] | RowsColumn, past: Sequence[int], history: Sequence[float]
    ) -> npt.NDArray[np.float64]:
        """The ratios (:meth:`actor_scalars`) of many actors' totals after their events, an
        actor a row (``actors``: each one's totals, or a column of one matrix's rows); those
        in rows of one batch's totals worked out at once."""
        if type(actors) is tuple:
            matrix, steps = actors
            return actor_ratio_rows(matrix[steps], self._window_hours, past, history)
        actors = cast("Sequence[Counts]", actors)
        # Tested in C (map, row_groups): a generator's step per actor cost more.
        if actors and set(map(type, actors)) == _ROWS_ONLY:
            groups = row_groups(cast("Sequence[CountRow]", actors))
            if len(groups) == 1:
                matrix, _, steps = groups[0]
                return actor_ratio_rows(matrix[steps], self._window_hours, past, history)
        ratios = [
            self.ratios(counts if isinstance(counts, list) else packed(counts), events, seconds)
            for counts, events, seconds in zip(actors, past, history, strict=True)
        ]
        width = len(ACTOR_RATIOS) * len(self._window_hours)
        return np.array(ratios, np.float64).reshape(len(actors), width)

    def new_value_flags(self, new_values: Mapping[str, str]) -> list[int]:
        return [1 if field in new_values else 0 for field in self._tracked]

    def describe_late(
        self,
        event: Event,
        time: float,
        actor: ActorState | None,
        ip: KeyState | None,
        target: KeyState | None,
    ) -> Observation:
        """Features of a late event from the current state of its keys, changing nothing."""
        if actor is None:
            learning = True
            actor_counts = self.no_counts
            scalars = self.actor_scalars(HourOfWeekProfile(), 0.0, time, True, actor_counts)
        else:
            learning = time - actor.first < self._learning_period
            actor_counts = actor.counts(actor.last)
            history = max(0.0, time - actor.first)
            scalars = self.actor_scalars(actor.profile, history, time, learning, actor_counts)
        parts = [
            *actor_counts,
            *(ip.counts(ip.last) if ip else self.no_counts),
            *(target.counts(target.last) if target else self.no_counts),
            *scalars,
            *self.no_new_values,
            *event_flags(
                event, event.outcome is _FAILURE, self.production.event_is_production(event)
            ),
        ]
        return Observation(event, True, learning, {}, FeatureVector(self._layout, parts))


def _head(share: float, rarity: float, active: int, history: float, learning: bool) -> list[float]:
    """The actor scalars before the ratios: hour-of-week share and rarity, active hours,
    age in days, learning."""
    return [share, rarity, active, history / _SECONDS_PER_DAY, 1 if learning else 0]


def head_rows(
    profile: npt.NDArray[np.float64], history: Sequence[float], learning: Sequence[bool]
) -> npt.NDArray[np.float64]:
    """:func:`_head` of many events at once, an event a row: ``profile``, each event's
    hour-of-week share, rarity and active hours (a row each), then its actor's age in days
    and learning flag from ``history`` and ``learning``."""
    age = np.array(history, np.float64) / _SECONDS_PER_DAY
    return np.column_stack((profile, age, np.array(learning, np.float64)))


def packed(row: CountRow) -> list[int]:
    """The packed totals per window of a row of a batch's totals."""
    return packed_row(row[0][row[1]])


def _column(totals: Sequence[Totals], no_counts: list[int]) -> list[int] | RowsColumn | None:
    """A stretch's totals of one key kind as one column: the totals all its events share,
    or rows of one matrix with each event's step (-1 for an event without the key:
    ``no_counts``); None if they are neither."""
    first = totals[0]
    kinds = set(map(type, totals))
    if kinds == {list}:
        return cast("list[int]", first) if totals.count(first) == len(totals) else None
    if not kinds <= {tuple, list}:
        return None
    rows = cast("Sequence[tuple[object, int]]", totals)
    if list in kinds:  # some events without the key
        rows = [row for row in rows if type(row) is tuple]
        if len(rows) + totals.count(no_counts) != len(totals):
            return None
    if len(set(map(id, map(_HEAD, rows)))) == 1:
        column = _rows_of(rows[0][0], list(map(_STEP, rows)))
    else:
        column = _gathered(rows)
    if column is None or len(rows) == len(totals):
        return column
    every = np.full(len(totals), -1, np.intp)
    every[[type(row) is tuple for row in totals]] = column[1]
    return column[0], every


def _rows_of(source: object, steps: list[int]) -> RowsColumn | None:
    """Rows ``steps`` of a matrix, or of what gives them (:class:`Results`)."""
    if isinstance(source, np.ndarray):
        return source, np.array(steps, np.intp)
    return cast(Results, source).rows_of(steps)


def _gathered(rows: Sequence[tuple[object, int]]) -> RowsColumn | None:
    """Rows of several matrices (a stretch whose keys were counted in more than one run,
    as when claims cool keys midway) as one column: the rows copied into a matrix of
    their own, in order; None if some are no rows of a matrix, or the matrices differ
    in shape."""
    by_source: dict[int, tuple[object, list[int], list[int]]] = {}
    for index, (source, step) in enumerate(rows):
        found = by_source.get(id(source))
        if found is None:
            found = by_source[id(source)] = (source, [], [])
        found[1].append(index)
        found[2].append(step)
    parts = []
    for source, indices, steps in by_source.values():
        column = _rows_of(source, steps)
        if column is None:
            return None
        parts.append((indices, column))
    if len({column[0].shape[1:] for _, column in parts}) != 1:
        return None
    first = parts[0][1][0]
    matrix = np.empty((len(rows), *first.shape[1:]), first.dtype)
    for indices, (source_matrix, source_steps) in parts:
        matrix[indices] = source_matrix[source_steps]
    return matrix, np.arange(len(rows), dtype=np.intp)


def _read(pending: Totals) -> Counts:
    """Totals, read from their arena if a step of it gives them."""
    if isinstance(pending, list):
        return pending
    source, index = pending
    return (source, index) if isinstance(source, np.ndarray) else source.result(index)


def event_flags(event: Event, failure: bool, production: bool) -> tuple[int, int, int, int]:
    """``event.failure``, ``event.privileged``, ``event.mutating``, ``event.production``."""
    return (
        1 if failure else 0,
        1 if event.privileged else 0,
        1 if event.category in MUTATING_CATEGORIES else 0,
        1 if production else 0,
    )
