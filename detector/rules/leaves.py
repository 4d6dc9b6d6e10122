"""The compiled tests of one field against a matcher: the hot path of every condition.

:func:`compare_key` and :func:`as_number` say how a value compares (case-folded
text, finite numbers); the tests read ``attributes.<name>`` in place rather than
through the path's getter: conditions on attributes are the most common after
the ones gates decide, and a call fewer per test is a tenth of a rule's cost per
event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from detector.features.observation import Observation
from detector.rules.fields import FieldPath, as_text

__all__ = ["as_number", "compare_key", "exists_test", "field_test", "membership_test"]

Predicate = Callable[[Observation], bool]
Matcher = Callable[[Any], bool]


def compare_key(value: Any) -> str | None:
    """The case-folded text a value compares as; ``None`` for missing or structured values."""
    if isinstance(value, str):
        return value.casefold()
    if value is None or isinstance(value, Mapping | list):
        return None
    return as_text(value).casefold()


def as_number(value: Any) -> float | None:
    """A value as a finite number (numeric strings too), or ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _attribute(field: FieldPath) -> str | None:
    """``name`` for an ``attributes.<name>`` path, else ``None``."""
    prefix, _, name = field.text.partition(".")
    return name if prefix == "attributes" and name else None


def field_test(field: FieldPath, matcher: Matcher) -> Predicate:
    """``matcher`` on the value of ``field``."""
    attribute, getter = _attribute(field), field.get
    if attribute is not None:
        return lambda observation: matcher(observation.event.attributes.get(attribute))
    return lambda observation: matcher(getter(observation))


def exists_test(field: FieldPath, expected: bool) -> Predicate:
    """``{exists: expected}`` on a single-valued field, as one call."""
    attribute, getter = _attribute(field), field.get
    if attribute is not None:
        return lambda observation: (
            (observation.event.attributes.get(attribute) is not None) is expected
        )
    return lambda observation: (getter(observation) is not None) is expected


def membership_test(field: FieldPath, keys: frozenset[str]) -> Predicate:
    """The value of ``field`` compares as one of ``keys`` (an equals or in matcher)."""
    # The most common condition by far (source, action, outcome ...): one call, no helpers.
    attribute, getter = _attribute(field), field.get
    if attribute is not None:

        def attribute_test(observation: Observation) -> bool:
            value = observation.event.attributes.get(attribute)
            if isinstance(value, str):
                return value.casefold() in keys
            return value is not None and compare_key(value) in keys

        return attribute_test

    def test(observation: Observation) -> bool:
        value = getter(observation)
        if isinstance(value, str):
            return value.casefold() in keys
        return value is not None and compare_key(value) in keys

    return test
