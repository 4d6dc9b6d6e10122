"""Whether a sign-in needed a second factor: Okta's policy rule factor mode and Entra ID's
authentication requirement, normalized for the rule sign-in-without-mfa, in every shape
the parsers accept (Okta plain and EventBridge; Entra export, Graph API, Log Analytics)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from detector.events.model import Event
from detector.features.observation import Observation
from detector.rules.context import RuleContext
from detector.rules.engine import RuleEngine
from detector.rules.loader import bundled_rules_dir, load_rules
from tests.normalizing import normalize_one
from tests.samples import sample

# Written from Okta's LogEvent reference: Identity Engine's sign-on policy evaluation names
# the app and the policy rule that decided, with that rule's factor mode.
OKTA_POLICY_EVALUATION: dict[str, Any] = {
    "uuid": "4c5d6e7f-8a4b-11f0-9c1e-2b7a1f0c2d70",
    "published": "2026-01-05T10:00:00.000Z",
    "eventType": "policy.evaluate_sign_on",
    "version": "0",
    "displayMessage": "Evaluation of sign-on policy",
    "actor": {"id": "00u1dana", "type": "User", "alternateId": "dana.lee@example.com"},
    "client": {"ipAddress": "198.51.100.23"},
    "outcome": {"result": "ALLOW", "reason": "Sign-on policy evaluation resulted in AUTHENTICATED"},
    "target": [
        {"id": "0oa1", "type": "AppInstance", "alternateId": "Salesforce.com"},
        {
            "id": "rul1",
            "type": "Rule",
            "alternateId": "unknown",
            "displayName": "Password only from office",
            "detailEntry": {"policyRuleFactorMode": "1FA"},
        },
    ],
    "authenticationContext": {"authenticationStep": 0, "externalSessionId": "idx1"},
}
ROPC = "Azure.Audit.ROPCLoginNoMFA: ROPC Login Without MFA"


def _event(doc: Any) -> Event:
    result = normalize_one(doc)
    assert isinstance(result, Event), result
    return result


def _fires(rule_id: str, event: Event) -> bool:
    rule = next(r for r in load_rules([bundled_rules_dir()]) if r.id == rule_id)
    return bool(RuleEngine([rule], RuleContext()).evaluate(Observation(event=event)))


def test_okta_policy_rule_factor_mode_becomes_an_attribute() -> None:
    event = _event(OKTA_POLICY_EVALUATION)
    assert event.attributes["factor_mode"] == "1FA"
    # The rule is how the decision was made; the app is what was signed in to.
    assert event.target == "Salesforce.com"
    assert _fires("sign-in-without-mfa", event)


def test_okta_two_factor_rule_does_not_fire() -> None:
    doc = copy.deepcopy(OKTA_POLICY_EVALUATION)
    doc["target"][1]["detailEntry"]["policyRuleFactorMode"] = "2fa"
    event = _event(doc)
    assert event.attributes["factor_mode"] == "2FA"
    assert not _fires("sign-in-without-mfa", event)


def test_okta_factor_mode_inside_an_eventbridge_envelope() -> None:
    wrapped = {
        "version": "0",
        "id": "5e6f7a8b-0000-4000-8000-000000000001",
        "detail-type": "SystemLog",
        "source": "aws.partner/okta.com/acme/okta-logs",
        "time": "2026-01-05T10:00:00Z",
        "detail": OKTA_POLICY_EVALUATION,
    }
    assert _event(wrapped).attributes["factor_mode"] == "1FA"


def test_okta_events_without_a_policy_rule_have_no_factor_mode() -> None:
    event = _event(sample("okta_system_log", "Okta.Login.Success: Successful Login"))
    assert "factor_mode" not in event.attributes


@pytest.mark.parametrize("shape", ["export", "graph"])
def test_entra_authentication_requirement_in_export_and_graph(shape: str) -> None:
    published = sample("azure_entra_id", ROPC)
    # A Graph signIn always has a status; the published export record left it out.
    graph = {**published["properties"], "status": {"errorCode": 0}}
    event = _event(published if shape == "export" else graph)
    assert event.attributes["auth_requirement"] == "singleFactorAuthentication"
    assert event.attributes["conditional_access"] == "notApplied"


def test_entra_published_ropc_sign_in_fires_and_its_failure_does_not() -> None:
    assert _fires("sign-in-without-mfa", _event(sample("azure_entra_id", ROPC)))
    failed = sample("azure_entra_id", "Azure.Audit.ROPCLoginNoMFA: Failed ROPC Login")
    assert not _fires("sign-in-without-mfa", _event(failed))


def test_entra_graph_record_of_a_non_interactive_sign_in_does_not_fire() -> None:
    # Graph records have no log category: the isInteractive flag tells the token refreshes.
    graph = {**sample("azure_entra_id", ROPC)["properties"], "status": {"errorCode": 0}}
    assert _fires("sign-in-without-mfa", _event({**graph, "isInteractive": True}))
    assert not _fires("sign-in-without-mfa", _event({**graph, "isInteractive": False}))


def test_entra_log_analytics_row_gives_the_same_attributes() -> None:
    row = {
        "Type": "SigninLogs",
        "TimeGenerated": "2026-01-05T10:00:00Z",
        "OperationName": "Sign-in activity",
        "Category": "SignInLogs",
        "ResultType": "0",
        "UserPrincipalName": "priya.n@contoso.com",
        "IPAddress": "198.51.100.99",
        "AppDisplayName": "Office 365 Exchange Online",
        "ClientAppUsed": "IMAP4",
        "AuthenticationRequirement": "singleFactorAuthentication",
        "ConditionalAccessStatus": "notApplied",
        "Status": '{"errorCode":0}',
    }
    event = _event(row)
    assert event.attributes["auth_requirement"] == "singleFactorAuthentication"
    assert event.attributes["conditional_access"] == "notApplied"
    assert event.attributes["log_category"] == "SignInLogs"
    assert _fires("sign-in-without-mfa", event)
