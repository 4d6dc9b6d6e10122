"""The kinds that need no rule state: match (every matching event) and new_value.

new_value relies on the feature store: ``Observation.new_values`` already says
which tracked values the actor shows for the first time, once its learning
period is over, so the rule only has to look.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from detector.events.model import Event
from detector.features.observation import Observation
from detector.rules.state import Evaluator, Firing
from detector.rules.summaries import join_limited

__all__ = ["KnownValues", "MatchEvaluator", "NewValueEvaluator", "describe_event"]

KnownValues = Callable[[str, str], Sequence[str]]
"""``(actor, field) -> values`` the actor was seen with before (for explanations)."""

_KNOWN_CAP = 20


def describe_event(event: Event) -> str:
    """``alice performed repo.destroy on acme/api from 203.0.113.9``."""
    text = f"{event.actor} performed {event.action}"
    if event.target:
        text += f" on {event.target}"
    if event.ip:
        text += f" from {event.ip}"
    return text


class MatchEvaluator(Evaluator):
    """Fires on every event that passes the rule's conditions; the alert layer folds repeats."""

    reads_key = False

    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        event = observation.event
        summary = f"{describe_event(event)} ({event.source}, {event.outcome.value})"
        return Firing(evidence=(event.id,), default_summary=summary)


class NewValueEvaluator(Evaluator):
    """Fires when the observation reports a first-seen value of ``field`` for the actor."""

    reads_key = False
    needs_new_value = True

    def __init__(self, field: str, known_values: KnownValues | None = None) -> None:
        self.field = field
        self.known_values = known_values

    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        if observation.learning:
            return None
        value = observation.new_values.get(self.field)
        if value is None:
            return None
        event = observation.event
        known = self._known(observation, value)
        summary = f"{event.actor} performed {event.action} with a new {self.field} {value}"
        if known:
            summary += f" (known: {join_limited(known, 5)})"
        elif known is not None:
            summary += " (no earlier value known)"
        explanation: dict[str, object] = {
            "field": self.field,
            "value": value,
            "first_seen": event.time.isoformat().replace("+00:00", "Z"),
        }
        if known is not None:
            explanation["known_values"] = known[:_KNOWN_CAP]
        return Firing(
            evidence=(event.id,),
            default_summary=summary,
            values={"field": self.field, "value": value, "known": ", ".join(known or []) or None},
            explanation=explanation,
        )

    def _known(self, observation: Observation, value: str) -> list[str] | None:
        if self.known_values is None:
            return None
        # As the store saw them at that event (it observes a batch before rules run).
        known: Sequence[str] | None = observation.known_values.get(self.field)
        if known is None:
            known = self.known_values(observation.event.actor, self.field)
        return [item for item in known if item != value]
