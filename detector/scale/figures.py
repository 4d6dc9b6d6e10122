"""What a scaled replica exports of its tasks and reorders, under the unscaled daemon's names.

One ``ciwatch run`` process exports its one pipeline's figures: keys held per
kind, evictions, actors at elevated risk, anomalies held back, regex limits.
A scaled replica's state is its tasks, one pipeline per owned stage partition
(:mod:`detector.scale.tasks`), so it exports their **sum**, with the same
names and labels: the dashboards and alert rules read a replica as they read
a daemon, and ``sum by (kind)`` over the replicas is the organisation's,
each key being held by one task only. A ``partition`` label was not added:
it would multiply the series by the partitions (up to hundreds), leave a
stale series behind each partition that moves to another replica, and show
nothing an operator acts on that ``ciwatch_consumer_lag`` does not already.

Counters advance by each task's own increase since it was last counted. A
task starts counted at the totals it was restored with (its previous owner
counted those), and a revoked task is forgotten, so a partition moving between
replicas is never counted twice.

:class:`ReorderFigures` does the same for the reorders of the stage partitions:
held records add to ``ciwatch_merge_buffered_records``, silent producers given
up on to ``ciwatch_merge_wait_timeouts_total``, records released past the bound
(``service.scale.max_held_records``) to ``ciwatch_merge_forced_records_total``,
and each run of those is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from prometheus_client import Counter

from detector.features.store import KINDS
from detector.logs import LineLog
from detector.metrics import Metrics
from detector.scale.inbox import Inbox
from detector.scale.tasks import Task

__all__ = ["ReorderFigures", "TaskFigures"]

Partition = tuple[str, int]
"""(topic, partition)."""
_Totals = dict[tuple[str, str, str], int]
"""(counter, label, label) → a task's running total."""
_BATCH = ("held_back", "regex")
"""Counters advanced after each batch; evictions go with the state, at each snapshot."""


class TaskFigures:
    """The owned tasks' figures summed into a replica's metrics (see the module)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._seen: dict[Partition, _Totals] = {}

    def start(self, key: Partition, task: Task) -> None:
        """A task restored or made for an assigned partition: counted from what it holds."""
        self._seen[key] = _totals(task, state=True)

    def stop(self, key: Partition) -> None:
        """A revoked partition's task: its next owner counts on from there."""
        self._seen.pop(key, None)

    def count(self, tasks: Mapping[Partition, Task]) -> None:
        """After a batch: anomalies held back and regex limits of ``tasks``."""
        for key, task in tasks.items():
            self._advance(key, _totals(task, state=False))

    def set_state(self, tasks: Mapping[Partition, Task]) -> None:
        """At each snapshot: keys per kind and elevated actors summed; evictions counted."""
        keys = dict.fromkeys(KINDS, 0)  # a replica left with no task holds no key
        elevated = 0
        for key, task in tasks.items():
            pipeline = task.pipeline
            for kind, count in pipeline.features.key_counts.items():
                keys[kind] = keys.get(kind, 0) + count
            elevated += pipeline.risk.elevated()
            self._advance(key, _totals(task, state=True))
        self.metrics.set_state(keys)
        self.metrics.risk_elevated.set(elevated)

    def _advance(self, key: Partition, totals: _Totals) -> None:
        seen = self._seen.setdefault(key, {})
        for name, total in totals.items():
            before = seen.get(name, 0)
            # A smaller total started again (a restored store): all of it is new.
            grown = total - before if total >= before else total
            if grown:
                self._counter(name).inc(grown)
            seen[name] = total

    def _counter(self, name: tuple[str, str, str]) -> Counter:
        which, first, second = name
        metrics = self.metrics
        found = {
            "held_back": metrics.models.held_back,
            "regex": metrics.regex_limits,
            "evictions": metrics.evictions,
        }[which]
        return found.labels(first, second)


def _totals(task: Task, *, state: bool) -> _Totals:
    """The task's running totals; ``state``: its evictions too."""
    pipeline = task.pipeline
    found: _Totals = {("held_back", *k): n for k, n in pipeline.held_back().items()}
    found.update({("regex", *k): n for k, n in pipeline.rules.regex_limits.items()})
    if state:
        found.update({("evictions", *k): n for k, n in pipeline.features.evictions.items()})
        found["evictions", "rule_group", "cap"] = pipeline.rules.evicted_groups()
    return found


class ReorderFigures:
    """The stage partitions' reorders in the merge's metrics; the bound logged once a run."""

    def __init__(self, metrics: Metrics, log: LineLog, *, max_held: int | None) -> None:
        self.metrics = metrics
        self._log = log
        self.max_held = max_held
        self._waits = self._forced = 0

    def count(self, inbox: Inbox) -> None:
        """After each poll (the merge's gauge was just set: the reorders' add to it)."""
        metrics = self.metrics
        metrics.merge_buffered.inc(len(inbox))
        metrics.merge_wait_timeouts.inc(inbox.waits_timed_out - self._waits)
        metrics.merge_forced.inc(inbox.forced - self._forced)
        self._waits, self._forced = inbox.waits_timed_out, inbox.forced
        reached = inbox.bound_reached()
        if reached:
            self._log(_bound_line(reached, self.max_held), level=logging.WARNING)


def _bound_line(reached: Mapping[Partition, Iterable[str]], max_held: int | None) -> str:
    partitions = ", ".join(f"{topic}[{partition}]" for topic, partition in sorted(reached))
    laggards = sorted({name for names in reached.values() for name in names})
    return (
        f"stage partitions {partitions} hold service.scale.max_held_records ({max_held})"
        f" waiting for {', '.join(laggards) or 'a producer'}: their oldest records go on;"
        " what those producers send older may be late"
    )[:600]
