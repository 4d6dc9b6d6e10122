"""Alert ids, dedup and suppression: one alert per detector and key per period, repeats folded."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from detector.alerts import Alert, Suppressor, alert_id
from detector.detections import Detection, DetectorKind, Severity

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "docs" / "alert-schema.json").read_text()
)
T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def detection(
    minutes: float = 0, *, actor: str = "alice", name: str = "brute-force", event: str = "e1"
) -> Detection:
    return Detection(
        kind=DetectorKind.RULE,
        name=name,
        title="Brute force",
        severity=Severity.HIGH,
        time=T0 + timedelta(minutes=minutes),
        key=(("actor", actor),),
        actor=actor,
        source="okta_system_log",
        summary=f"{actor} failed to sign in 10 times in 10m",
        evidence=(f"okta_system_log:{event}",),
        suppress=timedelta(hours=1),
        tags=("attack.t1110",),
        explanation={"count": 10, "threshold": 10},
    )


def test_the_same_situation_gets_the_same_id() -> None:
    assert alert_id(detection(0)) == alert_id(detection(5))
    assert alert_id(detection(0)) != alert_id(detection(0, actor="bob"))
    assert alert_id(detection(0)) != alert_id(detection(0, name="spray"))
    assert alert_id(detection(0)) != alert_id(detection(61))


def test_repeats_within_the_period_fold_into_the_open_alert() -> None:
    suppressor = Suppressor()
    first = suppressor.process([detection(0, event="e1")])
    repeats = suppressor.process([detection(10, event="e2"), detection(20, event="e3")])
    assert len(first) == 1 and first[0].count == 1
    assert repeats == []
    assert suppressor.folded == 2
    [update] = suppressor.flush()
    assert update.id == first[0].id
    assert (update.count, update.revision) == (3, 1)
    assert update.evidence == ("okta_system_log:e1", "okta_system_log:e2", "okta_system_log:e3")
    assert update.last_time == T0 + timedelta(minutes=20)


def test_a_flush_without_new_repeats_sends_nothing_again() -> None:
    suppressor = Suppressor()
    suppressor.process([detection(0), detection(1)])
    assert len(suppressor.flush()) == 1
    assert suppressor.flush() == []


def test_the_period_ending_resends_a_folded_alert_and_opens_a_new_one() -> None:
    suppressor = Suppressor()
    [opened] = suppressor.process([detection(0)])
    suppressor.process([detection(30)])
    out = suppressor.process([detection(90, event="e9")])
    assert [(a.id == opened.id, a.count, a.revision) for a in out] == [
        (True, 2, 1),
        (False, 1, 0),
    ]


def test_advancing_event_time_closes_alerts() -> None:
    suppressor = Suppressor()
    suppressor.process([detection(0), detection(5)])
    assert suppressor.advance(T0 + timedelta(minutes=59)) == []
    [closed] = suppressor.advance(T0 + timedelta(minutes=60))
    assert closed.count == 2
    assert suppressor.open_alerts == 0


def test_different_keys_are_different_alerts() -> None:
    out = Suppressor().process([detection(0, actor="alice"), detection(0, actor="bob")])
    assert [a.detection.actor for a in out] == ["alice", "bob"]


def test_evidence_is_capped_keeping_the_latest() -> None:
    suppressor = Suppressor(max_evidence=3)
    suppressor.process([detection(m, event=f"e{m}") for m in range(6)])
    [update] = suppressor.flush()
    assert update.evidence == tuple(f"okta_system_log:e{m}" for m in (3, 4, 5))


def test_open_alerts_are_bounded() -> None:
    suppressor = Suppressor(max_open=2)
    suppressor.process([detection(0, actor=a) for a in ("a", "b", "c")])
    assert suppressor.open_alerts == 2


def test_detected_at_is_event_time_unless_a_clock_is_given() -> None:
    [alert] = Suppressor().process([detection(3)])
    assert alert.detected_at == alert.time
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    [clocked] = Suppressor(clock=lambda _: wall).process([detection(3)])
    assert clocked.detected_at == wall


def test_snapshot_and_restore_keep_folding_into_the_same_alert() -> None:
    before = Suppressor()
    [opened] = before.process([detection(0)])
    before.process([detection(5)])
    state = json.loads(json.dumps(before.snapshot()))
    after = Suppressor()
    after.restore(state)
    assert after.process([detection(10)]) == []
    [update] = after.flush()
    assert (update.id, update.count) == (opened.id, 3)
    assert update.detection == opened.detection


def test_restore_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        Suppressor().restore({"version": 99})


@pytest.mark.parametrize("kind", [DetectorKind.RULE, DetectorKind.ANOMALY])  # risk: test_risk.py
def test_alerts_match_the_published_json_schema(kind: DetectorKind) -> None:
    suppressor = Suppressor()
    found = detection(0)
    if kind is DetectorKind.ANOMALY:
        found = dataclasses.replace(found, kind=kind, score=0.93)
    [alert] = suppressor.process([found])
    suppressor.process([detection(1)])
    for sent in [alert, *suppressor.flush()]:
        jsonschema.validate(sent.to_dict(), SCHEMA, format_checker=jsonschema.FormatChecker())
    assert alert.to_dict()["rule" if kind is DetectorKind.RULE else "model"] == "brute-force"


def test_alert_dict_has_every_contract_field() -> None:
    [alert] = Suppressor().process([detection(0)])
    assert isinstance(alert, Alert)
    assert set(alert.to_dict()) == set(SCHEMA["required"])


def test_a_model_alert_names_the_open_rule_alert_on_the_same_actor() -> None:
    suppressor = Suppressor()
    [rule_alert] = suppressor.process([detection(0)])
    anomaly = dataclasses.replace(detection(5), kind=DetectorKind.ANOMALY, name="code-anomaly")
    other_actor = dataclasses.replace(anomaly, actor="bob", key=(("actor", "bob"),))
    [linked, unlinked] = suppressor.process([anomaly, other_actor])
    assert linked.related == (rule_alert.id,)
    assert linked.to_dict()["related"] == [rule_alert.id]
    assert unlinked.related == ()


def test_reopening_a_key_does_not_close_another_alert_early() -> None:
    suppressor = Suppressor()
    suppressor.process([detection(0, actor="a"), detection(0, actor="a")])
    suppressor.process([detection(30, actor="b"), detection(31, actor="b")])
    # a's period ends at 60 and it reopens at 61; b's must stay open until 90.
    out = suppressor.process([detection(61, actor="a", event="e2")])
    assert [(a.detection.actor, a.revision) for a in out] == [("a", 1), ("a", 0)]
    assert suppressor.advance(T0 + timedelta(minutes=89)) == []
    [closed] = suppressor.advance(T0 + timedelta(minutes=90))
    assert (closed.detection.actor, closed.count) == ("b", 2)
