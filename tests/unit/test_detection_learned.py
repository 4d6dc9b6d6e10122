"""The ``learned`` kind of bench/detection.py: its world, its counting window, its options."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
from detection import MODEL_KINDS, actor_days, measured_over
from heldout import HELD_OUT
from learned import counted_from, fresh_learn_dir, learned_world, learning_days, since
from replay_quality import Labeled, SeenAlert, score

from detector.config import load_config
from detector.generator import MERGED, generate, labels, write
from detector.generator.world import START
from tests.unit.generator.worlds import normalize

SMALLEST = HELD_OUT[0]


def test_learning_days_are_the_default_learning_period_and_counting_starts_after_them() -> None:
    period = load_config(None).models.learn.learning_period
    assert learning_days() == 14 == period / timedelta(days=1)
    assert counted_from() == START + timedelta(days=14)
    assert "counted from day 14" in measured_over("learned")
    assert measured_over("bundled") == measured_over("trained") == ""


def test_the_learned_world_is_the_same_organisation_attacked_after_learning() -> None:
    world = learned_world(SMALLEST)
    found = labels(world)
    held = labels(generate(SMALLEST.seed, SMALLEST.days, SMALLEST.people, shape=SMALLEST.shape))
    assert found["days"] == 14 + SMALLEST.days and found["attacks_from"] == 15
    assert (found["seed"], found["people"], found["shape"]) == (
        held["seed"],
        held["people"],
        held["shape"],
    )
    assert sorted(a["id"] for a in found["attacks"]) == sorted(a["id"] for a in held["attacks"])
    first_attack_day = (counted_from() + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert min(a["start"] for a in found["attacks"]) >= first_attack_day


def alert(sid: str, time: str, actor: str) -> SeenAlert:
    return SeenAlert.from_json({"id": sid, "rule": "r", "actor": actor, "time": time})


def test_since_drops_the_false_alerts_of_the_learning_period_and_keeps_every_attack() -> None:
    attack = Labeled.from_json(
        {
            "id": "brute",
            "actors": ["kate"],
            "keys": [],
            "start": "2026-01-21T10:00:00Z",
            "end": "2026-01-21T10:05:00Z",
            "events": [],
        }
    )
    alerts = [
        alert("early", "2026-01-10T03:00:00Z", "bob"),
        alert("edge", "2026-01-19T00:00:00Z", "bob"),
        alert("late", "2026-01-22T03:00:00Z", "ann"),
        alert("hit", "2026-01-21T10:01:00Z", "kate"),
    ]
    result = score(alerts, [attack], [], timedelta(minutes=2))
    counted = since(result, counted_from())
    assert [a.id for a, _ in counted.false_alerts] == ["edge", "late"]
    assert counted.per_attack == result.per_attack and counted.detected == 1
    assert since(result, None) is result


def test_each_learning_replay_gets_an_empty_learn_dir_of_its_own(tmp_path: Path) -> None:
    options = MODEL_KINDS["learned"](SMALLEST, tmp_path)
    left = tmp_path / "learn-learned-both"
    (left / "models").mkdir(parents=True)
    (left / "models" / "current").write_text("3\n")
    assert fresh_learn_dir(options, left) == ["--learn", "--learn-dir", str(left)]
    assert not left.exists()
    assert fresh_learn_dir(["--models", "m"], left) == ["--models", "m"]


def test_actor_days_count_only_the_days_from_the_start(tmp_path: Path) -> None:
    world = generate(3, 5, 20)
    write(world, tmp_path)
    start = START + timedelta(days=3)
    events = normalize(world)
    assert actor_days(tmp_path / MERGED) == len({(e.actor, e.time.date()) for e in events})
    later = {(e.actor, e.time.date()) for e in events if e.time >= start}
    assert actor_days(tmp_path / MERGED, start) == len(later) > 0
    assert orjson.loads((tmp_path / "labels.json").read_bytes())["days"] == 5
