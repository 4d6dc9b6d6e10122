"""What every rule kind shares: the firing it reports, its evaluator seam, keyed group state.

Stateful kinds keep their state per group key in a :class:`GroupTable`: an
insertion-ordered dict in least-recently-active order, so the table is bounded
(the oldest groups go first) and partitionable (nothing spans keys). Times are
integer microseconds since the epoch, in memory and in snapshots.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from detector.features.observation import Observation

if TYPE_CHECKING:
    from detector.rules.gates import Decision, Gate

__all__ = [
    "EVIDENCE_CAP",
    "Evaluator",
    "Firing",
    "GroupKey",
    "GroupTable",
    "Observe",
    "TableEvaluator",
    "cap_evidence",
    "from_micros",
    "to_micros",
]

EVIDENCE_CAP = 50
"""At most this many event ids per detection; the triggering event is always last."""

GroupKey = tuple[str, ...]
Observe = Callable[[Observation, tuple[str | None, ...]], "Firing | None"]
"""An evaluator's ``observe``, possibly specialised to one kind of event."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Event time as integer microseconds since the epoch (exact, cheap to compare)."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def cap_evidence(ids: list[str], trigger: str) -> tuple[str, ...]:
    """The most recent ids with ``trigger`` last, at most :data:`EVIDENCE_CAP` of them."""
    others = [event_id for event_id in ids if event_id != trigger]
    kept = others[-(EVIDENCE_CAP - 1) :] if EVIDENCE_CAP > 1 else []
    return (*kept, trigger)


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule firing before it becomes a Detection.

    ``default_summary``: the kind's sentence, used when the rule has no
    template. ``values``: placeholders for the rule's summary template.
    ``explanation``: the numbers and what they were compared with.
    """

    evidence: tuple[str, ...]
    default_summary: str
    values: Mapping[str, Any] = field(default_factory=dict)
    explanation: Mapping[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """The per-kind half of a rule: decides whether an observation that matched fires.

    ``observe`` is called only for observations that passed the rule's
    ``where``/``unless``/change-window checks; ``key`` holds the group-by values
    (``None`` where the event lacks the field). Stateful evaluators never see
    late observations.
    """

    stateful: bool = False
    reads_key: bool = True
    """False when ``observe`` ignores ``key``: the engine then builds it only for a firing."""
    needs_new_value: bool = False
    """True when ``observe`` fires only on an observation that reports a new value (its
    ``new_values`` not empty): the engine spares it the others."""

    @abstractmethod
    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        """A firing if this observation makes the rule fire."""

    def specialise(self, decide: Callable[[Gate], Decision]) -> Observe | None:
        """``observe`` for one kind of event (see :mod:`detector.rules.gates`), or ``None``
        when no event of that kind can make a difference; ``decide`` folds a gate for it."""
        return self.observe

    def sweep(self, horizon: int) -> int:
        """Drop groups idle since before ``horizon`` (µs); return how many were dropped."""
        return 0

    def sweeper(self) -> Callable[[int], int]:
        """What does :meth:`sweep`, with no call in between (the engine sweeps often)."""
        return self.sweep

    def group_count(self) -> int:
        return 0

    def evicted(self) -> int:
        """Groups dropped because the table was full."""
        return 0

    def to_state(self) -> list[Any]:
        return []

    def load_state(self, state: list[Any]) -> None:  # noqa: B027 - stateless kinds keep nothing
        """Replace the state with a :meth:`to_state` form (plain JSON)."""


S = TypeVar("S")


class TableEvaluator(Evaluator, Generic[S]):
    """A stateful evaluator whose state is one :class:`GroupTable` (``self.table``)."""

    stateful = True
    table: GroupTable[S]

    def sweep(self, horizon: int) -> int:
        return self.table.sweep(horizon)

    def sweeper(self) -> Callable[[int], int]:
        return self.table.sweep  # the table object stays; load_state refills it

    def group_count(self) -> int:
        return len(self.table)

    def evicted(self) -> int:
        return self.table.evicted


class GroupTable(Generic[S]):
    """Group key → state, least recently active first, at most ``max_groups`` entries.

    Each state's last event time is kept alongside it so idle groups can be
    swept without knowing the state's shape.
    """

    def __init__(self, max_groups: int) -> None:
        self.max_groups = max_groups
        self.evicted = 0
        self._groups: dict[GroupKey, tuple[int, S]] = {}
        # At most the earliest last event time of any group: a sweep short of it has nothing
        # to drop and skips the scan (groups only leave between sweeps, so it stays a bound).
        self._oldest: int | None = None
        # Whether the groups are in order of their last event time too (events in time order
        # keep them so): then the idle ones are the first few, and a sweep stops at the first
        # group that is not. _tail: the last event time of the group put last, while ordered.
        self._ordered = True
        self._tail: int | None = None

    def __len__(self) -> int:
        return len(self._groups)

    def get(self, key: GroupKey) -> S | None:
        entry = self._groups.get(key)
        return None if entry is None else entry[1]

    def put(self, key: GroupKey, last: int, state: S) -> None:
        """Store ``state`` as the most recently active group (its last event at ``last`` µs)."""
        self._groups.pop(key, None)
        self._groups[key] = (last, state)
        if self._oldest is None or last < self._oldest:
            self._oldest = last
        if self._tail is None or last >= self._tail:
            self._tail = last
        else:
            self._ordered = False
        while len(self._groups) > self.max_groups:
            del self._groups[next(iter(self._groups))]
            self.evicted += 1

    def newest(self, key: GroupKey, now: int) -> int:
        """The later of ``now`` and the group's last event time (events may arrive out of order)."""
        entry = self._groups.get(key)
        return now if entry is None else max(now, entry[0])

    def find(self, key: GroupKey, now: int) -> tuple[S | None, int]:
        """:meth:`get` and :meth:`newest` in one lookup (every event a threshold counts)."""
        entry = self._groups.get(key)
        if entry is None:
            return None, now
        last, state = entry
        return state, max(now, last)

    def drop(self, key: GroupKey) -> None:
        self._groups.pop(key, None)

    def sweep(self, horizon: int) -> int:
        if self._oldest is None or self._oldest >= horizon:
            return 0
        groups = self._groups
        if self._ordered:
            # The group the scan stops at is the oldest left: no second scan for it (a dict
            # walks past every entry deleted from its front, and sweeps delete from the front).
            idle, oldest = [], None
            for key, (last, _) in groups.items():
                if last >= horizon:
                    oldest = last
                    break
                idle.append(key)
            for key in idle:
                del groups[key]
            self._oldest = oldest
            return len(idle)
        idle = [key for key, (last, _) in groups.items() if last < horizon]
        for key in idle:
            del groups[key]
        self._recount()
        return len(idle)

    def _recount(self) -> None:
        """The earliest last event time, and whether the groups are in that order again."""
        lasts = [last for last, _ in self._groups.values()]
        self._oldest = min(lasts, default=None)
        self._ordered = all(map(operator.le, lasts, lasts[1:]))
        self._tail = lasts[-1] if lasts else None

    def items(self) -> Iterator[tuple[GroupKey, int, S]]:
        for key, (last, state) in self._groups.items():
            yield key, last, state

    def to_state(self, encode: Callable[[S], Any]) -> list[Any]:
        return [[list(key), last, encode(state)] for key, last, state in self.items()]

    def load_state(self, rows: list[Any], decode: Callable[[Any], S]) -> None:
        self._groups.clear()
        for key, last, state in rows:
            self._groups[tuple(str(part) for part in key)] = (int(last), decode(state))
        self._recount()
