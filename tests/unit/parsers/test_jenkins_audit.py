"""Jenkins Audit Trail parser on constructed records (tests/data/ci_systems/).

The plugin publishes no example records; the fixture lines are its message texts as
built by its source (jenkinsci/audit-trail-plugin), inside the JSON its Elastic Search
logger posts or a shipper sends for a file-logger line, and say so in their ``case``.
Golden output sits in tests/data/ci_systems/golden/; regenerate with ``--update-golden``.
"""

from __future__ import annotations

import pytest

from detector.events.model import ActorType, Category, Outcome
from detector.events.parsers.jenkins_audit import JenkinsAuditParser
from tests.ci_system_fixtures import event_of, fixture_docs
from tests.normalizing import VENDORS
from tests.samples import load_samples
from tests.unit.parsers.test_azure_devops_audit import alerting_rules

SOURCE = "jenkins_audit"
SECRET = Category.SECRET_ACCESS
JENKINS_RULES = ("jenkins-brute-force", "jenkins-script-console", "jenkins-credentials-changed")


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
    event = event_of(SOURCE, case)
    assert (event.action, event.category, event.privileged) == (action, category, privileged)
    if target is not None:
        assert event.target == target


def test_request_records_the_user_and_address() -> None:
    event = event_of(SOURCE, "scriptText request")
    assert (event.actor, event.actor_type, event.ip) == (
        "mallory",
        ActorType.HUMAN,
        "198.51.100.77",
    )


def test_login_failures_are_failed_authentications() -> None:
    event = event_of(SOURCE, "failed login 1 of 10")
    assert (event.action, event.outcome, event.actor) == ("loginFailure", Outcome.FAILURE, "admin")
    assert event.category is Category.AUTHENTICATION
    assert event_of(SOURCE, "successful login").outcome is Outcome.SUCCESS


def test_builds_act_for_the_user_who_started_them() -> None:
    started = event_of(SOURCE, "build started by a user")
    assert (started.actor, started.target) == ("Alice Example", "payments/deploy#42")
    used = event_of(SOURCE, "credentials used by a build")
    assert (used.actor, used.actor_type, used.target) == (
        "payments/deploy#42",
        ActorType.SERVICE,
        "deploy-key",
    )


def test_file_logger_prefix_is_dropped_and_the_shipper_time_used() -> None:
    event = event_of(SOURCE, "file logger line")
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
    doc = next(r["event"] for r in fixture_docs(SOURCE) if "script console used" in str(r["case"]))
    assert alerting_rules(doc, JENKINS_RULES) == {"jenkins-script-console"}


def test_credential_change_raises_the_alert() -> None:
    doc = next(r["event"] for r in fixture_docs(SOURCE) if "credential updated" in str(r["case"]))
    assert alerting_rules(doc, JENKINS_RULES) == {"jenkins-credentials-changed"}


def test_ten_login_failures_raise_brute_force_through_the_pipeline() -> None:
    from detector.config import PipelineConfig
    from detector.rules.loader import bundled_rules_dir, load_rules
    from detector.rules.model import TestCase
    from detector.ruletests import run_rule_tests

    failures = [r["event"] for r in fixture_docs(SOURCE) if "failed login" in str(r["case"])]
    rule = next(r for r in load_rules([bundled_rules_dir()]) if r.id == "jenkins-brute-force")
    probe = TestCase.model_validate(
        {"name": "fixtures", "alerts": 1, "events": [{"raw": doc} for doc in failures]}
    )
    (result,) = run_rule_tests([rule.model_copy(update={"tests": [probe]})], PipelineConfig())
    assert result.error is None and result.alerts == 1
