"""Vendor parsers, one module per log type; importing this package registers them all."""

from detector.events.parsers import (
    azure_entra_id,
    cloudtrail,
    ecs,
    github_audit,
    gitlab_audit,
    k8s_audit,
    okta_system_log,
)
from detector.events.parsers.base import PARSERS, Parsed, Parser, register

__all__ = [
    "PARSERS",
    "Parsed",
    "Parser",
    "azure_entra_id",
    "cloudtrail",
    "ecs",
    "github_audit",
    "gitlab_audit",
    "k8s_audit",
    "okta_system_log",
    "register",
]
