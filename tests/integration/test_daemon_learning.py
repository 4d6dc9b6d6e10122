"""`ciwatch run` without models, against a real broker: it learns, trains, swaps, survives.

The daemon starts with an empty state directory and ``models.dir`` null: it
keeps a sampled feature history, trains model generations on it in the
background on an event-time schedule, swaps them in between batches, holds
anomaly alerts back during its learning period, trains again after being
killed in the middle of a training, and follows ``ciwatch models rollback``
on SIGHUP. The world is generated (``detector.generator``) and produced in
event-time chunks so that each step of the schedule can be waited for.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from detector.generator import generate
from detector.generator.world import START
from detector.scoring import load_models
from detector.scoring.training import MIN_TRAINING_ROWS
from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import Daemon, produce, read_alerts, scrape, wait_for

pytestmark = pytest.mark.integration

LEARNING_PERIOD = timedelta(days=3)
"""Three days of event time: the first generation is trained (on day one's rows) well inside it."""

LEARN = "{learning_period: 3d, retrain_every: 1d, check_period: 1d, window: 30d}"


class World:
    """A generated organisation's records, by event time."""

    def __init__(self, days: int, people: int) -> None:
        records = generate(seed=7, days=days, people=people).records
        self.records = [(record.time, orjson.dumps(record.doc)) for record in records]
        self.first = self.records[0][0]

    def between(self, start_day: float, end_day: float | None = None) -> list[bytes]:
        """Records from ``start_day`` (inclusive) to ``end_day`` (exclusive), days from START."""
        start = START + timedelta(days=start_day)
        end = START + timedelta(days=end_day if end_day is not None else 366)
        return [line for time, line in self.records if start <= time < end]


@pytest.fixture(scope="module")
def small_world() -> World:
    """Six days of twenty people: attacks from day two, i.e. inside the learning period too."""
    return World(days=6, people=20)


def learning_config(directory: Path, broker: EmbeddedBroker, topic: str, port: int) -> Path:
    """A daemon config with no fixed models (``models.dir`` null): it learns in its state dir."""
    path = directory / "ciwatch.yaml"
    path.write_text(
        "service:\n"
        f"  kafka: {{bootstrap_servers: ['{broker.bootstrap}'], topics: ['{topic}'],"
        f" group_id: '{topic}-group', session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}\n"
        f"  http_host: 127.0.0.1\n  http_port: {port}\n  state_dir: '{directory / 'state'}'\n"
        f"  alerts_file: '{directory / 'alerts.jsonl'}'\n  snapshot_every: 1s\n"
        f"models:\n  dir: null\n  learn: {LEARN}\n"
    )
    return path


def samples(port: int, name: str) -> list[tuple[dict[str, str], float]] | None:
    """``name``'s samples as (labels, value); None while the endpoint is not up."""
    try:
        _, text = scrape(port)
    except httpx.HTTPError:
        return None
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def reading(port: int, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples with ``labels``; None while the endpoint is not up."""
    found = samples(port, name)
    if found is None:
        return None
    return sum(value for have, value in found if labels.items() <= have.items())


def value(port: int, name: str, **labels: str) -> float:
    """:func:`reading` of a daemon whose endpoint is up."""
    found = reading(port, name, **labels)
    assert found is not None, f"no /metrics to read {name} from"
    return found


def at_least(port: int, name: str, value: float, **labels: str) -> Callable[[], bool]:
    def reached() -> bool:
        now = reading(port, name, **labels)
        return now is not None and now >= value

    return reached


def models_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "detector", "models", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


STARTED = "training models on the history up to"
"""The daemon's log line when a training starts (followed by its cut)."""

_CUT = re.compile(STARTED + r" (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00)")


def settled(port: int, daemon: Daemon, produced: int, final_cut: datetime) -> bool:
    """Every record consumed and no training running or due any more.

    Due means a cut ``retrain_every`` (1d) after the last training's; once the
    last training started within a day of the final cut (the newest record's
    hour) and finished, the event-time clock stands still and nothing is due,
    unless a family with enough rows was never checked (trained) yet.
    """
    rows = samples(port, "ciwatch_model_history_rows") or []
    checked = {labels["model"] for labels, _ in samples(port, "ciwatch_model_check_passed") or []}
    untrained = {labels["model"] for labels, n in rows if n >= MIN_TRAINING_ROWS} - checked
    consumed = value(port, "ciwatch_records_consumed_total")
    finished = value(port, "ciwatch_model_trainings_total")
    cuts = _CUT.findall(daemon.log.read_text())
    return (
        consumed == produced
        and value(port, "ciwatch_model_training") == 0
        and finished == len(cuts) > 0
        and not untrained
        and final_cut - datetime.fromisoformat(cuts[-1]) < timedelta(days=1)
    )


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ready(port: int) -> bool:
    try:
        return scrape(port, "/readyz")[0] == 200
    except httpx.HTTPError:
        return False


def generation_dirs(state: Path) -> list[Path]:
    """Published generations (not the ``gen-N.tmp-PID`` of a training in progress)."""
    return sorted(p for p in (state / "models").glob("gen-*") if ".tmp-" not in p.name)


def anomaly_times(alerts: Path) -> list[datetime]:
    return [
        datetime.fromisoformat(str(alert["time"]))
        for alert in read_alerts(alerts)
        if alert["kind"] == "anomaly"
    ]


def test_a_daemon_without_models_learns_trains_and_swaps_generations(
    broker: EmbeddedBroker, topic: str, small_world: World, tmp_path: Path
) -> None:
    port = free_port()
    config = learning_config(tmp_path, broker, topic, port)
    state = tmp_path / "state"
    daemon = Daemon(config)
    # Ready with no models at all: it is learning.
    wait_for(lambda: _ready(port), "the daemon to be ready")
    assert value(port, "ciwatch_model_generation") == 0
    # The first two days: actors a day old give day one's rows, enough for a first generation.
    produce(broker, topic, small_world.between(0, 2))
    wait_for(at_least(port, "ciwatch_model_generation", 1), "a first generation")
    assert value(port, "ciwatch_model_learning") == 1  # day two is inside the learning period
    produce(broker, topic, small_world.between(2))
    wait_for(at_least(port, "ciwatch_model_generation", 2), "a second generation")
    wait_for(lambda: value(port, "ciwatch_model_learning") == 0, "the learning period to end")
    held = value(port, "ciwatch_anomalies_held_back_total", reason="in_learning")
    assert held > 0, "anomalies scored in the learning period not counted"
    assert value(port, "ciwatch_model_trainings_total", outcome="published") >= 2
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert "training models on the history up to" in log
    assert "model generation 1 in use" in log
    assert "model generation 2 in use" in log
    # Anomaly alerts only after the learning period, counted from the first event.
    alerts = tmp_path / "alerts.jsonl"
    early = [t for t in anomaly_times(alerts) if t < small_world.first + LEARNING_PERIOD]
    assert early == [], "anomaly alerts inside the learning period"
    generations = generation_dirs(state)
    assert len(generations) >= 2
    for directory in generations:
        assert any((directory / "models").glob("*.json")), directory
        assert (directory / "card.md").read_text().strip()
        assert json.loads((directory / "generation.json").read_text())["number"] >= 1
    listing = models_cli("list", "--state-dir", str(state))
    numbers = [int(p.name.removeprefix("gen-")) for p in generations]
    for number in numbers:
        assert any(line.split()[0] == str(number) for line in listing.splitlines()[2:]), listing
    current = (state / "models" / "current").read_text().strip()
    assert int(current) == max(numbers)


def test_a_restart_in_the_middle_of_training_trains_again(
    broker: EmbeddedBroker, topic: str, small_world: World, tmp_path: Path
) -> None:
    port = free_port()
    config = learning_config(tmp_path, broker, topic, port)
    state = tmp_path / "state"
    first_days = small_world.between(0, 2)
    daemon = Daemon(config)
    produce(broker, topic, first_days)
    # Killed as soon as the first training starts. A training takes seconds (fitting
    # four families' ensembles: 3-5 s measured on 2 cores) and this wait polls every
    # 0.2 s, so the kill lands well before the training could publish; the assertion
    # below makes a lost race a failure, not a silent pass.
    wait_for(lambda: STARTED in daemon.log.read_text(), "a training to start")
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    assert generation_dirs(state) == [], "the training finished before the kill"
    assert not (state / "models" / "current").exists()
    daemon = Daemon(config)
    wait_for(at_least(port, "ciwatch_model_generation", 1), "a generation after the restart")
    # Resumed from its checkpoint (written before the training started), not from scratch.
    consumed = value(port, "ciwatch_records_consumed_total")
    assert consumed < len(first_days)
    assert daemon.stop() == 0
    log = daemon.log.read_text()
    assert "restored state at 1 partition offsets" in log
    assert log.count(STARTED) >= 2, "no training after the restart"
    assert list(state.rglob("*.tmp-*")) == [], "leftovers of the interrupted training"
    generations = generation_dirs(state)
    assert generations[0].name == "gen-000001"
    for directory in generations:
        assert set(load_models(directory / "models").models) >= {"auth", "code"}


def test_a_rollback_is_picked_up_without_a_restart(
    broker: EmbeddedBroker, topic: str, small_world: World, tmp_path: Path
) -> None:
    port = free_port()
    config = learning_config(tmp_path, broker, topic, port)
    state = tmp_path / "state"
    daemon = Daemon(config)
    records = small_world.between(0)
    produce(broker, topic, records)
    wait_for(at_least(port, "ciwatch_model_generation", 2), "two generations")
    final_cut = _hour(small_world.records[-1][0])
    wait_for(lambda: settled(port, daemon, len(records), final_cut), "the last training due")
    newest = value(port, "ciwatch_model_generation")
    rolled = models_cli("rollback", "--state-dir", str(state))
    previous = int(rolled.split()[1])
    assert rolled.startswith(f"generation {previous} is current") and previous < newest
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: value(port, "ciwatch_model_generation") == previous, "the rolled-back one")
    assert value(port, "ciwatch_model_rollbacks_total") == 1
    assert daemon.stop() == 0
    assert f"model generation {previous} in use (rolled back)" in daemon.log.read_text()
    assert int((state / "models" / "current").read_text()) == previous
