"""The daemon's training data: a bounded, sampled history of feature rows per model family.

:class:`FeatureHistory` keeps, per model family and UTC event day, at most
``per_day`` feature rows, chosen by **bottom-k sampling**: each row's key is a
stable 64-bit hash of (family, event id) and a day keeps the ``per_day``
smallest keys. The kept rows therefore depend only on which events arrived,
never on their order or on how they were batched, and an event read twice (a
re-read after a crash) is kept once.

A row is exactly what :func:`~detector.scoring.training.train_models` would
pick from a frame: an observation of an event the family applies to, not late,
of an actor with at least :data:`~detector.scoring.training.MIN_HISTORY_DAYS`
of history, with every feature of the family present.

Days live in ``<directory>/<family>/<YYYY-MM-DD>.parquet`` (columns ``key``,
``time``, ``actor``, then the family's features). The newest ``open_days``
days of a family are *open*: held in memory and rewritten whole (atomically)
when they changed. Older days are *sealed*: written once, dropped from memory;
a row arriving for a sealed day is counted in :attr:`dropped_late`, as is one
older than ``keep_days`` (those files are deleted). So memory holds about
``open_days * families * per_day`` rows and the disk at most
``keep_days * families * per_day``.

A damaged or foreign file never stops the daemon: it is skipped, counted in
:attr:`unreadable`, and the reason kept in :attr:`last_error`.

>>> history = FeatureHistory(state_dir / "history")  # doctest: +SKIP
>>> history.observe(observations); history.flush()  # doctest: +SKIP
>>> rows = history.frame("code", start=now - timedelta(days=30))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type stubs
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from detector.features.families import FAMILIES, Family
from detector.features.observation import Observation
from detector.files import fsync_directory, write_atomically
from detector.scoring.training import MIN_HISTORY_DAYS

__all__ = ["FeatureHistory"]

_AGE = "actor.age_days"
_SUFFIX = ".parquet"
_TIME = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class _Row:
    time: datetime
    actor: str
    values: tuple[float, ...]


@dataclass(slots=True)
class _Day:
    """One open day of one family: the ``per_day`` smallest keys and their rows."""

    rows: dict[int, _Row] = field(default_factory=dict)
    heap: list[int] = field(default_factory=list)  # negated keys: heap[0] is the largest key

    def add(self, key: int, row: _Row, limit: int) -> bool:
        """Keep ``row`` if its key is among the ``limit`` smallest; O(log limit)."""
        if key in self.rows:
            return False
        if len(self.rows) < limit:
            heapq.heappush(self.heap, -key)
        elif self.heap and key < -self.heap[0]:
            del self.rows[-heapq.heapreplace(self.heap, -key)]
        else:
            return False
        self.rows[key] = row
        return True


@dataclass(frozen=True, slots=True)
class _File:
    """What is known of a day file without reading it again: rows and time range."""

    rows: int
    first: datetime | None
    last: datetime | None


class FeatureHistory:
    """Bounded, sampled feature rows per model family and event day (the daemon's training data).

    ``directory`` ``None``: memory only; nothing is written or sealed, so memory
    then holds up to ``keep_days`` days per family. Existing day files are found
    at init; the newest ``open_days`` days of each family are loaded back into
    memory so that re-read records merge with them.
    """

    def __init__(
        self,
        directory: Path | None,
        *,
        families: Mapping[str, Family] = FAMILIES,
        per_day: int = 2000,
        keep_days: int = 30,
        open_days: int = 2,
    ) -> None:
        if per_day < 1 or keep_days < 1 or open_days < 1:
            raise ValueError("per_day, keep_days and open_days must be at least 1")
        self.directory = directory
        self.families = dict(families)
        self.per_day, self.keep_days, self.open_days = per_day, keep_days, open_days
        self.dropped_late = 0
        self.unreadable = 0
        self.last_error: str | None = None
        self._open: dict[str, dict[date, _Day]] = {name: {} for name in self.families}
        self._files: dict[str, dict[date, _File]] = {name: {} for name in self.families}
        self._damaged: dict[str, set[date]] = {name: set() for name in self.families}
        self._changed: set[tuple[str, date]] = set()
        self._newest: dict[str, date] = {}
        self._schemas = {name: _schema(family) for name, family in self.families.items()}
        if directory is not None:
            for name in self.families:
                self._scan(name)
                self._reload_open_days(name)

    # -- intake ---------------------------------------------------------------------------

    def observe(self, observations: Sequence[Observation]) -> int:
        """Sample this batch's rows into their days; how many were kept (on arrival)."""
        kept = 0
        for observation in observations:
            if observation.late or observation.features.get(_AGE, 0.0) < MIN_HISTORY_DAYS:
                continue
            for name, family in self.families.items():
                if family.applies(observation.event):
                    kept += self._observe_one(name, family, observation)
        return kept

    def _observe_one(self, name: str, family: Family, observation: Observation) -> int:
        features = observation.features
        if any(feature not in features for feature in family.features):
            return 0  # another feature configuration: not a row this family can train on
        event = observation.event
        moment = event.time.astimezone(UTC)
        day = moment.date()
        newest = max(self._newest.get(name, day), day)
        self._newest[name] = newest
        open_day = self._open[name].get(day)
        if open_day is None:
            if day in self._files[name] or day <= newest - timedelta(days=self.keep_days):
                self.dropped_late += 1  # sealed already, or older than anything kept
                return 0
            open_day = self._open[name][day] = _Day()
        row = _Row(moment, event.actor, tuple(float(features[f]) for f in family.features))
        if not open_day.add(_key(name, event.id), row, self.per_day):
            return 0
        self._changed.add((name, day))
        return 1

    # -- persistence ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write changed days atomically, seal days out of the open window, prune old files.

        ``OSError`` (a full disk) propagates; the days stay changed and in memory,
        so the next flush tries again.
        """
        for name in self.families:
            newest = self._newest.get(name)
            if newest is None:
                continue
            oldest_kept = newest - timedelta(days=self.keep_days - 1)
            oldest_open = newest - timedelta(days=self.open_days - 1)
            for day in sorted(self._open[name]):
                if day < oldest_kept:
                    del self._open[name][day]
                    self._changed.discard((name, day))
                    continue
                if (name, day) in self._changed and self.directory is not None:
                    self._write(name, day, self._open[name][day])
                self._changed.discard((name, day))
                if day < oldest_open and self.directory is not None:
                    del self._open[name][day]
            self._prune(name, oldest_kept)

    def _write(self, name: str, day: date, open_day: _Day) -> None:
        path = self._path(name, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = self._table(name, open_day)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        write_atomically(path, buffer.getvalue())
        times = [row.time for row in open_day.rows.values()]
        self._files[name][day] = _File(
            len(times), min(times, default=None), max(times, default=None)
        )
        self._damaged[name].discard(day)

    def _prune(self, name: str, oldest_kept: date) -> None:
        old = [day for day in (*self._files[name], *self._damaged[name]) if day < oldest_kept]
        if not old or self.directory is None:
            return
        for day in old:
            with contextlib.suppress(FileNotFoundError):
                self._path(name, day).unlink()
            self._files[name].pop(day, None)
            self._damaged[name].discard(day)
        fsync_directory(self._path(name, oldest_kept).parent)

    def _scan(self, name: str) -> None:
        """Find the family's day files (reading only their times); clear interrupted writes."""
        assert self.directory is not None
        folder = self.directory / name
        if not folder.is_dir():
            return
        for temporary in folder.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        for path in sorted(folder.glob(f"*{_SUFFIX}")):
            day = _day_of(path)
            if day is None:
                continue  # not one of ours
            times = self._read(name, path, ("time",))
            if times is None:
                self._damaged[name].add(day)
                continue
            column = times.column("time")
            first = pc.min(column).as_py() if len(column) else None
            last = pc.max(column).as_py() if len(column) else None
            self._files[name][day] = _File(len(column), first, last)
            self._newest[name] = max(self._newest.get(name, day), day)

    def _reload_open_days(self, name: str) -> None:
        newest = self._newest.get(name)
        if newest is None:
            return
        oldest_open = newest - timedelta(days=self.open_days - 1)
        features = self.families[name].features
        for day in [day for day in self._files[name] if day >= oldest_open]:
            table = self._read(name, self._path(name, day), ("key", "time", "actor", *features))
            if table is None:
                del self._files[name][day]
                self._damaged[name].add(day)
                continue
            open_day = self._open[name][day] = _Day()
            columns = [table.column(column).to_pylist() for column in table.column_names]
            for key, moment, actor, *values in zip(*columns, strict=True):
                open_day.add(key, _Row(moment, actor, tuple(values)), self.per_day)
            if len(open_day.rows) != table.num_rows:
                self._changed.add((name, day))  # per_day shrank: rewrite the smaller sample

    def _read(self, name: str, path: Path, columns: Sequence[str]) -> pa.Table | None:
        """The file's ``columns``, or ``None`` (counted) if it cannot be read or lacks them."""
        try:
            parquet = pq.ParquetFile(path)
            if not parquet.schema_arrow.equals(self._schemas[name]):
                found = ", ".join(parquet.schema_arrow.names)
                raise ValueError(f"columns ({found}) are not this version's for {name}")
            return parquet.read(columns=list(columns))
        except (OSError, ValueError, pa.ArrowException) as error:
            self.unreadable += 1
            self.last_error = f"{path}: {type(error).__name__}: {error}".splitlines()[0]
            return None

    # -- reading --------------------------------------------------------------------------

    def frame(
        self, family: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """The family's rows with ``start <= time < end``, from disk and memory.

        Columns ``time`` (UTC), ``actor``, then the family's features in order;
        sorted by (time, key). An empty frame with those columns if there are none.
        """
        start, end = _utc(start), _utc(end)
        tables = [
            self._table(family, self._open[family][day])
            for day in self._days(self._open[family], start, end)
        ]
        for day in self._days(self._files[family], start, end):
            if day not in self._open[family]:
                table = self._read(family, self._path(family, day), self._schemas[family].names)
                if table is None:  # damaged since init: counted once, then left out
                    del self._files[family][day]
                    self._damaged[family].add(day)
                else:
                    tables.append(table)
        table = pa.concat_tables(tables) if tables else self._schemas[family].empty_table()
        if start is not None:
            table = table.filter(pc.greater_equal(table.column("time"), pa.scalar(start, _TIME)))
        if end is not None:
            table = table.filter(pc.less(table.column("time"), pa.scalar(end, _TIME)))
        table = table.sort_by([("time", "ascending"), ("key", "ascending")]).drop_columns("key")
        return table.to_pandas()

    def rows(self) -> dict[str, int]:
        """Rows held per family, on disk and in memory."""
        held = {}
        for name in self.families:
            on_disk = sum(f.rows for d, f in self._files[name].items() if d not in self._open[name])
            held[name] = on_disk + sum(len(day.rows) for day in self._open[name].values())
        return held

    def span(self) -> tuple[datetime | None, datetime | None]:
        """The first and last event time of any row held."""
        times: list[datetime] = []
        for name in self.families:
            for day, file in self._files[name].items():
                if day not in self._open[name] and file.first and file.last:
                    times += (file.first, file.last)
            for open_day in self._open[name].values():
                times += [row.time for row in open_day.rows.values()]
        return min(times, default=None), max(times, default=None)

    # -- helpers --------------------------------------------------------------------------

    def _table(self, name: str, open_day: _Day) -> pa.Table:
        """An open day as an Arrow table in file order: sorted by (time, key)."""
        ordered = sorted(open_day.rows.items(), key=lambda item: (item[1].time, item[0]))
        schema = self._schemas[name]
        columns: list[list[object]] = [
            [key for key, _ in ordered],
            [row.time for _, row in ordered],
            [row.actor for _, row in ordered],
        ]
        columns += [[row.values[i] for _, row in ordered] for i in range(len(schema) - 3)]
        return pa.Table.from_arrays(
            [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)],
            schema=schema,
        )

    def _path(self, name: str, day: date) -> Path:
        assert self.directory is not None
        return self.directory / name / f"{day.isoformat()}{_SUFFIX}"

    @staticmethod
    def _days(days: Iterable[date], start: datetime | None, end: datetime | None) -> list[date]:
        first = start.date() if start is not None else date.min
        last = end.date() if end is not None else date.max
        return sorted(day for day in days if first <= day <= last)


def _schema(family: Family) -> pa.Schema:
    """A day file's columns: the sampling key, time, actor, then the family's features."""
    return pa.schema(
        [
            pa.field("key", pa.uint64()),
            pa.field("time", _TIME),
            pa.field("actor", pa.string()),
            *(pa.field(feature, pa.float64()) for feature in family.features),
        ]
    )


def _key(family: str, event_id: str) -> int:
    """The stable 64-bit sampling key of an event for a family."""
    digest = hashlib.blake2b(f"{family}\0{event_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _day_of(path: Path) -> date | None:
    try:
        return date.fromisoformat(path.name.removesuffix(_SUFFIX))
    except ValueError:
        return None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
