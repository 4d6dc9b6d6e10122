"""Sigma correlation rules as ciwatch threshold and sequence rules.

``event_count`` → a threshold counting events, ``value_count`` → a threshold counting
distinct values, ``temporal_ordered`` (all rules, in order) → a sequence. The
correlation's ``group-by`` is the group key, its ``timespan`` the window. ciwatch fires
when a count *reaches* a number, so only ``gte`` and ``gt`` conditions convert.
"""

from __future__ import annotations

from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from detector.sigma.conditions import UnsupportedSigmaError
from detector.sigma.logsources import LogSource, find_log_source, map_field
from detector.sigma.matching import match_conditions

__all__ = ["correlation_rule", "referenced_rules"]

_MAX_STEPS = 10


def correlation_rule(rule: SigmaCorrelationRule) -> dict[str, Any]:
    """The ``kind`` and its block, ``where`` and ``group_by`` of a converted correlation."""
    if len(rule.aliases):
        raise UnsupportedSigmaError("correlation field aliases")
    rules = referenced_rules(rule)
    wheres = [match_conditions(sigma_rule) for sigma_rule in rules]
    source = _one_log_source(rules)
    group_by = _group_by(rule, source, wheres)
    window = f"{rule.timespan.seconds}s"
    kind = rule.type
    if kind is SigmaCorrelationType.TEMPORAL_ORDERED:
        return _sequence(rule, wheres, group_by, window)
    if kind is SigmaCorrelationType.TEMPORAL:
        raise UnsupportedSigmaError(
            "temporal correlation in any order: ciwatch sequences are ordered"
        )
    if kind not in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT):
        raise UnsupportedSigmaError(f"{kind.name.lower()} correlation")
    condition = _condition(rule)
    threshold: dict[str, Any] = {"window": window}
    count = _reaching(condition)
    if kind is SigmaCorrelationType.VALUE_COUNT:
        fieldref = condition.fieldref
        if not isinstance(fieldref, str):
            raise UnsupportedSigmaError("value_count needs exactly one field")
        threshold["distinct"] = {"field": _one_path(source, fieldref), "count": count}
    else:
        threshold["count"] = count
    where = wheres[0] if len(wheres) == 1 else {"any": wheres}
    return {"kind": "threshold", "where": where, "group_by": group_by, "threshold": threshold}


def referenced_rules(rule: SigmaCorrelationRule) -> list[SigmaRule]:
    """The plain Sigma rules a correlation refers to (nested correlations are not converted)."""
    found: list[SigmaRule] = []
    for reference in rule.rules or []:
        target = getattr(reference, "rule", None)
        if not isinstance(target, SigmaRule):
            what = "a correlation" if target is not None else "a rule that is not there"
            raise UnsupportedSigmaError(f"correlation refers to {what} ({reference.reference})")
        found.append(target)
    if not found:
        raise UnsupportedSigmaError("correlation refers to no rules")
    return found


def _one_log_source(rules: list[SigmaRule]) -> LogSource:
    sources = {id(find_log_source(sigma_rule.logsource)): sigma_rule for sigma_rule in rules}
    source = find_log_source(rules[0].logsource)
    if source is None or len(sources) > 1:
        # match_conditions has already named an unread log source; several differ here.
        raise UnsupportedSigmaError("correlation over rules of different log sources")
    return source


def _group_by(rule: SigmaCorrelationRule, source: LogSource, wheres: list[Any]) -> list[str]:
    if rule.group_by:
        return [_one_path(source, name) for name in rule.group_by]
    if any("any" in where and "source" not in where for where in wheres):
        raise UnsupportedSigmaError("correlation without group-by over several ciwatch sources")
    return ["source"]  # one group: every event of the log source


def _one_path(source: LogSource, name: str) -> str:
    paths = map_field(source, name)
    if len(paths) != 1:
        raise UnsupportedSigmaError(f"field {name} has several shapes; a group key needs one field")
    return paths[0]


def _condition(rule: SigmaCorrelationRule) -> SigmaCorrelationCondition:
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise UnsupportedSigmaError("extended correlation condition")
    return condition


def _reaching(condition: SigmaCorrelationCondition) -> int:
    count = condition.count
    if condition.op is SigmaCorrelationConditionOperator.GTE:
        return max(1, int(-(-count // 1)))  # gte 2.5 fires at 3
    if condition.op is SigmaCorrelationConditionOperator.GT:
        return max(1, int(count // 1) + 1)
    raise UnsupportedSigmaError(
        f"correlation condition {condition.op.name.lower()}: ciwatch fires when a count "
        "reaches a number, it does not wait for a window to close"
    )


def _sequence(
    rule: SigmaCorrelationRule, wheres: list[Any], group_by: list[str], window: str
) -> dict[str, Any]:
    condition = _condition(rule)
    needed = _reaching(condition)
    if needed != len(wheres):
        raise UnsupportedSigmaError(
            f"temporal_ordered needing {needed} of {len(wheres)} rules: a sequence needs all"
        )
    if not 2 <= len(wheres) <= _MAX_STEPS:
        raise UnsupportedSigmaError(
            f"temporal_ordered over {len(wheres)} rules (2 to {_MAX_STEPS})"
        )
    return {
        "kind": "sequence",
        "group_by": group_by,
        "sequence": {"window": window, "steps": [{"where": where} for where in wheres]},
    }
