"""Sigma → ciwatch conversion: metadata, modifiers, conditions, log sources, correlations.

Every Sigma rule here was written for these tests (not copied from SigmaHQ: this project
never commits fetched rule content).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.events.parsers import azure_entra_id
from detector.rules.model import Rule
from detector.sigma.logsources import ENTRA_ENVELOPE, ENTRA_RENAMED
from tests.unit.sigma.helpers import (
    alerting_rules,
    convert,
    load_converted,
    only_rule,
    skip_reason,
)

CLOUDTRAIL = """
title: Trail switched off by hand
id: 0f6b7a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b
status: experimental
description: |
  Someone stopped or deleted a trail
  from outside the pipeline.
references: [https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StopLogging.html]
author: ciwatch tests
date: 2026-01-02
tags: [attack.defense-evasion, attack.t1562.008, cve.2026-0001]
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: [StopLogging, DeleteTrail]
  condition: selection
falsepositives: [Planned trail migrations]
level: high
"""


def _rule_with(detection: str, product: str = "okta", service: str = "okta") -> str:
    return f"""
title: Condition test
logsource: {{product: {product}, service: {service}}}
detection:
{detection}
level: low
"""


def _where(detection: str, product: str = "okta", service: str = "okta") -> dict[str, object]:
    where = only_rule(_rule_with(detection, product, service))["where"]
    assert isinstance(where, dict)
    return where


def test_metadata_attribution_and_ids_are_kept() -> None:
    rule = only_rule(CLOUDTRAIL)
    assert rule["id"] == "sigma-trail-switched-off-by-hand-0f6b7a52"
    assert rule["kind"] == "match"
    assert rule["severity"] == "high"
    assert rule["description"] == "Someone stopped or deleted a trail from outside the pipeline."
    assert rule["tags"] == ["attack.defense_evasion", "attack.t1562.008"]
    assert rule["references"][0].endswith("API_StopLogging.html")
    assert rule["false_positives"] == ["Planned trail migrations"]
    assert "Planned trail migrations" in rule["runbook"]
    assert rule["sigma"] == {
        "id": "0f6b7a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
        "author": "ciwatch tests",
        "license": "DRL-1.1",
        "status": "experimental",
        "date": "2026-01-02",
    }
    assert rule["where"] == {
        "source": "cloudtrail",
        "attributes.event_source": "cloudtrail.amazonaws.com",
        "action": ["StopLogging", "DeleteTrail"],
    }
    Rule.model_validate(rule)


@pytest.mark.parametrize(
    ("level", "severity"),
    [("informational", "info"), ("low", "low"), ("medium", "medium"), ("critical", "critical")],
)
def test_levels_become_severities(level: str, severity: str) -> None:
    text = _rule_with("  sel: {eventType: x}\n  condition: sel").replace(
        "level: low", f"level: {level}"
    )
    assert only_rule(text)["severity"] == severity


def test_converted_pack_loads(tmp_path: Path) -> None:
    rules = load_converted(convert(CLOUDTRAIL), tmp_path)
    assert [rule.id for rule in rules] == ["sigma-trail-switched-off-by-hand-0f6b7a52"]
    assert rules[0].sigma is not None and rules[0].sigma.author == "ciwatch tests"
    assert (tmp_path / "sigma-aws-cloudtrail.yaml").read_text().startswith("# Converted from Sigma")


@pytest.mark.parametrize(
    ("value", "matcher"),
    [
        ("'eventType|contains': mfa", {"contains": "mfa"}),
        ("'eventType|startswith': user.", {"prefix": "user."}),
        ("'eventType|endswith': .deactivate", {"suffix": ".deactivate"}),
        ("eventType: 'user.*.grant'", {"glob": "user.*.grant"}),
        ("eventType: 'user.?ession.start'", {"glob": "user.?ession.start"}),
        ("eventType: 'a\\*b*'", {"prefix": "a*b"}),
        ("eventType: 'a\\*b*c'", {"regex": "(?i)^a\\*b.*c$"}),
        ("eventType: 'plain\\*star'", "plain*star"),
        ("'eventType|re': '^user\\.(mfa|session)'", {"regex": "^user\\.(mfa|session)"}),
        ("'eventType|re|i': '^USER'", {"regex": "(?i)^USER"}),
        ("'eventType|re|m|s': 'a.b$'", {"regex": "(?ms)a.b$"}),
        ("'eventType|cased': User.Session", {"regex": "^User\\.Session$"}),
        ("'eventType|cased|contains': Sess", {"regex": "^.*Sess.*$"}),
        ("'eventType|exists': true", {"exists": True}),
        ("eventType: null", {"exists": False}),
        ("'securityContext.asNumber|gte': 64500", {"gte": 64500}),
        ("'securityContext.asNumber|lt': 10", {"lt": 10}),
        ("securityContext.isProxy: true", True),
        ("outcome.count: 3", 3),
        ("'client.ipAddress|cidr': 198.51.100.0/24", {"prefix": "198.51.100."}),
        ("'client.ipAddress|cidr': 198.51.100.7/32", "198.51.100.7"),
    ],
)
def test_modifiers_and_values(value: str, matcher: object) -> None:
    where = _where(f"  sel:\n    {value}\n  condition: sel")
    del where["source"]
    ((field, got),) = where.items()
    assert got == matcher
    assert field.startswith(("action", "raw."))


def test_cidr_across_octets_is_one_prefix_regex() -> None:
    where = _where("  sel:\n    'client.ipAddress|cidr': 10.0.0.0/15\n  condition: sel")
    assert where["raw.client.ipAddress"] == {"regex": "^(10\\.0\\.|10\\.1\\.)"}


def test_all_modifier_and_windash_expansion() -> None:
    where = _where("  sel:\n    'displayMessage|contains|all': [reset, password]\n  condition: sel")
    assert where == {
        "source": "okta_system_log",
        "raw.displayMessage": {"contains": "reset"},
        "all": [{"raw.displayMessage": {"contains": "password"}}],
    }
    where = _where("  sel:\n    'displayMessage|windash|contains': -force\n  condition: sel")
    assert {"raw.displayMessage": {"contains": "-force"}} in where["any"]  # type: ignore[operator]
    assert {"raw.displayMessage": {"contains": "/force"}} in where["any"]  # type: ignore[operator]


def test_base64_is_the_encoded_text() -> None:
    where = _where("  sel:\n    'displayMessage|base64': secret\n  condition: sel")
    assert where["raw.displayMessage"] == "c2VjcmV0"


def test_not_and_or_with_parentheses_push_down_exactly() -> None:
    detection = """  a: {eventType: user.session.start}
  b: {outcome.result: FAILURE}
  c: {client.ipAddress: 192.0.2.1}
  condition: a and not (b or c)"""
    assert _where(detection) == {
        "source": "okta_system_log",
        "action": "user.session.start",
        "raw.outcome.result": {"not": {"equals": "FAILURE"}},
        "raw.client.ipAddress": {"not": {"equals": "192.0.2.1"}},
    }
    detection = detection.replace("a and not (b or c)", "not (b and c) or a")
    assert _where(detection) == {
        "source": "okta_system_log",
        "any": [
            {"raw.outcome.result": {"not": {"equals": "FAILURE"}}},
            {"raw.client.ipAddress": {"not": {"equals": "192.0.2.1"}}},
            {"action": "user.session.start"},
        ],
    }


def test_not_exists_and_not_null() -> None:
    detection = """  sel: {eventType: x}
  f1: {'outcome.reason|exists': true}
  f2: {target: null}
  condition: sel and not f1 and not f2"""
    where = _where(detection)
    assert where["raw.outcome.reason"] == {"exists": False}
    assert where["raw.target"] == {"exists": True}


def test_one_of_and_all_of_selectors() -> None:
    detection = """  sel_a: {eventType: a}
  sel_b: {eventType: b}
  filter_x: {displayMessage: x}
  filter_y: {displayMessage: y}
  condition: 1 of sel_* and not all of filter_*"""
    assert _where(detection) == {
        "source": "okta_system_log",
        "action": ["a", "b"],
        "any": [
            {"raw.displayMessage": {"not": {"equals": "x"}}},
            {"raw.displayMessage": {"not": {"equals": "y"}}},
        ],
    }


def test_list_of_maps_is_any_and_several_conditions_are_any() -> None:
    detection = """  sel:
    - {eventType: a, displayMessage: m}
    - {eventType: b}
  condition: sel"""
    assert _where(detection)["any"] == [{"action": "a", "raw.displayMessage": "m"}, {"action": "b"}]
    detection = "  a: {eventType: a}\n  b: {eventType: b}\n  condition: [a, b]"
    assert _where(detection)["action"] == ["a", "b"]


@pytest.mark.parametrize(
    ("product", "service", "field", "source", "path"),
    [
        ("aws", "cloudtrail", "eventName", "cloudtrail", "action"),
        (
            "aws",
            "cloudtrail",
            "requestParameters.roleName",
            "cloudtrail",
            "raw.requestParameters.roleName",
        ),
        ("azure", "activitylogs", "operationName", "azure_activity", "action"),
        ("m365", "audit", "Operation", "m365_audit", "action"),
        ("m365", "audit", "Workload", "m365_audit", "attributes.workload"),
        ("okta", "okta", "eventType", "okta_system_log", "action"),
        ("github", "audit", "action", "github_audit", "action"),
        ("github", "audit", "repo", "github_audit", "raw.repo"),
        ("kubernetes", "audit", "verb", "k8s_audit", "action"),
        ("kubernetes", "audit", "objectRef.resource", "k8s_audit", "attributes.resource"),
        (
            "azure",
            "riskdetection",
            "riskEventType",
            "azure_entra_id",
            "raw.properties.riskEventType",
        ),
    ],
)
def test_log_sources_and_fields(
    product: str, service: str, field: str, source: str, path: str
) -> None:
    where = _where(f"  sel: {{{field}: v}}\n  condition: sel", product, service)
    assert where == {"source": source, path: "v"}


def test_entra_columns_reach_both_shapes() -> None:
    where = _where(
        "  sel: {ResultType: 50126, AppDisplayName: Portal}\n  condition: sel",
        "azure",
        "signinlogs",
    )
    assert where == {
        "source": "azure_entra_id",
        "any": [{"raw.ResultType": 50126}, {"raw.resultType": 50126}],
        "all": [
            {"any": [{"raw.AppDisplayName": "Portal"}, {"raw.properties.appDisplayName": "Portal"}]}
        ],
    }
    negated = _where(
        "  sel: {a: 1}\n  f: {IPAddress: 192.0.2.1}\n  condition: not f", "azure", "auditlogs"
    )
    assert negated == {
        "source": "azure_entra_id",
        "raw.IPAddress": {"not": {"equals": "192.0.2.1"}},
        "raw.properties.ipAddress": {"not": {"equals": "192.0.2.1"}},
    }


def test_entra_tables_are_the_parsers() -> None:
    assert ENTRA_ENVELOPE is azure_entra_id.LOG_ANALYTICS_ENVELOPE
    assert ENTRA_RENAMED is azure_entra_id.LOG_ANALYTICS_RENAMED


def test_gcp_audit_covers_gke_and_strips_the_data_wrapper() -> None:
    where = _where(
        "  sel: {gcp.audit.method_name: SetIamPolicy, data.protoPayload.serviceName: x}\n"
        "  condition: sel",
        "gcp",
        "gcp.audit",
    )
    assert where == {
        "any": [
            {"source": "gcp_audit"},
            {"source": "k8s_audit", "raw.protoPayload": {"exists": True}},
        ],
        "raw.protoPayload.methodName": "SetIamPolicy",
        "raw.protoPayload.serviceName": "x",
    }


def test_fieldref_compares_two_mapped_fields() -> None:
    where = _where("  sel: {'eventType|fieldref': displayMessage}\n  condition: sel")
    assert where == {"source": "okta_system_log", "action": {"equals_field": "raw.displayMessage"}}


def test_a_negated_fieldref_fires_only_where_the_fields_differ(tmp_path: Path) -> None:
    rule = _rule_with(
        "  sel: {eventType: user.session.start}\n"
        "  same: {'actor.alternateId|fieldref': target.alternateId}\n"
        "  condition: sel and not same"
    )
    rules = load_converted(convert(rule), tmp_path)
    base = {
        "uuid": "f1",
        "published": "2026-01-05T10:00:00.000Z",
        "eventType": "user.session.start",
        "actor": {"alternateId": "alice@example.com", "type": "User"},
        "outcome": {"result": "SUCCESS"},
    }
    other = {**base, "target": [{"alternateId": "bob@example.com"}]}
    itself = {**base, "uuid": "f2", "target": [{"alternateId": "alice@example.com"}]}
    assert alerting_rules(rules, [other]) == ["sigma-condition-test"]
    assert alerting_rules(rules, [itself]) == []


@pytest.mark.parametrize(
    ("detection", "reason"),
    [
        ("  kw: [evil]\n  condition: kw", "keyword search"),
        ("  sel: {'eventType|fieldref|startswith': displayMessage}\n  condition: sel", "fieldref"),
        ("  sel: {'client.ipAddress|cidr': '2001:db8::/32'}\n  condition: sel", "IPv6"),
        ("  sel: {'eventType|expand': '%admins%'}\n  condition: sel", "placeholder"),
        ("  sel: {'published|minute': 5}\n  condition: sel", "timestamp"),
        ("  sel: {'displayMessage|wide': x}\n  condition: sel", "wide"),
    ],
)
def test_unsupported_features_say_why(detection: str, reason: str) -> None:
    assert reason in skip_reason(_rule_with(detection))


@pytest.mark.parametrize(
    ("product", "service", "reason"),
    [
        ("azure", "pim", "Privileged Identity Management"),
        ("m365", "threat_management", "eventSource"),
        ("onelogin", "onelogin.events", "OneLogin"),
        ("windows", "security", "no such log source"),
    ],
)
def test_log_sources_ciwatch_does_not_read(product: str, service: str, reason: str) -> None:
    text = _rule_with("  sel: {x: y}\n  condition: sel", product, service)
    assert reason in skip_reason(text)


def test_invalid_sigma_is_reported_not_raised() -> None:
    assert "invalid Sigma rule" in skip_reason("title: broken\nlogsource: {product: okta}\n")


_BASE = """
title: {title}
name: {name}
logsource: {{product: okta, service: okta}}
detection:
  sel: {{eventType: {event}}}
  condition: sel
level: low
"""


def _correlation(body: str) -> str:
    return f"title: Correlated\nlevel: high\ncorrelation:\n{body}"


def _base(name: str, event: str) -> str:
    return _BASE.format(title=f"Base {name}", name=name, event=event)


def test_event_count_becomes_a_count_threshold() -> None:
    body = """  type: event_count
  rules: [failed]
  group-by: [actor.alternateId]
  timespan: 10m
  condition: {gt: 9}
"""
    conversion = convert(_base("failed", "user.session.start") + "---\n" + _correlation(body))
    # The referenced rule is part of the correlation only (generate: false, Sigma's default).
    assert [item.rule["kind"] for item in conversion.converted] == ["threshold"]
    rule = conversion.converted[0].rule
    assert rule["where"] == {"source": "okta_system_log", "action": "user.session.start"}
    assert rule["group_by"] == ["raw.actor.alternateId"]
    assert rule["threshold"] == {"window": "600s", "count": 10}
    Rule.model_validate(rule)


def test_value_count_becomes_a_distinct_threshold_and_generate_keeps_the_base() -> None:
    body = """  type: value_count
  rules: [failed]
  group-by: [client.ipAddress]
  timespan: 1h
  generate: true
  condition: {gte: 20, field: actor.alternateId}
"""
    conversion = convert(_base("failed", "user.session.start"), _correlation(body))
    kinds = sorted(item.rule["kind"] for item in conversion.converted)
    assert kinds == ["match", "threshold"]
    rule = next(i.rule for i in conversion.converted if i.rule["kind"] == "threshold")
    assert rule["threshold"] == {
        "window": "3600s",
        "distinct": {"field": "raw.actor.alternateId", "count": 20},
    }


def test_temporal_ordered_becomes_a_sequence() -> None:
    body = """  type: temporal_ordered
  rules: [reset, grant]
  group-by: [actor.alternateId]
  timespan: 30m
"""
    texts = [
        _base("reset", "user.mfa.factor.reset_all"),
        _base("grant", "user.account.privilege.grant"),
    ]
    conversion = convert(*texts, _correlation(body))
    rule = conversion.converted[0].rule
    assert rule["kind"] == "sequence"
    assert rule["sequence"]["steps"] == [
        {"where": {"source": "okta_system_log", "action": "user.mfa.factor.reset_all"}},
        {"where": {"source": "okta_system_log", "action": "user.account.privilege.grant"}},
    ]
    Rule.model_validate(rule)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("  type: temporal\n  rules: [a, b]\n  group-by: [x]\n  timespan: 5m\n", "any order"),
        (
            "  type: event_count\n  rules: [a]\n  timespan: 5m\n  condition: {lt: 3}\n",
            "condition lt",
        ),
        (
            "  type: value_sum\n  rules: [a]\n  timespan: 5m\n  condition: {gte: 3, field: n}\n",
            "value_sum",
        ),
        (
            "  type: event_count\n  rules: [zz]\n  timespan: 5m\n  condition: {gte: 3}\n",
            "invalid Sigma",
        ),
    ],
)
def test_unsupported_correlations_say_why(body: str, reason: str) -> None:
    conversion = convert(_base("a", "x"), _base("b", "y"), _correlation(body))
    skipped = [s for s in conversion.skipped if s.title == "Correlated"]
    assert skipped and reason in skipped[0].reason, conversion.skipped
