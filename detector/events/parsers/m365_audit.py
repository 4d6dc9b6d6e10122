"""Office 365 Management Activity API records (the Microsoft 365 unified audit log).

Every record has the common schema: ``CreationTime`` (UTC, published without a
zone), ``Id``, ``Operation``, ``OrganizationId``, ``RecordType`` (1
ExchangeAdmin, 8 AzureActiveDirectory, 15 AzureActiveDirectoryStsLogon ...),
``ResultStatus``, ``UserKey``, ``UserType``, ``Workload``, ``UserId`` (a UPN,
or a system account), ``ClientIP`` and ``ObjectId``. Workloads add their own
fields: Entra ID records (``Workload: AzureActiveDirectory``) carry
``ActorIpAddress``, ``ExtendedProperties`` (name/value pairs, ``UserAgent``
among them), ``ModifiedProperties`` and the ``Actor``/``Target`` identity lists
(``{"ID", "Type"}``, types 0 Claim, 1 Name, 2 Other, 3 PUID, 4 SPN, 5 UPN);
sign-ins add ``LogonError`` and ``ErrorCode``. Exchange admin records name the
cmdlet in ``Operation`` and its arguments in ``Parameters``.

Action: ``Operation`` verbatim (``UserLoginFailed``, ``Add member to role.``,
``Set-AdminAuditLogConfig``). Outcome: ``UserLoginFailed`` is a failed sign-in
whatever ``ResultStatus`` says (for STS logons it only reports the HTTP call);
otherwise ``ResultStatus`` (``Succeeded``/``Failed``; ``True``/``False`` for
Exchange admin cmdlets). Schema: Microsoft's "Office 365 Management Activity
API schema" reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from detector.events.fields import first_str, get, parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["M365AuditParser"]

_FAILED_SIGN_IN = "UserLoginFailed"
_SUCCESS = frozenset({"succeeded", "success", "true", "partiallysucceeded"})
_FAILURE = frozenset({"failed", "failure", "false"})
# The schema's UserType enum; 3 (DcAdmin) is Microsoft staff or a datacenter account.
_HUMAN_USER_TYPES = frozenset({"0", "1", "2", "9", "10"})
_SERVICE_USER_TYPES = frozenset({"4", "5", "6", "7", "8"})
_USER_TYPE_NAMES = {
    "0": "Regular",
    "1": "Reserved",
    "2": "Admin",
    "3": "DcAdmin",
    "4": "System",
    "5": "Application",
    "6": "ServicePrincipal",
    "7": "CustomPolicy",
    "8": "SystemPolicy",
    "9": "PartnerTechnician",
    "10": "Guest",
}
# IdentityType of the Actor/Target lists.
_NAME, _SPN, _UPN = "1", "4", "5"
_SERVICE_ACTOR_PREFIXES = ("ServicePrincipal_", "NT AUTHORITY\\", "app@sharepoint")
_ROLE_PROPERTY = "Role.DisplayName"
# Exchange cmdlets can carry long values (rule bodies, address lists): keep the summary bounded.
_MAX_PARAMETER_VALUE = 120
_MAX_PARAMETERS = 1024
_ATTRIBUTES = {
    "workload": "Workload",
    "record_type": "RecordType",
    "tenant": "OrganizationId",
    "app_id": "ApplicationId",
    "error_code": "ErrorCode",
}


@register
class M365AuditParser(Parser):
    name = "m365_audit"
    time_field = "CreationTime"
    priority = 20
    triggers = frozenset({"CreationTime", "creationtime"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        # CreationTime is this schema's own name; RecordType or Workload confirm it. A record
        # of this shape without an Operation is then a dead letter naming what is missing.
        if not isinstance(get(doc, "CreationTime"), str):
            return False
        return get(doc, "RecordType") is not None or isinstance(get(doc, "Workload"), str)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        action = require(first_str(doc, "Operation"), "action")
        actor = (
            first_str(doc, "UserId") or _identity(doc, "Actor", _UPN) or first_str(doc, "UserKey")
        )
        role = _role(doc)
        return parsed(
            time=parse_time(get(doc, "CreationTime")),
            action=action,
            actor=require(actor, "actor"),
            outcome=_outcome(doc, action),
            actor_type=_actor_type(doc, actor or ""),
            ip=_ip(doc),
            user_agent=_user_agent(doc),
            target=role or _target(doc),
            vendor_id=first_str(doc, "Id"),
            attributes=_attributes(doc, role),
        )


def _outcome(doc: Mapping[str, Any], action: str) -> Outcome:
    if action == _FAILED_SIGN_IN:
        return Outcome.FAILURE
    status = (first_str(doc, "ResultStatus") or "").lower()
    if status in _FAILURE:
        return Outcome.FAILURE
    if status in _SUCCESS:
        return Outcome.SUCCESS
    return Outcome.UNKNOWN


def _actor_type(doc: Mapping[str, Any], actor: str) -> ActorType:
    if actor.startswith(_SERVICE_ACTOR_PREFIXES):
        return ActorType.SERVICE
    user_type = first_str(doc, "UserType")
    if user_type in _SERVICE_USER_TYPES:
        return ActorType.SERVICE
    if user_type in _HUMAN_USER_TYPES:
        return ActorType.HUMAN
    if _identity(doc, "Actor", _UPN):
        return ActorType.HUMAN
    return ActorType.SERVICE if _identity(doc, "Actor", _SPN) else ActorType.UNKNOWN


def _ip(doc: Mapping[str, Any]) -> str | None:
    for field in ("ClientIP", "ActorIpAddress", "ClientIPAddress"):
        if (ip := _without_port(first_str(doc, field))) is not None:
            return ip
    return None


def _without_port(text: str | None) -> str | None:
    """``1.2.3.4:5678``, ``[2603:10b6::1]:443`` and bare addresses, as the address alone."""
    if text is None:
        return None
    if (ip := valid_ip(text)) is not None:
        return ip
    if text.startswith("["):
        return valid_ip(text[1:].split("]", 1)[0])
    if text.count(":") == 1:
        return valid_ip(text.split(":", 1)[0])
    return None


def _user_agent(doc: Mapping[str, Any]) -> str | None:
    return (
        _pair_value(doc, "ExtendedProperties", "UserAgent")
        or first_str(doc, "UserAgent")
        or first_str(doc, "ClientInfoString")
    )


def _target(doc: Mapping[str, Any]) -> str | None:
    # The user acted on (UPN), else the display name of an app or group, else the object id.
    return (
        _identity(doc, "Target", _UPN)
        or _identity(doc, "Target", _NAME)
        or first_str(doc, "ObjectId", "ModifiedObjectResolvedName")
    )


def _role(doc: Mapping[str, Any]) -> str | None:
    """The directory role of a role-membership change (new value on add, old on remove)."""
    for item in _pairs(doc, "ModifiedProperties"):
        if item.get("Name") == _ROLE_PROPERTY:
            return str_or_none(item.get("NewValue")) or str_or_none(item.get("OldValue"))
    return None


def _identity(doc: Mapping[str, Any], field: str, kind: str) -> str | None:
    """The first ``ID`` of that IdentityType in an ``Actor`` or ``Target`` list."""
    for item in _pairs(doc, field):
        if str_or_none(item.get("Type")) == kind and (value := str_or_none(item.get("ID"))):
            return value
    return None


def _pair_value(doc: Mapping[str, Any], field: str, name: str) -> str | None:
    for item in _pairs(doc, field):
        if item.get("Name") == name:
            return str_or_none(item.get("Value"))
    return None


def _pairs(doc: Mapping[str, Any], field: str) -> Iterator[Mapping[str, Any]]:
    items = get(doc, field)
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, Mapping))


def _cmdlet_parameters(doc: Mapping[str, Any]) -> str | None:
    """Exchange cmdlet arguments as ``-Name Value`` text, each value and the whole bounded."""
    parts = []
    for item in _pairs(doc, "Parameters"):
        name = str_or_none(item.get("Name"))
        if name is None:
            continue
        value = str_or_none(item.get("Value")) or ""
        if len(value) > _MAX_PARAMETER_VALUE:
            value = value[: _MAX_PARAMETER_VALUE - 1] + "…"
        parts.append(f"-{name} {value}".rstrip())
    text = " ".join(parts)
    return text[: _MAX_PARAMETERS - 1] + "…" if len(text) > _MAX_PARAMETERS else text or None


def _attributes(doc: Mapping[str, Any], role: str | None) -> dict[str, str]:
    out = {key: value for key, path in _ATTRIBUTES.items() if (value := first_str(doc, path))}
    user_type = first_str(doc, "UserType")
    extras = {
        "user_type": _USER_TYPE_NAMES.get(user_type or "", user_type),
        "role": role,
        "object": first_str(doc, "ObjectId") if role else None,
        "logon_error": first_str(doc, "LogonError")
        or _pair_value(doc, "ExtendedProperties", "LogonError"),
        "cmdlet_parameters": _cmdlet_parameters(doc),
    }
    out.update({key: value for key, value in extras.items() if value})
    return out
