"""Microsoft Entra ID (Azure AD) sign-in and audit logs.

Two shapes carry the same records:

* **Azure Monitor diagnostic export** (Event Hub, storage account, Panther's
  ``Azure.Audit``): an envelope with ``time``, ``category`` (``SignInLogs``,
  ``NonInteractiveUserSignInLogs``, ``ServicePrincipalSignInLogs``,
  ``ManagedIdentitySignInLogs``, ``AuditLogs`` ...), ``operationName``,
  ``resourceId`` ``/tenants/<id>/providers/Microsoft.aadiam``, ``tenantId``,
  ``callerIpAddress``, ``resultType`` and the record itself in ``properties``.
  Panther lower-cases the envelope keys (``operationname``, ``calleripaddress``)
  but not those inside ``properties``.
* **Microsoft Graph API** (``/auditLogs/signIns``, ``/auditLogs/directoryAudits``):
  the ``properties`` object on its own.

* **Log Analytics / Sentinel rows** (``Type`` ``SigninLogs``,
  ``AADNonInteractiveUserSignInLogs``, ``AADServicePrincipalSignInLogs``,
  ``AADManagedIdentitySignInLogs``, ``AuditLogs``): the same fields as PascalCase
  columns (``UserPrincipalName``, ``IPAddress``, ``LocationDetails``, ``Status``,
  ``InitiatedBy``, ``TargetResources`` ...) next to the export's envelope columns
  (``TimeGenerated``, ``OperationName``, ``ResultType``, ``Category``). Dynamic
  columns may be JSON strings. A row is reshaped into the diagnostic-export record
  first, so that both give the same event; rows are recognised by ``Type``, or by
  their columns when an export dropped it.

Sign-ins have ``createdDateTime``, ``userPrincipalName`` (or
``servicePrincipalName``), ``status.errorCode`` (0 is success), ``ipAddress``,
``location.countryOrRegion``, ``appDisplayName`` and ``userAgent``. Audit
records have ``activityDateTime``, ``activityDisplayName``, ``initiatedBy``
(``user`` or ``app``), ``result`` and ``targetResources``.

Action: a sign-in is ``operationName`` (``"Sign-in activity"``, also used for
the Graph shape, which has no operation name); an audit record is
``activityDisplayName``, else ``operationName``, so that both shapes give the
same action for the same activity. Time: the record's own
``createdDateTime``/``activityDateTime``, else the export's ``time``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.events.fields import first_str, get, get_path, parse_time, require, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.azure_activity import dynamic
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["EntraIdParser", "reshape_entra_row"]

_SIGN_IN_ACTION = "Sign-in activity"
_SERVICE_SIGN_INS = frozenset(
    {
        "ServicePrincipalSignInLogs",
        "ManagedIdentitySignInLogs",
        "MicrosoftServicePrincipalSignInLogs",
    }
)
_SIGN_IN_CATEGORIES = _SERVICE_SIGN_INS | {
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ADFSSignInLogs",
}
_AUDIT_CATEGORIES = frozenset({"AuditLogs", "ProvisioningLogs"})
_CATEGORIES = _SIGN_IN_CATEGORIES | _AUDIT_CATEGORIES
_RESOURCE_SUFFIX = "/providers/microsoft.aadiam"
_SERVICE_EVENT_TYPES = frozenset({"servicePrincipal", "managedIdentity"})
_TIME_FIELDS = ("createdDateTime", "activityDateTime")
_ENVELOPE_TIME_FIELDS = ("time", "p_event_time")
_SUCCESS = frozenset({"success", "succeeded", "0"})
_FAILURE = frozenset({"failure", "failed", "fail", "timeout"})
_SIGN_IN_ACTOR = (
    "userPrincipalName",
    "servicePrincipalName",
    "userDisplayName",
    "appDisplayName",
    "servicePrincipalId",
    "userId",
)
_AUDIT_ACTOR = (
    "initiatedBy.user.userPrincipalName",
    "initiatedBy.user.displayName",
    "initiatedBy.app.displayName",
    "initiatedBy.app.servicePrincipalName",
    "initiatedBy.user.id",
    "initiatedBy.app.appId",
    "initiatedBy.app.servicePrincipalId",
)
# Log Analytics table → the diagnostic-export category of the same records.
_LA_TABLES = {
    "SigninLogs": "SignInLogs",
    "AADNonInteractiveUserSignInLogs": "NonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs": "ServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs": "ManagedIdentitySignInLogs",
    "AADProvisioningLogs": "ProvisioningLogs",
    "AuditLogs": "AuditLogs",
}
# Row columns that are the export's envelope, not the record in "properties".
LOG_ANALYTICS_ENVELOPE = {
    "TimeGenerated": "time",
    "ResourceId": "resourceId",
    "OperationName": "operationName",
    "OperationVersion": "operationVersion",
    "ResultType": "resultType",
    "ResultSignature": "resultSignature",
    "ResultDescription": "resultDescription",
    "DurationMs": "durationMs",
    "CorrelationId": "correlationId",
    "Level": "level",
    "Location": "location",
    "Identity": "identity",
    "TenantId": "tenantId",
}
_LA_DROPPED = frozenset(
    {"Type", "SourceSystem", "Resource", "ResourceGroup", "ResourceProvider", "_ResourceId"}
)
# Columns whose record field is not the column name with a lower-case first letter.
LOG_ANALYTICS_RENAMED = {
    "IPAddress": "ipAddress",
    "LocationDetails": "location",
    "AADOperationType": "operationType",
    "AADTenantId": "tenantId",
}
_ATTRIBUTES = {
    "app": "appDisplayName",
    "resource": "resourceDisplayName",
    "client_app": "clientAppUsed",
    "auth_protocol": "authenticationProtocol",
    "session": "sessionId",
    "service": "loggedByService",
    "operation_type": "operationType",
    # Sign-ins: the strongest authentication any step asked for (singleFactorAuthentication,
    # multiFactorAuthentication) and whether conditional access applied (success, failure,
    # notApplied). Together they say whether the sign-in was let through on a password alone.
    "auth_requirement": "authenticationRequirement",
    "conditional_access": "conditionalAccessStatus",
}


@register
class EntraIdParser(Parser):
    name = "azure_entra_id"
    time_field = "time"
    priority = 20
    triggers = frozenset(
        {
            "Type",
            "ActivityDisplayName",
            "UserPrincipalName",
            "properties",
            "initiatedBy",
            "initiatedby",
            "createdDateTime",
            "createddatetime",
        }
    )

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if _row_table(doc) is not None:
            return True
        props = get(doc, "properties")
        if isinstance(props, Mapping):
            if first_str(doc, "category") in _CATEGORIES:
                return True
            resource = (first_str(doc, "resourceId") or "").lower()
            if resource.startswith("/tenants/") and resource.endswith(_RESOURCE_SUFFIX):
                return True
            return _is_audit(props)
        # Graph API objects: a directoryAudit or a signIn without any envelope.
        if isinstance(get(doc, "initiatedBy"), Mapping):
            return get(doc, "activityDisplayName") is not None
        return (
            get(doc, "createdDateTime") is not None
            and isinstance(get(doc, "status"), Mapping)
            and first_str(doc, "userPrincipalName", "servicePrincipalName") is not None
        )

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        if (table := _row_table(doc)) is not None:
            doc = reshape_entra_row(doc, table)
        props = get(doc, "properties")
        body: Mapping[str, Any] = props if isinstance(props, Mapping) else doc
        audit = _is_audit(body) or first_str(doc, "category") in _AUDIT_CATEGORIES
        time = parse_time(_time(doc, body))
        if audit:
            action = first_str(body, "activityDisplayName") or first_str(doc, "operationName")
            actor = first_str(body, *_AUDIT_ACTOR)
        else:
            action = first_str(doc, "operationName") or _SIGN_IN_ACTION
            actor = first_str(body, *_SIGN_IN_ACTOR)
        service = _is_service(doc, body, audit)
        return parsed(
            time=time,
            action=require(action, "action"),
            actor=require(actor or first_str(doc, "identity"), "actor"),
            outcome=_outcome(doc, body),
            actor_type=ActorType.SERVICE if service else _human_or_unknown(body, audit),
            ip=_ip(doc, body),
            country=_country(doc, body),
            user_agent=first_str(body, "userAgent") or _detail(body, "User-Agent"),
            target=_audit_target(body) if audit else _sign_in_target(body, service),
            vendor_id=first_str(body, "id"),
            attributes=_attributes(doc, body, audit),
        )


def _row_table(doc: Mapping[str, Any]) -> str | None:
    """The Log Analytics table of a row (by ``Type``, else by its columns); None if not a row."""
    kind = doc.get("Type")
    if kind is not None:
        return kind if kind in _LA_TABLES else None
    if "ActivityDisplayName" in doc and "InitiatedBy" in doc:
        return "AuditLogs"
    if "UserPrincipalName" in doc and "ResultType" in doc and "TimeGenerated" in doc:
        return "SigninLogs"
    return None


def reshape_entra_row(row: Mapping[str, Any], table: str) -> dict[str, Any]:
    """A Log Analytics row of ``table`` as the diagnostic-export record it mirrors."""
    record: dict[str, Any] = {}
    body: dict[str, Any] = {}
    for column, value in row.items():
        if value is None or value == "" or column in _LA_DROPPED:
            continue
        if column in LOG_ANALYTICS_ENVELOPE:
            record[LOG_ANALYTICS_ENVELOPE[column]] = value
        elif column == "Category" and table != "AuditLogs":
            record["category"] = value
        else:
            # An audit row's Category is the audit category (RoleManagement ...), a record field.
            field = LOG_ANALYTICS_RENAMED.get(column) or column[:1].lower() + column[1:]
            body[field] = dynamic(value)
    record.setdefault("category", _LA_TABLES[table])
    if table == "AuditLogs":
        record["category"] = "AuditLogs"
    record["properties"] = body
    return record


def _is_audit(body: Mapping[str, Any]) -> bool:
    return any(get(body, key) is not None for key in ("initiatedBy", "activityDisplayName"))


def _time(doc: Mapping[str, Any], body: Mapping[str, Any]) -> Any:
    for owner, fields in ((body, _TIME_FIELDS), (doc, _ENVELOPE_TIME_FIELDS)):
        for field in fields:
            if value := get(owner, field):
                return value
    return None


def _outcome(doc: Mapping[str, Any], body: Mapping[str, Any]) -> Outcome:
    code = first_str(body, "status.errorCode")
    if code is not None:
        return Outcome.SUCCESS if code == "0" else Outcome.FAILURE
    for owner, field in ((body, "result"), (doc, "result"), (doc, "resultType")):
        text = (first_str(owner, field) or "").lower()
        if text in _SUCCESS:
            return Outcome.SUCCESS
        # resultType of a failed sign-in is its error code, e.g. "50126".
        if text in _FAILURE or text.isdigit():
            return Outcome.FAILURE
    return Outcome.UNKNOWN


def _is_service(doc: Mapping[str, Any], body: Mapping[str, Any], audit: bool) -> bool:
    if audit:
        # initiatedBy holds either a user or an app; some exports keep an empty user object.
        user = first_str(body, "initiatedBy.user.userPrincipalName", "initiatedBy.user.id")
        return user is None and isinstance(get_path(body, "initiatedBy.app"), Mapping)
    if first_str(doc, "category") in _SERVICE_SIGN_INS:
        return True
    kinds = get(body, "signInEventTypes")
    if isinstance(kinds, list) and _SERVICE_EVENT_TYPES.intersection(map(str, kinds)):
        return True
    return first_str(body, "userPrincipalName") is None and (
        first_str(body, "servicePrincipalName", "servicePrincipalId") is not None
    )


def _human_or_unknown(body: Mapping[str, Any], audit: bool) -> ActorType:
    user = "initiatedBy.user.userPrincipalName" if audit else "userPrincipalName"
    return ActorType.HUMAN if first_str(body, user) else ActorType.UNKNOWN


def _ip(doc: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    for value in (
        get(body, "ipAddress"),
        get_path(body, "initiatedBy.user.ipAddress"),
        get_path(body, "initiatedBy.app.ipAddress"),
        get(doc, "callerIpAddress"),
        _detail(body, "ipaddr"),
    ):
        if (ip := valid_ip(value)) is not None:
            return ip
    return None


def _country(doc: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    # The export repeats the sign-in's country code as a top-level "location" string.
    location = get(doc, "location") if doc is not body else None
    fallback = location if isinstance(location, str) and location else None
    return first_str(body, "location.countryOrRegion") or fallback


def _sign_in_target(body: Mapping[str, Any], service: bool) -> str | None:
    # A service principal signs in as its own app: what it reached is the resource.
    if service:
        return first_str(body, "resourceDisplayName", "appDisplayName", "resourceId")
    return first_str(body, "appDisplayName", "resourceDisplayName", "appId")


def _audit_target(body: Mapping[str, Any]) -> str | None:
    resources = get(body, "targetResources")
    if not isinstance(resources, list):
        return None
    items = [r for r in resources if isinstance(r, Mapping)]
    for item in items:
        if name := first_str(item, "userPrincipalName", "displayName"):
            return name
    return next((i for item in items if (i := first_str(item, "id"))), None)


def _detail(body: Mapping[str, Any], key: str) -> str | None:
    """A value from an audit record's ``additionalDetails`` key/value list."""
    details = get(body, "additionalDetails")
    if not isinstance(details, list):
        return None
    for item in details:
        if isinstance(item, Mapping) and item.get("key") == key:
            return first_str(item, "value")
    return None


def _attributes(doc: Mapping[str, Any], body: Mapping[str, Any], audit: bool) -> dict[str, str]:
    out = {key: value for key, path in _ATTRIBUTES.items() if (value := first_str(body, path))}
    extras = {
        "tenant": first_str(doc, "tenantId") or first_str(body, "homeTenantId"),
        "log_category": first_str(doc, "category") if doc is not body else None,
        "audit_category": first_str(body, "category") if audit else None,
        "error_code": first_str(body, "status.errorCode"),
        "risk_level": first_str(body, "riskLevelDuringSignIn"),
    }
    out.update({key: value for key, value in extras.items() if value and value != "none"})
    return out
