"""Why a rule's conditions did or did not let one observation through (``ciwatch test-rules``).

The engine compiles a rule's ``where`` into one predicate, which answers yes or
no. To tell an author *why* an embedded test raised no alert, :class:`WhyTrace`
compiles every top-level condition on its own and names the first one that
failed, with the value the event had::

    where.outcome: wanted failure, got success
    unless[0] held: actor_type: service (event: actor_type=service)

Only failed tests pay for this; the engine's hot path is untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from detector.features.observation import Observation
from detector.rules.conditions import Predicate, RegexGuard, compile_condition_map
from detector.rules.context import RuleContext
from detector.rules.fields import as_text, parse_field_path
from detector.rules.model import Rule

__all__ = ["WhyTrace", "show"]

_MAX_SHOWN = 60  # characters of a value or matcher in a reason


@dataclass(frozen=True, slots=True)
class _Check:
    label: str  # where.<key> or unless[<n>]
    spec: Mapping[str, Any]
    test: Predicate


class WhyTrace:
    """The conditions of ``rule``, each compiled alone, to explain single observations."""

    def __init__(self, rule: Rule, context: RuleContext) -> None:
        guard = RegexGuard(timeout=context.regex_timeout, max_length=context.regex_max_length)
        self.rule = rule
        self.context = context
        self._where = [
            _Check(f"where.{key}", {key: value}, compile_condition_map({key: value}, guard))
            for key, value in rule.where.items()
        ]
        self._unless = [
            _Check(f"unless[{index}]", spec, compile_condition_map(spec, guard))
            for index, spec in enumerate(rule.unless)
        ]
        steps = rule.sequence.steps if rule.sequence is not None else []
        self._steps = [compile_condition_map(step.where, guard) for step in steps]

    def reason(self, observation: Observation, *, stateful: bool) -> str | None:
        """Why the rule ignores ``observation`` (the first condition that stops it), or
        ``None`` when it passes ``where``, ``unless`` and the change window.

        ``stateful``: the rule keeps state (threshold, sequence, new_value), so the
        engine skips late events for it.
        """
        if observation.late and stateful:
            return "late event (older than the watermark minus the allowed lateness): skipped"
        for check in self._where:
            if not check.test(observation):
                return _where_failed(check, observation)
        for check in self._unless:
            if check.test(observation):
                got = ", ".join(_field_values(check.spec, observation))
                return f"{check.label} held: {show(check.spec)} (event: {got})"
        if self.rule.unless_change_window and self.context.in_change_window(observation.event.time):
            return "inside a change window (unless_change_window: true)"
        return None

    def steps_held(self, observation: Observation) -> list[int]:
        """The 1-based sequence steps whose ``where`` holds for ``observation``."""
        return [number for number, test in enumerate(self._steps, 1) if test(observation)]


def _where_failed(check: _Check, observation: Observation) -> str:
    ((key, matcher),) = check.spec.items()
    if key == "any":
        return f"{check.label}: none of its {len(matcher)} alternatives held"
    if key == "all":
        return f"{check.label}: not all of its {len(matcher)} conditions held"
    return f"{check.label}: wanted {show(matcher)}, got {_value_text(key, observation)}"


def _field_values(spec: Mapping[str, Any], observation: Observation) -> list[str]:
    values = []
    for key in spec:
        if key in ("any", "all"):
            continue
        values.append(f"{key}={_value_text(key, observation)}")
    return values


def _value_text(key: str, observation: Observation) -> str:
    path = parse_field_path(key)
    value = path.get(observation)
    if path.multi:
        return show(list(value)) if value else "nothing (no such value)"
    return "nothing (no such value)" if value is None else show(value)


def show(value: Any) -> str:
    """A matcher or value as an author wrote it, on one short line (``{regex: ^svc-}``)."""
    text = _render(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _render(value: Any) -> str:
    render: Callable[[Any], str] = _render
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {render(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(item) for item in value) + "]"
    text = as_text(value)
    return text.replace("\n", "\\n") if text.strip() == text and text else repr(text)
