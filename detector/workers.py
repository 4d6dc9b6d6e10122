"""``ciwatch run --workers N``: N consumers of one group in one pod, each its own process.

One Python process detects on one core (the GIL). A pod given more cores runs
N worker processes instead, each a normal :class:`~detector.daemon.Daemon` in
the same consumer group, so Kafka spreads the partitions over them as over
replicas. The parent process only supervises:

- The config is validated once, by the parent, before any worker starts;
  :func:`worker_configs` gives each worker its overrides, and the workers get
  that validated config (pickled): they never read the files again.
- SIGTERM, SIGINT and SIGHUP are forwarded. A stop waits for every worker (at
  most ``grace_s``, well inside Kubernetes' 30 s) and exits 0 when all stopped
  cleanly.
- A worker that dies unexpectedly (SIGKILL, out of memory, a crash) is started
  again after a backoff and counted (``ciwatch_worker_restarts_total``). One
  exiting 2 (a config error) or 3 (brokers unreachable) stops the pod with that
  status, as the single process would have stopped; one dying
  :data:`MAX_EARLY_EXITS` times in a row within a minute of its start stops the
  pod too (status 1 when it was killed by a signal).
- ``service.http_port`` serves ``/metrics`` (every worker's, each sample
  labelled ``worker="i"``; :mod:`detector.worker_metrics`), ``/healthz``
  (every worker answers its own) and ``/readyz`` (every worker is ready).

Workers are started with multiprocessing's *spawn* method: a fresh interpreter
(no threads or sockets inherited from the parent) whose pid, signals and exit
status are a process's own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import generate_latest

from detector import collector, logs
from detector.config import PipelineConfig
from detector.daemon import Signals
from detector.errors import CiwatchError, ConfigError, UnreachableError
from detector.events.printable import printable
from detector.logs import LogFormat
from detector.metrics import MetricsServer
from detector.worker_metrics import Collected, WorkerMetrics, WorkerScrapes

__all__ = [
    "LOOPBACK",
    "MAX_EARLY_EXITS",
    "MAX_WORKERS",
    "PROBE_EVERY_S",
    "Supervisor",
    "WorkerEntry",
    "worker_configs",
]

WorkerEntry = Callable[[PipelineConfig], int]
"""Runs one consumer with a worker's config; its exit status. A module-level function
(the spawned process imports it by name)."""

LOOPBACK = "127.0.0.1"
MAX_WORKERS = 64
MAX_EARLY_EXITS = 5
"""Deaths in a row, each within :data:`_STABLE_AFTER_S` of the start, before the pod gives up."""

_EXIT_FAILED, _EXIT_USAGE, _EXIT_UNREACHABLE, _EXIT_INTERRUPTED = 1, 2, 3, 130  # detector.cli's
_FATAL = frozenset({_EXIT_USAGE, _EXIT_UNREACHABLE})  # restarting cannot help: stop the pod
_GRACE_S = 25.0  # a stop: Kubernetes kills at 30 s
_STABLE_AFTER_S = 60.0  # a worker that ran this long and died is not failing at start-up
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 1.0, 16.0
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # restored after a run
PROBE_EVERY_S = 2.0  # the workers' /healthz, read by the parent
_STALE_AFTER_S = 60.0  # the parent's /healthz fails once some worker has not answered this long


def worker_configs(config: PipelineConfig, workers: int) -> list[PipelineConfig]:
    """Each worker's config: ``config`` with the overrides that keep workers apart.

    Worker ``i`` serves its metrics on loopback port ``http_port + 1 + i``, is
    client ``<client_id>-i`` of the same group, keeps its state (checkpoint,
    spool, learnt models) in ``<state_dir>/worker-i`` and writes
    ``<alerts_file stem>.worker-i<suffix>`` (and the webhook's dead-letter
    file likewise): two processes appending to one file could interleave lines.
    """
    port = config.service.http_port
    if port == 0:
        message = "--workers needs a fixed port: the workers listen on the ports after it"
        raise ConfigError(message, where="service.http_port")
    if port + workers > 65_535:
        message = f"the workers' ports {port + 1}-{port + workers} go past 65535"
        raise ConfigError(message, where="service.http_port")
    return [_worker_config(config, index) for index in range(workers)]


def _worker_config(config: PipelineConfig, index: int) -> PipelineConfig:
    service = config.service
    kafka = service.kafka.model_copy(update={"client_id": f"{service.kafka.client_id}-{index}"})
    update: dict[str, Any] = {
        "kafka": kafka,
        "http_host": LOOPBACK,
        "http_port": service.http_port + 1 + index,
    }
    if service.state_dir is not None:
        update["state_dir"] = service.state_dir / f"worker-{index}"
    if service.alerts_file is not None:
        update["alerts_file"] = _own_file(service.alerts_file, index)
    if service.webhook is not None and service.webhook.dead_letter_file is not None:
        own = _own_file(service.webhook.dead_letter_file, index)
        update["webhook"] = service.webhook.model_copy(update={"dead_letter_file": own})
    return config.model_copy(update={"service": service.model_copy(update=update)})


def _own_file(path: Path, index: int) -> Path:
    return path.with_name(f"{path.stem}.worker-{index}{path.suffix}")


def _worker_main(
    entry: WorkerEntry, config: PipelineConfig, index: int, log_settings: tuple[int, LogFormat]
) -> None:
    """A spawned worker's main: the consumer, its errors as the CLI's exit statuses."""
    level, log_format = log_settings
    logs.configure(level, log_format, service=True)
    # A spawned interpreter starts with CPython's collector thresholds: the CLI set
    # them in the parent only (until issue 15's seventh session: each worker spent
    # about 12 % more CPU per record than one process).
    collector.tune()
    sys.exit(_worker_status(entry, config, index))


def _worker_status(entry: WorkerEntry, config: PipelineConfig, index: int) -> int:
    try:
        return entry(config)
    except CiwatchError as exc:
        _error_line(index, str(exc))
        return _EXIT_UNREACHABLE if isinstance(exc, UnreachableError) else _EXIT_USAGE
    except OSError as exc:  # a port taken, a file no part anticipated: one line naming it
        where = f"{exc.filename}: " if exc.filename is not None else ""
        _error_line(index, f"{where}{exc.strerror or exc}")
        return _EXIT_USAGE
    except KeyboardInterrupt:
        return _EXIT_INTERRUPTED


def _error_line(index: int, message: str) -> None:
    print(f"ciwatch: error: worker {index}: {printable(message, 2_000)}", file=sys.stderr)


@dataclass
class _Worker:
    index: int
    config: PipelineConfig
    process: BaseProcess | None = None  # None: not started yet, or waiting to restart
    started: float = 0.0
    early_exits: int = 0  # deaths in a row within _STABLE_AFTER_S of the start
    restart_at: float = 0.0


class Supervisor:
    """Starts, watches, restarts and stops the worker processes of one pod.

    ``config``: validated (the parent's port and host serve the pod's
    endpoints); ``entry`` runs a worker (``detector.cli.run.run_daemon``);
    ``log_settings``: the level and format the workers log with, as the
    parent's (:func:`detector.logs.settings_from`).
    """

    def __init__(
        self,
        config: PipelineConfig,
        workers: int,
        entry: WorkerEntry,
        *,
        log_settings: tuple[int, LogFormat],
        grace_s: float = _GRACE_S,
    ) -> None:
        configs = worker_configs(config, workers)
        self._service = config.service
        self._workers = [_Worker(index, own) for index, own in enumerate(configs)]
        self._entry = entry
        self._log_settings = log_settings
        self._grace_s = grace_s
        self._spawn = multiprocessing.get_context("spawn")
        self._log = logs.line_log("ciwatch.workers")
        self.signals = Signals()
        self._running = 0  # workers started and not seen dead, for ciwatch_workers
        self._own = CollectorRegistry()  # the parent's own memory and CPU, the pod's counts
        ProcessCollector(registry=self._own)
        self.metrics = WorkerMetrics(self._own, running=lambda: float(self._running))
        self.scrapes = WorkerScrapes([own.service.http_port for own in configs], host=LOOPBACK)
        self.registry = CollectorRegistry()
        self.registry.register(self._own)
        self.registry.register(self.scrapes)

    def exposition(self, names: Collection[str] = ()) -> bytes:
        """``/metrics``: the parent's and workers' metrics, labelled (``names``: only those)."""
        if not names:
            return generate_latest(self.registry)
        # Not self.registry's restricted registry: it leaves out the scrapes, whose
        # names are the workers' and unknown to it.
        own = list(self._own.restricted_registry(names).collect())
        with self.scrapes.only(names):
            return generate_latest(Collected([*own, *self.scrapes.collect()]))

    def ready(self) -> bool:
        """``/readyz``: every worker is running and answers its own ``/readyz`` with 200."""
        return self._running == len(self._workers) and self.scrapes.answers("/readyz")

    def run(self) -> int:
        """Supervise until a stop signal (0 when every worker stopped cleanly) or a fatal exit."""
        handlers = {number: signal.getsignal(number) for number in _HANDLED}
        self.signals.install()
        waker, wake = socket.socketpair()
        for end in (waker, wake):
            end.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake.fileno())  # signals end the waits at once
        server = MetricsServer(
            self,
            host=self._service.http_host,
            port=self._service.http_port,
            ready=self.ready,
            stale_after=_STALE_AFTER_S,
        ).start()
        self._log(f"{len(self._workers)} workers; their metrics on port {server.port}")
        failed: int | None = _EXIT_FAILED  # an exception below: the workers are stopped anyway
        try:
            for worker in self._workers:
                self._start(worker)
            failed = self._supervise(server, waker)
        finally:
            clean = self._stop_workers()
            server.stop()
            self.scrapes.close()
            signal.set_wakeup_fd(previous_wakeup)
            for number, handler in handlers.items():
                signal.signal(number, handler)
            waker.close()
            wake.close()
        if failed is not None:
            return failed
        return 0 if clean else _EXIT_FAILED

    def _supervise(self, server: MetricsServer, waker: socket.socket) -> int | None:
        """Watch until a stop signal (None) or a worker's exit that stops the pod (its status)."""
        next_probe = 0.0
        while not self.signals.stop:
            if self.signals.reload:
                self.signals.reload = False
                self._forward(signal.SIGHUP)
            for worker in self._workers:
                status = self._watch(worker)
                if status is not None:
                    return status
            self._running = sum(worker.process is not None for worker in self._workers)
            now = time.monotonic()
            if now >= next_probe:
                if self.scrapes.answers("/healthz"):
                    server.beat()
                next_probe = now + PROBE_EVERY_S
            self._wait(waker, min(PROBE_EVERY_S, self._until_restart()))
        return None

    def _watch(self, worker: _Worker) -> int | None:
        """Start a worker whose backoff is over; handle one that exited (a status: stop)."""
        process = worker.process
        if process is None:
            if time.monotonic() >= worker.restart_at:
                self.metrics.restarts.inc()
                self._start(worker)
            return None
        code = process.exitcode
        if code is None:
            return None
        process.close()
        worker.process = None
        return self._exited(worker, code)

    def _exited(self, worker: _Worker, code: int) -> int | None:
        ran = time.monotonic() - worker.started
        how = f"worker {worker.index} {_describe(code)} after {ran:.1f}s"
        if code in _FATAL:
            self._log(f"{how}: stopping the pod with that status", level=logging.ERROR)
            return code
        worker.early_exits = worker.early_exits + 1 if ran < _STABLE_AFTER_S else 1
        if worker.early_exits >= MAX_EARLY_EXITS:
            message = f"{how}, {worker.early_exits} times in a row soon after start: stopping"
            self._log(message, level=logging.ERROR)
            return code if code > 0 else _EXIT_FAILED
        delay = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** (worker.early_exits - 1))
        worker.restart_at = time.monotonic() + delay
        self._log(f"{how}: restarting it in {delay:.0f}s", level=logging.WARNING)
        return None

    def _start(self, worker: _Worker) -> None:
        process = self._spawn.Process(
            target=_worker_main,
            args=(self._entry, worker.config, worker.index, self._log_settings),
            name=f"ciwatch-worker-{worker.index}",
        )
        process.start()
        worker.process, worker.started = process, time.monotonic()
        port = worker.config.service.http_port
        self._log(f"worker {worker.index} started: pid {process.pid}, metrics on port {port}")

    def _until_restart(self) -> float:
        """Seconds until the next worker's restart is due; a probe period if none waits."""
        waiting = [w.restart_at for w in self._workers if w.process is None]
        if not waiting:  # every worker running: nothing to restart (not "due at once")
            return PROBE_EVERY_S
        return max(0.0, min(waiting) - time.monotonic())

    def _wait(self, waker: socket.socket, timeout: float) -> None:
        """Until a worker exits, a signal arrives or ``timeout`` seconds pass."""
        sentinels = [w.process.sentinel for w in self._workers if w.process is not None]
        if waker in multiprocessing.connection.wait([waker, *sentinels], timeout):
            while True:  # drain the signal bytes
                try:
                    if not waker.recv(64):
                        break
                except BlockingIOError:
                    break

    def _forward(self, number: signal.Signals) -> None:
        for worker in self._workers:
            if worker.process is not None and worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # died: its exit is seen later
                    os.kill(worker.process.pid, number)

    def _stop_workers(self) -> bool:
        """Forward the stop and wait (``grace_s`` at most); whether every worker stopped cleanly."""
        number = _stop_signal(self.signals.received)
        self._forward(number)
        running = [w.process for w in self._workers if w.process is not None]
        deadline = time.monotonic() + self._grace_s
        while (alive := [p for p in running if p.exitcode is None]) and (
            left := deadline - time.monotonic()
        ) > 0:
            multiprocessing.connection.wait([p.sentinel for p in alive], left)
        for process in alive:
            self._log(f"{process.name} did not stop within {self._grace_s:.0f}s: killed")
            process.kill()
            process.join()
        self._running = 0
        # Killed by the forwarded signal itself: it came before the worker's handlers, so it
        # had not begun consuming, and nothing is lost.
        return not alive and all(p.exitcode in (0, -number) for p in running)


def _stop_signal(received: Sequence[str]) -> signal.Signals:
    """The stop signal to forward: the last SIGTERM or SIGINT received (SIGTERM otherwise)."""
    stops = [name for name in received if name in {"SIGTERM", "SIGINT"}]
    return signal.Signals[stops[-1]] if stops else signal.SIGTERM


def _describe(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"
