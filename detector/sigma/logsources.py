"""Which Sigma log sources ciwatch reads, and how their field names reach ciwatch fields.

Each log source maps to a ciwatch ``source`` condition and a field table, applied with
pySigma's own processing pipeline (one :class:`~sigma.processing.pipeline.ProcessingItem`
per log source, gated by a :class:`~sigma.processing.conditions.LogsourceCondition`).
A Sigma field goes to a normalized ciwatch field only where the parser sets that field
to the vendor's value verbatim (CloudTrail ``eventName`` is ``action``); every other
field is the vendor's own, ``raw.<field>``. docs/sigma.md has the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import FieldMappingTransformationBase
from sigma.rule import SigmaLogSource

from detector.events.parsers.azure_entra_id import LOG_ANALYTICS_ENVELOPE, LOG_ANALYTICS_RENAMED

__all__ = [
    "ENTRA_ENVELOPE",
    "ENTRA_RENAMED",
    "LOG_SOURCES",
    "UNREAD_LOG_SOURCES",
    "LogSource",
    "find_log_source",
    "map_field",
    "processing_pipeline",
]


@dataclass(frozen=True)
class LogSource:
    """One Sigma log source (product, service) that ciwatch reads.

    ``where`` is the ciwatch condition every converted rule of this log source gets;
    ``fields`` maps Sigma field names to one ciwatch path, or to several alternatives
    (any of them may hold: the vendor ships the same record in several shapes).
    ``fallback`` maps the fields ``fields`` does not name.
    """

    product: str
    service: str
    where: Mapping[str, Any]
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fallback: Callable[[str], tuple[str, ...]] = lambda name: (f"raw.{name}",)

    @property
    def key(self) -> str:
        return f"{self.product}/{self.service}"


# Log Analytics columns that Entra's diagnostic export keeps in the envelope, and columns
# whose record field is not the column with a lower-case first letter: the parser's tables.
ENTRA_ENVELOPE = LOG_ANALYTICS_ENVELOPE
ENTRA_RENAMED = LOG_ANALYTICS_RENAMED


def _entra_paths(name: str) -> tuple[str, ...]:
    """A Log Analytics column (``ResultType``, ``DeviceDetail.isCompliant``) in both shapes.

    Sigma's Entra rules name Log Analytics columns; ciwatch also reads the diagnostic
    export, where the same value sits in the envelope or under ``properties`` with a
    lower-case first letter. Nested keys inside a column keep their case.
    """
    if name.startswith("properties."):
        return (f"raw.{name}",)
    head, dot, rest = name.partition(".")
    if head in ENTRA_ENVELOPE:
        exported = f"raw.{ENTRA_ENVELOPE[head]}"
    else:
        column = ENTRA_RENAMED.get(head, head[:1].lower() + head[1:])
        exported = f"raw.properties.{column}"
    exported += f"{dot}{rest}"
    row = f"raw.{name}"
    return (row,) if row == exported else (row, exported)


def _gcp_paths(name: str) -> tuple[str, ...]:
    # Elastic's and Splunk's GCP add-ons wrap the LogEntry in "data"; ciwatch reads it bare.
    return (f"raw.{name.removeprefix('data.')}",)


_GCP_ECS = {  # Elastic Common Schema names some rules use for the LogEntry's fields
    "gcp.audit.method_name": ("raw.protoPayload.methodName",),
    "gcp.audit.service_name": ("raw.protoPayload.serviceName",),
    "gcp.audit.resource_name": ("raw.protoPayload.resourceName",),
    "gcp.audit.authentication_info.principal_email": (
        "raw.protoPayload.authenticationInfo.principalEmail",
    ),
}

LOG_SOURCES: tuple[LogSource, ...] = (
    LogSource(
        "aws",
        "cloudtrail",
        {"source": "cloudtrail"},
        {
            "eventName": ("action",),
            "eventSource": ("attributes.event_source",),
            "awsRegion": ("attributes.region",),
            "userIdentity.type": ("attributes.identity_type",),
        },
    ),
    LogSource("azure", "signinlogs", {"source": "azure_entra_id"}, fallback=_entra_paths),
    LogSource("azure", "auditlogs", {"source": "azure_entra_id"}, fallback=_entra_paths),
    # Risk detections reach ciwatch in Entra's diagnostic export (category UserRiskEvents),
    # which the Entra parser reads by its resourceId; Sigma names the field in camelCase.
    LogSource(
        "azure",
        "riskdetection",
        {"source": "azure_entra_id"},
        {"riskEventType": ("raw.properties.riskEventType",)},
        fallback=_entra_paths,
    ),
    LogSource(
        "azure",
        "activitylogs",
        {"source": "azure_activity"},
        {
            "operationName": ("action",),
            "OperationNameValue": ("action",),
            "CategoryValue": ("raw.CategoryValue", "raw.category"),
            "ResourceId": ("raw.ResourceId", "raw.resourceId"),
            "ResourceProviderValue": ("raw.ResourceProviderValue", "raw.resourceProviderName"),
        },
    ),
    LogSource(
        "gcp",
        "gcp.audit",
        # GKE's Kubernetes audit travels in GCP audit logs and becomes k8s_audit events.
        {
            "any": [
                {"source": "gcp_audit"},
                {"source": "k8s_audit", "raw.protoPayload": {"exists": True}},
            ]
        },
        _GCP_ECS,
        fallback=_gcp_paths,
    ),
    LogSource(
        "m365",
        "audit",
        {"source": "m365_audit"},
        {"Operation": ("action",), "Workload": ("attributes.workload",)},
    ),
    LogSource("okta", "okta", {"source": "okta_system_log"}, {"eventType": ("action",)}),
    LogSource("github", "audit", {"source": "github_audit"}, {"action": ("action",)}),
    LogSource(
        "kubernetes",
        "audit",
        {"source": "k8s_audit"},
        {
            "verb": ("action",),
            "objectRef.resource": ("attributes.resource",),
            "objectRef.subresource": ("attributes.subresource",),
            "objectRef.namespace": ("attributes.namespace",),
            "objectRef.apiGroup": ("attributes.api_group",),
        },
    ),
)

# Log sources that SigmaHQ writes rules for but ciwatch has no parser (or no such records)
# for: a rule for one of them is reported as not converted, with this reason.
UNREAD_LOG_SOURCES = {
    "azure/pim": "ciwatch reads no Entra ID Privileged Identity Management alerts",
    "m365/threat_management": (
        "the rule's fields (eventSource, eventName, status) are not fields of the "
        "Office 365 Management Activity records ciwatch reads"
    ),
    "m365/threat_detection": (
        "the rule's fields (eventSource, eventName, status) are not fields of the "
        "Office 365 Management Activity records ciwatch reads"
    ),
    "m365/exchange": (
        "the rule's fields (eventSource, eventName, status) are not fields of the "
        "Office 365 Management Activity records ciwatch reads"
    ),
    "gcp/google_workspace.admin": "ciwatch has no Google Workspace parser",
    "gcp/google_workspace.login": "ciwatch has no Google Workspace parser",
    "onelogin/onelogin.events": "ciwatch has no OneLogin parser",
    "cisco/duo": "ciwatch has no Cisco Duo parser",
}


def find_log_source(logsource: SigmaLogSource) -> LogSource | None:
    """The ciwatch log source for a Sigma rule's ``logsource`` (category is not needed)."""
    for candidate in LOG_SOURCES:
        if (logsource.product, logsource.service) == (candidate.product, candidate.service):
            return candidate
    return None


def map_field(source: LogSource, name: str) -> tuple[str, ...]:
    """The ciwatch paths of a Sigma field of ``source`` (any of them may hold)."""
    return source.fields.get(name) or source.fallback(name)


@dataclass
class _MapToCiwatch(FieldMappingTransformationBase):
    """Sigma field → ciwatch field path(s) for one log source; several become an OR."""

    source: LogSource

    def apply_field_name(self, field: str | None) -> str | list[str] | None:
        if field is None:
            return None  # keywords stay field-less; the converter reports them
        return list(map_field(self.source, field))


def processing_pipeline() -> ProcessingPipeline:
    """A pySigma pipeline renaming every field of every log source ciwatch reads."""
    items = [
        ProcessingItem(
            identifier=f"ciwatch_fields_{source.product}_{source.service}",
            transformation=_MapToCiwatch(source),
            rule_conditions=[LogsourceCondition(product=source.product, service=source.service)],
        )
        for source in LOG_SOURCES
    ]
    return ProcessingPipeline(name="ciwatch field mapping", priority=20, items=items)
