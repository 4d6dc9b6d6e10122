"""Azure DevOps auditing parser on constructed records (tests/data/ci_systems/).

No published Azure DevOps audit records exist in tests/data/samples; the fixture lines
are constructed from Microsoft's documentation (field names, ActionIds, Details texts)
and say so in their ``case`` (see tests/data/ci_systems/README.md). Golden output sits
beside them in tests/data/ci_systems/golden/; regenerate with ``--update-golden``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.config import PipelineConfig
from detector.events.model import ActorType, Category, Event, Outcome, Skipped
from detector.events.parsers.azure_devops_audit import AzureDevOpsAuditParser
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import TestCase
from detector.ruletests import run_rule_tests
from detector.sources.record import Position, RawRecord
from tests.normalizing import VENDORS, as_event, bundled_normalizer
from tests.samples import load_samples

SOURCE = "azure_devops_audit"
FIXTURES = Path(__file__).parents[2] / "data" / "ci_systems"


def fixture_docs() -> list[dict[str, object]]:
    lines = (FIXTURES / f"{SOURCE}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def normalized_lines() -> list[str]:
    normalizer = bundled_normalizer()
    out = []
    for number, row in enumerate(fixture_docs(), start=1):
        record = RawRecord(json.dumps(row).encode(), Position(f"{SOURCE}.jsonl", number))
        results = [r.to_dict() for r in normalizer.normalize(record) if not isinstance(r, Skipped)]
        out.append(
            json.dumps({"line": number, "case": row["case"], "results": results}, sort_keys=True)
        )
    return out


def event_of(case: str) -> Event:
    return as_event(next(r["event"] for r in fixture_docs() if case in str(r["case"])), SOURCE)


def test_every_fixture_is_an_event_of_this_source() -> None:
    normalizer = bundled_normalizer()
    for number, row in enumerate(fixture_docs(), start=1):
        results = normalizer.normalize(RawRecord(json.dumps(row).encode(), Position("t", number)))
        assert [type(r) for r in results] == [Event], (number, results)
        assert isinstance(results[0], Event) and results[0].source == SOURCE
        assert "constructed from" in str(row["case"])


def test_fixtures_match_the_golden_output(request: pytest.FixtureRequest) -> None:
    golden = FIXTURES / "golden" / f"{SOURCE}.jsonl"
    actual = normalized_lines()
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text("\n".join(actual) + "\n", encoding="utf-8")
    expected = golden.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in actual] == [json.loads(line) for line in expected]


def test_every_fixture_action_is_classified_explicitly() -> None:
    taxonomy = bundled_normalizer().taxonomy
    for row in fixture_docs():
        event = as_event(row["event"], SOURCE)
        assert taxonomy.covers(SOURCE, event.action), event.action


def test_stream_record_fields() -> None:
    event = event_of("branch policy removed")
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
    event = event_of("exported with Data as a JSON string")
    assert (event.action, event.target) == (
        "Policy.PolicyConfigRemoved",
        "Require a merge strategy",
    )
    assert event.time.isoformat() == "2026-01-05T10:25:00+00:00"


def test_group_membership_names_the_group_and_the_member() -> None:
    event = event_of("Project Collection Administrators")
    assert event.target == "[fabrikam]\\Project Collection Administrators"
    assert event.attributes["member"] == "Sam Okafor"
    assert event.category is Category.PRIVILEGE_CHANGE and event.privileged


@pytest.mark.parametrize(
    "case", ["audit stream disabled by the system", "build service identity executes"]
)
def test_azure_devops_identities_are_services(case: str) -> None:
    assert event_of(case).actor_type is ActorType.SERVICE


def test_failed_actions_are_failures() -> None:
    doc = dict(fixture_docs()[0]["event"])  # type: ignore[call-overload]
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
    doc = next(r["event"] for r in fixture_docs() if case in str(r["case"]))
    assert alerting_rules(doc, ADO_RULES) == expected
