"""Resource policies that let anyone in: judged per statement, whatever the service's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from detector.events.parsers.aws_policy import grants_everyone
from tests.normalizing import sample_event

SOURCE = "cloudtrail"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


PUBLIC = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
TLS_ONLY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
ONE_ROLE = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/r"}}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"bucketPolicy": _policy(PUBLIC)}, True),
        ({"bucketPolicy": _policy(TLS_ONLY, ONE_ROLE)}, False),
        ({"bucketPolicy": _policy({**PUBLIC, "Principal": {"AWS": ["*"]}})}, True),
        ({"policyText": json.dumps(_policy(PUBLIC))}, True),
        ({"attributes": {"Policy": json.dumps(_policy(PUBLIC))}}, True),
        ({"attributeName": "Policy", "attributeValue": json.dumps(_policy(PUBLIC))}, True),
        ({"attributeName": "DisplayName", "attributeValue": json.dumps(_policy(PUBLIC))}, False),
        ({"policy": {"policy": json.dumps(_policy(PUBLIC))}}, True),  # Glacier's nesting
        ({"policy": json.dumps(_policy({**PUBLIC, "Condition": {"StringEquals": {}}}))}, False),
        ({"policy": json.dumps(_policy({"Effect": "Allow", "NotPrincipal": ONE_ROLE}))}, True),
        (
            {
                "assumeRolePolicyDocument": json.dumps(
                    _policy({**PUBLIC, "Principal": {"AWS": "*"}})
                )
            },
            True,
        ),
        ({"policyDocument": json.dumps(_policy({"Effect": "Allow", "Action": "*"}))}, False),
        ({"bucketPolicy": "invalid-json-policy"}, False),
        ({"policy": "x" * 200_000}, False),
        (None, False),
        ({"bucketPolicy": {"Statement": PUBLIC}}, True),  # a single statement, not a list
    ],
)
def test_grants_everyone(params: Any, expected: bool) -> None:
    assert grants_everyone(params) is expected


def test_parser_marks_a_published_public_ecr_policy() -> None:
    event = sample_event(SOURCE, "AWS.CloudTrail.ResourceMadePublic: ECR Made Public")
    assert event.attributes["policy_public"] == "true"


def test_parser_leaves_an_organisation_only_policy_unmarked() -> None:
    case = "AWS.CloudTrail.ResourceMadePublic: All Restrictive Conditions Types (Should Not Alert)"
    event = sample_event(SOURCE, case)
    assert "policy_public" not in event.attributes
