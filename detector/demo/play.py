"""The demo's player (the world into Kafka on an accelerated clock) and its progress view."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import orjson
from kafka import KafkaProducer

from detector.daemon import Daemon
from detector.demo.receiver import AlertReceiver
from detector.events.printable import printable
from detector.generator import World
from detector.generator.world import START

__all__ = ["TOPIC", "Player", "ProgressView", "alert_line"]

TOPIC = "ciwatch-demo"
_READY_WAIT_S = 30.0  # the group join takes about half the session timeout on this broker


class Player:
    """Plays the world into Kafka on an accelerated clock, then stops the daemon.

    Waits for the daemon to join its group, sends each record when its event
    time comes round (``speed`` event seconds per wall second), and stops the
    daemon once it has consumed everything, or when ``duration`` is up.
    """

    def __init__(self, world: World, daemon: Daemon, speed: float, duration: float) -> None:
        self.world, self.daemon, self.speed, self.duration = world, daemon, speed, duration
        self.produced = 0
        self.event_time: datetime | None = None
        self.sent_at: dict[str, float] = {}
        self.ending = ""
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, name="demo-player", daemon=True)

    def consumed(self) -> int:
        value = self.daemon.metrics.registry.get_sample_value(
            "ciwatch_records_consumed_total", {"topic": TOPIC}
        )
        return int(value or 0)

    def _ready(self) -> bool:
        return bool(self.daemon.metrics.registry.get_sample_value("ciwatch_ready"))

    def _stopped(self) -> bool:
        return self.halt.is_set() or self.daemon.signals.stop

    def _run(self) -> None:
        try:
            self._wait(self._ready, _READY_WAIT_S)
            deadline = time.monotonic() + self.duration
            self._play(deadline)
            if not self._stopped():
                if self._wait(lambda: self.consumed() >= self.produced, deadline):
                    self.ending = "stream played and consumed"
                elif not self._stopped():
                    self.ending = "--duration reached"
        finally:
            self.ending = self.ending or "interrupted"
            if not self.daemon.signals.stop:
                self.daemon.stop("end of demo")

    def _wait(self, condition: Callable[[], bool], until: float) -> bool:
        """Until ``condition`` holds (True), the monotonic time ``until`` or a stop."""
        while not condition():
            if self._stopped() or time.monotonic() >= until:
                return False
            self.halt.wait(0.05)
        return True

    def _play(self, deadline: float) -> None:
        bootstrap = self.daemon.settings.kafka.bootstrap_servers
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        try:
            started = time.monotonic()
            for record in self.world.records:
                due = started + (record.time - START).total_seconds() / self.speed
                if due >= deadline:
                    self.ending = "--duration reached"
                    return
                if not self._sleep_until(due):
                    return
                producer.send(TOPIC, value=orjson.dumps(record.doc))
                self.sent_at[record.event_id] = time.monotonic()
                self.produced += 1
                self.event_time = record.time
        finally:
            producer.flush()
            producer.close()

    def _sleep_until(self, due: float) -> bool:
        """Sleep until the monotonic time ``due``; False when stopped first."""
        while (left := due - time.monotonic()) > 0 and not self._stopped():
            self.halt.wait(min(left, 0.05))
        return not self._stopped()


class ProgressView:
    """The progress view on stderr: a status line, each alert as it arrives, daemon log lines.

    On a terminal the status line is redrawn in place twice a second; into a
    file or pipe it is a line every five seconds.
    """

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self.halt = threading.Event()
        self._lock = threading.Lock()
        self._status = ""
        self.thread = threading.Thread(target=self._run, name="demo-view", daemon=True)
        self.sources: tuple[Player, AlertReceiver] | None = None

    def say(self, line: str) -> None:
        with self._lock:
            clear = "\r\x1b[K" if self.tty and self._status else ""
            self.err.write(f"{clear}{line}\n{self._status if clear else ''}")
            self.err.flush()

    def start(self, player: Player, receiver: AlertReceiver) -> None:
        self.sources = (player, receiver)
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        if self.thread.is_alive():
            self.thread.join()
        with self._lock:
            if self._status:
                self.err.write("\n")
                self._status = ""

    def _run(self) -> None:
        assert self.sources is not None
        player, receiver = self.sources
        every = 0.5 if self.tty else 5.0
        started = last = time.monotonic()
        counts = (0, 0)
        while not self.halt.wait(0.1):
            self._alerts(receiver)
            now = time.monotonic()
            if now - last >= every:
                current = (player.produced, player.consumed())
                rates = [(b - a) / (now - last) for a, b in zip(counts, current, strict=True)]
                self._show(player, current, rates, now - started)
                counts, last = current, now
        self._alerts(receiver)

    def _alerts(self, receiver: AlertReceiver) -> None:
        while True:
            try:
                alert = receiver.arrivals.get_nowait()
            except queue.Empty:
                return
            self.say(alert_line(alert))

    def _show(
        self,
        player: Player,
        counts: tuple[int, int],
        rates: list[float],
        elapsed: float,
    ) -> None:
        clock = f"{player.event_time:%Y-%m-%d %H:%M}" if player.event_time else "(group join)"
        status = (
            f"{elapsed:4.0f}s  event time {clock}  produced {counts[0]:,}/"
            f"{len(player.world.records):,} ({rates[0]:,.0f}/s)  "
            f"consumed {counts[1]:,} ({rates[1]:,.0f}/s)"
        )
        with self._lock:
            if self.tty:
                self._status = status
                self.err.write(f"\r\x1b[K{status}")
            else:
                self.err.write(f"{status}\n")
            self.err.flush()


def alert_line(alert: dict[str, Any]) -> str:
    """The progress view's line for one alert; every field escaped, as it came over HTTP.

    Whatever reaches the receiver (a summary quoting an attacker's user name)
    is shown with its control characters escaped, so it cannot move the
    cursor, recolour or clear the terminal.
    """
    name = alert.get("rule") or alert.get("model")
    fields = (alert.get("severity"), alert.get("kind"), name, str(alert.get("time"))[:16])
    severity, kind, detector, time_text = (printable(str(field), limit=80) for field in fields)
    summary = printable(str(alert.get("summary") or ""), limit=400)
    return f"  ALERT {severity:<8} {kind} {detector}  [{time_text}] {summary}"
