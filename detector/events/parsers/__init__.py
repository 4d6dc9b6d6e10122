"""Vendor parsers, one module per log type; importing this package registers them all."""

from detector.events.parsers import (
    azure_activity,
    azure_devops_audit,
    azure_entra_id,
    cloudtrail,
    ecs,
    gcp_audit,
    github_audit,
    gitlab_audit,
    jenkins_audit,
    k8s_audit,
    m365_audit,
    okta_system_log,
)
from detector.events.parsers.base import PARSERS, Parsed, Parser, register

__all__ = [
    "PARSERS",
    "Parsed",
    "Parser",
    "azure_activity",
    "azure_devops_audit",
    "azure_entra_id",
    "cloudtrail",
    "ecs",
    "gcp_audit",
    "github_audit",
    "gitlab_audit",
    "jenkins_audit",
    "k8s_audit",
    "m365_audit",
    "okta_system_log",
    "register",
]
