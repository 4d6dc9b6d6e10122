"""Scoring of bench/replay_quality.py: which alert counts for which attack, and which is false."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from replay_quality import Labeled, SeenAlert, read_alerts, score

SLACK = timedelta(minutes=2)


def alert(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a1",
        "revision": 0,
        "rule": "okta-brute-force",
        "severity": "high",
        "actor": "kate@acme.example",
        "key": {"actor": "kate@acme.example"},
        "time": "2026-01-07T02:00:00Z",
        "first_time": "2026-01-07T02:00:00Z",
        "last_time": "2026-01-07T02:00:00Z",
        "evidence": [],
        "count": 1,
    }
    return {**base, **fields}


def labeled(sid: str, names: list[str], start: str, end: str, events: list[str]) -> Labeled:
    data = {"id": sid, "actors": names, "keys": [], "start": start, "end": end, "events": events}
    return Labeled.from_json(data)


BRUTE = labeled(
    "okta-brute-force",
    ["kate@acme.example"],
    "2026-01-07T01:55:00Z",
    "2026-01-07T02:00:00Z",
    ["okta_system_log:e1", "okta_system_log:e2"],
)
SPRAY = labeled(
    "okta-password-spray", ["203.0.113.21"], "2026-01-08T08:00:00Z", "2026-01-08T08:10:00Z", []
)
CI = labeled(
    "ci-deploys-around-the-clock",
    ["system:serviceaccount:ci:deployer"],
    "2026-01-05T00:00:00Z",
    "2026-01-11T23:00:00Z",
    ["k8s_audit:x:ResponseComplete"],
)


def seen(**fields: Any) -> SeenAlert:
    return SeenAlert.from_json(alert(**fields))


def test_an_alert_citing_an_attack_event_detects_it_whatever_its_actor() -> None:
    found = score(
        [seen(actor="someone", key={}, evidence=["okta_system_log:e2"])], [BRUTE], [], SLACK
    )
    assert found.per_attack["okta-brute-force"] and found.recall == 1.0
    assert found.precision == 1.0 and not found.false_alerts


def test_an_alert_naming_the_attack_key_inside_its_span_detects_it() -> None:
    moment = "2026-01-08T08:11:00Z"  # a minute after the spray's last event: within slack
    spray = seen(actor="", key={"ip": "203.0.113.21"}, first_time=moment, last_time=moment)
    found = score([spray], [BRUTE, SPRAY], [], SLACK)
    assert found.per_attack == {"okta-brute-force": [], "okta-password-spray": [spray]}
    assert found.recall == 0.5


def test_alerts_matching_no_attack_are_false_and_attributed_to_a_look_alike() -> None:
    late = seen(
        time="2026-01-07T03:00:00Z",
        first_time="2026-01-07T03:00:00Z",
        last_time="2026-01-07T03:00:00Z",
    )
    on_ci = seen(
        id="a2",
        actor="system:serviceaccount:ci:deployer",
        key={},
        evidence=["k8s_audit:x:ResponseComplete"],
    )
    found = score([late, on_ci], [BRUTE], [CI], SLACK)
    assert found.recall == 0.0 and found.precision == 0.0
    assert [look_alike for _, look_alike in found.false_alerts] == [
        "background",
        "ci-deploys-around-the-clock",
    ]


def test_no_alerts_leave_precision_undefined() -> None:
    found = score([], [BRUTE], [], SLACK)
    assert found.precision is None and found.recall == 0.0


def test_read_alerts_keeps_each_alert_once_at_its_highest_revision(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    lines = [alert(count=1), alert(id="b", rule="other"), alert(revision=2, count=5), alert()]
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n")
    alerts = read_alerts(path)
    assert sorted(a.id for a in alerts) == ["a1", "b"]
    assert {a.id: (a.rule, a.count) for a in alerts} == {
        "a1": ("okta-brute-force", 5),
        "b": ("other", 1),
    }


def test_behavioural_attacks_are_scored_apart_from_recall_and_are_not_false_alerts() -> None:
    sweep = Labeled.from_json(
        {
            "id": "github-night-repo-sweep",
            "kind": "behavioural",
            "actors": ["danak"],
            "keys": [],
            "start": "2026-01-08T01:00:00Z",
            "end": "2026-01-08T01:25:00Z",
            "events": ["github_audit:s1"],
        }
    )
    on_sweep = seen(id="m1", actor="danak", key={"actor": "danak"}, evidence=["github_audit:s1"])
    result = score([seen(evidence=["okta_system_log:e1"]), on_sweep], [BRUTE, sweep], [CI], SLACK)
    assert list(result.per_attack) == ["okta-brute-force"] and result.recall == 1.0
    assert result.per_behavioural == {"github-night-repo-sweep": [on_sweep]}
    assert result.behavioural_detected == 1
    assert result.false_alerts == [] and result.precision == 1.0
