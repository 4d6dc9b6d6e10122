"""GitHub audit log parser and taxonomy on published events: streaming, REST API, Panther."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import ActorType, Outcome
from detector.events.parsers.github_audit import GitHubAuditParser
from tests.normalizing import (
    as_dead_letter,
    as_event,
    bundled_normalizer,
    other_vendors,
    sample_event,
)
from tests.samples import load_samples, sample

SOURCE = "github_audit"
# A workflow_run webhook delivery (GitHub's documented payload shape, trimmed): it has an
# "action" too, but it is a webhook, not an audit-log entry.
WORKFLOW_RUN_WEBHOOK: dict[str, Any] = {
    "action": "completed",
    "workflow_run": {
        "id": 30433642,
        "name": "Build",
        "event": "push",
        "status": "completed",
        "conclusion": "success",
        "head_branch": "main",
        "created_at": "2024-05-06T20:13:25Z",
        "actor": {"login": "octocat", "id": 1, "type": "User"},
    },
    "repository": {"id": 1296269, "full_name": "octo-org/hello-world", "private": False},
    "organization": {"login": "octo-org", "id": 2},
    "sender": {"login": "octocat", "id": 1, "type": "User"},
}


@pytest.fixture(scope="module")
def parser() -> GitHubAuditParser:
    return GitHubAuditParser()


def test_rest_api_event_with_epoch_ms_and_document_id() -> None:
    event = sample_event(
        SOURCE, "REST API docs example audit-log response item: action team.add_member"
    )
    assert event.time == datetime(2020, 12, 2, 17, 24, 34, 512000, tzinfo=UTC)
    assert (event.action, event.category.value, event.privileged) == (
        "team.add_member",
        "privilege_change",
        False,
    )
    assert (event.outcome, event.actor, event.actor_type) == (
        Outcome.SUCCESS,
        "octocat",
        ActorType.HUMAN,
    )
    assert event.id == "github_audit:xJJFlFOhQ6b-5vaAFy9Rjw"
    assert event.target == "monalisa"  # the user added to the team
    assert event.attributes == {
        "org": "octo-corp",
        "team": "octo-corp/example-team",
        "user": "monalisa",
    }
    assert (event.ip, event.country, event.user_agent) == (None, None, None)


def test_streaming_event_with_actor_ip_and_country() -> None:
    event = sample_event(SOURCE, "Enterprise Log - business_advanced_security.disabled")
    assert event.time == datetime(2022, 12, 15, 13, 31, 51, 111000, tzinfo=UTC)
    assert event.action == "business_advanced_security.disabled"
    assert (event.category.value, event.privileged) == ("config_change", True)
    assert (event.actor, event.ip, event.country) == ("bobert", "12.12.12.12", "US")
    assert event.id == "github_audit:gAcccccccccccccccccccc"
    assert event.attributes["business"] == "example-enterprise"
    assert event.attributes["operation_type"] == "modify"


def test_panther_event_with_string_created_at() -> None:
    event = sample_event(SOURCE, "GitHub Action Failed - No Configuration")
    # Panther's data-lake string, taken from at_sign_timestamp (= created_at here).
    assert event.time == datetime(2023, 1, 31, 18, 58, 27, 638000, tzinfo=UTC)
    assert (event.action, event.category.value) == ("workflows.completed_workflow_run", "pipeline")
    assert (event.actor, event.actor_type, event.outcome) == (
        "github_handle",
        ActorType.HUMAN,
        Outcome.SUCCESS,
    )
    assert event.target == "your-org/panther-analysis-copy"
    assert event.id == "github_audit:pWWWWWWWWWWWWWWWWWWWWW"
    assert event.attributes["org"] == "panther-labs"


def test_git_clone_over_an_oauth_token() -> None:
    event = sample_event(SOURCE, "GitHub.Secret.Scanning.Alert.Created: git.clone-false")
    assert event.time == datetime(2023, 11, 20, 21, 20, 9, 423000, tzinfo=UTC)
    assert (event.action, event.category.value, event.privileged) == (
        "git.clone",
        "code_access",
        False,
    )
    # An OAuth token acts on behalf of the user who granted it: still a human.
    assert (event.actor, event.actor_type) == ("acme-inc-user", ActorType.HUMAN)
    assert (event.ip, event.country, event.user_agent) == ("5.6.7.8", "US", "git/2.30.2")
    assert event.target == "acme-inc/a-repo"
    assert event.id == "github_audit:KCYtigpnShPBSohA4OXbRg=="
    assert event.attributes == {
        "org": "acme-inc",
        "repo": "acme-inc/a-repo",
        "business": "acme-inc",
        "programmatic_access_type": "OAuth access token",
    }


def test_malformed_looking_panther_timestamp_is_accepted() -> None:
    event = sample_event(SOURCE, "GitHub - Ruleset Deleted")
    assert event.raw["created_at"] == "2024-12-17 00:00:00000000"
    assert event.time == datetime(2024, 12, 17, tzinfo=UTC)
    assert (event.action, event.category.value, event.privileged) == (
        "repository_ruleset.destroy",
        "config_change",
        True,
    )
    assert (event.actor, event.actor_type, event.country) == ("dog", ActorType.HUMAN, "US")
    assert event.target == "some-org/ruleset-repo"
    assert event.user_agent is not None and event.user_agent.startswith("Mozilla/5.0")


def test_float_epoch_created_at() -> None:
    event = sample_event(
        SOURCE, "Github.Organization.App.Integration.Installed: Repository Archived"
    )
    assert event.raw["created_at"] == 1621305118553.0
    assert event.time == datetime(2021, 5, 18, 2, 31, 58, 553000, tzinfo=UTC)
    assert (event.action, event.category.value) == ("repo.archived", "code_access")


def test_actor_is_bot_makes_a_service(parser: GitHubAuditParser) -> None:
    doc = sample(SOURCE, "GitHub App Manual Workflow Dispatch by Bot")
    assert parser.parse(doc).actor_type is ActorType.SERVICE
    event = as_event(doc, SOURCE)
    assert (event.actor, event.actor_type) == ("github-actions[bot]", ActorType.SERVICE)
    assert event.time == datetime(2025, 10, 15, 18, 45, 47, 48000, tzinfo=UTC)
    assert (event.action, event.category.value) == ("workflows.created_workflow_run", "pipeline")
    assert event.target == "YourCompany/YourRepo"


def test_app_server_to_server_token_makes_a_service(parser: GitHubAuditParser) -> None:
    doc = sample(SOURCE, "GitHub.Workflow.DispatchByGitHubBot: Other Event")
    assert "actor_is_bot" not in doc
    parsed = parser.parse(doc)
    assert parsed.actor_type is ActorType.SERVICE
    assert parsed.attributes["programmatic_access_type"] == "GitHub App server-to-server token"
    # Only Panther's p_event_time carries the time here: the last resort.
    assert parsed.time == datetime(2025, 10, 15, 18, 45, 47, 48000, tzinfo=UTC)


def test_bot_login_is_a_service_through_the_automation_globs(parser: GitHubAuditParser) -> None:
    doc = sample(SOURCE, "Initial Access by Allowed User")
    assert parser.parse(doc).actor_type is ActorType.HUMAN  # nothing in the event says bot
    event = as_event(doc, SOURCE)
    assert (event.actor, event.actor_type) == ("secret-scanning[bot]", ActorType.SERVICE)
    assert event.time == datetime(2021, 6, 17, 23, 15, 19, 91000, tzinfo=UTC)
    assert (event.action, event.category.value) == ("git.push", "code_access")


def test_github_itself_is_a_service() -> None:
    event = sample_event(SOURCE, "secret_scanning_alert.create-true")
    assert (event.actor, event.actor_type) == ("github", ActorType.SERVICE)
    assert event.category.value == "config_change"
    assert event.time == datetime(2023, 10, 18, 18, 20, 52, 209000, tzinfo=UTC)


def test_wazuh_wrapped_event_is_unwrapped() -> None:
    wrapped = {
        "integration": "github",
        "github": {
            "actor": "octocat",
            "org": "octo-org",
            "created_at": 1606929874512,
            "action": "org.register_self_hosted_runner",
        },
    }
    event = as_event(wrapped, SOURCE)
    assert (event.actor, event.action, event.target) == (
        "octocat",
        "org.register_self_hosted_runner",
        "octo-org",
    )
    assert (event.category.value, event.privileged) == ("pipeline", True)


def test_fragment_without_time_is_a_missing_time_dead_letter() -> None:
    letter = as_dead_letter(sample(SOURCE, "Github - Admin Added"))
    assert (letter.reason.value, letter.format) == ("missing_time", SOURCE)
    assert "business.add_admin" in letter.excerpt


def test_empty_actor_is_a_missing_actor_dead_letter() -> None:
    doc = sample(SOURCE, "GitHub - Clone without Actor")
    assert doc["actor"] == ""
    letter = as_dead_letter(doc)
    assert (letter.reason.value, letter.format) == ("missing_actor", SOURCE)


@pytest.mark.parametrize(
    ("case", "action", "category", "privileged"),
    [
        ("Branch Protection Disabled [rule", "protected_branch.destroy", "config_change", True),
        (
            "Branch Protection Policy Override",
            "protected_branch.policy_override",
            "config_change",
            True,
        ),
        (
            "Two Factor Requirement Disabled",
            "org.disable_two_factor_requirement",
            "config_change",
            True,
        ),
        (
            "Two Factor Requirement Enabled",
            "org.enable_two_factor_requirement",
            "config_change",
            False,
        ),
        ("GitHub - SAML Disabled", "org.saml_disabled", "config_change", True),
        (
            "OAuth App Restrictions Disabled",
            "org.disable_oauth_app_restrictions",
            "config_change",
            True,
        ),
        ("Ruleset Created", "repository_ruleset.create", "config_change", False),
        ("Github - Ruleset Modified", "repository_ruleset.update", "config_change", True),
        (
            "Secret Scanning Disabled on a Repo",
            "repository_secret_scanning_push_protection.disable",
            "config_change",
            True,
        ),
        ("Secret Scanning Disabled Org Wide", "secret_scanning.disable", "config_change", True),
        ("Dependabot Alerts Disabled Org Wide", "dependabot_alerts.disable", "config_change", True),
        ("IP Allow list disabled", "ip_allow_list.disable", "config_change", True),
        (
            "Workflow Permissions Modified",
            "org.set_default_workflow_permissions",
            "config_change",
            True,
        ),
        ("Org - User Added", "org.add_member", "privilege_change", True),
        ("GitHub - Member Updated", "org.update_member", "privilege_change", True),
        ("GitHub - Member Invited", "org.invite_member", "privilege_change", False),
        ("Collaborator Added", "repo.add_member", "privilege_change", False),
        (
            "App Integration Installation-2",
            "integration_installation.create",
            "privilege_change",
            True,
        ),
        ("Team Add repository", "team.add_repository", "privilege_change", False),
        ("User Access Key Created", "public_key.create", "authentication", True),
        ("User Access Key Deleted", "public_key.delete", "authentication", False),
        ("Repo Visibility Change", "repo.access", "config_change", True),
        ("Repo Transfer Outgoing", "repo.transfer_outgoing", "code_access", True),
        ("Github.Repo.Created: GitHub - Repo Created", "repo.create", "code_access", False),
        (
            "VulnerabilityDismissed: GitHub Dependabot",
            "repository_vulnerability_alert.dismiss",
            "config_change",
            False,
        ),
        ("Org Moderator Added", "organization_moderators.add_user", "privilege_change", False),
    ],
)
def test_sample_categories(case: str, action: str, category: str, privileged: bool) -> None:
    event = sample_event(SOURCE, case)
    assert (event.action, event.category.value, event.privileged) == (action, category, privileged)


@pytest.mark.parametrize(
    ("action", "category", "privileged"),
    [
        # Published only as fragments without time, or not in the samples at all.
        ("business.add_admin", "privilege_change", True),
        ("business.invite_admin", "privilege_change", True),
        ("team.promote_maintainer", "privilege_change", True),
        ("business.disable_two_factor_requirement", "config_change", True),
        ("audit_log_streaming.destroy", "config_change", True),
        ("audit_log_streaming.update", "config_change", True),
        ("repo.advanced_security_disabled", "config_change", True),
        ("org.update_actions_settings", "config_change", True),
        ("org.register_self_hosted_runner", "pipeline", True),
        ("repo.register_self_hosted_runner", "pipeline", True),
        ("enterprise.register_self_hosted_runner", "pipeline", True),
        ("repo.remove_self_hosted_runner", "pipeline", False),
        ("org.runner_group_updated", "pipeline", False),
        ("environment.remove_protection_rule", "pipeline", True),
        ("org.create_actions_secret", "secret_access", False),
        ("repo.create_actions_secret", "secret_access", False),
        ("environment.update_actions_secret", "secret_access", False),
        ("codespaces.create_an_org_secret", "secret_access", False),
        ("git.fetch", "code_access", False),
        ("hook.create", "config_change", False),
        ("repo.download_zip", "code_access", False),
        ("deploy_key.create", "authentication", True),
        ("personal_access_token.request_created", "authentication", False),
        ("oauth_authorization.create", "authentication", False),
        ("two_factor_authentication.disabled", "authentication", True),
        ("user.login", "authentication", False),
        ("user.failed_login", "authentication", False),
        ("secret_scanning_push_protection.bypass", "config_change", True),
        ("repo.", "code_access", False),  # Wazuh's bare family names
        ("org.", "config_change", False),
    ],
)
def test_taxonomy_classifies_security_relevant_actions(
    action: str, category: str, privileged: bool
) -> None:
    taxonomy = bundled_normalizer().taxonomy
    assert taxonomy.covers(SOURCE, action)
    found = taxonomy.classify(SOURCE, action)
    assert (found.category.value, found.privileged) == (category, privileged)


def test_every_sample_action_is_classified_even_in_dead_letters() -> None:
    actions = {
        doc["action"]
        for item in load_samples(SOURCE)
        for doc in unwrap(item.event)
        if isinstance(doc, Mapping) and isinstance(doc.get("action"), str)
    }
    assert len(actions) > 60
    assert sorted(a for a in actions if not bundled_normalizer().taxonomy.covers(SOURCE, a)) == []


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ({"action": "user.failed_login"}, Outcome.FAILURE),
        ({"action": "user.two_factor_challenge_failure"}, Outcome.FAILURE),
        ({"action": "protected_branch.rejected_ref_update"}, Outcome.FAILURE),
        ({"action": "user.login"}, Outcome.SUCCESS),
        ({"action": "org.oauth_app_access_denied"}, Outcome.SUCCESS),  # an owner's decision
        ({"action": "api.request", "status_code": 403}, Outcome.FAILURE),
        ({"action": "api.request", "status_code": "500"}, Outcome.FAILURE),
        ({"action": "api.request", "status_code": 200}, Outcome.SUCCESS),
    ],
)
def test_outcome(parser: GitHubAuditParser, extra: dict[str, Any], outcome: Outcome) -> None:
    doc = {"@timestamp": 1606929874512, "actor": "octocat", "org": "octo-org", **extra}
    assert parser.parse(doc).outcome is outcome


def test_every_sample_is_matched(parser: GitHubAuditParser) -> None:
    docs = [d for item in load_samples(SOURCE) for d in unwrap(item.event)]
    assert docs and all(parser.matches(d) for d in docs)


def test_webhook_payload_is_not_an_audit_event(parser: GitHubAuditParser) -> None:
    assert not parser.matches(WORKFLOW_RUN_WEBHOOK)
    assert not parser.matches({**WORKFLOW_RUN_WEBHOOK, "action": "repo.create"})


@pytest.mark.parametrize("name", other_vendors(SOURCE))
def test_other_vendors_are_not_matched(parser: GitHubAuditParser, name: str) -> None:
    docs = [
        doc
        for item in load_samples(name)
        if isinstance(item.event, Mapping)
        for doc in unwrap(item.event)
        if isinstance(doc, Mapping)
    ]
    assert docs
    assert [doc for doc in docs if parser.matches(doc)] == []


def test_slack_audit_event_with_dotted_action_is_not_github(parser: GitHubAuditParser) -> None:
    slack = {
        "action": "pref.sso_setting_changed",
        "actor": {"type": "user", "user": {"name": "ann", "email": "ann@example.com"}},
        "date_create": 1651259478,
        "entity": {"type": "workspace", "workspace": {"id": "T01", "name": "acme"}},
    }
    assert not parser.matches(slack)


@pytest.mark.parametrize(
    ("action", "target"),
    [
        ("org.update_member", "monalisa"),
        ("repo.add_member", "monalisa"),
        ("team.promote_maintainer", "monalisa"),
        ("repo.create", "octo-corp/app"),
    ],
)
def test_membership_changes_target_the_person(
    parser: GitHubAuditParser, action: str, target: str
) -> None:
    doc = {"action": action, "actor": "octocat", "created_at": 1606929874512,
           "org": "octo-corp", "repo": "octo-corp/app", "user": "monalisa"}  # fmt: skip
    assert parser.parse(doc).target == target
