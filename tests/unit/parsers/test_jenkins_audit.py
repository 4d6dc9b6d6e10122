"""Jenkins Audit Trail parser on constructed records (tests/data/ci_systems/).

The plugin publishes no example records; the fixture lines are its message texts as
built by its source (jenkinsci/audit-trail-plugin), inside the JSON its Elastic Search
logger posts or a shipper sends for a file-logger line, and say so in their ``case``.
Golden output sits in tests/data/ci_systems/golden/; regenerate with ``--update-golden``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.events.model import ActorType, Category, Event, Outcome, Skipped
from detector.events.parsers.jenkins_audit import JenkinsAuditParser
from detector.sources.record import Position, RawRecord
from tests.normalizing import VENDORS, as_event, bundled_normalizer
from tests.samples import load_samples
from tests.unit.parsers.test_azure_devops_audit import alerting_rules

SOURCE = "jenkins_audit"
FIXTURES = Path(__file__).parents[2] / "data" / "ci_systems"
SECRET = Category.SECRET_ACCESS
JENKINS_RULES = ("jenkins-brute-force", "jenkins-script-console", "jenkins-credentials-changed")


def fixture_docs() -> list[dict[str, object]]:
    lines = (FIXTURES / f"{SOURCE}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def event_of(case: str) -> Event:
    return as_event(next(r["event"] for r in fixture_docs() if case in str(r["case"])), SOURCE)


def normalized_lines() -> list[str]:
    normalizer = bundled_normalizer()
    out = []
    for number, row in enumerate(fixture_docs(), start=1):
        record = RawRecord(json.dumps(row).encode(), Position(f"{SOURCE}.jsonl", number))
        results = [r.to_dict() for r in normalizer.normalize(record) if not isinstance(r, Skipped)]
        line = {"line": number, "case": row["case"], "results": results}
        out.append(json.dumps(line, sort_keys=True))
    return out


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


@pytest.mark.parametrize(
    ("case", "action", "category", "privileged", "target"),
    [
        ("script console used", "script.executed", Category.CONFIG_CHANGE, True, None),
        ("scriptText request", "jenkins.scriptText", Category.CONFIG_CHANGE, True, None),
        ("credentials created", "credentials.createCredentials", SECRET, True, None),
        ("credential updated", "credentials.updateSubmit", SECRET, True, "deploy-key"),
        ("job configuration", "job.configSubmit", Category.PIPELINE, False, "payments/deploy"),
        ("job created", "job.createItem", Category.PIPELINE, False, "payments/hotfix"),
        ("build aborted", "build.stop", Category.PIPELINE, False, "payments/deploy#43"),
        ("agent taken offline", "computer.toggleOffline", Category.INFRASTRUCTURE_CHANGE, False,
         "linux-agent-3"),
    ],
)  # fmt: skip
def test_request_and_listener_actions(
    case: str, action: str, category: Category, privileged: bool, target: str | None
) -> None:
    event = event_of(case)
    assert (event.action, event.category, event.privileged) == (action, category, privileged)
    if target is not None:
        assert event.target == target


def test_request_records_the_user_and_address() -> None:
    event = event_of("scriptText request")
    assert (event.actor, event.actor_type, event.ip) == (
        "mallory",
        ActorType.HUMAN,
        "198.51.100.77",
    )


def test_login_failures_are_failed_authentications() -> None:
    event = event_of("failed login 1 of 10")
    assert (event.action, event.outcome, event.actor) == ("loginFailure", Outcome.FAILURE, "admin")
    assert event.category is Category.AUTHENTICATION
    assert event_of("successful login").outcome is Outcome.SUCCESS


def test_builds_act_for_the_user_who_started_them() -> None:
    started = event_of("build started by a user")
    assert (started.actor, started.target) == ("Alice Example", "payments/deploy#42")
    used = event_of("credentials used by a build")
    assert (used.actor, used.actor_type, used.target) == (
        "payments/deploy#42",
        ActorType.SERVICE,
        "deploy-key",
    )


def test_file_logger_prefix_is_dropped_and_the_shipper_time_used() -> None:
    event = event_of("file logger line")
    assert event.time.isoformat() == "2026-01-05T10:31:00.512000+00:00"
    assert event.attributes["uri"] == "/computer/linux-agent-3/toggleOffline"


def test_unrelated_messages_are_not_taken() -> None:
    parser = JenkinsAuditParser()
    for message in ("GET /index.html 200", "user alice logged in", "Started by timer"):
        assert not parser.matches({"message": message, "@timestamp": "2026-01-05T10:00:00Z"})


@pytest.mark.parametrize("vendor", VENDORS)
def test_published_samples_of_other_vendors_are_not_taken(vendor: str) -> None:
    parser = JenkinsAuditParser()
    for item in load_samples(vendor):
        if isinstance(item.event, dict):
            assert not parser.matches(item.event), (vendor, item.line)


def test_script_console_use_raises_the_alert() -> None:
    doc = next(r["event"] for r in fixture_docs() if "script console used" in str(r["case"]))
    assert alerting_rules(doc, JENKINS_RULES) == {"jenkins-script-console"}


def test_credential_change_raises_the_alert() -> None:
    doc = next(r["event"] for r in fixture_docs() if "credential updated" in str(r["case"]))
    assert alerting_rules(doc, JENKINS_RULES) == {"jenkins-credentials-changed"}


def test_ten_login_failures_raise_brute_force_through_the_pipeline() -> None:
    from detector.config import PipelineConfig
    from detector.rules.loader import bundled_rules_dir, load_rules
    from detector.rules.model import TestCase
    from detector.ruletests import run_rule_tests

    failures = [r["event"] for r in fixture_docs() if "failed login" in str(r["case"])]
    rule = next(r for r in load_rules([bundled_rules_dir()]) if r.id == "jenkins-brute-force")
    probe = TestCase.model_validate(
        {"name": "fixtures", "alerts": 1, "events": [{"raw": doc} for doc in failures]}
    )
    (result,) = run_rule_tests([rule.model_copy(update={"tests": [probe]})], PipelineConfig())
    assert result.error is None and result.alerts == 1
