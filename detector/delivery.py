"""The daemon's delivery step: every sink takes a batch's alerts before its offsets are committed.

Sinks fail independently: each is tried whatever the others do. A sink that
cannot write to disk (an ``OSError``: ``ENOSPC``, ``EIO``, a read-only
volume) pauses consumption instead of crashing the daemon: the batch stays in
memory, uncommitted, and is offered again to the sinks that failed (only
them: the others have it) after each idle poll of the paused source, until
they take it. Meanwhile the daemon is not ready and ``ciwatch_paused{reason="disk"}``
is 1; the pause and the resumption are logged once each. Any other failure is
raised after all sinks were tried, so the batch is not committed and is read
again after the restart.

A stop asked for while paused abandons the batch (:class:`Abandoned`): not
committed, not checkpointed, read again by whoever consumes the partition next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from detector.alerts.model import Alert
from detector.errors import CiwatchError
from detector.logs import LineLog
from detector.metrics import Metrics
from detector.sinks.base import Sink
from detector.sources.record import RawRecord

__all__ = ["Abandoned", "Delivery", "PausableSource", "idle_paused"]

_REASON = "disk"  # the only reason to pause so far: the ``reason`` label of ciwatch_paused


class Abandoned(CiwatchError):  # noqa: N818  (a state, like SpoolFull)
    """Stopped while paused: the batch in hand was not delivered everywhere, nor committed."""


class PausableSource(Protocol):
    """What pausing needs of :class:`~detector.sources.kafka.KafkaSource`."""

    def assigned(self) -> set[tuple[str, int]]: ...

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None: ...

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]: ...

    def unread(self, records: Sequence[RawRecord]) -> None: ...


def idle_paused(source: PausableSource | None, wait_s: float) -> None:
    """Wait ``wait_s`` in a poll of ``source`` with every partition paused.

    Polling keeps this consumer in its group (kafka-python leaves the group
    when ``poll`` is not called for ``max_poll_interval_ms``) while reading
    nothing. A partition assigned inside the poll (a rebalance) is not paused
    yet and may return records: they are unread, so none is skipped.
    """
    if source is None:
        time.sleep(wait_s)
        return
    source.pause_only(source.assigned())
    records = source.poll(1, wait_s)
    if records:
        source.unread(records)


class Delivery:
    """Offers alerts to ``sinks``; ``paused`` says why consumption is paused (None: it is not).

    ``stopping``: whether a stop was asked for; ``idle``: waits a moment while
    paused, without reading (the daemon's :func:`idle_paused` and liveness beat).
    """

    def __init__(
        self,
        sinks: Sequence[Sink],
        metrics: Metrics,
        log: LineLog,
        *,
        stopping: Callable[[], bool],
        idle: Callable[[], None],
    ) -> None:
        self.sinks = sinks
        self.paused: str | None = None
        self._metrics = metrics
        self._log = log
        self._stopping = stopping
        self._idle = idle
        self._paused_at = 0.0
        self._troubled: dict[str, str] = {}  # sink name → its error, while retries fail

    def deliver(self, alerts: list[Alert]) -> None:
        """Return once every sink delivered or durably spooled ``alerts``; count them then.

        Raises the first failure that is not the disk's (after trying all
        sinks), or :class:`Abandoned` when stopped while paused.
        """
        if not alerts:
            return
        taken: set[Sink] = set()  # sinks whose accept() took the alerts: only flushed again
        failures = self._offer(self.sinks, alerts, taken)
        if failures:
            self._pause(*failures[0])
            while failures:
                if self._stopping():
                    raise Abandoned(
                        f"stopped while paused: {len(alerts)} alerts of the batch in hand are "
                        "not committed; they are read again after a restart",
                        where=", ".join(sink.name for sink, _ in failures),
                    )
                self._idle()
                failures = self._offer([sink for sink, _ in failures], alerts, taken)
            self._resume()
        self._metrics.count_alerts(alerts)

    def retry(self) -> None:
        """Flush every sink when no batch did, so spooled alerts go out once the SIEM is back.

        Nothing waits on it, so a failure is only logged: once when it starts
        (or changes), once when the sink works again.
        """
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception as exc:  # nothing to commit hangs on it: retried next time
                problem = f"{type(exc).__name__}: {exc}"
                if self._troubled.get(sink.name) != problem:
                    self._log(
                        f"sink {sink.name} failed: {problem}; retrying quietly",
                        level=logging.WARNING,
                        sink=sink.name,
                        error_type=type(exc).__name__,
                    )
                self._troubled[sink.name] = problem
                continue
            if self._troubled.pop(sink.name, None) is not None:
                self._log(f"sink {sink.name} works again", sink=sink.name)

    def _offer(
        self, sinks: Sequence[Sink], alerts: list[Alert], taken: set[Sink]
    ) -> list[tuple[Sink, OSError]]:
        """Hand ``alerts`` to each sink (accept once, then flush); the disk failures."""
        disk: list[tuple[Sink, OSError]] = []
        other: Exception | None = None
        for sink in sinks:
            try:
                if sink not in taken:
                    sink.accept(alerts)
                    taken.add(sink)
                sink.flush()
            except OSError as exc:
                disk.append((sink, exc))
            except Exception as exc:  # any other sink error: the others are tried first
                self._metrics.deliveries.labels(sink.name, "failed").inc(len(alerts))
                self._log(
                    f"sink {sink.name} failed: {type(exc).__name__}: {exc}",
                    level=logging.ERROR,
                    sink=sink.name,
                    error_type=type(exc).__name__,
                )
                other = other or exc
        if other is not None:
            raise other
        return disk

    def _pause(self, sink: Sink, exc: OSError) -> None:
        self.paused = _REASON
        self._paused_at = time.monotonic()
        self._metrics.paused.labels(_REASON).set(1)
        self._metrics.ready.set(0)
        self._log(
            f"paused: sink {sink.name} cannot write to disk ({exc.strerror or exc}); reading "
            "nothing new, retrying the batch in hand until it can",
            level=logging.ERROR,
            sink=sink.name,
            error_type=type(exc).__name__,
        )

    def _resume(self) -> None:
        waited = time.monotonic() - self._paused_at
        self.paused = None
        self._metrics.paused.labels(_REASON).set(0)
        self._log(f"resumed: the batch in hand is delivered or spooled after {waited:.1f} s")
