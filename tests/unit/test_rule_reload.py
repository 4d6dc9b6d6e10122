"""Pipeline.reload_rules: changed packs apply, open windows carry over, bad packs stay out."""

from __future__ import annotations

import os
from pathlib import Path

from detector.config import load_config
from detector.events.model import Category, Event, Outcome
from detector.pipeline import Pipeline
from tests.unit.features.helpers import event

RULE = """
rules:
  - id: {id}
    title: Failed sign-ins
    description: Repeated failed sign-ins.
    runbook: Ask the user.
    kind: threshold
    severity: high
    where: {{source: okta_system_log, outcome: failure}}
    group_by: [actor]
    threshold: {{window: 10m, count: 3}}
    summary: "{{actor}} failed {{count}} times"
"""


def setup(tmp_path: Path) -> tuple[Path, Pipeline]:
    pack = tmp_path / "rules.yaml"
    pack.write_text(RULE.format(id="failures"))
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"rules: {{bundled: false, packs: ['{pack}']}}\nmodels: {{enabled: false}}\n")
    return config, Pipeline.from_config(load_config(config))


def failure(seconds: float, number: int) -> Event:
    return event(
        seconds,
        actor="dana",
        source="okta_system_log",
        category=Category.AUTHENTICATION,
        outcome=Outcome.FAILURE,
        number=number,
    )


def touch(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_unchanged_packs_are_not_reloaded(tmp_path: Path) -> None:
    config, pipeline = setup(tmp_path)
    assert pipeline.reload_rules(load_config(config)) is False


def test_a_changed_pack_applies_and_open_windows_carry_over(tmp_path: Path) -> None:
    config, pipeline = setup(tmp_path)
    assert pipeline.process_events([failure(0, 1), failure(10, 2)]) == []
    pack = tmp_path / "rules.yaml"
    touch(pack, pack.read_text() + RULE.format(id="second").replace("rules:\n", ""))
    assert pipeline.reload_rules(load_config(config)) is True
    assert [rule.id for rule in pipeline.rules.rules] == ["failures", "second"]
    alerts = pipeline.process_events([failure(20, 3)])
    # The unchanged rule remembered two failures; the new one starts counting now.
    assert [alert.detection.name for alert in alerts] == ["failures"]


def test_a_broken_pack_keeps_the_current_rules(tmp_path: Path) -> None:
    config, pipeline = setup(tmp_path)
    touch(tmp_path / "rules.yaml", "rules:\n  - id: broken\n    kind: nonsense\n")
    assert pipeline.reload_rules(load_config(config)) is False
    assert [rule.id for rule in pipeline.rules.rules] == ["failures"]
    assert pipeline.rule_reload_errors == 1
    assert pipeline.last_rule_error is not None and "broken" in pipeline.last_rule_error
