"""Where the processing loop's CPU goes: its thread's CPU time, stage by stage.

The daemon's loop (poll, normalize, merge in event time, detect, hand on to
the internal topics in scale-out, deliver, commit) runs on one thread. A
:class:`LoopClock` reads that thread's CPU time at the end of each stage and
adds what the stage took to ``ciwatch_loop_cpu_seconds_total{stage}``;
everything between two batches (metrics, checkpoints, reloads) is ``other``,
so the stages add up to the whole loop thread. Its rate is the share of a core
each stage keeps busy; divided by the records' rate, the CPU each stage costs
per record. The client's own threads (kafka-python's network thread,
librdkafka's) are not in it: they are in ``process_cpu_seconds_total``.

One clock read per stage and batch (about half a microsecond), not per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter

__all__ = ["STAGES", "LoopClock", "LoopCpu"]

STAGES = ("poll", "normalize", "merge", "detect", "produce", "deliver", "commit", "other")
"""The loop's stages, in the order of a batch."""


class LoopCpu:
    """``ciwatch_loop_cpu_seconds_total{stage}``: the loop thread's CPU time per stage."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.seconds = Counter(
            "ciwatch_loop_cpu_seconds",
            "CPU time of the processing loop's thread, by stage (poll, normalize, merge, "
            "detect, produce, deliver, commit, other)",
            ["stage"],
            registry=registry,
        )
        for stage in STAGES:  # every stage's series from the start, at 0
            self.seconds.labels(stage)

    def clock(self, read: Callable[[], float] = time.thread_time) -> LoopClock:
        """A clock for the calling thread (``read``: its CPU time), adding to these counters."""
        return LoopClock(self.seconds, read)


class LoopClock:
    """Laps of one thread's CPU time: :meth:`lap` adds the time since the last lap (or
    since the clock was made) to that stage's ``seconds``."""

    def __init__(self, seconds: Counter, read: Callable[[], float] = time.thread_time) -> None:
        self._seconds = {stage: seconds.labels(stage) for stage in STAGES}
        self._read = read
        self._last = read()

    def lap(self, stage: str) -> None:
        now = self._read()
        self._seconds[stage].inc(now - self._last)
        self._last = now
