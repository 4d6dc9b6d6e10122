"""Compact events for feature tests: a Monday-morning base time and sensible defaults."""

from __future__ import annotations

from array import array
from binascii import a2b_base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.buckets import lanes_per_bucket
from detector.features.lanes import packed_sum, thawed

__all__ = ["BASE", "at", "event", "spelled_out"]

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


def spelled_out(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A feature snapshot with each key's parts spelled out in a canonical order.

    The same counts may be kept in lanes of other widths (the plain form widens
    them and never narrows; an arena narrows them as it lets a counter go), and
    a version 1 snapshot restored its values field by field, its profile hour by
    hour, and no first sightings of fields that do not keep them: stores that
    counted alike are compared on what they hold.
    """
    windows = len(snapshot["windows"])
    first_kept = [remember_first for _, remember_first in snapshot["fields"]]

    def counted(text: str) -> list[int]:
        ids, lanes = thawed(a2b_base64(text), windows)
        stride = lanes_per_bucket(ids, lanes, windows)
        held = len(ids) - 2 * windows
        return [*ids, *(packed_sum(lanes, stride, k, k + 1) for k in range(held))]

    def actor(row: list[Any]) -> list[Any]:
        first, last, counter, values, sightings, profile = row
        data = a2b_base64(sightings)
        times = array("d", data[len(values) :])
        fields = data[: len(values)]
        remembered = sorted(
            (field, value, times[2 * at], times[2 * at + 1] if first_kept[field] else None)
            for at, (field, value) in enumerate(zip(fields, values, strict=True))
        )
        if isinstance(profile, str):
            pairs = a2b_base64(profile)
            profile = sorted(zip(pairs[0::2], pairs[1::2], strict=True))
        return [first, last, counted(counter), remembered, profile]

    def key(row: list[Any]) -> list[Any]:
        last, counter, actors, sightings = row
        return [last, counted(counter), actors, sightings]

    return {
        **snapshot,
        "actors": {name: actor(row) for name, row in snapshot["actors"].items()},
        **{
            table: {name: key(row) for name, row in snapshot[table].items()}
            for table in ("ips", "targets")
        },
    }
