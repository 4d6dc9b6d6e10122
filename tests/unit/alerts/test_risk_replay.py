"""Risk through the whole pipeline: replays in any file order and any batching agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from detector.cli import main
from detector.config import PipelineConfig
from detector.events.ordering import in_event_time_order
from detector.pipeline import Pipeline
from detector.sources.files import FileSource

T0_MS = 1_767_607_200_000  # 2026-01-05T10:00:00Z
HOUR_MS = 3_600_000


def github(action: str, actor: str, hours: float, doc_id: str, **extra: object) -> str:
    event = {
        "@timestamp": int(T0_MS + hours * HOUR_MS),
        "action": action,
        "actor": actor,
        "_document_id": doc_id,
        "org": "acme",
        **extra,
    }
    return json.dumps(event)


@pytest.fixture
def event_files(tmp_path: Path) -> list[Path]:
    """alice trips two rules within hours, then a third the next day; bob one; carol two,
    a week apart. Split over two files whose lines interleave in time."""
    first = [
        github("protected_branch.destroy", "alice", 0, "a1", repo="acme/app", name="main"),
        github("repo.register_self_hosted_runner", "carol", 1, "c1", repo="acme/ci"),
        github("repo.register_self_hosted_runner", "alice", 5, "a2", repo="acme/app"),
        github("protected_branch.destroy", "carol", 24 * 9, "c2", repo="acme/web", name="main"),
    ]
    second = [
        github("protected_branch.destroy", "bob", 2, "b1", repo="acme/lib", name="main"),
        github("repo.create_actions_secret", "alice", 26, "a3", repo="acme/app"),
        github("protected_branch.destroy", "bob", 30, "b2", repo="acme/lib", name="main"),
    ]
    paths = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_text("\n".join(lines) + "\n")
    return paths


def replay(files: list[Path], out: Path) -> list[dict[str, Any]]:
    assert main(["replay", *map(str, files), "--alerts-out", str(out), "--no-models"]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def risk_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [alert for alert in alerts if alert["kind"] == "risk"]


def test_replay_raises_one_risk_alert_per_episode_and_revises_it(
    event_files: list[Path], tmp_path: Path
) -> None:
    alerts = replay(event_files, tmp_path / "alerts.jsonl")
    risky = risk_alerts(alerts)
    assert {alert["actor"] for alert in risky} == {"alice"}
    assert len({alert["id"] for alert in risky}) == 1
    assert [alert["revision"] for alert in risky] == [0, 1]
    opened, revised = risky
    contributors = {a["id"]: a for a in alerts if a["kind"] == "rule" and a["actor"] == "alice"}
    assert set(revised["related"]) == set(contributors)
    assert set(opened["related"]) < set(revised["related"])
    assert opened["risk"] >= 100 and opened["severity"] == "high"
    for rule in {a["rule"] for a in contributors.values()}:
        assert rule in revised["explanation"]["detectors"].__repr__()


def test_every_alert_carries_risk(event_files: list[Path], tmp_path: Path) -> None:
    alerts = replay(event_files, tmp_path / "alerts.jsonl")
    assert alerts
    for alert in alerts:
        assert isinstance(alert["risk"], float | int), alert
        assert alert["risk"] > 0


def test_file_order_does_not_change_risk(event_files: list[Path], tmp_path: Path) -> None:
    forward = replay(event_files, tmp_path / "forward.jsonl")
    backward = replay(event_files[::-1], tmp_path / "backward.jsonl")
    assert risk_alerts(forward)
    assert forward == backward


def detect(files: list[Path], batch: int) -> list[dict[str, Any]]:
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    with FileSource(files) as source:
        records = [record for part in source.batches(1000) for record in part]
    events = in_event_time_order(pipeline.normalize(records).events)
    alerts = []
    for start in range(0, len(events), batch):
        alerts.extend(pipeline.detect(events[start : start + batch]))
    alerts.extend(pipeline.finish())
    return [alert.to_dict() for alert in alerts]


def test_batching_does_not_change_risk_alerts_or_ids(event_files: list[Path]) -> None:
    one_by_one, all_at_once = detect(event_files, 1), detect(event_files, 10_000)
    assert risk_alerts(one_by_one)
    assert risk_alerts(one_by_one) == risk_alerts(all_at_once)
    by_id = {(a["id"], a["revision"]): a["risk"] for a in all_at_once}
    assert {(a["id"], a["revision"]): a["risk"] for a in one_by_one} == by_id


def test_a_restart_from_a_checkpoint_continues_the_episode(event_files: list[Path]) -> None:
    config = PipelineConfig.model_validate({"models": {"enabled": False}})
    straight = Pipeline.from_config(config)
    with FileSource(event_files) as source:
        records = [record for part in source.batches(1000) for record in part]
    events = in_event_time_order(straight.normalize(records).events)
    expected = [a.to_dict() for a in straight.detect(events)]
    head, tail = events[:3], events[3:]
    before = Pipeline.from_config(config)
    got = [a.to_dict() for a in before.detect(head)]
    after = Pipeline.from_config(config)
    after.restore(json.loads(json.dumps(before.snapshot())))
    got += [a.to_dict() for a in after.detect(tail)]
    assert risk_alerts(got) == risk_alerts(expected)
