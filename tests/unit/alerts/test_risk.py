"""Per-actor risk: weights, decay, threshold, one risk alert per episode, revisions, state."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from prometheus_client import CollectorRegistry

from detector.alerts import Alert, Suppressor
from detector.alerts.risk import RiskScorer, RiskSettings
from detector.config import PipelineConfig, load_config
from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.pipeline import Pipeline

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "docs" / "alert-schema.json").read_text()
)
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
SETTINGS = RiskSettings(threshold=100, min_detectors=2)  # the defaults, spelled out
HIGH, MEDIUM = SETTINGS.weights.high, SETTINGS.weights.medium


def alert(
    name: str,
    days: float = 0,
    *,
    actor: str | None = "alice",
    severity: Severity = Severity.HIGH,
    kind: DetectorKind = DetectorKind.RULE,
    score: float | None = None,
    tags: tuple[str, ...] = ("attack.t1110",),
    revision: int = 0,
    key: tuple[tuple[str, str], ...] | None = None,
) -> Alert:
    found = Detection(
        kind=kind,
        name=name,
        title=f"Title of {name}",
        severity=severity,
        time=T0 + timedelta(days=days),
        key=key if key is not None else (("actor", actor or "-"),),
        actor=actor,
        source="github_audit",
        summary=f"{actor} did {name}",
        evidence=(f"github_audit:{name}-{days}",),
        suppress=timedelta(hours=1),
        tags=tags,
        score=score,
    )
    return Alert(
        id=hashlib.sha256(f"{name}-{actor}-{days}".encode()).hexdigest()[:32],
        detection=found,
        detected_at=found.time,
        evidence=found.evidence,
        revision=revision,
    )


def risk_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.detection.kind is DetectorKind.RISK]


def test_weights_are_severity_times_confidence_and_add_up_across_detectors() -> None:
    scorer = RiskScorer(SETTINGS)
    [rule] = scorer.process([alert("branch-protection-removed")])
    assert rule.risk == HIGH
    [model] = scorer.process(
        [alert("code-anomaly", kind=DetectorKind.ANOMALY, severity=Severity.MEDIUM, score=0.6)]
    )
    assert model.risk == pytest.approx(HIGH + MEDIUM * 0.6)


def test_risk_halves_every_half_life_and_is_gone_after_the_horizon() -> None:
    scorer = RiskScorer(SETTINGS)
    scorer.process([alert("a")])
    half_life_days = SETTINGS.half_life / timedelta(days=1)
    assert scorer.risk_of("alice", T0 + SETTINGS.half_life) == pytest.approx(HIGH / 2)
    assert scorer.risk_of("alice", T0 + timedelta(days=1)) == pytest.approx(
        HIGH * math.pow(0.5, 1 / half_life_days)
    )
    assert scorer.risk_of("alice", T0 + SETTINGS.horizon) == 0.0
    assert scorer.risk_of("bob", T0) == 0.0


def test_one_detector_firing_again_and_again_counts_once() -> None:
    scorer = RiskScorer(SETTINGS)
    out = scorer.process([alert("brute-force", hours / 24) for hours in range(6)])
    assert risk_alerts(out) == []
    assert out[-1].risk == pytest.approx(HIGH)  # the newest, undecayed, is the strongest


def test_two_detectors_over_the_threshold_raise_one_high_risk_alert() -> None:
    scorer = RiskScorer(SETTINGS)
    out = scorer.process(
        [
            alert("org-owner-granted", tags=("attack.t1098",)),
            alert("audit-stream-removed", 0.5, tags=("attack.t1562", "attack.t1098")),
        ]
    )
    [risk] = risk_alerts(out)
    assert out[-1] is risk  # after the alert that made it cross
    assert risk.severity is Severity.HIGH
    assert risk.revision == 0 and risk.count == 2
    assert risk.related == (out[0].id, out[1].id)
    assert risk.evidence == (*out[0].evidence, *out[1].evidence)
    assert risk.detection.tags == ("attack.t1098", "attack.t1562")
    assert "Title of org-owner-granted" in risk.detection.summary
    assert "Title of audit-stream-removed" in risk.detection.summary
    expected = HIGH + HIGH * 0.5 ** ((timedelta(days=0.5)) / SETTINGS.half_life)
    assert risk.risk == pytest.approx(expected, abs=0.01)
    assert risk.to_dict()["rule"] == "risk" and risk.to_dict()["kind"] == "risk"
    jsonschema.validate(risk.to_dict(), SCHEMA, format_checker=jsonschema.FormatChecker())


def test_below_the_threshold_or_from_one_detector_no_risk_alert() -> None:
    weak = RiskScorer(SETTINGS)
    assert risk_alerts(weak.process([alert("a", severity=Severity.LOW), alert("b", 0.1)])) == []
    lone = RiskScorer(RiskSettings(threshold=40))
    assert risk_alerts(lone.process([alert("a"), alert("a", 0.1)])) == []
    decayed = RiskScorer(SETTINGS)
    assert risk_alerts(decayed.process([alert("a"), alert("b", 6)])) == []


def test_more_signals_revise_the_same_risk_alert_then_a_new_episode_gets_a_new_id() -> None:
    scorer = RiskScorer(SETTINGS)
    [first] = risk_alerts(scorer.process([alert("a"), alert("b", 0.1)]))
    [revised] = risk_alerts(scorer.process([alert("c", 0.2, severity=Severity.MEDIUM)]))
    assert (revised.id, revised.revision, revised.count) == (first.id, 1, 3)
    assert revised.risk is not None and first.risk is not None and revised.risk > first.risk
    assert revised.time == first.time  # the episode still opened when it first crossed
    # Weeks later everything has decayed: the next crossing is another episode.
    [later] = risk_alerts(scorer.process([alert("a", 30), alert("b", 30.1)]))
    assert later.id != first.id and later.revision == 0
    assert scorer.risk_alerts == 2


def test_every_alert_carries_the_actors_current_risk() -> None:
    scorer = RiskScorer(SETTINGS)
    out = scorer.process([alert("a"), alert("ip-spray", actor=None)])
    assert out[0].risk == HIGH
    assert out[1].risk is None and "risk" in out[1].to_dict()
    # Grouped by address, the actor named is whoever sent the last event (a spray's victim):
    [spray] = scorer.process([alert("spray", key=(("ip", "203.0.113.9"),))])
    assert spray.risk == HIGH  # alice's risk, carried, not raised
    [resent] = scorer.process([alert("a", 1, revision=1)])  # re-sends add nothing
    assert resent.risk == pytest.approx(HIGH * 0.5 ** (1 / 3), abs=0.01)
    switched_off = RiskScorer(RiskSettings(enabled=False)).process([alert("a")])
    assert switched_off[0].risk is None


def test_suppressed_alerts_validate_against_the_schema_with_risk() -> None:
    found = alert("a").detection
    sent = RiskScorer(SETTINGS).process(Suppressor().process([found]))
    for item in sent:
        jsonschema.validate(item.to_dict(), SCHEMA, format_checker=jsonschema.FormatChecker())
    assert sent[0].to_dict()["risk"] == HIGH


def test_snapshot_and_restore_keep_risk_and_the_open_episode() -> None:
    before = RiskScorer(SETTINGS)
    [opened] = risk_alerts(before.process([alert("a"), alert("b", 0.1)]))
    after = RiskScorer(SETTINGS)
    after.restore(json.loads(json.dumps(before.snapshot())))
    assert after.risk_of("alice", T0 + timedelta(days=1)) == before.risk_of(
        "alice", T0 + timedelta(days=1)
    )
    [revised] = risk_alerts(after.process([alert("c", 0.2)]))
    [direct] = risk_alerts(before.process([alert("c", 0.2)]))
    assert revised == direct
    assert (revised.id, revised.revision) == (opened.id, 1)


def test_restore_refuses_an_unknown_version_and_takes_an_empty_state() -> None:
    scorer = RiskScorer(SETTINGS)
    with pytest.raises(ValueError, match="version"):
        scorer.restore({"version": 99})
    scorer.process([alert("a")])
    scorer.restore({})
    assert scorer.actors == 0


def test_actors_are_bounded_and_forgotten_after_the_horizon() -> None:
    scorer = RiskScorer(RiskSettings(max_actors=3))
    scorer.process([alert("a", i / 100, actor=f"user{i}") for i in range(10)])
    assert scorer.actors == 3
    assert scorer.risk_of("user9", T0 + timedelta(days=0.09)) == HIGH  # the newest stay
    scorer.process([alert("a", 20, actor="late")])
    assert scorer.actors == 1


def test_elevated_counts_actors_at_half_the_threshold() -> None:
    scorer = RiskScorer(SETTINGS)
    scorer.process([alert("a", actor="alice"), alert("a", severity=Severity.LOW, actor="bob")])
    assert scorer.elevated() == 1


def test_the_pipeline_config_has_risk_settings_with_defaults(tmp_path: Path) -> None:
    config = PipelineConfig.model_validate({"risk": {"threshold": 60, "half_life": "1d"}})
    assert config.risk.threshold == 60 and config.risk.half_life == timedelta(days=1)
    assert load_config().risk == RiskSettings()  # pipelines/default.yaml shows the defaults
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    assert pipeline.risk.settings == RiskSettings()
    typo = tmp_path / "typo.yaml"
    typo.write_text("risk: {treshold: 10}\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(typo)


def test_risk_alerts_are_counted_once_per_episode() -> None:
    metrics = Metrics(CollectorRegistry())
    scorer = RiskScorer(SETTINGS)
    metrics.count_alerts(scorer.process([alert("a"), alert("b", 0.1), alert("c", 0.2)]))
    assert metrics.registry.get_sample_value("ciwatch_risk_alerts_total") == 1
    updates = {"kind": "risk"}
    assert metrics.registry.get_sample_value("ciwatch_alert_updates_total", updates) == 1
