"""Issue 3's bar, end to end: `ciwatch replay` as a process over generated worlds.

Each world (bench/scenarios.py) is an organisation's GitHub, Okta, Kubernetes
and CloudTrail logs with sixteen labeled rule-shaped attacks, five behavioural
attacks no rule covers, and benign
look-alikes: CI bots deploying to production around the clock, an admin
tightening branch protection, password typos, a traveller on MFA from a
country used before, renovate cloning every repository, a secret-sync operator.
Every rule-shaped attack must raise exactly one alert and nothing else may alert;
with the bundled models beside the rules, every behavioural attack is found too.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import replay_quality
import scenarios

# Ten days: the new-country login needs the actor's 7-day learning period behind it.
DAYS = 10


def replay(tmp_path: Path, seed: int, *options: str) -> tuple[Path, str]:
    paths = scenarios.write(scenarios.generate(seed=seed, days=DAYS), tmp_path)
    alerts_path = tmp_path / "alerts.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "detector", "replay", str(paths[scenarios.MERGED]),
         "--alerts-out", str(alerts_path), *options],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return alerts_path, done.stderr


@pytest.mark.parametrize("seed", [7, 3])
def test_one_alert_per_attack_and_none_on_look_alikes(seed: int, tmp_path: Path) -> None:
    alerts_path, stderr = replay(tmp_path, seed, "--no-models")
    attacks, benign, _ = replay_quality.read_labels(tmp_path / "labels.json")
    alerts = replay_quality.read_alerts(alerts_path)
    # Risk alerts (docs/risk.md) sum up alerts already sent: checked apart, never false.
    risk = [alert for alert in alerts if alert.rule == "risk"]
    risk_result = replay_quality.score(risk, attacks, benign, timedelta(minutes=2))
    assert [(a.actor, why) for a, why in risk_result.false_alerts] == []
    detections = [alert for alert in alerts if alert.rule != "risk"]
    result = replay_quality.score(detections, attacks, benign, timedelta(minutes=2))
    per_attack = {attack: len(found) for attack, found in result.per_attack.items()}
    assert per_attack == dict.fromkeys(scenarios.RULE_ATTACK_IDS, 1)
    # The behavioural attacks are for the models: no rule may see them.
    per_behavioural = {attack: len(found) for attack, found in result.per_behavioural.items()}
    assert per_behavioural == dict.fromkeys(scenarios.BEHAVIOURAL_ATTACK_IDS, 0)
    assert [(a.rule, a.actor, why) for a, why in result.false_alerts] == []
    assert "events" in stderr and f"alerts       {16 + len(risk)}" in stderr


def test_the_bundled_models_find_every_behavioural_attack_and_explain_it(
    tmp_path: Path,
) -> None:
    alerts_path, _ = replay(tmp_path, 7)
    attacks, benign, _ = replay_quality.read_labels(tmp_path / "labels.json")
    result = replay_quality.score(
        replay_quality.read_alerts(alerts_path), attacks, benign, timedelta(minutes=2)
    )
    missed = [attack for attack, found in result.per_behavioural.items() if not found]
    assert missed == []
    alerts = [orjson.loads(line) for line in alerts_path.read_bytes().splitlines()]
    rule_alerts = [a for a in alerts if a["kind"] == "rule" and a["revision"] == 0]
    anomalies = [a for a in alerts if a["kind"] == "anomaly"]
    # Models run beside the rules and change nothing about them.
    assert len(rule_alerts) == len(scenarios.RULE_ATTACK_IDS)
    for alert in anomalies:
        assert 0.5 <= alert["score"] <= 1
        assert alert["actor"] in alert["summary"]
        assert any(char.isdigit() for char in alert["summary"])
        assert alert["explanation"]
