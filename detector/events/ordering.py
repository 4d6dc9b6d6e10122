"""Events in event-time order, in bounded memory: sort runs in memory, spill them, merge.

``ciwatch replay`` reads files in whatever order they are given, and a log
export rarely comes in event-time order (CloudTrail writes one file per region
every few minutes; several regions interleave). :class:`EventSorter` takes the
events as they are normalized and gives them back sorted by
:func:`event_order` — ``(time, source, id)``, then the event's serialized
content — an order that depends only on the set of events, never on the order
or the split of the files they came in.

Memory is bounded by ``memory_budget`` (bytes of serialized events held),
whatever the input: a full buffer is sorted and written to a temporary file (a
*run*, one line per event: a small JSON header with the sort key and the
position, a tab, the event as ``Event.to_dict(with_raw=True)`` JSON), and the
runs are merged with :func:`heapq.merge`. At most :data:`MAX_OPEN_RUNS` runs of
one size exist at once; more are merged into one bigger run first, so open
files stay few. The temporary directory is removed on :meth:`EventSorter.close`.

>>> from datetime import datetime, UTC
>>> from detector.events.model import ActorType, Category, Outcome
>>> def event(minute: int, id: str) -> Event:
...     return Event(datetime(2026, 1, 1, 0, minute, tzinfo=UTC), "cloudtrail", "Login",
...                  Category.AUTHENTICATION, Outcome.SUCCESS, "alice", ActorType.HUMAN, id)
>>> with EventSorter(memory_budget=1) as sorter:  # every event spills: one run each
...     for minute, id in [(5, "b"), (1, "c"), (5, "a")]:
...         sorter.add(event(minute, id))
...     [e.id for e in sorter.sorted_events()], sorter.runs_written
(['c', 'a', 'b'], 3)
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from detector.events.model import Event, Position

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "MAX_OPEN_RUNS",
    "EventSorter",
    "event_order",
    "in_event_time_order",
]

DEFAULT_MEMORY_BUDGET = 64 << 20
"""Bytes of serialized events held in memory before a sorted run is spilled (64 MiB)."""

MAX_OPEN_RUNS = 64
"""Runs of one size merged at once; also the most files one merge opens."""

# What an item costs in memory beyond its serialized event: the tuple, the
# bytes and str headers. Counted so that tiny events cannot outgrow the budget.
_ITEM_OVERHEAD = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NO_STREAM = ""
_NO_OFFSET = -1
_STDLIB_MARK = b" "

# (time in µs, source, id, serialized event, position stream, offset, partition):
# plain tuples compare in C, so sorting and merging never call Python code.
_Item = tuple[int, str, str, bytes, str, int, int]
_EVENT_ORDER_FIELDS = attrgetter("time", "source", "id")


def event_order(event: Event) -> tuple[int, str, str]:
    """The event-time sort key of ``event``: microseconds since the epoch, source, id."""
    return ((event.time - _EPOCH) // _MICROSECOND, event.source, event.id)


def in_event_time_order(events: Iterable[Event]) -> list[Event]:
    """``events`` sorted by :func:`event_order`; equal keys keep their order (stable)."""
    # Event times are aware UTC datetimes: they compare as their microseconds do, and a key
    # of the fields themselves is built in C (a third of the cost of event_order's).
    return sorted(events, key=_EVENT_ORDER_FIELDS)


class EventSorter:
    """Collects events and gives them back in event-time order, in bounded memory.

    ``memory_budget``: bytes of serialized events held before a sorted run is
    written to a file in a temporary directory (under ``temp_dir`` if given).
    Use it as a context manager (or call :meth:`close`) so the directory is
    removed also when something fails. ``runs_written`` and ``bytes_spilled``
    say how much went to disk.
    """

    def __init__(self, memory_budget: int = DEFAULT_MEMORY_BUDGET, *, temp_dir: Path | None = None):
        if memory_budget < 1:
            raise ValueError("memory_budget must be at least 1 byte")
        self.memory_budget = memory_budget
        self.events = 0
        self.runs_written = 0
        self.bytes_spilled = 0
        self._temp_parent = temp_dir
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._buffer: list[_Item] = []
        self._buffered_bytes = 0
        self._runs: defaultdict[int, list[Path]] = defaultdict(list)  # merge level -> runs

    def __enter__(self) -> EventSorter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the held events and remove the temporary files."""
        self._buffer = []
        self._runs.clear()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def add(self, event: Event) -> None:
        """Hold ``event``; a full buffer is sorted and spilled to a run file."""
        item = _item(event)
        self._buffer.append(item)
        self.events += 1
        self._buffered_bytes += len(item[3]) + _ITEM_OVERHEAD
        if self._buffered_bytes >= self.memory_budget:
            self._spill()

    def sorted_events(self) -> Iterator[Event]:
        """Every event added, in :func:`event_order` (content breaks ties); once."""
        self._buffer.sort()
        held, self._buffer, self._buffered_bytes = self._buffer, [], 0
        runs = [path for level in sorted(self._runs) for path in self._runs[level]]
        self._runs.clear()
        with ExitStack() as files:
            sources = [_read_run(files.enter_context(path.open("rb"))) for path in runs]
            for item in heapq.merge(iter(held), *sources):
                yield _event(item)

    def _spill(self) -> None:
        self._buffer.sort()
        run = self._write_run(self._buffer)
        self._buffer, self._buffered_bytes = [], 0
        level = 0
        self._runs[level].append(run)
        # Merge runs of one size once there are MAX_OPEN_RUNS of them: each event
        # is rewritten once per level, and a final merge opens few files.
        while len(self._runs[level]) >= MAX_OPEN_RUNS:
            group = self._runs.pop(level)
            with ExitStack() as files:
                sources = [_read_run(files.enter_context(path.open("rb"))) for path in group]
                merged = self._write_run(heapq.merge(*sources))
            for path in group:
                path.unlink()
            level += 1
            self._runs[level].append(merged)

    def _write_run(self, items: Iterable[_Item]) -> Path:
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(
                prefix="ciwatch-sort-", dir=self._temp_parent
            )
        path = Path(self._directory.name) / f"run-{self.runs_written:06d}.jsonl"
        self.runs_written += 1
        with path.open("wb") as out:
            for time, source, id, body, stream, offset, partition in items:
                header = orjson.dumps([time, source, id, stream, offset, partition])
                line = b"%b\t%b\n" % (header, body)
                out.write(line)
                self.bytes_spilled += len(line)
        return path


def _item(event: Event) -> _Item:
    data = event.to_dict(with_raw=True)
    del data["position"]  # where an event came from must not change its place
    position = event.position
    stream, offset, partition = _NO_STREAM, _NO_OFFSET, -1
    if position is not None:
        stream, offset = position.stream, position.offset
        partition = -1 if position.partition is None else position.partition
    time, source, id = event_order(event)
    return (time, source, id, _dumps(data), stream, offset, partition)


def _event(item: _Item) -> Event:
    _, _, _, body, stream, offset, partition = item
    position = None
    if (stream, offset) != (_NO_STREAM, _NO_OFFSET):
        position = Position(stream, offset, None if partition < 0 else partition)
    return Event.from_dict(_loads(body), position=position)


def _read_run(lines: IO[bytes]) -> Iterator[_Item]:
    for line in lines:
        header, _, body = line[:-1].partition(b"\t")
        time, source, id, stream, offset, partition = orjson.loads(header)
        yield (time, source, id, body, stream, offset, partition)


def _dumps(data: dict[str, Any]) -> bytes:
    try:
        # orjson's result keeps its over-allocated buffer (kilobytes per event);
        # the slice copies it into a bytes object of its own size.
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)[:-1]
    except TypeError:
        # Integers beyond 64 bits or lone surrogates (records the normalizer read
        # with the standard library): it writes them exactly. The leading space
        # marks the body for the standard library on the way back, as orjson
        # would read such integers as floats.
        return _STDLIB_MARK + json.dumps(data, separators=(",", ":")).encode()


def _loads(body: bytes) -> Any:
    if body.startswith(_STDLIB_MARK):
        return json.loads(body)
    return orjson.loads(body)
