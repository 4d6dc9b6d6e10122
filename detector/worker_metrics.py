"""The metrics of a pod whose consumers are worker processes (``ciwatch run --workers N``).

:class:`WorkerMetrics` declares the two pod-level metrics: every daemon's
registry has them (1 worker, no restarts, for ``ciwatch run`` in one process),
and the supervising parent of ``--workers N`` serves its own.

:class:`WorkerScrapes` is what the parent's ``/metrics`` adds to them: each
worker's ``/metrics``, scraped over loopback at the parent's scrape, with a
``worker="i"`` label added to every sample (:func:`merge_workers`). Nothing is
summed here: a counter of two workers is two series, and Prometheus sums them
(``sum by (instance)``), so a restarted worker's counter reset is handled by
``rate()`` as for any process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = [
    "POD_FAMILIES",
    "WORKER_LABEL",
    "Collected",
    "WorkerMetrics",
    "WorkerScrapes",
    "combine",
    "label_worker",
    "merge_workers",
]

WORKER_LABEL = "worker"
POD_FAMILIES = frozenset(
    {"ciwatch_workers", "ciwatch_worker_restarts", "ciwatch_worker_restarts_created"}
)
"""Families the parent serves itself: each worker's own copy (1 worker, 0 restarts) is dropped."""

_SCRAPE_TIMEOUT_S = 2.0  # per worker; Prometheus' own scrape timeout is 10 s by default
_log = logging.getLogger("ciwatch.workers")


class WorkerMetrics:
    """``ciwatch_workers`` (running now) and ``ciwatch_worker_restarts_total``.

    ``running``: read at scrape time; a daemon in one process is one worker.
    """

    def __init__(
        self, registry: CollectorRegistry, running: Callable[[], float] = lambda: 1.0
    ) -> None:
        self.workers = Gauge(
            "ciwatch_workers",
            "Worker processes consuming for this pod that are running now (ciwatch run "
            "--workers; 1 without it)",
            registry=registry,
        )
        self.workers.set_function(running)
        self.restarts = Counter(
            "ciwatch_worker_restarts",
            "Worker processes the pod restarted after they exited unexpectedly (killed, "
            "out of memory, crashed)",
            registry=registry,
        )


def merge_workers(scrapes: Mapping[int, str]) -> list[Metric]:
    """Worker index → its ``/metrics`` text, as one list of families with ``worker`` labels.

    A family several workers export is one family with all their samples (a
    second ``# TYPE`` line for a name is invalid exposition). The families in
    :data:`POD_FAMILIES` are left out. Text that does not parse raises ``ValueError``.
    """
    return combine(label_worker(text, index) for index, text in sorted(scrapes.items()))


def label_worker(text: str, index: int) -> list[Metric]:
    """One worker's exposition parsed, ``worker="<index>"`` added to each sample."""
    labelled = []
    for family in text_string_to_metric_families(text):
        if family.name in POD_FAMILIES:
            continue
        copy = Metric(family.name, family.documentation, family.type, family.unit)
        copy.samples = [
            sample._replace(labels={**sample.labels, WORKER_LABEL: str(index)})
            for sample in family.samples
        ]
        labelled.append(copy)
    return labelled


def combine(workers: Iterable[list[Metric]]) -> list[Metric]:
    """The workers' families merged by name, samples in worker order."""
    merged: dict[str, Metric] = {}
    for families in workers:
        for family in families:
            into = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            into.samples.extend(family.samples)
    return list(merged.values())


class Collected:
    """Families collected already, as a registry to hand to ``generate_latest``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class WorkerScrapes(Collector):
    """A collector yielding every worker's metrics, labelled; registered in the parent's registry.

    ``ports``: worker index → its metrics port on ``host`` (loopback). A worker
    that does not answer (restarting, not listening yet) is left out of that
    scrape: its series have a gap, as a down target's would.
    """

    def __init__(self, ports: Sequence[int], *, host: str = "127.0.0.1") -> None:
        self._urls = [f"http://{host}:{port}" for port in ports]
        # One client for every scrape and probe: ``httpx.get`` built a client, and so
        # a TLS context (reading the CA bundle, ~20 ms), per call; at a 50 ms scrape
        # interval that was 40 % of a core. No proxy from the environment: loopback.
        self._client = httpx.Client(timeout=_SCRAPE_TIMEOUT_S, trust_env=False)
        self._failing: set[int] = set()  # workers whose last scrape failed: logged once
        # The series a scrape asked for (``name[]``), per serving thread: the parent
        # serves each scrape on a thread of its own, and collect() takes no arguments.
        self._asked = threading.local()

    def describe(self) -> list[Metric]:
        return []  # no scrape when the registry is built: the names are the workers'

    @contextmanager
    def only(self, names: Collection[str]) -> Iterator[None]:
        """Within: this thread's scrapes ask the workers for the series ``names`` only."""
        self._asked.names = list(names)
        try:
            yield
        finally:
            self._asked.names = []

    def collect(self) -> Iterator[Metric]:
        yield from combine(self._fetch(index) for index in range(len(self._urls)))

    def answers(self, path: str) -> bool:
        """Whether every worker answers ``path`` (``/healthz``, ``/readyz``) with 200."""
        return all(self._status(url + path) == httpx.codes.OK for url in self._urls)

    def _fetch(self, index: int) -> list[Metric]:
        """The worker's families, labelled; none when it does not answer or its text is bad."""
        try:
            response = self._client.get(
                self._urls[index] + "/metrics",
                params={"name[]": getattr(self._asked, "names", [])},
            )
            response.raise_for_status()
            families = label_worker(response.text, index)
        except (httpx.HTTPError, ValueError) as exc:
            if index not in self._failing:
                _log.warning(
                    f"worker {index} metrics not scraped: {type(exc).__name__}",
                    extra={"error_type": type(exc).__name__},
                )
            self._failing.add(index)
            return []
        if index in self._failing:
            _log.info(f"worker {index} metrics scraped again")
        self._failing.discard(index)
        return families

    def close(self) -> None:
        """Close the connections to the workers (the supervisor stopped)."""
        self._client.close()

    def _status(self, url: str) -> int:
        try:
            return self._client.get(url).status_code
        except httpx.HTTPError:
            return 0
