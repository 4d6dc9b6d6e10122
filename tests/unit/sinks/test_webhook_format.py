"""Webhook bodies, headers, signatures and secrets (detector/sinks/webhook_format.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
from pydantic import SecretStr

from detector.alerts import Alert, Suppressor
from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.sinks.webhook_format import (
    ALERT_IDS_HEADER,
    FORMATS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_request,
    idempotency_key,
    verify_signature,
)

ROOT = Path(__file__).resolve().parents[3]
NOW = 1_767_605_400.0
TOKEN = "hec-token-8f1d0c"
OLD_KEY = "old-signing-key-a7c2"
NEW_KEY = "new-signing-key-3be9"

Verify = Callable[..., bool]


def make_alert(
    actor: str = "alice",
    *,
    kind: DetectorKind = DetectorKind.RULE,
    key: tuple[tuple[str, str], ...] | None = None,
    tags: tuple[str, ...] = ("attack.credential_access", "attack.t1110", "attack.t1110.003"),
    severity: Severity = Severity.HIGH,
) -> Alert:
    found = Detection(
        kind=kind,
        name="identity.password_spray" if kind is DetectorKind.RULE else "auth",
        title="Password spray",
        severity=severity,
        time=datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
        key=key if key is not None else (("actor", actor),),
        actor=actor,
        source="okta_system_log",
        summary=f"{actor} failed to sign in 14 times",
        evidence=("okta_system_log:1",),
        suppress=timedelta(hours=1),
        tags=tags,
        score=None if kind is DetectorKind.RULE else 0.87,
    )
    (alert,) = Suppressor().process([found])
    return alert


def batch() -> list[Alert]:
    return [make_alert("alice"), make_alert("bob"), make_alert("carol")]


def documented_verify() -> Verify:
    """The receiver recipe in docs/webhook.md, run as written."""
    text = (ROOT / "docs" / "webhook.md").read_text()
    found = re.search(r"<!-- receiver-recipe.*?-->\s*```python\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/webhook.md lost its receiver recipe"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), "docs/webhook.md", "exec"), namespace)
    return cast(Verify, namespace["verify"])


def signed(keys: list[str], alerts: list[Alert] | None = None) -> tuple[bytes, str, str]:
    request = build_request(alerts or batch(), format="json", signing_keys=keys, now=NOW)
    return request.body, request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]


# Bodies


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_holds_every_alert_id(name: str) -> None:
    alerts = batch()
    request = build_request(alerts, format=name, token=TOKEN, host="ciwatch-0")
    if name == "splunk_hec":
        ids = [item["event"]["id"] for item in _hec_events(request.body)]
    elif name == "ecs":
        ids = [item["event"]["id"] for item in json.loads(request.body)]
    else:
        ids = [item["id"] for item in json.loads(request.body)]
    assert ids == [alert.id for alert in alerts]
    assert request.headers["Content-Type"] == "application/json"


def test_json_items_follow_the_alert_schema() -> None:
    schema = json.loads((ROOT / "docs" / "alert-schema.json").read_text())
    alerts = [*batch(), make_alert("dave", kind=DetectorKind.ANOMALY)]
    items = json.loads(build_request(alerts, format="json").body)
    for item in items:
        jsonschema.validate(item, schema)
    assert items == [alert.to_dict() for alert in alerts]


def _hec_events(body: bytes) -> list[dict[str, Any]]:
    """Read concatenated HEC events the way HEC does: JSON values one after another."""
    decoder, text, events, at = json.JSONDecoder(), body.decode(), [], 0
    while at < len(text):
        event, at = decoder.raw_decode(text, at)
        events.append(event)
        while at < len(text) and text[at].isspace():
            at += 1
    return events


def test_splunk_hec_shape() -> None:
    alerts = batch()
    request = build_request(alerts, format="splunk_hec", token=TOKEN, host="ciwatch-0")
    events = _hec_events(request.body)
    assert not request.body.lstrip().startswith(b"[")
    assert len(events) == len(alerts)
    for event, alert in zip(events, alerts, strict=True):
        assert set(event) == {"time", "host", "source", "sourcetype", "event"}
        assert isinstance(event["time"], float)
        assert event["time"] == alert.time.timestamp()
        assert (event["host"], event["source"], event["sourcetype"]) == (
            "ciwatch-0",
            "ciwatch",
            "ciwatch:alert",
        )
        assert event["event"] == alert.to_dict()
    assert request.headers["Authorization"] == f"Splunk {TOKEN}"


def test_splunk_hec_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"webhook\.token"):
        build_request(batch(), format="splunk_hec")


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"webhook\.format.*'xml'.*splunk_hec"):
        build_request(batch(), format="xml")


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one alert"):
        build_request([], format="json")


def test_ecs_fields() -> None:
    spray = make_alert("alice", key=(("ip", "203.0.113.9"),))
    (doc,) = json.loads(build_request([spray], format="ecs").body)
    assert doc["@timestamp"] == "2026-01-05T09:30:00Z"
    assert doc["ecs"]["version"]
    event = doc["event"]
    assert event["kind"] == "alert"
    assert event["category"] == ["intrusion_detection"]
    assert event["severity"] == 73
    assert event["id"] == spray.id
    assert doc["rule"] == {
        "id": "identity.password_spray",
        "name": "Password spray",
        "ruleset": "rule",
    }
    assert doc["user"] == {"name": "alice"}
    assert doc["source"] == {"ip": "203.0.113.9"}
    assert doc["message"] == "alice failed to sign in 14 times"
    assert doc["threat"]["framework"] == "MITRE ATT&CK"
    assert doc["threat"]["technique"]["id"] == ["T1110"]
    assert doc["threat"]["technique"]["subtechnique"]["id"] == ["T1110.003"]
    assert doc["threat"]["tactic"]["name"] == ["Credential Access"]
    assert doc["ciwatch"] == spray.to_dict()


def test_ecs_severity_grows_with_the_alert_severity() -> None:
    docs = [
        json.loads(build_request([make_alert(severity=s)], format="ecs").body)[0] for s in Severity
    ]
    numbers = [doc["event"]["severity"] for doc in docs]
    assert numbers == sorted(set(numbers))


def test_ecs_omits_what_the_alert_lacks() -> None:
    plain = make_alert("alice", tags=("ci",))
    bad_ip = make_alert("alice", key=(("ip", "not-an-ip"),))
    (doc,) = json.loads(build_request([plain], format="ecs").body)
    assert "source" not in doc and "threat" not in doc and "risk_score" not in doc["event"]
    assert json.loads(build_request([bad_ip], format="ecs").body)[0].get("source") is None


def test_ecs_anomaly_has_a_risk_score() -> None:
    (doc,) = json.loads(build_request([make_alert(kind=DetectorKind.ANOMALY)], format="ecs").body)
    assert doc["event"]["risk_score"] == 87.0
    assert doc["rule"]["ruleset"] == "anomaly"


# Headers


def test_single_alert_idempotency_key_is_its_id() -> None:
    alert = make_alert()
    request = build_request([alert], format="json")
    assert request.headers["Idempotency-Key"] == alert.id
    assert request.headers[ALERT_IDS_HEADER] == alert.id


def test_revised_alert_gets_a_new_idempotency_key() -> None:
    alert = make_alert()
    revised = replace(alert, revision=2, count=5)
    assert idempotency_key([revised]) == f"{alert.id}.2"
    assert idempotency_key([revised]) != idempotency_key([alert])


def test_batch_idempotency_key_is_a_stable_hash_of_the_ids() -> None:
    alerts = batch()
    request = build_request(alerts, format="json")
    key = request.headers["Idempotency-Key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key == idempotency_key(list(reversed(alerts)))
    assert key != idempotency_key(alerts[:2])
    assert request.headers[ALERT_IDS_HEADER].split(",") == [a.id for a in alerts]


def test_bearer_token_for_json_and_ecs_and_no_signature_without_keys() -> None:
    for name in ("json", "ecs"):
        headers = build_request(batch(), format=name, token=SecretStr(TOKEN)).headers
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert TIMESTAMP_HEADER not in headers and SIGNATURE_HEADER not in headers
    assert "Authorization" not in build_request(batch(), format="json").headers


def test_signature_headers() -> None:
    _, timestamp, signature = signed([NEW_KEY])
    assert timestamp == str(int(NOW))
    assert re.fullmatch(r"v1=[0-9a-f]{64}", signature)


# Signatures


@pytest.fixture(params=["module", "documented"])
def verify(request: pytest.FixtureRequest) -> Verify:
    """verify_signature and the docs' recipe must agree on every case."""
    if request.param == "module":
        return lambda body, ts, sig, keys, now: verify_signature(body, ts, sig, keys, now=now)
    recipe = documented_verify()
    return lambda body, ts, sig, keys, now: recipe(body, ts, sig, [k.encode() for k in keys], now)


def test_signature_verifies(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    assert verify(body, timestamp, signature, [NEW_KEY], NOW + 10)


def test_changed_body_fails(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    tampered = body.replace(b'"high"', b'"low"')
    assert tampered != body
    assert not verify(tampered, timestamp, signature, [NEW_KEY], NOW)


def test_wrong_key_fails(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    assert not verify(body, timestamp, signature, ["someone-else"], NOW)


def test_stale_or_future_timestamp_fails(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    assert verify(body, timestamp, signature, [NEW_KEY], NOW + 300)
    assert not verify(body, timestamp, signature, [NEW_KEY], NOW + 301)
    assert not verify(body, timestamp, signature, [NEW_KEY], NOW - 301)


def test_changed_timestamp_fails(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    assert not verify(body, str(int(timestamp) + 1), signature, [NEW_KEY], NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, "v1=00"), ("", "v1=00"), ("12a", "v1=00"), ("١٢", "v1=00"), ("1", None), ("1", "")],
)
def test_malformed_headers_fail(
    verify: Verify, timestamp: str | None, signature: str | None
) -> None:
    assert not verify(b"[]", timestamp, signature, [NEW_KEY], NOW)


def test_rotation_sends_one_entry_per_key_newest_first(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY, OLD_KEY])
    entries = signature.split(",")
    assert len(entries) == 2 and all(e.startswith("v1=") for e in entries)
    assert entries[0] == signed([NEW_KEY])[2]
    assert entries[1] == signed([OLD_KEY])[2]
    # Receivers that know either key, or both, accept it.
    assert verify(body, timestamp, signature, [OLD_KEY], NOW)
    assert verify(body, timestamp, signature, [NEW_KEY], NOW)
    assert verify(body, timestamp, signature, [NEW_KEY, OLD_KEY], NOW)
    assert not verify(body, timestamp, signature, ["retired-key"], NOW)


def test_unknown_signature_versions_are_ignored(verify: Verify) -> None:
    body, timestamp, signature = signed([NEW_KEY])
    assert verify(body, timestamp, f"v2=abc, {signature}", [NEW_KEY], NOW)
    assert not verify(body, timestamp, signature.replace("v1=", "v2="), [NEW_KEY], NOW)


# Secrets


def test_request_repr_masks_the_token() -> None:
    request = build_request(batch(), format="splunk_hec", token=SecretStr(TOKEN))
    for text in (repr(request), str(request), f"{request}"):
        assert TOKEN not in text
        assert "Authorization" in text and "Idempotency-Key" in text
