"""The feature store's key tables: actors, source IPs and targets, within their bounds.

Each kind is a dict from the key (interned) to its small state. A table holds
at most ``max_keys`` keys: a full table drops its least recently active tenth
(``cap``); keys with no event for ``evict_idle_after`` before the watermark
are dropped by a scan (``idle``). ``evicted_keys`` counts every key dropped
(kept in snapshots), ``evictions`` this process's drops by (kind, reason),
for the metrics.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from sys import intern
from typing import Any, TypeVar

from detector.features.seen import FirstSeenSet, SetLimits
from detector.features.snapshot_format import RowFields
from detector.features.state import ActorState, KeyState, TrackedField
from detector.features.windows import WindowSpec
from detector.streamed import Section

__all__ = ["KeyTables"]

_State = TypeVar("_State", ActorState, KeyState)


class KeyTables:
    """The actor, IP and target tables of one store, at most ``max_keys`` keys each."""

    def __init__(
        self, spec: WindowSpec, window_limits: SetLimits, max_keys: int, idle_after: float
    ) -> None:
        self.actors: dict[str, ActorState] = {}
        self.ips: dict[str, KeyState] = {}
        self.targets: dict[str, KeyState] = {}
        self.evicted_keys = 0
        self.evictions: Counter[tuple[str, str]] = Counter()
        self._spec = spec
        self._window_limits = window_limits
        self._max_keys = max_keys
        self._idle_after = idle_after

    @property
    def key_counts(self) -> dict[str, int]:
        return {"actor": len(self.actors), "ip": len(self.ips), "target": len(self.targets)}

    def touch(
        self, table: dict[str, _State], key: str, time: float, new: Callable[[float], _State]
    ) -> _State:
        """The key's state, created (making room if the table is full) if needed."""
        state = table.get(key)
        if state is None:
            if len(table) >= self._max_keys:
                self._make_room(table)
            # Interned: the same string is a value in other keys' sets (an IP's actors).
            state = table[intern(key)] = new(time)
        elif time > state.last:
            state.last = time
        return state

    def new_actor(self, time: float) -> ActorState:
        return ActorState(time, self._spec)

    def new_key(self, time: float) -> KeyState:
        return KeyState(time, self._spec, FirstSeenSet(self._window_limits))

    def _make_room(self, table: dict[str, _State]) -> None:
        """Drop the least recently active tenth of a full table (at least one key)."""
        count = max(1, self._max_keys // 10)
        oldest = heapq.nsmallest(count, table.items(), key=lambda item: item[1].last)
        for key, _ in oldest:
            del table[key]
        self.evicted_keys += len(oldest)
        kind = "actor" if table is self.actors else "ip" if table is self.ips else "target"
        self.evictions[kind, "cap"] += len(oldest)

    def evict_idle(self, watermark: float) -> int:
        """Drop keys with no event for the idle time before ``watermark``; how many."""
        horizon = watermark - self._idle_after
        evicted = 0
        for kind, table in (("actor", self.actors), ("ip", self.ips), ("target", self.targets)):
            idle = [key for key, state in table.items() if state.last < horizon]
            for key in idle:
                del table[key]
            evicted += len(idle)
            self.evictions[kind, "idle"] += len(idle)
        self.evicted_keys += evicted
        return evicted

    def snapshot(
        self, fields: tuple[TrackedField, ...], *, streamed: bool = False
    ) -> dict[str, Any]:
        """The tables as plain JSON data, each key a row of its cold form
        (:meth:`ActorState.to_row`; ``fields``: the actors' remembered fields, which the rows
        number); with ``streamed``, each table a :class:`~detector.streamed.Section` whose
        rows are made, as it is written, from the keys' parts taken now
        (:meth:`ActorState.captured`): a checkpoint, written between later batches."""
        written = [[field.name, field.limits.remember_first] for field in fields]
        kinds = (
            ("actors", self.actors, ActorState.row),
            ("ips", self.ips, KeyState.row),
            ("targets", self.targets, KeyState.row),
        )
        tables: dict[str, Any] = {}
        for name, table, row in kinds:
            if streamed:
                parts = [state.captured() for state in table.values()]
                tables[name] = Section.of_pairs(partial(_rows, list(table), parts, row))
            else:
                tables[name] = {key: state.to_row() for key, state in table.items()}
        return {"evicted_keys": self.evicted_keys, "fields": written, **tables}

    def load(self, data: Mapping[str, Any], fields: tuple[TrackedField, ...]) -> None:
        """Fill the tables from :meth:`snapshot`, or from a version 1 snapshot's states."""
        self.evicted_keys = int(data["evicted_keys"])
        if data["version"] == 1:
            self._load_states(data, {field.name: number for number, field in enumerate(fields)})
            return
        spec, window_limits = self._spec, self._window_limits
        written = RowFields(data["fields"], fields)
        for name, row in data["actors"].items():
            self.actors[intern(name)] = ActorState.from_row(spec, written, row)
        for ip, row in data["ips"].items():
            self.ips[intern(ip)] = KeyState.from_row(spec, window_limits, row)
        for target, row in data["targets"].items():
            self.targets[intern(target)] = KeyState.from_row(spec, window_limits, row)

    def _load_states(self, data: Mapping[str, Any], numbers: dict[str, int]) -> None:
        """Fill the tables from a version 1 snapshot (``numbers``: field name → number)."""
        spec, window_limits = self._spec, self._window_limits
        for name, state in data["actors"].items():
            self.actors[intern(name)] = ActorState.from_snapshot(spec, numbers, state)
        for ip, state in data["ips"].items():
            self.ips[intern(ip)] = KeyState.from_snapshot(spec, window_limits, state)
        for target, state in data["targets"].items():
            self.targets[intern(target)] = KeyState.from_snapshot(spec, window_limits, state)


def _rows(
    keys: list[str], parts: list[tuple[Any, ...]], row: Callable[[tuple[Any, ...]], list[Any]]
) -> Iterator[tuple[str, list[Any]]]:
    return zip(keys, map(row, parts), strict=True)
