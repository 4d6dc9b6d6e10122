"""A rule's conditions specialised to one kind of event, decided once per kind.

Events come in few kinds: a vendor's action, its category, whether it
succeeded and who did it (:data:`KIND_FIELDS`: ``source``, ``action``,
``category``, ``outcome``, ``actor_type``). The conditions a rule puts on those
fields hold, or do not, for every event of a kind alike. A :class:`Gate` keeps
a rule's ``where`` (or ``unless``) as a tree of compiled leaves and, given the
kind, folds the leaves on those fields away: what is left is ``True`` (the
conditions hold for every such event), ``False`` (for none: the rule is not
even tried) or a predicate over the other leaves, in the order written::

    gate = where_gate({"source": "okta_system_log", "action": {"prefix": "user."},
                       "outcome": "failure", "ip": {"exists": True}}, RegexGuard())
    gate.decide("okta_system_log", "user.session.start")  # the outcome and ip tests
    gate.decide("okta_system_log", "user.session.start", outcome="failure")  # the ip test
    gate.decide("github_audit", "git.clone")  # False

A field not given (here ``outcome`` in the first call) stays a test.

The leaves are compiled by :func:`compile_condition_map` itself, so a residual
predicate answers as the whole map would for events of that pair. A regex on
``source`` or ``action`` whose match meets one of the guard's bounds (a value
past ``max_length``, the backtracking engine) is not decided ahead: it stays a
leaf, so that every event still tallies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from detector.rules.conditions import (
    Matcher,
    Predicate,
    RegexGuard,
    all_of,
    any_of,
    compile_condition_map,
    compile_matcher,
)

__all__ = ["KIND_FIELDS", "Decision", "Gate", "unless_gate", "where_gate"]

Decision = bool | Predicate
"""``True`` or ``False`` when a pair decides the conditions, else what is left to test."""

KIND_FIELDS = ("source", "action", "category", "outcome", "actor_type")
"""The event fields a gate decides ahead: few distinct values, each one string (or StrEnum)."""
_GROUPS = ("any", "all")


@dataclass(frozen=True, slots=True)
class _Leaf:
    predicate: Predicate
    field: str | None  # one of KIND_FIELDS when value_test can decide it ahead
    value_test: Matcher | None
    bounds: RegexGuard | None  # the private tally value_test counts bounds in (regexes only)


@dataclass(frozen=True, slots=True)
class Gate:
    """A condition tree: leaves, and groups that hold when all (or any) members hold."""

    every: bool
    members: tuple[Gate | _Leaf, ...]

    def decide(self, source: str, action: str, **kind: str) -> Decision:
        """These conditions for events with this ``source`` and ``action``, and the other
        :data:`KIND_FIELDS` given (as the event has them: the same objects)."""
        return self.decide_kind({"source": source, "action": action, **kind})

    def decide_kind(self, kind: Mapping[str, str]) -> Decision:
        """These conditions for events of ``kind`` (:data:`KIND_FIELDS` → the event's value;
        a field left out stays a test)."""
        left: list[Predicate] = []
        for member in self.members:
            found = _decide(member, kind)
            if found is not self.every:
                if found is (not self.every):
                    return not self.every  # a member decides the whole group
                assert not isinstance(found, bool)
                left.append(found)
        if not left:
            return self.every
        return all_of(left) if self.every else any_of(left)


def where_gate(spec: Mapping[str, Any], guard: RegexGuard, *, allow_empty: bool = False) -> Gate:
    """The gate of a ``where`` map (already validated by :func:`compile_condition_map`)."""
    if not spec and allow_empty:
        return Gate(True, ())
    members: list[Gate | _Leaf] = []
    for key, value in spec.items():
        if key in _GROUPS:
            group = tuple(where_gate(item, guard) for item in value)
            members.append(Gate(key == "all", group))
        else:
            members.append(_leaf(str(key), value, guard))
    return Gate(True, tuple(members))


def unless_gate(specs: list[dict[str, Any]], guard: RegexGuard) -> Gate:
    """The gate of an ``unless`` list: it holds when any of its maps holds."""
    return Gate(False, tuple(where_gate(spec, guard) for spec in specs))


def _leaf(key: str, value: Any, guard: RegexGuard) -> _Leaf:
    predicate = compile_condition_map({key: value}, guard)
    if key not in KIND_FIELDS or _names_a_field(value):
        return _Leaf(predicate, None, None, None)
    # Its own tally: a bound met ahead is not the event's to count (see _decide).
    bounds = RegexGuard(timeout=guard.timeout, max_length=guard.max_length, rule=guard.rule)
    value_test = compile_matcher(value, bounds, key, multi=False)
    return _Leaf(predicate, key, value_test, bounds if bounds.rules else None)


def _names_a_field(value: Any) -> bool:
    """``{equals_field: ...}``, possibly under ``not``: it reads another field."""
    while isinstance(value, Mapping) and len(value) == 1:
        ((operator, value),) = value.items()
        if operator == "equals_field":
            return True
        if operator != "not":
            return False
    return False


def _decide(member: Gate | _Leaf, kind: Mapping[str, str]) -> Decision:
    if isinstance(member, Gate):
        return member.decide_kind(kind)
    value = kind.get(member.field) if member.field is not None else None
    if member.value_test is None or value is None:
        return member.predicate
    if member.bounds is None:
        return member.value_test(value)  # no regex: no bound can apply
    tally = member.bounds.limits
    before = sum(tally.values())
    holds = member.value_test(value)
    if sum(tally.values()) != before:
        return member.predicate  # a regex bound applied: leave it to each event
    return holds
