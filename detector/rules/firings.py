"""A rule firing made a Detection: its summary, explanation and the values templates name."""

from __future__ import annotations

from typing import Any

from detector.detections import Detection, DetectorKind
from detector.events.model import isoformat
from detector.events.printable import printable
from detector.features.observation import Observation
from detector.rules.fields import FieldPath
from detector.rules.model import Rule
from detector.rules.state import Firing
from detector.rules.summaries import render_template

__all__ = ["rule_detection"]


_MAX_SUMMARY_CHARS = 1000


def rule_detection(
    rule: Rule,
    group: tuple[FieldPath, ...],
    observation: Observation,
    key: tuple[str | None, ...],
    firing: Firing,
) -> Detection:
    """The Detection of ``rule`` firing on ``observation`` for the group ``key`` (of ``group``)."""
    event = observation.event
    pairs = tuple((path.text, value or "") for path, value in zip(group, key, strict=True))
    # Default sentences name actors, IPs and values straight from input: escaped, as templates are.
    summary = printable(firing.default_summary, limit=_MAX_SUMMARY_CHARS)
    if rule.summary is not None:
        values = _template_values(rule, observation, pairs, firing)
        summary = render_template(rule.summary, values) or summary
    conditions: dict[str, Any] = {"where": rule.where}
    if rule.unless:
        conditions["unless"] = rule.unless
    explanation = {
        "rule": rule.id,
        "kind": rule.kind.value,
        "conditions": conditions,
        "group": dict(pairs),
        **firing.explanation,
    }
    return Detection(
        kind=DetectorKind.RULE,
        name=rule.id,
        title=rule.title,
        severity=rule.severity,
        time=event.time,
        key=pairs,
        actor=event.actor,
        source=event.source,
        summary=summary,
        evidence=firing.evidence,
        suppress=rule.suppress,
        tags=rule.tags,
        score=None,
        runbook=rule.runbook or None,
        features=dict(observation.features),
        explanation=explanation,
    )


def _template_values(
    rule: Rule, observation: Observation, pairs: tuple[tuple[str, str], ...], firing: Firing
) -> dict[str, Any]:
    """Everything a summary template may name (see summaries.COMMON_FIELDS and KIND_FIELDS)."""
    event = observation.event
    return {
        "rule": rule.id,
        "title": rule.title,
        "severity": rule.severity.value,
        "actor": event.actor,
        "actor_type": event.actor_type.value,
        "action": event.action,
        "source": event.source,
        "category": event.category.value,
        "outcome": event.outcome.value,
        "target": event.target,
        "ip": event.ip,
        "country": event.country,
        "user_agent": event.user_agent,
        "id": event.id,
        "time": isoformat(event.time),
        "key": ", ".join(f"{name}={value}" for name, value in pairs),
        "group": "/".join(value for _, value in pairs),
        "attributes": dict(event.attributes),
        "features": dict(observation.features),
        **firing.values,
    }
