"""AWS CloudTrail records: management and data events, console sign-ins.

Shape: a flat record with ``eventName`` (the API call, ``RunInstances``),
``eventSource`` (the service host, ``ec2.amazonaws.com``), ``eventTime``,
``awsRegion``, ``sourceIPAddress`` (an address, or a service host when AWS
called on someone's behalf), ``userAgent`` and ``userIdentity``, whose ``type``
says who called: ``Root``, ``IAMUser``, ``AssumedRole`` (``arn`` is
``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``), ``FederatedUser``,
``AWSService`` (``invokedBy``), ``AWSAccount`` (another account),
``IdentityCenterUser``. A failed call carries ``errorCode``; a failed console
sign-in says ``"Failure"`` under ``responseElements.<eventName>``. S3 delivers
files of ``{"Records": [...]}``; envelopes unwrap those before this parser.
Panther's data lake lower-cases the keys and may add ``p_event_time``.

The taxonomy key is ``eventName`` alone: names rarely repeat across services,
and where they do (``CreateUser`` in IAM and Identity Store) they mean the same
kind of thing, so users write ``StopLogging`` rather than
``cloudtrail.amazonaws.com:StopLogging``. ``event_source`` is in the
attributes for rules that need the service.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from detector.events.fields import (
    first_str,
    get,
    is_mapping,
    parse_time,
    require,
    str_or_none,
    valid_ip,
)
from detector.events.model import ActorType, Outcome
from detector.events.parsers.aws_policy import grants_everyone
from detector.events.parsers.base import Parsed, Parser, parsed, register
from detector.events.readers import text_reader, value_reader

__all__ = ["CloudTrailParser"]

_TIME = value_reader("eventTime", "p_event_time")
# Any one of these next to an eventName tells a CloudTrail record (or a Panther fragment of one).
_SHAPE_FIELDS = ("eventSource", "eventVersion", "userIdentity", "awsRegion", "recipientAccountId")
# requestParameters that name what a call acted on, most specific first.
_TARGET_PARAMS = (
    "roleName", "userName", "groupName", "policyArn", "bucketName", "functionName", "secretId",
    "keyId", "name", "trailName", "instanceId", "imageId", "snapshotId", "groupId", "vpcId",
    "dBInstanceIdentifier", "dBClusterIdentifier", "dBSnapshotIdentifier", "repositoryName",
    "projectName", "clusterName", "stackName", "detectorId", "queueUrl", "domainName",
    "resourceArn", "sAMLProviderArn",
)  # fmt: skip
_TARGET_PARAMS_LOWER = tuple((param, param.lower()) for param in _TARGET_PARAMS)
"""Each of :data:`_TARGET_PARAMS` with its lower-case spelling, made once, not per record."""
_ARN = re.compile(r"arn:aws[\w-]*:(?:iam|sts)::(\d*):(.+)")
# SDK default session names are a timestamp: they name no one, and would make every run a new actor.
_GENERATED_SESSION = re.compile(r"(?:botocore-session-|aws-go-sdk-|aws-sdk-[a-z]+-)?\d{9,}")
_INSTANCE_SESSION = re.compile(r"i-[0-9a-f]{8,17}")
# Identity Center permission-set roles: AWS sets the session name to the signed-in user.
_SSO_ROLE_PREFIX = "AWSReservedSSO_"
_SERVICE_LINKED_ROLE_PREFIX = "AWSServiceRoleFor"
_AWS_INTERNAL = "AWS Internal"
# The fields read from records, their paths resolved once (readers.text_reader).
_EVENT_NAME = text_reader("eventName")
_USER_AGENT = text_reader("userAgent")
_EVENT_ID = text_reader("eventID")
_ERROR = text_reader("errorCode", "errorMessage")
_TYPE = text_reader("type")
_EVENT_TYPE = text_reader("eventType")
_EVENT_SOURCE = text_reader("eventSource")
_ACCOUNT_ID = text_reader("accountId")
_RECIPIENT_ACCOUNT_ID = text_reader("recipientAccountId")
_USER_NAME = text_reader("userName")
_PRINCIPAL_ID = text_reader("principalId")
_CENTER_USER = text_reader("userName", "onBehalfOf.userId")
_INVOKED_BY = text_reader("invokedBy")
_ISSUER_USER_NAME = text_reader("sessionContext.sessionIssuer.userName")
_ANY_USER_NAME = text_reader("userName", "sessionContext.sessionIssuer.userName")
_PRINCIPAL_OR_ARN = text_reader("principalId", "arn")
_ARN_TEXT = text_reader("arn")
_RESOURCE_ARN = text_reader("ARN")
_INSTANCE_ID = text_reader("instanceId")
_ACCOUNT = text_reader("recipientAccountId", "userIdentity.accountId")
_AWS_REGION = text_reader("awsRegion")
_USER_IDENTITY_TYPE = text_reader("userIdentity.type")
_MFA_USED = text_reader("additionalEventData.MFAUsed")


class _Identity(NamedTuple):
    """Who called. A named tuple: one is made per record, and a frozen dataclass costs
    several times as much to build."""

    actor: str | None
    actor_type: ActorType = ActorType.UNKNOWN
    role: str | None = None


@register
class CloudTrailParser(Parser):
    name = "cloudtrail"
    time_field = "eventTime"
    priority = 20
    triggers = frozenset({"eventName", "eventname"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if not isinstance(get(doc, "eventName"), str):
            return False
        if doc.get("p_log_type") == "AWS.CloudTrail":
            return True
        return any(get(doc, field) is not None for field in _SHAPE_FIELDS)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        action = require(_EVENT_NAME(doc), "action")
        time = parse_time(_TIME(doc))
        identity = _identity(doc)
        return parsed(
            time=time,
            action=action,
            actor=require(identity.actor, "actor"),
            outcome=_outcome(doc, action),
            actor_type=identity.actor_type,
            ip=valid_ip(get(doc, "sourceIPAddress")),
            user_agent=_USER_AGENT(doc),
            target=_target(doc),
            vendor_id=_EVENT_ID(doc),
            attributes=_attributes(doc, identity),
        )


def _outcome(doc: Mapping[str, Any], action: str) -> Outcome:
    if _ERROR(doc) is not None:
        return Outcome.FAILURE
    # Console sign-in and MFA checks report their result as {"ConsoleLogin": "Failure"}.
    if str_or_none(get(get(doc, "responseElements"), action)) == "Failure":
        return Outcome.FAILURE
    return Outcome.SUCCESS


def _identity(doc: Mapping[str, Any]) -> _Identity:
    who = get(doc, "userIdentity")
    identity = _Identity(None)
    if is_mapping(who):
        kind = _TYPE(who)
        if kind is None and (_arn_resource(who) or "").startswith("assumed-role/"):
            kind = "AssumedRole"
        identity = _BY_TYPE.get(kind or "", _other)(who, doc)
    if identity.actor in (None, _AWS_INTERNAL) and _EVENT_TYPE(doc) == "AwsServiceEvent":
        # AWS's own work (key rotation, service-linked channels) names no one, at most
        # "AWS Internal": the service whose event it is is the actor. Identity Center
        # sign-ins are service events too, but they name the user, who stays the actor.
        return _Identity(_EVENT_SOURCE(doc), ActorType.SERVICE)
    return identity


def _root(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    # Every account has a root user, so the account is what tells one from another.
    account = _ACCOUNT_ID(who) or _arn_account(who) or _RECIPIENT_ACCOUNT_ID(doc)
    return _Identity(f"root@{account}" if account else "root", ActorType.HUMAN)


def _iam_user(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    name = _USER_NAME(who) or _arn_last(who) or _PRINCIPAL_ID(who)
    return _Identity(name, ActorType.HUMAN)


def _identity_center_user(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    return _Identity(_CENTER_USER(who), ActorType.HUMAN)


def _aws_service(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    return _Identity(_INVOKED_BY(who) or _EVENT_SOURCE(doc), ActorType.SERVICE)


def _aws_account(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    # A principal of another account: only its opaque id and its account are known.
    principal, account = _PRINCIPAL_ID(who), _ACCOUNT_ID(who)
    if principal and account:
        return _Identity(f"{principal}@{account}")
    return _Identity(principal or account or _INVOKED_BY(who))


def _federated_user(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    principal = _PRINCIPAL_ID(who) or ""
    return _Identity(_arn_last(who) or principal.partition(":")[2] or principal or None)


def _assumed_role(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    """``ROLE/SESSION`` as in the ARN, with three exceptions.

    Identity Center roles: the session name, which AWS sets to the signed-in user, so one
    person is one actor whichever permission set they use. Service-linked roles, and
    sessions named by an SDK's default timestamp: the role alone, as the session name
    names no one. The role is always in the attributes: CI roles are automation identities.
    """
    role, session = _role_session(who)
    if role is None:
        return _other(who, doc)
    if role.startswith(_SSO_ROLE_PREFIX) and session:
        return _Identity(session, ActorType.HUMAN, role)
    if role.startswith(_SERVICE_LINKED_ROLE_PREFIX):
        # The role names the AWS service; the service picks session names, often one per run.
        return _Identity(role, ActorType.SERVICE, role)
    generated, on_instance = _session_kind(session)
    actor = role if generated else f"{role}/{session}"
    if on_instance or _INVOKED_BY(who) is not None:
        return _Identity(actor, ActorType.SERVICE, role)
    from_console = str(get(doc, "sessionCredentialFromConsole")).lower() == "true"
    return _Identity(actor, ActorType.HUMAN if from_console else ActorType.UNKNOWN, role)


def _session_kind(session: str | None) -> tuple[bool, bool]:
    """Is a session name an SDK's default timestamp (or missing); is it an EC2 instance's id."""
    if session is None:
        return True, False
    # A role's sessions repeat (a CI job's name, an instance id): each is matched once.
    # Only name-sized strings are remembered, so a hostile one costs no memory.
    if len(session) <= _MAX_REMEMBERED:
        return _remembered_session_kind(session)
    return _match_session(session)


def _match_session(session: str) -> tuple[bool, bool]:
    generated = _GENERATED_SESSION.fullmatch(session) is not None
    return generated, _INSTANCE_SESSION.fullmatch(session) is not None


def _role_session(who: Mapping[str, Any]) -> tuple[str | None, str | None]:
    resource = _arn_resource(who) or ""
    kind, _, rest = resource.partition("/")
    role, _, session = rest.partition("/") if kind == "assumed-role" else ("", "", "")
    role = role or _ISSUER_USER_NAME(who) or ""
    if not session:
        # principalId is "AROA...:SESSION" when the ARN is missing or cut short.
        session = (_PRINCIPAL_ID(who) or "").partition(":")[2]
    return role or None, session or None


def _other(who: Mapping[str, Any], doc: Mapping[str, Any]) -> _Identity:
    # "Unknown" (Identity Center sign-in) and fragments without a type: best name available.
    name = _ANY_USER_NAME(who) or _arn_last(who)
    if name is None and (service := _INVOKED_BY(who)) is not None:
        return _Identity(service, ActorType.SERVICE)
    return _Identity(name or _PRINCIPAL_OR_ARN(who))


_BY_TYPE: dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], _Identity]] = {
    "Root": _root,
    "IAMUser": _iam_user,
    "IdentityCenterUser": _identity_center_user,
    "AWSService": _aws_service,
    "AWSAccount": _aws_account,
    "FederatedUser": _federated_user,
    "AssumedRole": _assumed_role,
}


def _arn_resource(who: Mapping[str, Any]) -> str | None:
    parts = _arn_parts(_ARN_TEXT(who) or "")
    return parts[1] if parts else None


def _arn_account(who: Mapping[str, Any]) -> str | None:
    parts = _arn_parts(_ARN_TEXT(who) or "")
    return (parts[0] or None) if parts else None


def _arn_parts(arn: str) -> tuple[str, str] | None:
    """An IAM/STS ARN's account and resource (``assumed-role/ROLE/SESSION``), or None."""
    # A stream repeats its callers' ARNs: each is matched once. Only ARN-sized strings are
    # remembered, so a hostile one costs no memory.
    if len(arn) <= _MAX_REMEMBERED:
        return _remembered_arn_parts(arn)
    return _match_arn(arn)


def _match_arn(arn: str) -> tuple[str, str] | None:
    match = _ARN.fullmatch(arn)
    return (match.group(1), match.group(2)) if match else None


_MAX_REMEMBERED = 2048
_remembered_arn_parts = functools.lru_cache(maxsize=4096)(_match_arn)
_remembered_session_kind = functools.lru_cache(maxsize=4096)(_match_session)


def _arn_last(who: Mapping[str, Any]) -> str | None:
    """The name at the end of an IAM/STS ARN (``user/path/NAME`` → ``NAME``)."""
    resource = _arn_resource(who)
    if resource is None or "/" not in resource:
        return None
    return resource.rsplit("/", 1)[1] or None


def _target(doc: Mapping[str, Any]) -> str | None:
    resources = get(doc, "resources")
    if isinstance(resources, list) and resources:
        arn = _RESOURCE_ARN(resources[0])
        if arn is not None:
            return arn
    params = get(doc, "requestParameters")
    if not is_mapping(params) or not params:
        return None
    # Most calls have a handful of parameters: look up only those that can name a target.
    present = {key.lower() for key in params}
    found = first_str(params, *(p for p, lower in _TARGET_PARAMS_LOWER if lower in present))
    if found is not None:
        return found
    items = get(get(params, "instancesSet"), "items")
    if isinstance(items, list) and items:
        return _INSTANCE_ID(items[0])
    return None


def _attributes(doc: Mapping[str, Any], identity: _Identity) -> dict[str, str]:
    candidates = {
        "account": _ACCOUNT(doc),
        "region": _AWS_REGION(doc),
        "event_source": _EVENT_SOURCE(doc),
        "identity_type": _USER_IDENTITY_TYPE(doc),
        "role": identity.role,
        "mfa_used": _MFA_USED(doc),
        # Present only when the request writes a policy that lets anyone in (aws_policy).
        "policy_public": "true" if grants_everyone(get(doc, "requestParameters")) else None,
    }
    return {key: value for key, value in candidates.items() if value is not None}
