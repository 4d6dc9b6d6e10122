"""Anomaly alerts in the alert layer: one per burst while its evidence stays in the window,
and none for the accounts a rule alert already names as its targets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detector.alerts import Suppressor
from detector.detections import Detection, DetectorKind, Severity

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def anomaly(
    hours: float,
    *,
    actor: str = "ivan",
    evidence: tuple[str, ...] = ("actor.distinct_repos.24h",),
    window: timedelta = timedelta(hours=24),
) -> Detection:
    return Detection(
        kind=DetectorKind.ANOMALY,
        name="code-anomaly",
        title="Unusual source-code activity",
        severity=Severity.MEDIUM,
        time=T0 + timedelta(hours=hours),
        key=(("actor", actor),),
        actor=actor,
        source="github_audit",
        summary=f"{actor}: unusual",
        evidence=(f"github_audit:{hours}",),
        suppress=window,
        score=0.6,
        explanation={"evidence": list(evidence)},
    )


def spray(hours: float, accounts: list[str]) -> Detection:
    return Detection(
        kind=DetectorKind.RULE,
        name="password-spray-per-ip",
        title="Password spray from one address",
        severity=Severity.HIGH,
        time=T0 + timedelta(hours=hours),
        key=(("ip", "198.51.100.7"),),
        actor=accounts[-1],
        source="okta_system_log",
        summary="198.51.100.7 failed to sign in as many accounts",
        evidence=("okta_system_log:s1",),
        suppress=timedelta(hours=1),
        explanation={"measure": "distinct", "field": "actor", "distinct_values": accounts},
    )


def test_a_night_sweep_seen_again_next_morning_is_one_alert_revised() -> None:
    suppressor = Suppressor()
    # A sweep at 02:00, then the actor's ordinary morning while the sweep is in the 24 h window.
    sent = suppressor.process([anomaly(0), anomaly(0.1)])
    sent += suppressor.process([anomaly(hours) for hours in (6, 7, 8, 9, 10)])
    assert len(sent) == 1 and sent[0].revision == 0
    [revised] = suppressor.flush()
    assert (revised.id, revised.count, revised.revision) == (sent[0].id, 7, 1)


def test_an_anomaly_alert_closes_once_its_evidence_window_has_passed() -> None:
    suppressor = Suppressor()
    [first] = suppressor.process([anomaly(0, window=timedelta(hours=1))])
    later = suppressor.process([anomaly(3, window=timedelta(hours=1))])
    assert [alert.revision for alert in later] == [0] and later[0].id != first.id


def test_folding_extends_an_anomaly_alert_to_the_latest_evidence_window() -> None:
    suppressor = Suppressor()
    suppressor.process([anomaly(0, window=timedelta(hours=1))])
    # Folded at 0.5 h with 24 h evidence: still the same alert 20 h later.
    suppressor.process([anomaly(0.5)])
    assert suppressor.process([anomaly(20, window=timedelta(hours=1))]) == []
    assert suppressor.open_alerts == 1


def test_rule_alerts_keep_their_fixed_suppression_period() -> None:
    suppressor = Suppressor()
    rule = spray(0, ["amy"])
    suppressor.process([rule])
    again = suppressor.process([spray(0.9, ["ben"]), spray(1.5, ["chen"])])
    assert [alert.revision for alert in again] == [1, 0]  # the first re-sent, a new one


def test_the_victims_of_a_spray_are_linked_to_it_not_alerted_on() -> None:
    suppressor = Suppressor()
    [rule_alert] = suppressor.process([spray(0, ["amy", "ben", "chen"])])
    failures = ("actor.failures.24h", "actor.failure_ratio.1h")
    linked = suppressor.process([anomaly(20, actor="ben", evidence=failures)])
    assert linked == []
    assert suppressor.linked == {"password-spray-per-ip": 1}
    # Evidence beyond failures (a new country) is the actor's own story: it alerts.
    [own] = suppressor.process(
        [anomaly(21, actor="chen", evidence=(*failures, "actor.new.country"))]
    )
    assert own.detection.actor == "chen"
    # Someone the spray did not try alerts as before.
    assert len(suppressor.process([anomaly(22, actor="dora", evidence=failures)])) == 1
    assert rule_alert.detection.explanation["distinct_values"] == ["amy", "ben", "chen"]


def test_the_link_to_a_spray_expires_and_survives_a_restart() -> None:
    suppressor = Suppressor()
    suppressor.process([spray(0, ["amy"])])
    restored = Suppressor()
    restored.restore(suppressor.snapshot())
    failures = ("actor.failures.24h",)
    assert restored.process([anomaly(10, actor="amy", evidence=failures)]) == []
    assert len(restored.process([anomaly(30, actor="amy", evidence=failures)])) == 1
