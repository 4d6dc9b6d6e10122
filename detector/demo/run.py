"""``run_demo``: broker, world, receiver, daemon, player and view, wired and torn down."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from detector.config import BUNDLED, PipelineConfig, load_config
from detector.daemon import Daemon
from detector.demo.play import TOPIC, Player, ProgressView
from detector.demo.receiver import AlertReceiver
from detector.demo.results import Attack, report
from detector.events.printable import printable
from detector.generator import DEFAULT_PEOPLE, generate, labels
from detector.generator.world import START
from detector.metrics import Metrics
from detector.service_settings import ServiceSettings, WebhookSettings
from detector.sinks.webhook import WebhookSink
from detector.sources.broker import EmbeddedBroker, free_port
from detector.sources.kafka import KafkaSettings

__all__ = ["DemoOptions", "demo_config", "run_demo"]

_DRAIN_SHARE = 0.2  # of --duration left after the stream for the daemon to catch up


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``ciwatch demo`` plays: a world, and how fast. ``speed`` None: fit ``duration``."""

    duration: timedelta = timedelta(minutes=2)
    speed: float | None = None
    seed: int = 7
    days: int = 10
    people: int = DEFAULT_PEOPLE


def demo_config(
    bootstrap: str, http_port: int, state_dir: Path, webhook_url: str
) -> PipelineConfig:
    """The bundled pipeline (rules and models) with a ``service`` section for the demo."""
    kafka = KafkaSettings(
        bootstrap_servers=[bootstrap],
        topics=[TOPIC],
        group_id="ciwatch-demo",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )
    service = ServiceSettings(
        kafka=kafka,
        http_host="127.0.0.1",
        http_port=http_port,
        state_dir=state_dir,
        max_batch_wait=timedelta(milliseconds=200),
        webhook=WebhookSettings(url=webhook_url),
    )
    config = load_config(None)
    # The demo shows detection at once: the bundled models, not a 14-day learning period.
    models = config.models.model_copy(update={"dir": BUNDLED})
    return config.model_copy(update={"service": service, "models": models})


def run_demo(options: DemoOptions, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the demo (see the module docstring); 0 however it ends, Ctrl-C included.

    The embedded broker runs in a session of its own (Ctrl-C at the terminal
    does not reach it) and is stopped here on every way out: the end of the
    stream, ``--duration``, Ctrl-C, SIGTERM or SIGHUP, an error.
    """
    try:
        with _interrupted_by_termination(), ExitStack() as stack:
            return _run(options, stack, out, err)
    except KeyboardInterrupt:
        print("ciwatch demo: interrupted", file=err)
        return 0


def _run(options: DemoOptions, stack: ExitStack, out: TextIO, err: TextIO) -> int:
    world = generate(options.seed, options.days, options.people)
    attacks = [Attack.from_label(item) for item in labels(world)["attacks"]]
    duration = options.duration.total_seconds()
    span = (world.end - START).total_seconds()
    speed = options.speed or span / (duration * (1 - _DRAIN_SHARE))
    broker = stack.enter_context(EmbeddedBroker())
    broker.create_topics([TOPIC])
    receiver = stack.enter_context(AlertReceiver())
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ciwatch-demo-")))
    config = demo_config(broker.bootstrap, free_port(), work / "state", receiver.url)
    assert config.service.webhook is not None
    metrics = Metrics()
    view = ProgressView(err)

    def log(line: str) -> None:
        view.say(f"ciwatch: {printable(line, limit=1000)}")

    sink = WebhookSink(config.service.webhook, spool_dir=work / "spool", metrics=metrics, log=log)
    daemon = Daemon(config, [sink], metrics=metrics, log=log)
    rules = sum(1 for attack in attacks if attack.kind == "rule")
    view.say(
        f"ciwatch demo: {len(world.records):,} events over {options.days} days "
        f"({options.people} people, seed {options.seed}), {len(attacks)} attacks injected "
        f"({rules} rule-shaped, {len(attacks) - rules} behavioural)\n"
        f"ciwatch demo: metrics at http://127.0.0.1:{config.service.http_port}/metrics; "
        f"alerts go to the webhook receiver at {receiver.url}\n"
        f"ciwatch demo: playing {span / 86_400:g} days of event time in {span / speed:.0f} s "
        f"(x{speed:,.0f}), for at most {duration:.0f} s"
    )
    player = Player(world, daemon, speed, duration)
    view.start(player, receiver)
    player.thread.start()
    handlers = {number: signal.getsignal(number) for number in _HANDLED}
    try:
        daemon.run()
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        player.halt.set()
        player.thread.join()
        view.stop()
    view.say(f"ciwatch demo: ended: {player.ending}")
    out.write(report(attacks, receiver, player.sent_at))
    out.flush()
    return 0


_HANDLED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)  # what Daemon.run installs handlers for; put back afterwards


@contextmanager
def _interrupted_by_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt while the demo sets up or reports.

    Their default action ends the process at once, leaving the broker (in a
    session of its own) running; as an exception they unwind the ExitStack,
    which stops it. While the daemon runs, its own handlers take over.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    numbers = [number for number in _HANDLED if number != signal.SIGINT]
    previous = {number: signal.signal(number, _raise_interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _raise_interrupt(number: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(number).name)
