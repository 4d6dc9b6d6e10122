"""Vendor parsers, one module per log type; importing this package registers them all."""

from detector.events.parsers import github_audit
from detector.events.parsers.base import PARSERS, Parsed, Parser, register

__all__ = ["PARSERS", "Parsed", "Parser", "github_audit", "register"]
