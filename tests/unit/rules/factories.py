"""Building rules and observations for rule tests, without the feature store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from detector.detections import Detection
from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.observation import Observation
from detector.rules import Rule, RuleEngine

__all__ = ["BASE", "event", "obs", "observe_all", "rule", "rules"]

BASE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def event(
    minutes: float = 0,
    *,
    actor: str = "alice",
    outcome: str = "success",
    source: str = "okta_system_log",
    action: str = "user.session.start",
    category: str = "authentication",
    actor_type: str = "human",
    id: str | None = None,
    ip: str | None = "203.0.113.9",
    country: str | None = None,
    target: str | None = None,
    privileged: bool = False,
    attributes: Mapping[str, str] | None = None,
    raw: Mapping[str, Any] | None = None,
) -> Event:
    """A normalized event ``minutes`` after :data:`BASE`."""
    return Event(
        time=BASE + timedelta(minutes=minutes),
        source=source,
        action=action,
        category=Category(category),
        outcome=Outcome(outcome),
        actor=actor,
        actor_type=ActorType(actor_type),
        id=id or f"e-{actor}-{minutes:g}",
        ip=ip,
        country=country,
        target=target,
        privileged=privileged,
        attributes=dict(attributes or {}),
        raw=dict(raw or {}),
    )


def obs(
    minutes: float = 0,
    *,
    late: bool = False,
    learning: bool = False,
    new_values: Mapping[str, str] | None = None,
    features: Mapping[str, float] | None = None,
    **fields: Any,
) -> Observation:
    """An observation of :func:`event` built directly (no feature store)."""
    return Observation(
        event=event(minutes, **fields),
        late=late,
        learning=learning,
        new_values=dict(new_values or {}),
        features=dict(features or {}),
    )


_REQUIRED = {"title": "A test rule", "severity": "high", "description": "For tests."}


def rule(text: str = "", **fields: Any) -> Rule:
    """A rule from YAML text and/or keyword fields, with title/severity/description filled in."""
    data: dict[str, Any] = {"id": "test-rule", **_REQUIRED}
    if text:
        data.update(yaml.safe_load(text))
    data.update(fields)
    return Rule.model_validate(data)


def rules(text: str) -> list[Rule]:
    """Several rules from a YAML list, each with the required fields filled in."""
    return [Rule.model_validate({**_REQUIRED, **entry}) for entry in yaml.safe_load(text)]


def observe_all(engine: RuleEngine, observations: Iterable[Observation]) -> list[Detection]:
    """Every detection the engine raises over ``observations``, in order."""
    return [d for observation in observations for d in engine.evaluate(observation)]
