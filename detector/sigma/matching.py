"""The ``where`` of a converted Sigma rule: its log source's condition and its detection."""

from __future__ import annotations

from typing import Any

from sigma.rule import SigmaRule

from detector.sigma.conditions import UnsupportedSigmaError, any_of, condition_map, merge_all
from detector.sigma.logsources import UNREAD_LOG_SOURCES, find_log_source

__all__ = ["log_source_name", "match_conditions"]


def match_conditions(sigma_rule: SigmaRule) -> dict[str, Any]:
    """The ciwatch conditions of a Sigma rule whose fields the pipeline has mapped.

    Several ``condition`` entries in one rule mean any of them.
    """
    source = find_log_source(sigma_rule.logsource)
    if source is None:
        key = log_source_name(sigma_rule)
        reason = UNREAD_LOG_SOURCES.get(key, "ciwatch reads no such log source")
        raise UnsupportedSigmaError(f"log source {key}: {reason}")
    trees = [condition.parsed for condition in sigma_rule.detection.parsed_condition]
    parts = [condition_map(tree) for tree in trees]
    detection = any_of(parts)
    return merge_all([dict(source.where), detection])


def log_source_name(sigma_rule: SigmaRule) -> str:
    """``product/service`` (or ``product/category``) of a Sigma rule, as reports show it."""
    logsource = sigma_rule.logsource
    return f"{logsource.product or '-'}/{logsource.service or logsource.category or '-'}"
