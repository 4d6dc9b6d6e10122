"""A scaled-out replica without models learns them, as the unscaled daemon does, on a real broker.

``models.dir`` null and ``service.scale`` on: one learner in the replica's state
directory samples the rows of every actor task (six partitions of a topic keyed
by nothing: the stages key them), trains generations on event time in the
background, and each generation scores in every actor task from the next batch
(anomalies of the learning period held back and counted). The learner's state
is saved beside its history and taken up again by the next start.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from detector.scale.learning import LEARNER_FILE
from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import Daemon, read_alerts, wait_for
from tests.integration.test_daemon_learning import LEARN, World, at_least, value
from tests.integration.test_daemon_partitions import PARTITIONS, produce_round_robin
from tests.integration.test_scale_stages import scaled_config
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


def test_a_scaled_replica_learns_from_its_actor_tasks_and_keeps_what_it_learnt(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    topic = "events-scale-learning"
    broker.create_topics([topic], partitions=PARTITIONS)
    port = free_port()
    config = scaled_config(broker, topic, port, receiver.url, tmp_path)
    learning = f"models:\n  dir: null\n  learn: {LEARN}\n"
    config.write_text(config.read_text().replace("models: {dir: bundled}\n", learning))
    world = World(days=6, people=20)
    daemon = Daemon(config)
    produce_round_robin(broker, topic, world.between(0, 2))
    wait_for(at_least(port, "ciwatch_model_generation", 1), "a first generation")
    assert value(port, "ciwatch_model_learning") == 1
    produce_round_robin(broker, topic, world.between(2))
    wait_for(at_least(port, "ciwatch_model_generation", 2), "a second generation")
    wait_for(lambda: value(port, "ciwatch_model_learning") == 0, "the learning period to end")
    # Only actor tasks score in scale-out: a high score, held back (in the learning period,
    # without evidence, linked to a rule's alert) or alerted, came from a learnt generation.
    held = value(port, "ciwatch_anomalies_held_back_total")
    alerted = [a for a in read_alerts(tmp_path / "alerts.jsonl") if a["kind"] == "anomaly"]
    assert held + len(alerted) > 0, "no actor task scored high with the learnt models"
    generation = value(port, "ciwatch_model_generation")
    print(f"scaled, learning: generation {generation:.0f}; held back {held:.0f};"
          f" anomaly alerts {len(alerted)}")  # fmt: skip
    assert daemon.stop() == 0
    saved = orjson.loads((tmp_path / "state" / LEARNER_FILE).read_bytes())
    assert saved["first_seen"] is not None and saved["last_cut"] is not None
    again = Daemon(config)
    wait_for(at_least(port, "ciwatch_model_generation", generation), "the generation in use")
    assert value(port, "ciwatch_model_learning") == 0  # the learning period stays over
    assert again.stop() == 0
    # Started again where it was: a generation (a training abandoned at the stop may yet
    # have published a newer one) and the learning period's start, not learning anew.
    line = r"learning models in .*?: generation (\d+); anomaly alerts from"
    (restarted,) = re.findall(line, again.log.read_text())
    assert int(restarted) >= generation
