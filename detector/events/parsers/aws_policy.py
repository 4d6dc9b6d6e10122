"""Does a CloudTrail request write a resource policy that lets anyone in?

Resource policies (S3 bucket policies, SQS/SNS/ECR/Secrets Manager/KMS/Glacier/EFS/
OpenSearch/Backup policies, IAM trust policies) travel in ``requestParameters`` as a
JSON object or as JSON text, under a key that depends on the service. A policy opens
the resource to everyone when one of its statements is an ``Allow`` whose principal
is ``*`` (or ``{"AWS": "*"}``, or a ``NotPrincipal``) with no ``Condition``.

Rules cannot judge this themselves: their matchers look at each field on its own, so a
``Deny`` for ``*`` (the usual "TLS only" statement) next to an ``Allow`` for one role
would look public. The parser judges each statement whole and reports the answer.

A statement with any condition counts as restricted: conditions such as
``aws:PrincipalOrgID``, ``aws:SourceAccount`` or ``aws:SourceVpc`` are how policies
share with a known group, and telling a weak condition from a strong one would guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from detector.events.fields import get, is_mapping

__all__ = ["grants_everyone"]

# requestParameters keys that hold a whole policy document, by service.
_POLICY_KEYS = (
    "bucketPolicy",  # S3 PutBucketPolicy
    "policy",  # KMS, EFS, Glacier (nested), Backup, S3 access points, Lambda layers
    "policyText",  # ECR SetRepositoryPolicy / PutRegistryPolicy
    "resourcePolicy",  # Secrets Manager, EventBridge, CloudWatch Logs
    "accessPolicies",  # OpenSearch / Elasticsearch domains
    "policyDocument",  # IAM UpdateAssumeRolePolicy (identity policies have no principal)
    "assumeRolePolicyDocument",  # IAM CreateRole
)
# Every top-level key _policies reads, in both spellings fields.get accepts.
_KEYS_READ = frozenset(
    spelling
    for key in (*_POLICY_KEYS, "attributes", "attributeName", "attributeValue")
    for spelling in (key, key.lower())
)
# A policy longer than IAM's largest (a few tens of kilobytes) is not read.
_MAX_POLICY_CHARS = 131_072


def grants_everyone(params: Any) -> bool:
    """True when a policy in these request parameters allows any principal unconditionally.

    >>> grants_everyone({"policyText": '{"Statement": [{"Effect": "Allow", "Principal": "*"}]}'})
    True
    """
    # Most requests write no policy: a record whose parameters have none of the keys a
    # policy can be under is answered without walking every key (and its spellings).
    if not is_mapping(params) or _KEYS_READ.isdisjoint(params):
        return False
    return any(_public_statement(s) for doc in _policies(params) for s in _statements(doc))


def _policies(params: Any) -> Iterator[Any]:
    if not is_mapping(params):
        return
    for key in _POLICY_KEYS:
        value = get(params, key)
        if is_mapping(value) and get(value, "Statement") is None:
            # Glacier nests the document one level down: {"policy": {"policy": "..."}}.
            value = get(value, "policy")
        yield value
    # SQS (attributes.Policy) and SNS (attributeName "Policy" with attributeValue).
    yield get(get(params, "attributes"), "Policy")
    if str(get(params, "attributeName")).casefold() == "policy":
        yield get(params, "attributeValue")


def _statements(document: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(document, str):
        if not document.strip() or len(document) > _MAX_POLICY_CHARS:
            return
        try:
            document = json.loads(document)
        except ValueError:
            return  # not a policy: nothing to judge
    statements = get(document, "Statement")
    for statement in statements if isinstance(statements, list) else [statements]:
        if is_mapping(statement):
            yield statement


def _public_statement(statement: Mapping[str, Any]) -> bool:
    if str(get(statement, "Effect")).casefold() != "allow" or get(statement, "Condition"):
        return False
    if get(statement, "NotPrincipal") is not None:
        return True  # everyone except the named principals
    principal = get(statement, "Principal")
    if is_mapping(principal):
        principal = get(principal, "AWS")
    values = principal if isinstance(principal, list) else [principal]
    return any(value == "*" for value in values)
