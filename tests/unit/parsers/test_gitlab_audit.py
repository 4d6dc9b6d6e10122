"""GitLab audit parser on published events (tests/data/samples/gitlab_audit.jsonl).

The permitted sample copy has streaming payloads and REST items from GitLab's docs and
Panther's fragments. The ``audit_json.log`` flavour (only published by Wazuh, GPL) and
failed sign-ins (not published at all) are covered by events written here, shaped after
GitLab's source (``AuditEventService``, ``Authn::UnauthenticatedSecurityEventAuditor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import (
    ActorType,
    Category,
    DeadLetter,
    DeadLetterReason,
    Event,
    Outcome,
)
from detector.events.parsers import PARSERS
from detector.events.parsers.gitlab_audit import GitLabAuditParser
from tests.normalizing import (
    as_event,
    bundled_normalizer,
    normalize_one,
    other_vendors,
    sample_event,
)
from tests.samples import load_samples, sample

SOURCE = "gitlab_audit"

# Written for these tests: a failed password sign-in for a login that does not exist,
# as GitLab 16.4+ streams it (author -1, the login tried as author_name).
FAILED_LOGIN = {
    "id": 4417,
    "author_id": -1,
    "author_name": "jenkins-admin",
    "entity_id": 1,
    "entity_type": "Gitlab::Audit::InstanceScope",
    "entity_path": "gitlab_instance",
    "target_id": -1,
    "target_type": "Gitlab::Audit::UnauthenticatedAuthor",
    "target_details": "jenkins-admin",
    "ip_address": "198.51.100.23",
    "created_at": "2024-11-05T03:12:44.019Z",
    "event_type": "login_failed_with_standard_authentication",
    "details": {
        "failed_login": "STANDARD",
        "author_name": "jenkins-admin",
        "author_class": "Gitlab::Audit::UnauthenticatedAuthor",
        "target_id": -1,
        "target_type": "Gitlab::Audit::UnauthenticatedAuthor",
        "target_details": "jenkins-admin",
        "custom_message": "Failed to login with STANDARD authentication",
        "ip_address": "198.51.100.23",
        "entity_path": "gitlab_instance",
    },
}
# Written for these tests: audit_json.log lines (details merged into the top level).
AUDIT_JSON_LOG_MEMBER = {
    "severity": "INFO",
    "time": "2021-03-02T09:41:07.118Z",
    "correlation_id": "01EZQ3J8W2N6F4T0",
    "author_id": 12,
    "author_name": "Dana Whitfield",
    "entity_id": 33,
    "entity_type": "Group",
    "add": "user_access",
    "as": "Owner",
    "target_id": 87,
    "target_type": "User",
    "target_details": "Sam Okafor",
    "entity_path": "platform",
}
AUDIT_JSON_LOG_FAILED_LOGIN = {
    "severity": "INFO",
    "time": "2021-03-02T09:58:30.772Z",
    "author_id": -1,
    "author_name": "root",
    "entity_id": -1,
    "entity_type": "User",
    "failed_login": "STANDARD",
    "target_details": "root",
    "ip_address": "203.0.113.77",
}


def test_streaming_git_fetch_over_ssh() -> None:
    event = sample_event(SOURCE, "Example payloads for SSH events | Fetch")
    assert event.time == datetime(2022, 2, 23, 6, 21, 5, 283000, tzinfo=UTC)
    assert event.action == "repository_git_operation"
    assert event.category is Category.CODE_ACCESS
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "Administrator"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "127.0.0.1"
    # The project itself was acted on: its full path, not just "example-project".
    assert event.target == "example-group/example-project"
    assert event.attributes["repo"] == "example-group/example-project"
    assert event.attributes["org"] == "example-group"
    assert event.attributes["protocol"] == "ssh"
    assert event.attributes["git_action"] == "git-upload-pack"
    assert event.id == "gitlab_audit:1"


def test_streaming_git_push_says_receive_pack() -> None:
    event = sample_event(SOURCE, "Example payloads for HTTP and HTTPS events | Push")
    assert event.attributes["git_action"] == "git-receive-pack"
    assert event.attributes["protocol"] == "http"


@pytest.mark.parametrize(
    ("case", "actor", "author_class"),
    [
        ("SSH events with Deploy Key | Fetch", "deploy-key-name", "DeployKey"),
        ("HTTP and HTTPS events with Deploy Token | Fetch", "deploy-token-name", "DeployToken"),
    ],
)
def test_deploy_keys_and_tokens_are_services(case: str, actor: str, author_class: str) -> None:
    event = sample_event(SOURCE, case)
    assert event.actor == actor
    assert event.actor_type is ActorType.SERVICE
    assert event.attributes["author_class"] == author_class


def test_generic_audit_operation_is_classified_by_its_message() -> None:
    event = sample_event(SOURCE, "merge request approval actions")
    assert event.action == "audit_operation"
    assert event.category is Category.CODE_ACCESS
    assert event.target == "merge request title"
    assert event.attributes["target_type"] == "MergeRequest"


def test_project_shared_with_a_group_is_a_privileged_change() -> None:
    event = sample_event(SOURCE, "Example payload for project group link create")
    assert event.time == datetime(2022, 7, 4, 0, 43, 9, 318000, tzinfo=UTC)
    assert event.action == "project_group_link_create"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.actor == "example-user"
    assert event.target == "another-group"


def test_rest_item_without_event_type_uses_the_custom_message() -> None:
    event = sample_event(SOURCE, "Retrieve all instance audit events | Example response item 1 ")
    assert event.time == datetime(2019, 8, 30, 7, 0, 41, 885000, tzinfo=UTC)
    assert event.action == "Project archived"
    # REST items carry the author's email: unique, unlike the display name.
    assert event.actor == "admin@example.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "127.0.0.1"
    assert event.target == "flightjs/flight"
    assert event.outcome is Outcome.SUCCESS


def test_rest_item_add_and_change_details_name_the_action() -> None:
    added = sample_event(SOURCE, "Retrieve all instance audit events | Example response item 2 ")
    assert added.action == "add group"
    assert added.target == "flightjs"
    changed = sample_event(SOURCE, "Retrieve all instance audit events | Example response item 3 ")
    assert changed.action == "change email address"
    assert changed.ip is None  # published as null
    assert changed.target == "Andreas"
    assert changed.attributes["from"] == "hello@flightjs.com"
    assert changed.attributes["to"] == "maintainer@flightjs.com"


def test_approval_control_change_is_privileged_config() -> None:
    event = sample_event(SOURCE, "Retrieve all project audit events | Example response item 2 ")
    assert event.action == "change prevent merge request approval from authors"
    assert event.category is Category.CONFIG_CHANGE
    assert event.privileged
    assert event.attributes["to"] == "true"
    assert event.time == datetime(2020, 5, 26, 22, 55, 4, 218000, tzinfo=UTC)


def test_rest_item_with_event_type_at_instance_scope() -> None:
    event = sample_event(SOURCE, "Retrieve all instance audit events | Example response item 4 ")
    assert event.action == "audit_events_streaming_instance_headers_create"
    assert event.category is Category.CONFIG_CHANGE
    assert event.actor == "Administrator"
    assert event.attributes["entity_type"] == "Gitlab::Audit::InstanceScope"
    assert "org" not in event.attributes


def test_failed_sign_in_by_an_unauthenticated_author() -> None:
    event = as_event(FAILED_LOGIN, SOURCE)
    assert event.action == "login_failed_with_standard_authentication"
    assert event.outcome is Outcome.FAILURE
    assert event.category is Category.AUTHENTICATION
    assert event.actor == "jenkins-admin"
    assert event.actor_type is ActorType.UNKNOWN
    assert event.ip == "198.51.100.23"
    assert event.id == "gitlab_audit:4417"


def test_audit_json_log_membership_grant() -> None:
    event = as_event(AUDIT_JSON_LOG_MEMBER, SOURCE)
    assert event.time == datetime(2021, 3, 2, 9, 41, 7, 118000, tzinfo=UTC)
    assert event.action == "add user_access"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.actor == "Dana Whitfield"
    assert event.actor_type is ActorType.HUMAN
    assert event.target == "Sam Okafor"
    assert event.attributes["access_level"] == "Owner"
    assert event.attributes["org"] == "platform"


def test_audit_json_log_failed_login() -> None:
    event = as_event(AUDIT_JSON_LOG_FAILED_LOGIN, SOURCE)
    assert event.action == "failed_login STANDARD"
    assert event.outcome is Outcome.FAILURE
    assert event.category is Category.AUTHENTICATION
    assert event.actor == "root"
    assert event.actor_type is ActorType.UNKNOWN
    assert event.ip == "203.0.113.77"


def test_panther_data_lake_event_time_is_the_last_resort() -> None:
    doc = {
        **{k: v for k, v in AUDIT_JSON_LOG_MEMBER.items() if k != "time"},
        "p_log_type": "GitLab.Audit",
        "p_event_time": "2021-03-02 09:41:07.118",
    }
    event = as_event(doc, SOURCE)
    assert event.time == datetime(2021, 3, 2, 9, 41, 7, 118000, tzinfo=UTC)


def test_project_bots_and_runner_tokens_are_services() -> None:
    bot = {
        **{k: v for k, v in FAILED_LOGIN.items() if k != "details"},
        "author_id": 301,
        "author_name": "release-automation",
        "event_type": "merge_request_created_by_project_bot",
        "details": {"author_class": "User", "custom_message": "Created merge request"},
    }
    assert as_event(bot, SOURCE).actor_type is ActorType.SERVICE
    runner = {**bot, "author_id": -1, "event_type": "ci_runner_registered"}
    runner["details"] = {"runner_registration_token": "GR1348941", "author_name": "x"}
    event = as_event(runner, SOURCE)
    assert event.actor_type is ActorType.SERVICE
    assert event.category is Category.PIPELINE
    # Bot users named by GitLab are machines by the taxonomy, whatever the event.
    named = {**AUDIT_JSON_LOG_MEMBER, "author_name": "project_42_bot_3f9c1e0d"}
    assert as_event(named, SOURCE).actor_type is ActorType.SERVICE


@pytest.mark.parametrize(
    "case",
    [
        "GitLab.Audit.Password.Reset.Multiple.Emails: not a password reset",
        "GitLab.Audit.Password.Reset.Multiple.Emails: multiple emails",
    ],
)
def test_panther_fragments_without_time_are_dead_letters(case: str) -> None:
    result = normalize_one(sample(SOURCE, case))
    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.MISSING_TIME
    assert result.format == SOURCE


def test_gitlab_request_logs_and_eventbridge_details_are_not_audit_events() -> None:
    parser = GitLabAuditParser()
    request_log = {"method": "GET", "path": "/users/sign_in", "time": "2024-01-01T00:00:00Z"}
    eventbridge = {"detail-type": "x", "source": "y", "detail": {"custom_message": "z"}}
    assert not parser.matches(request_log)
    assert not parser.matches(eventbridge)


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = GitLabAuditParser()
    docs = [(s.case, doc) for s in load_samples(vendor) for doc in unwrap(s.event)]
    assert docs
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def test_no_other_registered_parser_claims_gitlab_events() -> None:
    others = [cls() for name, cls in PARSERS.items() if name not in (SOURCE, "ecs")]
    docs = [s.event for s in load_samples(SOURCE)]
    docs += [FAILED_LOGIN, AUDIT_JSON_LOG_MEMBER, AUDIT_JSON_LOG_FAILED_LOGIN]
    assert not [(p.name, d) for p in others for d in docs if p.matches(d)]


def test_every_sample_action_is_classified_explicitly() -> None:
    parser = GitLabAuditParser()
    events = [e for s in load_samples(SOURCE) if isinstance(e := normalize_one(s.event), Event)]
    events += [as_event(d, SOURCE) for d in (FAILED_LOGIN, AUDIT_JSON_LOG_MEMBER)]
    keys = {parser.parse(e.raw).taxonomy_key or e.action for e in events}
    assert keys
    assert not {k for k in keys if not bundled_normalizer().taxonomy.covers(SOURCE, k)}


def test_a_specific_event_type_decides_the_outcome_alone() -> None:
    locked = {
        **{k: v for k, v in FAILED_LOGIN.items() if k != "details"},
        "author_id": 1,
        "author_name": "Administrator",
        "event_type": "user_access_locked",
        "details": {"custom_message": "User access locked - too many failed login attempts"},
    }
    event = as_event(locked, SOURCE)
    assert event.outcome is Outcome.SUCCESS
    assert event.actor_type is ActorType.HUMAN
