"""Kubernetes API server audit events (``audit.k8s.io/v1`` and ``v1beta1``).

Shape: ``{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "create",
"user": {"username", "groups"}, "impersonatedUser", "sourceIPs": [...],
"userAgent", "objectRef": {"resource", "subresource", "namespace", "name",
"apiGroup"}, "responseStatus": {"code"}, "requestReceivedTimestamp",
"stageTimestamp", "auditID", "stage", "annotations"}``. ``v1beta1`` adds
``timestamp``. Requests to non-resource paths (``/healthz``, ``/version``)
have a ``requestURI`` and no ``objectRef``.

Flavours: self-managed clusters and EKS (CloudWatch export; Panther's
``Amazon.EKS.Audit`` adds ``p_event_time`` and may lower-case keys) send the
event as is. AKS diagnostic settings wrap it as a JSON string:
``{"category": "kube-audit", "properties": {"log": "<event>"}, "resourceId", "time"}``.
GKE publishes Cloud Audit Logs (``protoPayload`` with ``serviceName: k8s.io``),
which are GCP audit entries and not read here.

``action`` is the verb verbatim; the taxonomy key adds what it acted on,
``"get secrets"``, ``"create pods/exec"``, or the path for non-resource
requests, ``"get /version"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from detector.events.fields import get, is_mapping, parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, DeadLetterReason, Outcome, ParseError
from detector.events.parsers.base import Parsed, Parser, parsed, register
from detector.events.parsers.k8s_pod_spec import WORKLOAD_RESOURCES, pod_privileges
from detector.events.readers import text_reader

__all__ = ["K8sAuditParser"]

_API_PREFIX = "audit.k8s.io/"
_AKS_CATEGORIES = ("kube-audit", "kube-audit-admin")
_EVENT_TIME = text_reader(
    "requestReceivedTimestamp", "stageTimestamp", "timestamp", "metadata.creationTimestamp"
)
# The AKS wrapper's own times, and Panther's (derived from the event's), are the last resort.
_OUTER_TIME = text_reader("time", "TimeGenerated", "p_event_time")
# The fields read from every record, their paths resolved once (readers.text_reader).
_VERB = text_reader("verb")
_USERNAME = text_reader("user.username")
_USER_AGENT = text_reader("userAgent")
_STATUS = text_reader("responseStatus.status")
_STATUS_CODE = text_reader("responseStatus.code")
_REQUEST_URI = text_reader("requestURI")
_AUDIT_ID = text_reader("auditID")
_STAGE = text_reader("stage")
_RESOURCE_ID = text_reader("resourceId")
_IMPERSONATED = text_reader("impersonatedUser.username")
_NAMESPACE = text_reader("namespace")
_RESOURCE = text_reader("resource")
_SUBRESOURCE = text_reader("subresource")
_NAME = text_reader("name")
_GROUP = text_reader("apiGroup")
# Kubernetes reserves "system:" for its own components (service accounts, nodes, controllers);
# anonymous requests are nobody in particular. Managed platforms' identities (eks:*, aksService)
# are automation globs in the taxonomy.
_SYSTEM_PREFIX = "system:"
_ANONYMOUS = frozenset({"system:anonymous", "system:unauthenticated"})
_SERVICE_GROUPS = frozenset({"system:serviceaccounts", "system:nodes"})
_DECISION = "authorization.k8s.io/decision"


@register
class K8sAuditParser(Parser):
    name = "k8s_audit"
    time_field = "requestReceivedTimestamp"
    priority = 20
    triggers = frozenset({"category", "apiVersion", "apiversion", "kind", "verb"})
    # Not read: the response body, most of the request body and of the annotations.
    reads = (
        "category", "properties.log", "time", "TimeGenerated", "p_event_time", "resourceId",
        "requestReceivedTimestamp", "stageTimestamp", "timestamp", "metadata.creationTimestamp",
        "verb", "user.username", "user.groups", "impersonatedUser.username", "sourceIPs",
        "userAgent", "objectRef.namespace", "objectRef.resource", "objectRef.subresource",
        "objectRef.name", "objectRef.apiGroup", "responseStatus.status", "responseStatus.code",
        "requestURI", "auditID", "stage", "annotations", "requestObject.spec",
    )  # fmt: skip

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if doc.get("category") in _AKS_CATEGORIES:
            return is_mapping(get(doc, "properties"))
        api_version = get(doc, "apiVersion")
        if isinstance(api_version, str) and api_version.startswith(_API_PREFIX):
            return True
        ref = get(doc, "objectRef")
        if doc.get("kind") == "Event":
            return isinstance(get(doc, "verb"), str) or is_mapping(ref)
        # Panther test fragments drop kind and apiVersion but keep verb and objectRef.
        return isinstance(get(doc, "verb"), str) and is_mapping(ref)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        event, outer = _unwrap_aks(doc)
        verb = require(_VERB(event), "verb")
        user = require(_USERNAME(event), "actor")
        # first_str(event, "objectRef.x") is first_str(objectRef, "x"): each is read once.
        ref = _object_ref(get(event, "objectRef"))
        path = _path(event) if ref.resource is None else None
        status_code = _STATUS_CODE(event)
        stage = _STAGE(event)
        return parsed(
            time=parse_time(_EVENT_TIME(event) or _OUTER_TIME(outer)),
            action=verb,
            actor=user,
            outcome=_outcome(event, status_code),
            actor_type=_actor_type(user, get(get(event, "user"), "groups")),
            ip=_source_ip(get(event, "sourceIPs")),
            user_agent=_USER_AGENT(event),
            target=_target(ref) or path,
            vendor_id=_vendor_id(event, stage),
            taxonomy_key=_taxonomy_key(verb, _resource(ref) or path),
            attributes=_attributes(event, outer, verb, ref, stage, status_code),
        )


class _ObjectRef(NamedTuple):
    """What ``objectRef`` names, each field read as ``fields.first_str`` reads it."""

    namespace: str | None
    resource: str | None
    subresource: str | None
    name: str | None
    api_group: str | None


def _object_ref(ref: Any) -> _ObjectRef:
    return _ObjectRef(_NAMESPACE(ref), _RESOURCE(ref), _SUBRESOURCE(ref), _NAME(ref), _GROUP(ref))


def _unwrap_aks(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The audit event and its wrapper (the event itself when it came bare)."""
    if doc.get("category") not in _AKS_CATEGORIES:
        return doc, doc
    log = get(get(doc, "properties"), "log")
    if isinstance(log, str):
        try:
            log = json.loads(log, strict=False)
        except (ValueError, RecursionError):
            raise ParseError(DeadLetterReason.INVALID_JSON, "properties.log is not JSON") from None
    if not is_mapping(log):
        raise ParseError(DeadLetterReason.UNKNOWN_FORMAT, "properties.log holds no audit event")
    return log, doc


def _outcome(event: Mapping[str, Any], code: str | None) -> Outcome:
    if code is not None and code.isdecimal() and len(code) <= 3:
        return Outcome.FAILURE if int(code) >= 400 else Outcome.SUCCESS
    status = _STATUS(event)
    if status in ("Success", "Failure"):
        return Outcome(status.lower())
    # Events logged before the response (stage RequestReceived) have no status yet.
    if str_or_none(get(get(event, "annotations"), _DECISION)) == "forbid":
        return Outcome.FAILURE
    return Outcome.UNKNOWN


def _actor_type(user: str, groups: Any) -> ActorType:
    if user in _ANONYMOUS:
        return ActorType.UNKNOWN
    if user.startswith(_SYSTEM_PREFIX):
        return ActorType.SERVICE
    for group in groups if isinstance(groups, list) else ():
        if isinstance(group, str) and group in _SERVICE_GROUPS:
            return ActorType.SERVICE
    return ActorType.HUMAN


def _source_ip(addresses: Any) -> str | None:
    # The first entry is the client; later ones are the proxies it came through.
    if isinstance(addresses, list) and addresses:
        return valid_ip(addresses[0])
    return valid_ip(addresses)


def _resource(ref: _ObjectRef) -> str | None:
    resource, subresource = ref.resource, ref.subresource
    if resource is not None and subresource is not None:
        return f"{resource}/{subresource}"
    return resource


def _target(ref: _ObjectRef) -> str | None:
    """``namespace/resource/name``, leaving out what the request did not name."""
    parts = [ref.namespace, ref.resource, ref.name]
    if parts[1] is None:
        return None
    if parts[1] == "namespaces":
        parts[0] = None  # a Namespace's objectRef names itself as its namespace
    return "/".join([part for part in parts if part is not None])


def _path(event: Mapping[str, Any]) -> str | None:
    uri = _REQUEST_URI(event)
    return uri.partition("?")[0] if uri is not None else None


def _taxonomy_key(verb: str, what: str | None) -> str:
    return f"{verb} {what}" if what is not None else verb


def _vendor_id(event: Mapping[str, Any], stage: str | None) -> str | None:
    # One request is logged once per stage under the same auditID; the stage tells them apart.
    audit_id = _AUDIT_ID(event)
    if audit_id is None or stage is None:
        return audit_id
    return f"{audit_id}:{stage}"


def _attributes(
    event: Mapping[str, Any],
    outer: Mapping[str, Any],
    verb: str,
    ref: _ObjectRef,
    stage: str | None,
    status_code: str | None,
) -> dict[str, str]:
    resource_id = _RESOURCE_ID(outer)
    candidates = {
        "verb": verb,
        "namespace": ref.namespace,
        "resource": ref.resource,
        "subresource": ref.subresource,
        "api_group": ref.api_group,
        "stage": stage,
        # 401/403 (refused) tell probing apart from 404/409 (lookups, conflicts); AKS hides
        # the event in a JSON string, out of reach of raw.* conditions.
        "status_code": status_code,
        "impersonated_user": _IMPERSONATED(event),
        # AKS: ".../providers/Microsoft.ContainerService/managedClusters/<cluster>".
        "cluster": resource_id.rsplit("/", 1)[-1] if resource_id else None,
        "pod_privileges": _pod_privileges(event, ref),
    }
    return {key: value for key, value in candidates.items() if value is not None}


def _pod_privileges(event: Mapping[str, Any], ref: _ObjectRef) -> str | None:
    """Privileged containers, host namespaces and host paths a workload request asks for
    (needs an audit policy that logs request bodies: level Request or above)."""
    if ref.resource not in WORKLOAD_RESOURCES:
        return None
    return pod_privileges(get(event, "requestObject"))
