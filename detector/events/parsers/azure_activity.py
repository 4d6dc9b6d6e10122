"""Azure Activity Log (Azure Resource Manager control plane) and Azure resource logs.

Shapes read:

* **Diagnostic-settings export** (Event Hubs, storage account; Panther's
  ``Azure.MonitorActivity``): ``time``, ``resourceId``, ``operationName``
  (``MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE``), ``category``
  (``Administrative``, ``Policy``, ``Security``, ``Recommendation`` ...),
  ``resultType`` (``Start``, ``Accept``, ``Success``, ``Failure``),
  ``resultSignature``, ``callerIpAddress``, ``correlationId``, ``identity``
  (``authorization`` with the caller's ``evidence``, ``claims`` keyed by JWT claim
  names such as ``http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn``,
  ``name``, ``appid``, ``ipaddr``) and ``properties`` (``entity``, ``message``,
  ``requestbody`` as a JSON string, ``statusCode``, ``eventCategory``). The REST
  API's ``operationName: {"value", "localizedValue"}`` and ``caller`` are read too.
* **Resource logs in the same stream**, such as Storage's ``StorageRead`` /
  ``StorageWrite`` / ``StorageDelete`` (``operationName`` ``GetBlob``, a
  ``callerIpAddress`` with a port, ``identity.requester``, ``statusCode``).
* **Log Analytics / Sentinel ``AzureActivity`` rows** (``Type: AzureActivity``):
  ``TimeGenerated``, ``OperationNameValue``, ``ActivityStatusValue``, ``Caller``,
  ``CallerIpAddress``, ``ResourceId``, ``CategoryValue``, ``Authorization``/
  ``Claims``/``Properties`` (JSON strings) or their decoded ``_d`` twins. A row is
  reshaped into the export record first, so both give the same event.

AKS ``kube-audit`` records also travel in this stream: they are Kubernetes audit
events and left to the ``k8s_audit`` parser (which is tried first).

Action: ``operationName`` verbatim (case as published); the taxonomy key is it
upper-cased, as the Activity Log publishes ARM operations. Outcome: ``Success``/
``Succeeded`` success, ``Failure``/``Failed`` failure; ``Start``, ``Accept`` and
the like are **unknown**: a write is logged as Start then Success, and rules
match the final record only, so one change makes one alert. Actor: the UPN or
name claim, the app id (a service), ``caller``, the caller's principal id from
the authorization evidence, a storage requester; a record naming no caller at
all (trimmed exports) gets its caller IP address as the actor, flagged with
``actor_from: caller_ip``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from detector.events.fields import first_str, get, get_path, parse_time, require, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["BUILTIN_ROLES", "AzureActivityParser", "dynamic", "reshape_azure_activity_row"]

_LA_TYPE = "AzureActivity"
# Categories that are not ARM activity: Kubernetes audit (k8s_audit) and Entra ID logs.
_FOREIGN_CATEGORIES = frozenset(
    {
        "kube-audit",
        "kube-audit-admin",
        "SignInLogs",
        "NonInteractiveUserSignInLogs",
        "ServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "AuditLogs",
        "ProvisioningLogs",
    }
)
_RESULTS = {
    "success": Outcome.SUCCESS,
    "succeeded": Outcome.SUCCESS,
    "failure": Outcome.FAILURE,
    "failed": Outcome.FAILURE,
}
_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_HUMAN_CLAIMS = (f"{_CLAIM}upn", "upn", "name", f"{_CLAIM}name", f"{_CLAIM}emailaddress")
_APP_CLAIMS = ("appid", "azp")
_STORAGE_REQUESTER = (
    "identity.requester.upn",
    "identity.requester.objectId",
    "identity.requester.appId",
)
_SEGMENT = {
    "subscription": re.compile(r"/subscriptions/([^/]+)", re.IGNORECASE),
    "resource_group": re.compile(r"/resourceGroups/([^/]+)", re.IGNORECASE),
    "provider": re.compile(r"/providers/([^/]+)", re.IGNORECASE),
}
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_PORT = re.compile(r"^\[?([^\]]+?)\]?:\d+$")

BUILTIN_ROLES: dict[str, str] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-485e-8b1d-aa4e0d00bcb3": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}
"""Built-in Azure RBAC role definition GUIDs (the same in every tenant) → role names."""


def dynamic(value: Any) -> Any:
    """A Log Analytics ``dynamic`` column: JSON text decoded, anything else as it is.

    Exports and some tables (``AADNonInteractiveUserSignInLogs``) carry dynamic values
    as strings; a string that is not a JSON object or array stays a string.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("{", "[")):
        return value
    try:
        return json.loads(text)
    except ValueError:
        return value


def reshape_azure_activity_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``AzureActivity`` Log Analytics row as the diagnostic-export record it mirrors."""
    claims = dynamic(row.get("Claims_d") or row.get("Claims"))
    authorization = dynamic(row.get("Authorization_d") or row.get("Authorization"))
    identity = {
        key: value
        for key, value in (("claims", claims), ("authorization", authorization))
        if isinstance(value, Mapping)
    }
    record = {
        "time": row.get("TimeGenerated") or row.get("EventSubmissionTimestamp"),
        "resourceId": row.get("ResourceId") or row.get("_ResourceId"),
        "operationName": row.get("OperationNameValue") or row.get("OperationName"),
        "category": row.get("CategoryValue") or row.get("Category"),
        "resultType": row.get("ActivityStatusValue") or row.get("ActivityStatus"),
        "resultSignature": row.get("ActivitySubstatusValue") or row.get("ActivitySubstatus"),
        "callerIpAddress": row.get("CallerIpAddress"),
        "correlationId": row.get("CorrelationId"),
        "caller": row.get("Caller"),
        "level": row.get("Level"),
        "tenantId": row.get("TenantId"),
        "eventDataId": row.get("EventDataId"),
        "identity": identity or None,
        "properties": dynamic(row.get("Properties_d") or row.get("Properties")),
    }
    return {key: value for key, value in record.items() if value not in (None, "")}


@register
class AzureActivityParser(Parser):
    name = "azure_activity"
    time_field = "time"
    # After k8s_audit and azure_entra_id (20), which own kube-audit and Entra categories.
    priority = 30
    triggers = frozenset({"Type", "OperationNameValue", "operationName", "operationname"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if _is_row(doc):
            return True
        operation = _operation(doc)
        if operation is None or first_str(doc, "category") in _FOREIGN_CATEGORIES:
            return False
        resource = (first_str(doc, "resourceId") or "").lower()
        if resource.startswith("/tenants/"):
            return False
        if resource.startswith(("/subscriptions/", "/providers/")):
            return True
        # Fragments without a resource id: an ARM operation name, or the export's envelope.
        return "/" in operation or any(
            get(doc, key) is not None for key in ("callerIpAddress", "correlationId")
        )

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        record: Mapping[str, Any] = reshape_azure_activity_row(doc) if _is_row(doc) else doc
        action = require(_operation(record), "action")
        properties = dynamic(get(record, "properties"))
        props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
        ip = _ip(record)
        actor, actor_type = _actor(record)
        extra: dict[str, str] = {}
        if actor is None and ip is not None:
            actor, extra = ip, {"actor_from": "caller_ip"}
        return parsed(
            time=parse_time(first_str(record, "time", "eventTimestamp", "p_event_time")),
            action=action,
            actor=require(actor, "actor"),
            outcome=_outcome(record, props),
            actor_type=actor_type,
            ip=ip,
            user_agent=first_str(props, "userAgentHeader"),
            target=first_str(record, "resourceId") or first_str(props, "entity"),
            vendor_id=first_str(record, "eventDataId"),
            taxonomy_key=action.upper(),
            attributes={**_attributes(record, props, action), **extra},
        )


def _is_row(doc: Mapping[str, Any]) -> bool:
    """A Log Analytics ``AzureActivity`` row: by ``Type``, or by its unmistakable columns."""
    kind = doc.get("Type")
    if kind is not None:
        return bool(kind == _LA_TYPE)
    return "OperationNameValue" in doc and ("ActivityStatusValue" in doc or "Caller" in doc)


def _operation(doc: Mapping[str, Any]) -> str | None:
    # The REST API gives {"value", "localizedValue"}; exports give the value itself.
    return first_str(doc, "operationName.value", "operationName")


def _outcome(record: Mapping[str, Any], props: Mapping[str, Any]) -> Outcome:
    result = first_str(record, "resultType", "status.value", "status")
    if result is not None:
        # Start, Accept, Active: not finished; the operation's final record says how it went.
        return _RESULTS.get(result.lower(), Outcome.UNKNOWN)
    if response := first_str(props, "metricResponseType"):
        # Storage logs: anything but Success is an error class (AuthorizationError ...).
        return Outcome.SUCCESS if response.lower() == "success" else Outcome.FAILURE
    code = first_str(record, "statusCode") or first_str(props, "statusCode")
    if code is not None and code.isdigit():
        return Outcome.SUCCESS if int(code) < 400 else Outcome.FAILURE
    return Outcome.UNKNOWN


def _claims(record: Mapping[str, Any]) -> Mapping[str, Any]:
    claims = dynamic(get_path(record, "identity.claims"))
    return claims if isinstance(claims, Mapping) else {}


def _claim(claims: Mapping[str, Any], *keys: str) -> str | None:
    # Claim names are URLs with dots: read them as keys, never as dotted paths.
    for key in keys:
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _actor(record: Mapping[str, Any]) -> tuple[str | None, ActorType]:
    claims = _claims(record)
    if person := _claim(claims, *_HUMAN_CLAIMS):
        return person, ActorType.HUMAN if "@" in person else ActorType.UNKNOWN
    if app := _claim(claims, *_APP_CLAIMS):
        return app, ActorType.SERVICE
    if caller := first_str(record, "caller"):
        return caller, ActorType.HUMAN if "@" in caller else ActorType.UNKNOWN
    evidence = "identity.authorization.evidence"
    if principal := first_str(record, f"{evidence}.principalId"):
        kind = first_str(record, f"{evidence}.principalType")
        known = {"User": ActorType.HUMAN, "ServicePrincipal": ActorType.SERVICE}
        return principal, known.get(kind or "", ActorType.UNKNOWN)
    if requester := first_str(record, *_STORAGE_REQUESTER):
        human = first_str(record, "identity.requester.upn") is not None
        return requester, ActorType.HUMAN if human else ActorType.SERVICE
    # Storage requests signed with a SAS token or an account key: the key is the identity.
    if (kind := first_str(record, "identity.type")) and (
        token := first_str(record, "identity.tokenHash")
    ):
        return f"{kind}:{token}", ActorType.UNKNOWN
    return None, ActorType.UNKNOWN


def _ip(record: Mapping[str, Any]) -> str | None:
    for value in (first_str(record, "callerIpAddress"), _claim(_claims(record), "ipaddr")):
        if value is None:
            continue
        # Storage logs give "address:port" ("[v6]:port" for IPv6).
        if (ip := valid_ip(value) or valid_ip(_PORT.sub(r"\1", value))) is not None:
            return ip
    return None


def _request_body(props: Mapping[str, Any]) -> Mapping[str, Any]:
    body = dynamic(get(props, "requestbody") or get(props, "requestBody"))
    return body if isinstance(body, Mapping) else {}


def _attributes(record: Mapping[str, Any], props: Mapping[str, Any], action: str) -> dict[str, str]:
    resource = first_str(record, "resourceId") or first_str(props, "entity") or ""
    out = {
        name: match.group(1)
        for name, pattern in _SEGMENT.items()
        if (match := pattern.search(resource))
    }
    if "/" in action:
        out["provider"] = action.split("/", 1)[0]
    body = _request_body(props)
    role_id = first_str(body, "Properties.RoleDefinitionId", "properties.roleDefinitionId")
    extras = {
        "category": first_str(record, "category"),
        "status_code": first_str(props, "statusCode") or first_str(record, "statusCode"),
        "tenant": first_str(record, "tenantId"),
        "role_definition": _role_name(role_id),
        "scope": first_str(body, "Properties.Scope", "properties.scope"),
        "principal_type": first_str(body, "Properties.PrincipalType", "properties.principalType"),
    }
    out.update({key: value for key, value in extras.items() if value})
    return out


def _role_name(role_id: str | None) -> str | None:
    """A role definition's name for a built-in role, else its GUID."""
    if role_id is None:
        return None
    guids: list[str] = _GUID.findall(role_id)
    if not guids:
        return role_id
    guid = guids[-1].lower()
    return BUILTIN_ROLES.get(guid, guid)
