"""CloudTrail parser on published records: identities, outcomes, taxonomy, detection."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import DeadLetter, Event
from detector.events.parsers.cloudtrail import CloudTrailParser
from detector.events.taxonomy import Taxonomy
from tests.normalizing import bundled_normalizer, normalize_one, other_vendors, sample_event
from tests.samples import load_samples, sample

SOURCE = "cloudtrail"
TIME_KEYS = {"eventTime", "eventtime", "p_event_time"}


def test_iam_user_console_login() -> None:
    event = sample_event(SOURCE, "User Guide example: Step 3: View your log files")
    assert event.time == datetime(2019, 6, 10, 17, 14, 9, tzinfo=UTC)
    assert (event.action, event.category.value, event.outcome.value) == (
        "ConsoleLogin",
        "authentication",
        "success",
    )
    assert (event.actor, event.actor_type.value) == ("Mary_Major", "human")
    assert event.ip == "203.0.113.67"
    assert event.user_agent is not None and event.user_agent.startswith("Mozilla/5.0")
    assert event.id == "cloudtrail:2681fc29-EXAMPLE"
    assert event.attributes["mfa_used"] == "No"
    assert event.attributes["account"] == "123456789012"
    assert event.attributes["event_source"] == "signin.amazonaws.com"


def test_failed_root_console_login_names_the_account() -> None:
    event = sample_event(SOURCE, "AWS.Console.RootLoginFailed: Failed Root Login")
    assert event.outcome.value == "failure"  # responseElements.ConsoleLogin == "Failure"
    assert (event.actor, event.actor_type.value) == ("root@123456789012", "human")
    assert event.time == datetime(2019, 1, 1, tzinfo=UTC)
    assert event.ip == "111.111.111.111"
    assert event.attributes["identity_type"] == "Root"


def test_error_code_is_a_failure_and_other_accounts_are_qualified() -> None:
    event = sample_event(SOURCE, "AWS.CloudTrail.VPCE.AccessDenied: VPC Endpoint Access Denied")
    assert (event.action, event.outcome.value) == ("GetObject", "failure")
    assert event.actor == "AROAEXAMPLE:session-name@111111111111"
    assert event.actor_type.value == "unknown"
    assert event.target == "example-bucket"
    assert event.attributes["account"] == "222222222222"  # recipientAccountId: whose trail it is


def test_identity_center_session_is_the_signed_in_user() -> None:
    event = sample_event(SOURCE, "SSO AssumedRole Updates Lambda Configuration with Layers")
    assert (event.actor, event.actor_type.value) == ("bob.ross", "human")
    assert event.attributes["role"] == "AWSReservedSSO_DevAdmin_abc123"
    assert event.action == "UpdateFunctionConfiguration20150331v2"
    assert event.category.value == "infrastructure_change"
    assert event.target == "production-api"
    assert event.attributes["region"] == "us-west-2"


def test_stopping_cloudtrail_is_a_privileged_config_change() -> None:
    event = sample_event(SOURCE, "AWS.CloudTrail.Stopped: CloudTrail Was Stopped")
    assert (event.action, event.category.value, event.privileged) == (
        "StopLogging",
        "config_change",
        True,
    )
    # The ARN is "assumed-role/tester" with no session name: the role alone.
    assert event.actor == "tester"
    assert event.attributes["role"] == "tester"
    assert event.target == "arn:aws:cloudtrail:us-west-2:123456789012:trail/example-trail"


def test_sdk_generated_session_names_collapse_to_the_role() -> None:
    event = sample_event(SOURCE, "AWS.EC2.LaunchUnusualEC2Instances: Failed Unusual EC2")
    # Session "aws-go-sdk-1722511821294449000" is a timestamp, not a name.
    assert event.actor == "stratus-red-team-ec2lui-role-idtzskbvtd"
    assert event.outcome.value == "failure"
    assert event.ip is None  # "06.237.252.245" is not a valid address
    assert event.time == datetime(2024, 8, 1, 11, 30, 23, tzinfo=UTC)


def test_instance_profile_and_service_linked_roles_are_services() -> None:
    instance = sample_event(SOURCE, "IMDSCredentialExfiltration: IMDS Credentials Used From Public")
    assert (instance.actor, instance.actor_type.value) == (
        "MyAppRole/i-0abcdef1234567890",
        "service",
    )
    autoscaling = sample_event(SOURCE, "LaunchUnusualEC2Instances: Successful Unusual EC2")
    assert (autoscaling.actor, autoscaling.actor_type.value) == (
        "AWSServiceRoleForAutoScaling",
        "service",
    )
    assert autoscaling.time == datetime(2024, 12, 16, 18, 41, 7, tzinfo=UTC)


def test_aws_service_identity_is_its_host_and_not_an_ip() -> None:
    event = sample_event(SOURCE, "Role.Assumed.by.AWS.Service: Role Assumed by AWS Service")
    assert (event.actor, event.actor_type.value) == ("lambda.amazonaws.com", "service")
    assert event.ip is None  # sourceIPAddress is "lambda.amazonaws.com"
    assert (event.action, event.category.value) == ("AssumeRole", "authentication")
    assert event.target == "arn:aws:iam::123456789123:role/my_role_arn"


def test_aws_service_event_without_identity_is_the_service() -> None:
    event = sample_event(SOURCE, "User Guide example: AWS service events")
    assert (event.actor, event.actor_type.value) == ("kms.amazonaws.com", "service")
    assert event.action == "RotateKey"
    assert event.target == "arn:aws:kms:us-east-2:123456789012:key/7944f0ec-EXAMPLE"


def test_service_event_naming_a_user_keeps_the_user() -> None:
    # Identity Center sign-ins are AwsServiceEvents that name who signed in.
    record = sample(SOURCE, "AWS.Console.Sign-In: Test-94439c")
    assert "userIdentity" not in record
    anonymous = sample_event(SOURCE, "AWS.Console.Sign-In: Test-94439c")
    assert (anonymous.actor, anonymous.actor_type.value) == ("sso.amazonaws.com", "service")
    user = {"type": "Unknown", "userName": "alice"}
    named = normalize_one({**record, "userIdentity": user})
    assert isinstance(named, Event)
    assert named.actor == "alice"


def test_lower_cased_data_lake_record() -> None:
    event = sample_event(SOURCE, "Password.Policy.Discovery: Password Discovery ARN")
    assert event.action == "GetAccountPasswordPolicy"
    assert event.time == datetime(2023, 1, 10, 23, 10, 6, tzinfo=UTC)
    assert event.actor == "arn:aws:test_arn"
    assert event.id == "cloudtrail:1808ca3b-4311-4b48-9d1f-21061acb2329"
    assert event.attributes["region"] == "us-east-1"
    assert event.attributes["event_source"] == "iam.amazonaws.com"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("AWS.SecretsManager.BatchRetrieveSecrets: BatchGetSecretValue [", "missing_time"),
        ("ModifyInstanceAttribute-NoUserData", "missing_actor"),
    ],
)
def test_fragments_become_dead_letters(case: str, reason: str) -> None:
    result = normalize_one(sample(SOURCE, case))
    assert isinstance(result, DeadLetter)
    assert (result.reason.value, result.format) == (reason, SOURCE)


def test_ci_session_names_are_automation() -> None:
    taxonomy = Taxonomy.bundled()
    assert taxonomy.is_automation(SOURCE, "deploy-prod/GitHubActions")
    assert taxonomy.is_automation(SOURCE, "builder/AWSCodeBuild-0f3c2a9e")
    assert not taxonomy.is_automation(SOURCE, "AdminRole/alice")


def test_every_sample_action_is_classified_explicitly() -> None:
    events = [normalize_one(s.event) for s in load_samples(SOURCE)]
    actions = {e.action for e in events if isinstance(e, Event)}
    assert actions
    assert sorted(a for a in actions if not bundled_normalizer().taxonomy.covers(SOURCE, a)) == []


def test_nearly_all_timestamped_samples_become_events() -> None:
    timed = [s.event for s in load_samples(SOURCE) if _has_time(s.event)]
    events = [e for e in (normalize_one(t) for t in timed) if isinstance(e, Event)]
    assert len(events) >= 0.97 * len(timed), f"{len(events)}/{len(timed)}"


@pytest.mark.parametrize("other", other_vendors(SOURCE))
def test_other_vendors_are_not_taken_for_cloudtrail(other: str) -> None:
    parser = CloudTrailParser()
    docs = [d for s in load_samples(other) if isinstance(s.event, Mapping) for d in unwrap(s.event)]
    assert docs
    assert not [d for d in docs if isinstance(d, Mapping) and parser.matches(d)]


def _has_time(event: Any) -> bool:
    return isinstance(event, Mapping) and bool(TIME_KEYS & event.keys())
