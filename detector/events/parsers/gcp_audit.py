"""Google Cloud Audit Logs: Admin Activity, Data Access, System Event and Policy Denied.

Shape: a Cloud Logging ``LogEntry`` whose ``protoPayload`` is an ``AuditLog``
(``@type: type.googleapis.com/google.cloud.audit.AuditLog``)::

    {"timestamp", "receiveTimestamp", "insertId", "severity",
     "logName": "projects/P/logs/cloudaudit.googleapis.com%2Factivity",
     "resource": {"type": "gce_instance", "labels": {"project_id", "zone", ...}},
     "protoPayload": {"serviceName", "methodName", "resourceName",
        "authenticationInfo": {"principalEmail", "principalSubject",
                               "serviceAccountDelegationInfo": [...]},
        "requestMetadata": {"callerIp", "callerSuppliedUserAgent"},
        "status": {"code", "message"}, "authorizationInfo": [{"permission", "granted"}],
        "request", "response", "metadata",
        "serviceData": {"policyDelta": {"bindingDeltas": [{"action", "role", "member"}],
                                        "auditConfigDeltas": [...]}}}}

``action`` is ``methodName`` verbatim (``SetIamPolicy``,
``v1.compute.instances.insert``); the taxonomy classifies it with globs. The
actor is the principal's e-mail, else its subject (workload and workforce
identity federation), else — for Google's own work, which names no one — the
service. ``callerIp`` may be ``private`` or ``gce-internal-ip`` instead of an
address; that word is kept as the ``caller_ip`` attribute. Pub/Sub delivery
and Panther's data lake (``p_event_time``, ``at_sign_type``, ``callerIP``,
lower-cased top-level keys) are read too.

GKE writes the Kubernetes API server's audit events here (``serviceName``
``k8s.io``, ``methodName`` ``io.k8s.core.v1.pods.exec.create``, ``resourceName``
``core/v1/namespaces/prod/pods/web-1/exec``): those become ``k8s_audit`` events
with the verb as the action and the native parser's attributes and taxonomy key,
so the Kubernetes taxonomy and rules apply to GKE unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detector.events.fields import first_str, get, get_path, parse_time, str_or_none, valid_ip
from detector.events.model import ActorType, DeadLetterReason, Outcome, ParseError
from detector.events.parsers.base import Parsed, Parser, parsed, register
from detector.events.parsers.k8s_pod_spec import WORKLOAD_RESOURCES, pod_privileges

__all__ = ["GcpAuditParser"]

_AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"
_TYPE_KEYS = ("@type", "at_sign_type")
_SHAPE_KEYS = ("methodName", "serviceName", "authenticationInfo", "resourceName")
# The entry's own time first; Panther's copy of it; when Logging received it; the request's.
_TIME_PATHS = ("timestamp", "p_event_time", "receiveTimestamp")
_REQUEST_TIME = "requestMetadata.requestAttributes.time"
_CALLER_IP = ("requestMetadata.callerIp", "requestMetadata.callerIP")
_SERVICE_ACCOUNT_SUFFIX = ".gserviceaccount.com"
# Google Front End appends its own marker to every user agent it forwards, once per hop.
_GFE_SUFFIX = re.compile(r"(?:,gzip\(gfe\))+$")
_LOG_ID = re.compile(r"cloudaudit\.googleapis\.com(?:%2F|/)(\w+)$", re.IGNORECASE)
_LOG_PARENT = re.compile(r"^(projects|organizations|folders|billingAccounts)/([^/]+)/")
_LOCATION_LABELS = ("location", "region", "zone")
# IAM changes can list hundreds of members; attributes stay short.
_MAX_LISTED = 10
_MAX_ATTRIBUTE_CHARS = 500
# IAM members that mean "anyone on the internet" and "anyone with a Google account".
_PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})

# --- GKE: Kubernetes audit events carried in Cloud Audit Logs
_K8S_SERVICE = "k8s.io"
_K8S_METHOD_PREFIX = "io.k8s."
_K8S_VERSION = re.compile(r"v\d+(?:(?:alpha|beta)\d+)?")
_K8S_CORE_GROUP = "core"
_K8S_ANONYMOUS = frozenset({"system:anonymous", "system:unauthenticated"})


@register
class GcpAuditParser(Parser):
    name = "gcp_audit"
    time_field = "timestamp"
    priority = 20
    triggers = frozenset({"protoPayload", "protopayload"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        payload = get(doc, "protoPayload")
        if not isinstance(payload, Mapping):
            return False
        kind = first_str(payload, *_TYPE_KEYS)
        if kind is not None:
            return kind == _AUDIT_LOG_TYPE
        return any(get(payload, key) is not None for key in _SHAPE_KEYS)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        payload = get(doc, "protoPayload")
        if not isinstance(payload, Mapping):
            raise ParseError(DeadLetterReason.UNKNOWN_FORMAT, "no protoPayload")
        method = _method(payload)
        if _is_kubernetes(payload, method):
            return _kubernetes(doc, payload, method)
        actor, actor_type = _actor(payload)
        resource_name = first_str(payload, "resourceName")
        return parsed(
            time=_time(doc, payload),
            action=method,
            actor=actor,
            outcome=_outcome(payload),
            actor_type=actor_type,
            ip=_caller_ip(payload),
            user_agent=_user_agent(payload),
            target=resource_name,
            vendor_id=_vendor_id(doc),
            attributes=_attributes(doc, payload),
        )


def _method(payload: Mapping[str, Any]) -> str:
    """``methodName``; failing that, the permission checked, which names the same operation."""
    method = first_str(payload, "methodName")
    if method is not None:
        return method
    checks = get(payload, "authorizationInfo")
    if isinstance(checks, list) and checks:
        permission = first_str(checks[0], "permission")
        if permission is not None:
            return permission
    raise ParseError(DeadLetterReason.UNKNOWN_FORMAT, "no methodName")


def _time(doc: Mapping[str, Any], payload: Mapping[str, Any]) -> datetime:
    value = first_str(doc, *_TIME_PATHS) or first_str(payload, _REQUEST_TIME)
    return parse_time(value)


def _actor(payload: Mapping[str, Any]) -> tuple[str, ActorType]:
    auth = get(payload, "authenticationInfo")
    email = first_str(auth, "principalEmail")
    if email is not None:
        return email, _principal_type(email)
    subject = first_str(auth, "principalSubject")
    if subject is not None:
        return _subject(subject)
    # Anonymous callers (GKE) are named only by the authority they were checked against.
    selector = first_str(auth, "authoritySelector")
    if selector in _K8S_ANONYMOUS:
        return selector, ActorType.UNKNOWN
    # System events and Google's own work on a resource name no principal: the service acted.
    service = first_str(payload, "serviceName")
    if service is not None:
        return service, ActorType.SERVICE
    raise ParseError(DeadLetterReason.MISSING_ACTOR, "no principal and no service")


def _principal_type(principal: str) -> ActorType:
    if principal in _K8S_ANONYMOUS:
        return ActorType.UNKNOWN
    if principal.endswith(_SERVICE_ACCOUNT_SUFFIX) or principal.startswith("system:"):
        return ActorType.SERVICE
    return ActorType.HUMAN if "@" in principal else ActorType.UNKNOWN


def _subject(subject: str) -> tuple[str, ActorType]:
    """A ``principalSubject``: ``user:EMAIL``, ``serviceAccount:EMAIL`` or a federated principal."""
    kind, _, name = subject.partition(":")
    if kind == "user" and name:
        return name, ActorType.HUMAN
    if kind == "serviceAccount" and name:
        return name, ActorType.SERVICE
    if "/workloadIdentityPools/" in subject:
        return subject, ActorType.SERVICE
    if "/workforcePools/" in subject:
        return subject, ActorType.HUMAN
    return subject, ActorType.UNKNOWN


def _outcome(payload: Mapping[str, Any]) -> Outcome:
    status = get(payload, "status")
    code = str_or_none(get(status, "code"))
    if code is not None and code != "0":
        return Outcome.FAILURE
    checks = get(payload, "authorizationInfo")
    checks = checks if isinstance(checks, list) else []
    if any(isinstance(c, Mapping) and get(c, "granted") is False for c in checks):
        return Outcome.FAILURE
    # An OK status is logged as {} (code 0 omitted); every permission granted means it ran.
    if isinstance(status, Mapping) or checks:
        return Outcome.SUCCESS
    return Outcome.UNKNOWN


def _caller_ip(payload: Mapping[str, Any]) -> str | None:
    return valid_ip(first_str(payload, *_CALLER_IP))


def _user_agent(payload: Mapping[str, Any]) -> str | None:
    agent = first_str(payload, "requestMetadata.callerSuppliedUserAgent")
    return None if agent is None else (_GFE_SUFFIX.sub("", agent) or agent)


def _vendor_id(doc: Mapping[str, Any]) -> str | None:
    # insertId is unique within one log of one project; the log's name makes it unique overall.
    insert_id = first_str(doc, "insertId")
    log_name = first_str(doc, "logName")
    if insert_id is None or log_name is None:
        return insert_id
    return f"{log_name}:{insert_id}"


def _common(doc: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, str | None]:
    """Attributes every GCP audit event has, GKE's included."""
    log_name = first_str(doc, "logName") or ""
    log_id = _LOG_ID.search(log_name)
    parent = _LOG_PARENT.match(log_name)
    labels = get_path(doc, "resource.labels")
    project = first_str(labels, "project_id")
    if project is None and parent is not None and parent.group(1) == "projects":
        project = parent.group(2)
    return {
        "project": project,
        "organization": first_str(labels, "organization_id")
        or (parent.group(2) if parent and parent.group(1) == "organizations" else None),
        "service": first_str(payload, "serviceName"),
        "log_type": log_id.group(1).lower() if log_id else None,
        "resource_type": first_str(doc, "resource.type"),
        "location": first_str(labels, *_LOCATION_LABELS) or _resource_location(payload),
    }


def _resource_location(payload: Mapping[str, Any]) -> str | None:
    locations = get_path(payload, "resourceLocation.currentLocations")
    return str_or_none(locations[0]) if isinstance(locations, list) and locations else None


def _attributes(doc: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, str]:
    raw_ip = first_str(payload, *_CALLER_IP)
    candidates = {
        **_common(doc, payload),
        "severity": first_str(doc, "severity"),
        "status_code": _failure_code(payload),
        "caller_ip": raw_ip if raw_ip is not None and valid_ip(raw_ip) is None else None,
        "delegated_from": _delegated_from(payload),
        "update_mask": _bounded([first_str(payload, "request.updateMask")]),
        "acts_on_self": "true" if _acts_on_self(payload) else None,
        **_policy_delta(payload),
    }
    return {key: value for key, value in candidates.items() if value is not None}


def _failure_code(payload: Mapping[str, Any]) -> str | None:
    """The gRPC status code of a failed call (0, OK, is left out)."""
    code = first_str(payload, "status.code")
    return code if code not in (None, "0") else None


def _acts_on_self(payload: Mapping[str, Any]) -> bool:
    """True when the caller acted on its own identity (a service account rotating its key)."""
    email = first_str(payload, "authenticationInfo.principalEmail")
    if email is None:
        return False
    named = (first_str(payload, "request.name") or "", first_str(payload, "resourceName") or "")
    return any(name.endswith(f"/serviceAccounts/{email}") for name in named)


def _delegated_from(payload: Mapping[str, Any]) -> str | None:
    """Who impersonated the service account that made the call (the first in the chain)."""
    chain = get_path(payload, "authenticationInfo.serviceAccountDelegationInfo")
    if not isinstance(chain, list):
        return None
    for link in chain:
        who = first_str(link, "firstPartyPrincipal.principalEmail", "principalSubject")
        if who is not None:
            return who
    return None


def _policy_delta(payload: Mapping[str, Any]) -> dict[str, str | None]:
    """IAM changes: roles granted and removed, members concerned, public members added,
    audit log types removed."""
    delta = get_path(payload, "serviceData.policyDelta")
    bindings = get(delta, "bindingDeltas")
    bindings = [b for b in bindings if isinstance(b, Mapping)] if isinstance(bindings, list) else []
    audits = get(delta, "auditConfigDeltas")
    audits = [a for a in audits if isinstance(a, Mapping)] if isinstance(audits, list) else []
    return {
        "granted_roles": _bounded(first_str(b, "role") for b in bindings if _is(b, "ADD")),
        "removed_roles": _bounded(first_str(b, "role") for b in bindings if _is(b, "REMOVE")),
        "members": _bounded(first_str(b, "member") for b in bindings),
        # Only additions: removing public access is the cure, not the exposure.
        "public_members": _bounded(
            first_str(b, "member")
            for b in bindings
            if _is(b, "ADD") and first_str(b, "member") in _PUBLIC_MEMBERS
        ),
        "removed_audit_logs": _bounded(
            f"{first_str(a, 'service') or '*'}:{first_str(a, 'logType') or '*'}"
            for a in audits
            if _is(a, "REMOVE")
        ),
    }


def _is(delta: Mapping[str, Any], action: str) -> bool:
    return first_str(delta, "action") == action


def _bounded(values: Any) -> str | None:
    """Distinct values, sorted, comma-separated; at most a few, and never too long."""
    distinct = sorted({v for v in values if v is not None})
    if not distinct:
        return None
    listed = ",".join(distinct[:_MAX_LISTED])
    if len(distinct) > _MAX_LISTED:
        listed += f",(+{len(distinct) - _MAX_LISTED} more)"
    return listed[:_MAX_ATTRIBUTE_CHARS]


# --- GKE


def _is_kubernetes(payload: Mapping[str, Any], method: str) -> bool:
    return method.startswith(_K8S_METHOD_PREFIX) or (
        first_str(payload, "serviceName") == _K8S_SERVICE and method.startswith("io.")
    )


def _kubernetes(doc: Mapping[str, Any], payload: Mapping[str, Any], method: str) -> Parsed:
    """A GKE API server request, as the native ``k8s_audit`` parser would have read it."""
    ref = _k8s_ref(method, first_str(payload, "resourceName"))
    verb = ref.get("verb") or "get"
    resource, subresource = ref.get("resource"), ref.get("subresource")
    what = f"{resource}/{subresource}" if resource and subresource else resource
    what = what or ref.get("path")
    actor, actor_type = _actor(payload)
    labels = get_path(doc, "resource.labels")
    attributes = {
        "verb": verb,
        "namespace": ref.get("namespace"),
        "resource": resource,
        "subresource": subresource,
        "api_group": ref.get("api_group"),
        "cluster": first_str(labels, "cluster_name"),
        "platform": "gke",
        # gRPC codes: 7 PERMISSION_DENIED and 16 UNAUTHENTICATED are GKE's 403 and 401.
        "status_code": _failure_code(payload),
        # GKE logs the request body as protoPayload.request: the same pod spec.
        "pod_privileges": (
            pod_privileges(get_path(payload, "request")) if resource in WORKLOAD_RESOURCES else None
        ),
        **_common(doc, payload),
    }
    return parsed(
        time=_time(doc, payload),
        action=verb,
        actor=actor,
        outcome=_outcome(payload),
        actor_type=actor_type,
        ip=_caller_ip(payload),
        user_agent=_user_agent(payload),
        target=_k8s_target(ref) or ref.get("path"),
        vendor_id=_vendor_id(doc),
        taxonomy_key=f"{verb} {what}" if what else verb,
        attributes={key: value for key, value in attributes.items() if value is not None},
        source="k8s_audit",
    )


def _k8s_ref(method: str, resource_name: str | None) -> dict[str, str]:
    """Verb, API group, resource, subresource, namespace and name of a GKE request.

    ``io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>`` gives the verb and the
    resource; ``resourceName`` (``<group>/<version>[/namespaces/<ns>]/<resource>[/<name>
    [/<subresource>]]``) adds the namespace and name. Methods without a version
    (``io.k8s.readyz``) are non-resource requests, kept as a path as the native parser does.
    """
    parts = method.removeprefix(_K8S_METHOD_PREFIX).split(".")
    at = next((i for i, part in enumerate(parts) if _K8S_VERSION.fullmatch(part)), None)
    if at is None or len(parts) < at + 3:
        return {"path": "/" + "/".join(parts)}
    ref = {"verb": parts[-1], "resource": parts[at + 1]}
    if len(parts) > at + 3:
        ref["subresource"] = parts[at + 2]
    group = ".".join(parts[:at])
    if group and group != _K8S_CORE_GROUP:
        ref["api_group"] = group
    ref.update(_k8s_path(resource_name, ref["resource"]))
    return ref


def _k8s_path(resource_name: str | None, resource: str) -> dict[str, str]:
    segments = (resource_name or "").split("/")
    if len(segments) < 3:
        return {}
    group, rest = segments[0], segments[2:]
    found: dict[str, str] = {}
    if group not in (_K8S_CORE_GROUP, ""):
        found["api_group"] = group  # the full name (rbac.authorization.k8s.io), as natively
    # A Namespace object (and its subresources) names itself, not a namespace it is in.
    if rest[0] == "namespaces" and resource != "namespaces" and len(rest) >= 3:
        found["namespace"], rest = rest[1], rest[2:]
    if rest[0] == resource and len(rest) >= 2 and rest[1]:
        found["name"] = rest[1]
    return found


def _k8s_target(ref: Mapping[str, str]) -> str | None:
    """``namespace/resource/name``, leaving out what the request did not name (as natively)."""
    if "resource" not in ref:
        return None
    parts = [ref.get("namespace"), ref["resource"], ref.get("name")]
    return "/".join(part for part in parts if part)
