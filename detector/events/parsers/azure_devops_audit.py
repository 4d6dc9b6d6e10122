"""Azure DevOps auditing: audit streams (Splunk, Azure Monitor Logs) and the REST audit log.

One record, three spellings of its keys:

* **audit streams** to Splunk and the REST ``/_apis/audit/auditlog`` entries use
  camelCase: ``id``, ``correlationId``, ``activityId``, ``actorCUID``,
  ``actorUserId``, ``actorClientId``, ``actorUPN``, ``actorDisplayName``,
  ``authenticationMechanism``, ``timestamp``, ``scopeType``, ``scopeDisplayName``,
  ``scopeId``, ``projectId``, ``projectName``, ``ipAddress``, ``userAgent``,
  ``actionId``, ``data``, ``details``, ``area``, ``category``,
  ``categoryDisplayName``;
* **Azure Monitor Logs** (the ``AzureDevOpsAuditing`` table, and Sentinel's
  ``ADOAuditLogs_CL``) uses the same names in PascalCase (``ActorUPN``,
  ``ScopeDisplayName``), ``TimeGenerated`` for the time, ``OperationName`` for
  the action in the built-in table, and ``Data`` as a JSON string when exported;
* data lakes lower-case every key (``actorupn``).

Action: ``ActionId`` (``Policy.PolicyConfigRemoved``, ``Token.PatCreateEvent``)
verbatim, else ``OperationName``. Actor: ``ActorUPN``, else the display name,
else the ``ActorCUID``; Azure DevOps' own identities (``Azure DevOps Service``,
``Project Collection Build Service (org)``, ``<project> Build Service (org)``)
and app identities (``ActorClientId`` without a UPN) are services. Target: what
``Data`` names (repository, pipeline, variable group, service connection,
token, stream), the group of a membership change (from ``Details``:
``... was added as a member of group [project]\\Project Administrators``), else
the scope. Audit records describe completed actions: the outcome is success
unless the action names a failure (``Project.CreateFailed``,
``Pipelines.ResourceNotAuthorizedForPipeline``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from detector.events.fields import get, parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["AzureDevOpsAuditParser"]

_TIME_FIELDS = ("Timestamp", "TimeGenerated")
_ACTION_FIELDS = ("ActionId", "OperationName")
# Keys every audit entry carries whatever its spelling; two of them identify the shape.
_ACTOR_KEYS = ("ActorCUID", "ActorUserId")
_SCOPE_KEYS = ("ScopeType", "ScopeId", "ScopeDisplayName")
# The actor keys in every spelling: auto-detection asks every record, so a dict lookup
# or six must turn away the other log types before anything slower runs.
_ACTOR_SPELLINGS = frozenset(
    spelling for key in _ACTOR_KEYS for spelling in (key, key[0].lower() + key[1:], key.lower())
)
# What Data names, most specific first (keys as in Microsoft's list of auditing events).
_DATA_TARGETS = (
    "RepoName",
    "PipelineName",
    "VariableGroupName",
    "ConnectionName",
    "AgentPoolName",
    "ExtensionName",
    "GroupName",
    "DisplayName",
    "EnforcePolicyName",
    "PolicyName",
    "PolicyTypeDisplayName",
    "NamespaceName",
)
_MEMBERSHIP = re.compile(
    r"^(?P<member>.+?) was (?:added as|removed as) a member of group (?P<group>.+?)\.?$"
)
_SERVICE_NAMES = re.compile(
    r"^(?:Azure DevOps Service|Project Collection Build Service\b.*|.+ Build Service \(.+\)"
    r"|Microsoft\.VisualStudio\..+|Agent Pool Service \(.+\))$",
    re.IGNORECASE,
)
_FAILURE_WORDS = ("Failed", "NotAuthorized")
_ORG_SUFFIX = " (Organization)"
_MAX_DATA_CHARS = 65_536


@register
class AzureDevOpsAuditParser(Parser):
    name = "azure_devops_audit"
    time_field = "Timestamp"
    priority = 20
    triggers = _ACTOR_SPELLINGS

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if _ACTOR_SPELLINGS.isdisjoint(doc):
            return False
        has_action = any(isinstance(_field(doc, key), str) for key in _ACTION_FIELDS)
        return (
            has_action
            and any(_field(doc, key) is not None for key in _ACTOR_KEYS)
            and any(_field(doc, key) is not None for key in _SCOPE_KEYS)
        )

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        time = parse_time(next((v for f in _TIME_FIELDS if (v := _field(doc, f))), None))
        action = require(_text(doc, *_ACTION_FIELDS), "action")
        upn = _text(doc, "ActorUPN")
        display = _text(doc, "ActorDisplayName")
        actor = require(upn or display or _text(doc, "ActorCUID", "ActorUserId"), "actor")
        data = _data(doc)
        details = _text(doc, "Details")
        membership = _MEMBERSHIP.match(details) if details else None
        return parsed(
            time=time,
            action=action,
            actor=actor,
            outcome=_outcome(action),
            actor_type=_actor_type(doc, upn, display),
            ip=valid_ip(_field(doc, "IpAddress")),
            user_agent=_text(doc, "UserAgent"),
            target=_target(doc, data, membership),
            vendor_id=_text(doc, "Id"),
            attributes=_attributes(doc, membership),
        )


def _field(doc: Mapping[str, Any], pascal: str) -> Any:
    """A key in PascalCase (Log Analytics), camelCase (streams, REST) or lower case."""
    value = doc.get(pascal)
    if value is None:
        value = get(doc, pascal[0].lower() + pascal[1:])
    return value


def _text(doc: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        text = str_or_none(_field(doc, key))
        if text is not None:
            return text
    return None


def _data(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """``Data`` as an object; Log Analytics exports hand it over as a JSON string."""
    data = _field(doc, "Data")
    if isinstance(data, str) and data.startswith("{") and len(data) <= _MAX_DATA_CHARS:
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, Mapping) else {}


def _outcome(action: str) -> Outcome:
    operation = action.rpartition(".")[2]
    return Outcome.FAILURE if any(w in operation for w in _FAILURE_WORDS) else Outcome.SUCCESS


def _actor_type(doc: Mapping[str, Any], upn: str | None, display: str | None) -> ActorType:
    if display is not None and _SERVICE_NAMES.match(display):
        return ActorType.SERVICE
    if upn is not None:
        return ActorType.HUMAN
    # An app or service principal acting with its own token has a client id and no UPN.
    if _text(doc, "ActorClientId") is not None:
        return ActorType.SERVICE
    return ActorType.UNKNOWN


def _target(
    doc: Mapping[str, Any], data: Mapping[str, Any], membership: re.Match[str] | None
) -> str | None:
    if membership is not None:
        return membership["group"]
    for key in _DATA_TARGETS:
        text = _text(data, key)
        if text is not None:
            return text
    return _text(doc, "ScopeDisplayName")


def _attributes(doc: Mapping[str, Any], membership: re.Match[str] | None) -> dict[str, str]:
    scope = _text(doc, "ScopeDisplayName")
    scope_type = _text(doc, "ScopeType")
    org = None
    if scope is not None and (scope_type or "").lower() in ("organization", "enterprise"):
        org = scope.removesuffix(_ORG_SUFFIX)
    candidates = {
        "org": org,
        "scope": scope,
        "scope_type": scope_type,
        "project": _text(doc, "ProjectName"),
        "area": _text(doc, "Area"),
        "category": _text(doc, "Category", "CategoryDisplayName"),
        "auth_mechanism": _text(doc, "AuthenticationMechanism"),
        "member": membership["member"] if membership is not None else None,
    }
    return {key: value for key, value in candidates.items() if value is not None}
