"""Turning a rule's embedded test into events, for the test runner (detector/ruletests.py).

Raw vendor documents go through the real normalizer, so parsers and the
taxonomy are exercised; compact events are filled in the way the normalizer
would (category and privileged from the taxonomy, automation identities become
``service``). Times: see :class:`~detector.rules.model.TestEvent`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from detector.errors import RuleError
from detector.events.model import ActorType, DeadLetter, Event, Skipped
from detector.events.normalizer import Normalizer
from detector.rules.model import TestCase, TestEvent
from detector.sources.record import Position, RawRecord

__all__ = ["TEST_BASE_TIME", "TestEventError", "build_test_events"]

TEST_BASE_TIME = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
"""Where a test's events start unless they say otherwise (a Monday, 10:00 UTC)."""

_FOLLOW = timedelta(seconds=1)


class TestEventError(RuleError):
    """A test event that cannot become an event; ``index`` is its place in ``events``."""

    __test__ = False  # not a pytest class

    def __init__(self, message: str, *, where: str, index: int) -> None:
        super().__init__(message, where=where)
        self.index = index


def build_test_events(test: TestCase, normalizer: Normalizer, *, where: str = "") -> list[Event]:
    """The events of ``test`` in the order written, ``repeat`` copies expanded in place.

    ``where`` prefixes error locations (``pipelines/rules/x.yaml: rule y``). A
    raw document that does not normalize raises :class:`TestEventError` naming the
    test and the event.
    """
    stream = f"test:{test.name}"
    events: list[Event] = []
    previous: datetime | None = None
    for index, spec in enumerate(test.events):
        here = f"{where + ': ' if where else ''}tests[{test.name}].events[{index}]"
        if spec.raw is not None:
            firsts = _normalize_raw(spec, normalizer, Position(stream, index + 1), here, index)
        else:
            start = _compact_start(spec, previous)
            firsts = [_compact(spec, normalizer, start, Position(stream, index + 1), len(events))]
        for copy in range(spec.repeat):
            for first in firsts:
                events.append(_copy(first, copy, spec.every))
        previous = events[-1].time if events else previous
    return events


def _compact_start(spec: TestEvent, previous: datetime | None) -> datetime:
    if spec.time is not None:
        return spec.time.astimezone(UTC)
    if spec.at is not None:
        return TEST_BASE_TIME + spec.at
    return TEST_BASE_TIME if previous is None else previous + _FOLLOW


def _compact(
    spec: TestEvent, normalizer: Normalizer, time: datetime, position: Position, number: int
) -> Event:
    assert spec.source is not None and spec.action is not None and spec.actor is not None
    classification = normalizer.taxonomy.classify(spec.source, spec.action)
    actor_type = spec.actor_type
    if actor_type is None:
        automated = normalizer.taxonomy.is_automation(spec.source, spec.actor)
        actor_type = ActorType.SERVICE if automated else ActorType.HUMAN
    privileged = spec.privileged if spec.privileged is not None else classification.privileged
    return Event(
        time=time,
        source=spec.source,
        action=spec.action,
        category=spec.category or classification.category,
        outcome=spec.outcome,
        actor=spec.actor,
        actor_type=actor_type,
        id=spec.id or f"test-{number + 1}",
        position=position,
        ip=spec.ip,
        country=spec.country,
        user_agent=spec.user_agent,
        target=spec.target,
        privileged=privileged,
        attributes=dict(spec.attributes),
    )


def _normalize_raw(
    spec: TestEvent, normalizer: Normalizer, position: Position, where: str, index: int
) -> list[Event]:
    record = RawRecord(value=orjson.dumps(spec.raw), position=position)
    results = normalizer.normalize(record)
    events: list[Event] = []
    for result in results:
        if isinstance(result, DeadLetter):
            message = f"raw event did not normalize: {result.reason.value}: {result.detail}"
            raise TestEventError(message, where=where, index=index)
        if isinstance(result, Skipped):
            message = f"raw event is a known non-event ({result.reason.value}), not an event"
            raise TestEventError(message, where=where, index=index)
        events.append(result)
    if spec.at is not None:
        events = [replace(event, time=TEST_BASE_TIME + spec.at) for event in events]
    return events


def _copy(event: Event, copy: int, every: timedelta) -> Event:
    if copy == 0:
        return event
    return replace(event, time=event.time + every * copy, id=f"{event.id}#{copy + 1}")
