"""Azure DevOps auditing parser on constructed records (tests/data/ci_systems/).

No published Azure DevOps audit records exist in tests/data/samples; the fixture lines
are constructed from Microsoft's documentation (field names, ActionIds, Details texts)
and say so in their ``case`` (see tests/data/ci_systems/README.md). Golden output sits
beside them in tests/data/ci_systems/golden/; regenerate with ``--update-golden``.
"""

from __future__ import annotations

import pytest

from detector.config import PipelineConfig
from detector.events.model import ActorType, Category, Outcome
from detector.events.parsers.azure_devops_audit import AzureDevOpsAuditParser
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import TestCase
from detector.ruletests import run_rule_tests
from tests.ci_system_fixtures import event_of, fixture_docs
from tests.normalizing import VENDORS, as_event
from tests.samples import load_samples

SOURCE = "azure_devops_audit"


def test_stream_record_fields() -> None:
    event = event_of(SOURCE, "branch policy removed")
    assert (event.action, event.category, event.privileged) == (
        "Policy.PolicyConfigRemoved",
        Category.CONFIG_CHANGE,
        True,
    )
    assert (event.actor, event.actor_type, event.outcome) == (
        "dana.lee@fabrikam.com",
        ActorType.HUMAN,
        Outcome.SUCCESS,
    )
    assert (event.ip, event.target) == ("203.0.113.41", "Minimum number of reviewers")
    assert event.attributes["org"] == "fabrikam"
    assert event.attributes["project"] == "Payments"
    assert event.attributes["auth_mechanism"] == "AAD_Cookie"
    assert event.id.startswith("azure_devops_audit:637e1a4c-")


def test_log_analytics_row_with_data_as_a_string_reads_the_same() -> None:
    event = event_of(SOURCE, "exported with Data as a JSON string")
    assert (event.action, event.target) == (
        "Policy.PolicyConfigRemoved",
        "Require a merge strategy",
    )
    assert event.time.isoformat() == "2026-01-05T10:25:00+00:00"


def test_group_membership_names_the_group_and_the_member() -> None:
    event = event_of(SOURCE, "Project Collection Administrators")
    assert event.target == "[fabrikam]\\Project Collection Administrators"
    assert event.attributes["member"] == "Sam Okafor"
    assert event.category is Category.PRIVILEGE_CHANGE and event.privileged


@pytest.mark.parametrize(
    "case", ["audit stream disabled by the system", "build service identity executes"]
)
def test_azure_devops_identities_are_services(case: str) -> None:
    assert event_of(SOURCE, case).actor_type is ActorType.SERVICE


def test_failed_actions_are_failures() -> None:
    doc = dict(fixture_docs(SOURCE)[0]["event"])  # type: ignore[call-overload]
    doc["actionId"] = "Project.CreateFailed"
    assert as_event(doc, SOURCE).outcome is Outcome.FAILURE


@pytest.mark.parametrize("vendor", VENDORS)
def test_published_samples_of_other_vendors_are_not_taken(vendor: str) -> None:
    parser = AzureDevOpsAuditParser()
    for item in load_samples(vendor):
        if isinstance(item.event, dict):
            assert not parser.matches(item.event), (vendor, item.line)


ADO_RULES = (
    "ado-audit-stream-stopped",
    "ado-branch-policy-removed",
    "ado-admin-group-member-added",
)


def alerting_rules(doc: object, rule_ids: tuple[str, ...]) -> set[str]:
    """Which of the bundled rules ``rule_ids`` alert on ``doc`` through the real pipeline."""
    rules = [r for r in load_rules([bundled_rules_dir()]) if r.id in rule_ids]
    probe = TestCase.model_validate({"name": "fixture", "alerts": 1, "events": [{"raw": doc}]})
    fired = set()
    for rule in rules:
        (result,) = run_rule_tests([rule.model_copy(update={"tests": [probe]})], PipelineConfig())
        assert result.error is None, result.error
        if result.alerts:
            fired.add(rule.id)
    return fired


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("audit stream deleted", {"ado-audit-stream-stopped"}),
        ("audit stream disabled by the system", {"ado-audit-stream-stopped"}),
        ("branch policy removed", {"ado-branch-policy-removed"}),
        ("member added to Project Collection Administrators", {"ado-admin-group-member-added"}),
        ("member added to a team group", set()),
    ],
)
def test_attack_records_raise_the_expected_alert(case: str, expected: set[str]) -> None:
    doc = next(r["event"] for r in fixture_docs(SOURCE) if case in str(r["case"]))
    assert alerting_rules(doc, ADO_RULES) == expected
