"""Converted Sigma rules on published records: they fire where the rule's intent holds.

For each log source, one Sigma rule written for this test (original text, not copied
from SigmaHQ: this project never commits fetched rule content) is converted, loaded as
a rule pack and run through the real pipeline, one published record at a time
(tests/data/samples, see its README for origins). The rule must alert exactly on the
records that satisfy its intent, which each case states independently as a Python
predicate over the vendor document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from detector.cli.replay import with_model_options
from detector.config import PipelineConfig
from detector.normalizing import build_normalizer
from detector.pipeline import Pipeline
from detector.rules.model import Rule
from detector.sources.record import Position, RawRecord
from tests.samples import load_samples
from tests.unit.sigma.helpers import convert, load_converted

Doc = dict[str, Any]


def _get(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _text(doc: Doc, *paths: str) -> str:
    for path in paths:
        value = _get(doc, path)
        if value is not None:
            return str(value)
    return ""


@dataclass(frozen=True)
class Case:
    samples: str
    sigma: str
    intent: Callable[[Doc], bool]


CASES = {
    "cloudtrail": Case(
        "cloudtrail",
        """
title: Trail stopped or deleted successfully
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: [StopLogging, DeleteTrail]
  failed:
    errorCode|exists: true
  condition: selection and not failed
level: high
""",
        lambda d: (
            d.get("eventSource") == "cloudtrail.amazonaws.com"
            and d.get("eventName") in ("StopLogging", "DeleteTrail")
            and "errorCode" not in d
        ),
    ),
    "github": Case(
        "github_audit",
        """
title: Branch protection removed or overridden
logsource: {product: github, service: audit}
detection:
  selection:
    action|startswith: 'protected_branch.'
  harmless:
    action: [protected_branch.create, protected_branch.update_admin_enforced]
  condition: selection and not harmless
level: high
""",
        lambda d: (
            _text(d, "action").startswith("protected_branch.")
            and _text(d, "action")
            not in ("protected_branch.create", "protected_branch.update_admin_enforced")
        ),
    ),
    "okta": Case(
        "okta_system_log",
        """
title: Okta privilege granted
logsource: {product: okta, service: okta}
detection:
  selection:
    eventType: user.account.privilege.grant
  condition: selection
level: high
""",
        lambda d: _text(d, "eventType", "eventtype") == "user.account.privilege.grant",
    ),
    "kubernetes": Case(
        "k8s_audit",
        """
title: Cluster role binding created or deleted
logsource: {product: kubernetes, service: audit}
detection:
  selection:
    verb: [create, delete]
    objectRef.resource: clusterrolebindings
  condition: selection
level: medium
""",
        lambda d: (
            _text(d, "verb") in ("create", "delete")
            and _text(d, "objectRef.resource") == "clusterrolebindings"
        ),
    ),
    "gcp": Case(
        "gcp_audit",
        """
title: IAM policy set on a GCP resource
logsource: {product: gcp, service: gcp.audit}
detection:
  selection:
    gcp.audit.method_name|endswith: SetIamPolicy
  condition: selection
level: medium
""",
        lambda d: _text(d, "protoPayload.methodName").lower().endswith("setiampolicy"),
    ),
    "azure_activity": Case(
        "azure_activity",
        """
title: Storage account deleted
logsource: {product: azure, service: activitylogs}
detection:
  selection:
    operationName: MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE
  condition: selection
level: medium
""",
        lambda d: (
            _text(d, "operationName", "operationName.value").upper()
            == "MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE"
        ),
    ),
    "entra_signin": Case(
        "azure_entra_id",
        """
title: Sign-in with a wrong password
logsource: {product: azure, service: signinlogs}
detection:
  selection:
    ResultType: 50126
  condition: selection
level: low
""",
        lambda d: _text(d, "resultType", "ResultType") == "50126",
    ),
    "entra_audit": Case(
        "azure_entra_id",
        """
title: Member added to a directory role
logsource: {product: azure, service: auditlogs}
detection:
  selection:
    ActivityDisplayName|contains: member to role
  condition: selection
level: medium
""",
        lambda d: (
            "member to role"
            in _text(d, "properties.activityDisplayName", "ActivityDisplayName").lower()
        ),
    ),
    "m365": Case(
        "m365_audit",
        """
title: Failed Microsoft 365 sign-in
logsource: {product: m365, service: audit}
detection:
  selection:
    Operation: UserLoginFailed
    Workload: AzureActiveDirectory
  condition: selection
level: low
""",
        lambda d: (
            d.get("Operation") == "UserLoginFailed" and d.get("Workload") == "AzureActiveDirectory"
        ),
    ),
}


@pytest.fixture(scope="module")
def normalizer_config() -> PipelineConfig:
    return with_model_options(PipelineConfig(), None, True)


def _alerts_per_record(
    rules: list[Rule], docs: list[Doc], config: PipelineConfig
) -> list[bool | None]:
    """For each document: did the rule alert (None: the document does not normalize)."""
    normalizer = build_normalizer(config)
    verdicts: list[bool | None] = []
    for number, doc in enumerate(docs):
        pipeline = Pipeline.from_config(config, rules=rules, normalizer=normalizer)
        record = RawRecord(json.dumps(doc).encode(), Position("sample", number))
        outcome = pipeline.process([record])
        if not outcome.events:
            verdicts.append(None)
            continue
        verdicts.append(bool([*outcome.alerts, *pipeline.finish()]))
    return verdicts


@pytest.mark.parametrize("name", sorted(CASES))
def test_converted_rule_fires_exactly_where_its_intent_holds(
    name: str, tmp_path: Path, normalizer_config: PipelineConfig
) -> None:
    case = CASES[name]
    rules = load_converted(convert(case.sigma), tmp_path)
    docs = [s.event for s in load_samples(case.samples) if isinstance(s.event, dict)]
    verdicts = _alerts_per_record(rules, docs, normalizer_config)
    judged = [(doc, fired) for doc, fired in zip(docs, verdicts, strict=True) if fired is not None]
    wrong = [doc for doc, fired in judged if fired != case.intent(doc)]
    assert not wrong, json.dumps(wrong[:2])[:2000]
    fired = sum(1 for _, fired in judged if fired)
    assert 0 < fired < len(judged)  # it fired somewhere and stayed quiet elsewhere


# A risk detection as Entra's diagnostic export delivers it (category UserRiskEvents). No
# published sample exists in tests/data/samples; this record was written for this test from
# the field list of Microsoft's "riskDetection" resource documentation.
RISK_EVENT: dict[str, Any] = {
    "time": "2026-01-05T10:00:00Z",
    "resourceId": "/tenants/0b1c2d3e-0000-4000-8000-000000000001/providers/Microsoft.aadiam",
    "operationName": "User Risk Detection",
    "category": "UserRiskEvents",
    "tenantId": "0b1c2d3e-0000-4000-8000-000000000001",
    "properties": {
        "id": "risk-1",
        "riskEventType": "anonymizedIPAddress",
        "riskLevel": "medium",
        "ipAddress": "198.51.100.7",
        "activityDateTime": "2026-01-05T09:58:00Z",
        "userPrincipalName": "ana@example.com",
    },
}


def test_risk_detection_rule_on_an_exported_risk_event(
    tmp_path: Path, normalizer_config: PipelineConfig
) -> None:
    sigma = """
title: Sign-in from an anonymizing address
logsource: {product: azure, service: riskdetection}
detection:
  selection:
    riskEventType: anonymizedIPAddress
  condition: selection
level: high
"""
    rules = load_converted(convert(sigma), tmp_path)
    other = {
        **RISK_EVENT,
        "properties": {
            **RISK_EVENT["properties"],
            "id": "risk-2",
            "riskEventType": "unfamiliarFeatures",
        },
    }
    assert _alerts_per_record(rules, [RISK_EVENT, other], normalizer_config) == [True, False]


def _okta_failure() -> Doc:
    """A published Okta sign-in failure (tests/data/samples), to be replayed in copies."""
    for sample in load_samples("okta_system_log"):
        doc = sample.event
        if (
            isinstance(doc, dict)
            and doc.get("eventType") == "user.session.start"
            and _text(doc, "outcome.result") == "FAILURE"
            and _text(doc, "actor.alternateId")
            and doc.get("published")
        ):
            return doc
    raise AssertionError("no published Okta failure sample")


def _copies(doc: Doc, count: int, **changes: Any) -> list[Doc]:
    """``count`` copies a minute apart, each with its own uuid (the dedup key)."""
    return [
        {**doc, **changes, "uuid": f"copy-{n}-{changes}", "published": f"2026-01-05T10:{n:02d}:00Z"}
        for n in range(count)
    ]


EVENT_COUNT = """
title: Okta sign-in failure
name: okta_failure
logsource: {product: okta, service: okta}
detection:
  selection:
    eventType: user.session.start
    outcome.result: FAILURE
  condition: selection
---
title: Repeated Okta sign-in failures for one user
correlation:
  type: event_count
  rules: [okta_failure]
  group-by: [actor.alternateId]
  timespan: 10m
  condition: {gte: 3}
level: high
"""


@pytest.mark.parametrize(("copies", "alerts"), [(3, True), (2, False)])
def test_event_count_correlation_on_replayed_published_record(
    copies: int, alerts: bool, tmp_path: Path, normalizer_config: PipelineConfig
) -> None:
    rules = load_converted(convert(EVENT_COUNT), tmp_path)
    assert [rule.kind.value for rule in rules] == ["threshold"]
    pipeline = Pipeline.from_config(normalizer_config, rules=rules)
    records = [
        RawRecord(json.dumps(doc).encode(), Position("sample", n))
        for n, doc in enumerate(_copies(_okta_failure(), copies))
    ]
    outcome = pipeline.process(records)
    assert len(outcome.events) == copies
    assert bool([*outcome.alerts, *pipeline.finish()]) is alerts


TEMPORAL_ORDERED = """
title: Okta password reset
name: okta_reset
logsource: {product: okta, service: okta}
detection:
  selection: {eventType: user.account.reset_password}
  condition: selection
---
title: Okta sign-in failure
name: okta_failure
logsource: {product: okta, service: okta}
detection:
  selection: {eventType: user.session.start, outcome.result: FAILURE}
  condition: selection
---
title: Password reset, then failed sign-in
correlation:
  type: temporal_ordered
  rules: [okta_reset, okta_failure]
  group-by: [actor.alternateId]
  timespan: 30m
level: medium
"""


@pytest.mark.parametrize(
    ("order", "alerts"), [(("reset", "fail"), True), (("fail", "reset"), False)]
)
def test_temporal_ordered_correlation_needs_the_order(
    order: tuple[str, str], alerts: bool, tmp_path: Path, normalizer_config: PipelineConfig
) -> None:
    rules = load_converted(convert(TEMPORAL_ORDERED), tmp_path)
    assert [rule.kind.value for rule in rules] == ["sequence"]
    failure = _okta_failure()
    kinds = {
        "reset": {**failure, "eventType": "user.account.reset_password"},
        "fail": failure,
    }
    docs = [
        {**kinds[kind], "uuid": f"ordered-{n}", "published": f"2026-01-05T10:0{n}:00Z"}
        for n, kind in enumerate(order)
    ]
    pipeline = Pipeline.from_config(normalizer_config, rules=rules)
    records = [RawRecord(json.dumps(d).encode(), Position("s", n)) for n, d in enumerate(docs)]
    outcome = pipeline.process(records)
    assert len(outcome.events) == 2
    assert bool([*outcome.alerts, *pipeline.finish()]) is alerts
