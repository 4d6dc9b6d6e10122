"""The JSONL file sink: one alert per line, minimum severity, truncation for replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detector.alerts import Alert, Suppressor
from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.sinks.file import JsonlFileSink


def alert_of(severity: Severity, actor: str = "alice") -> list[Alert]:
    found = Detection(
        kind=DetectorKind.RULE,
        name="r",
        title="t",
        severity=severity,
        time=datetime(2026, 1, 5, tzinfo=UTC),
        key=(("actor", actor),),
        actor=actor,
        source="github_audit",
        summary=f"{actor} did it",
        evidence=("github_audit:1",),
        suppress=timedelta(hours=1),
    )
    return list(Suppressor().process([found]))


def test_writes_one_json_object_per_alert(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    with JsonlFileSink(path) as sink:
        sink.accept(alert_of(Severity.HIGH) + alert_of(Severity.LOW, "bob"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["actor"], r["severity"]) for r in rows] == [("alice", "high"), ("bob", "low")]


def test_minimum_severity_filters(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    with JsonlFileSink(path, min_severity=Severity.MEDIUM) as sink:
        sink.accept(alert_of(Severity.HIGH) + alert_of(Severity.LOW, "bob"))
    assert [json.loads(line)["actor"] for line in path.read_text().splitlines()] == ["alice"]


def test_truncate_starts_empty_and_append_keeps(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text("old\n")
    with JsonlFileSink(path) as sink:
        sink.accept(alert_of(Severity.HIGH))
    assert path.read_text().startswith("old\n")
    with JsonlFileSink(path, truncate=True) as sink:
        sink.accept(alert_of(Severity.HIGH))
    assert len(path.read_text().splitlines()) == 1


def test_unwritable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write alerts"):
        JsonlFileSink(tmp_path / "missing" / "alerts.jsonl")
