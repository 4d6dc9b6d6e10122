"""Compact events for feature tests: a Monday-morning base time and sensible defaults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from detector.events.model import ActorType, Category, Event, Outcome

__all__ = ["BASE", "at", "event"]

BASE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
"""Monday 2026-01-05 10:00 UTC: aligned to every default bucket (5s, 1m, 24m)."""


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def event(
    seconds: float = 0.0,
    *,
    actor: str = "alice",
    ip: str | None = "198.51.100.7",
    country: str | None = "DE",
    target: str | None = "acme/api",
    outcome: Outcome = Outcome.SUCCESS,
    privileged: bool = False,
    user_agent: str | None = "git/2.43",
    attributes: Mapping[str, str] | None = None,
    number: int = 0,
    category: Category = Category.CODE_ACCESS,
    source: str = "github_audit",
) -> Event:
    """An event ``seconds`` after :data:`BASE` (negative: before it)."""
    return Event(
        time=at(seconds),
        source=source,
        action="git.clone",
        category=category,
        outcome=outcome,
        actor=actor,
        actor_type=ActorType.HUMAN,
        id=f"test:{actor}:{seconds}:{number}",
        ip=ip,
        country=country,
        user_agent=user_agent,
        target=target,
        privileged=privileged,
        attributes=dict(attributes) if attributes is not None else {"repo": target or "none"},
    )
