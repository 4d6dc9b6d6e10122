"""Condition maps compiled once into fast predicates over an Observation.

A condition map holds ``field path: matcher`` pairs that must all hold, plus
optional ``any:`` / ``all:`` keys whose value is a list of condition maps (OR /
AND). A matcher is a scalar (equals), a list (in) or a mapping with exactly one
operator::

    where:
      source: okta_system_log                 # equals; strings compare case-insensitively
      outcome: [failure, unknown]             # in
      actor: {glob: "svc-*"}                  # * and ? only
      raw.client.userAgent.rawUserAgent: {regex: "(?i)python-requests"}
      features.actor.failures.1h: {gte: 5}
      any:
        - attributes.namespace: {prefix: prod}
        - privileged: true

A missing value satisfies no operator except ``exists: false`` and ``not``
(plain negation). Raw paths may reach several values: an operator holds if it
holds for any of them, ``exists`` asks whether there is at least one, and
``not`` negates the whole. Every string operator but ``regex`` ignores case;
``regex`` searches (anchor it yourself) in linear time, on at most
``max_length`` characters of a value (see :mod:`detector.rules.regexes`)::

      raw.commandLine: {regex: {pattern: "(?i)curl .*\\| *sh", max_length: 4096}}

``equals_field`` compares with another field of the same event rather than a constant
(Sigma's ``fieldref``); negate it with ``not`` ("a key created for someone else")::

      raw.requestParameters.userName: {not: {equals_field: actor}}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from detector.features.observation import Observation
from detector.rules.fields import (
    FieldPath,
    FieldPathError,
    LocatedError,
    as_text,
    parse_field_path,
)
from detector.rules.leaves import (
    as_number,
    compare_key,
    exists_test,
    field_test,
    membership_test,
)
from detector.rules.regexes import RegexError, RegexGuard, compile_regex

__all__ = [
    "OPERATORS",
    "ConditionError",
    "Matcher",
    "Predicate",
    "RegexGuard",
    "all_of",
    "any_of",
    "compile_any_of",
    "compile_condition_map",
    "compile_matcher",
]

Predicate = Callable[[Observation], bool]
Matcher = Callable[[Any], bool]

OPERATORS = (
    "equals",
    "in",
    "not_in",
    "prefix",
    "suffix",
    "contains",
    "glob",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "not",
    "equals_field",
)
_GROUPS = ("any", "all")
_REGEX_OPTIONS = ("pattern", "max_length")


class ConditionError(LocatedError):
    """A condition map is invalid; ``path`` says where inside it (``actor.regex``)."""


def compile_condition_map(
    spec: Any, guard: RegexGuard, path: str = "", *, allow_empty: bool = False
) -> Predicate:
    """Compile one condition map; raise :class:`ConditionError` on anything invalid."""
    if not isinstance(spec, Mapping):
        raise ConditionError(path, f"expected a mapping of field: matcher, got {_kind(spec)}")
    if not spec and not allow_empty:
        raise ConditionError(path, "empty condition map (it would match every event)")
    tests: list[Predicate] = []
    for key, value in spec.items():
        here = _join(path, str(key))
        if key in _GROUPS:
            tests.append(_compile_group(str(key), value, guard, here))
            continue
        try:
            field = parse_field_path(key)
        except FieldPathError as exc:
            raise ConditionError(here, str(exc)) from None
        reference = _field_reference(field, value, here)
        if reference is not None:
            tests.append(reference)
            continue
        matcher = compile_matcher(value, guard, here, multi=field.multi)
        keys = None if field.multi else _equality_keys(value)
        if keys is not None:
            tests.append(membership_test(field, keys))
        elif not field.multi and _is_exists(value):
            tests.append(exists_test(field, value["exists"]))
        else:
            tests.append(field_test(field, matcher))
    return all_of(tests)


def compile_any_of(specs: Any, guard: RegexGuard, path: str = "") -> Predicate:
    """Compile a list of condition maps that holds if any one of them holds (``unless``)."""
    if not isinstance(specs, list):
        raise ConditionError(path, f"expected a list of condition maps, got {_kind(specs)}")
    predicates = [
        compile_condition_map(item, guard, f"{path}[{index}]") for index, item in enumerate(specs)
    ]
    return any_of(predicates)


def compile_matcher(spec: Any, guard: RegexGuard, path: str, *, multi: bool) -> Matcher:
    """Compile one matcher for a single-valued field, or a raw path when ``multi``."""
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            names = ", ".join(str(key) for key in spec) or "none"
            raise ConditionError(path, f"a matcher mapping needs exactly one operator, got {names}")
        ((operator, argument),) = spec.items()
        here = _join(path, str(operator))
        if operator == "not":
            inner = compile_matcher(argument, guard, here, multi=multi)
            return lambda value: not inner(value)
        if operator == "exists":
            if not isinstance(argument, bool):
                raise ConditionError(here, f"expected true or false, got {_kind(argument)}")
            return _exists(argument, multi)
        if operator not in OPERATORS:
            known = ", ".join(OPERATORS)
            raise ConditionError(path, f"unknown operator {operator!r} (known: {known})")
        leaf = _leaf(str(operator), argument, guard, here)
    elif isinstance(spec, list):
        leaf = _leaf("in", spec, guard, path)
    elif spec is None:
        raise ConditionError(path, "null matcher; use {exists: false} for a missing field")
    else:
        leaf = _leaf("equals", spec, guard, path)
    if multi:
        return lambda values: any(leaf(value) for value in values)
    return leaf


def _field_reference(field: FieldPath, spec: Any, path: str) -> Predicate | None:
    """``{equals_field: <path>}``, possibly under ``not``; ``None`` for every other matcher.

    Compiled here rather than in :func:`compile_matcher` because it reads two fields of the
    observation, not one value. It holds when both fields are present and a value of one
    equals a value of the other, ignoring case; so ``not`` holds when either is missing.
    """
    if not isinstance(spec, Mapping) or len(spec) != 1:
        return None
    ((operator, argument),) = spec.items()
    if operator == "not":
        inner = _field_reference(field, argument, _join(path, "not"))
        return None if inner is None else (lambda observation: not inner(observation))
    if operator != "equals_field":
        return None
    here = _join(path, "equals_field")
    try:
        other = parse_field_path(argument)
    except FieldPathError as exc:
        raise ConditionError(here, str(exc)) from None

    def same(observation: Observation) -> bool:
        mine = _comparable(field, observation)
        return bool(mine) and not mine.isdisjoint(_comparable(other, observation))

    return same


def _comparable(field: FieldPath, observation: Observation) -> set[str]:
    value = field.get(observation)
    values = value if field.multi else (value,)
    return {key for item in values if (key := compare_key(item)) is not None}


def _leaf(operator: str, argument: Any, guard: RegexGuard, path: str) -> Matcher:
    if operator == "equals":
        expected = _scalar_key(argument, path)
        return lambda value: value is not None and compare_key(value) == expected
    if operator in ("in", "not_in"):
        if not isinstance(argument, list) or not argument:
            raise ConditionError(path, f"expected a non-empty list, got {_kind(argument)}")
        keys = frozenset(_scalar_key(item, f"{path}[{i}]") for i, item in enumerate(argument))
        if operator == "in":
            return lambda value: value is not None and compare_key(value) in keys
        return lambda value: (key := compare_key(value)) is not None and key not in keys
    if operator in ("prefix", "suffix", "contains"):
        return _text_test(operator, _string(argument, path).casefold())
    if operator == "glob":
        compiled = re.compile(_glob_to_regex(_string(argument, path).casefold()), re.DOTALL)
        return lambda value: (
            (key := compare_key(value)) is not None and bool(compiled.fullmatch(key))
        )
    if operator == "regex":
        return _regex(argument, guard, path)
    return _numeric(operator, argument, path)


def _text_test(operator: str, expected: str) -> Matcher:
    if operator == "prefix":
        return lambda value: (key := compare_key(value)) is not None and key.startswith(expected)
    if operator == "suffix":
        return lambda value: (key := compare_key(value)) is not None and key.endswith(expected)
    return lambda value: (key := compare_key(value)) is not None and expected in key


def _regex(argument: Any, guard: RegexGuard, path: str) -> Matcher:
    """``regex: pattern`` or ``regex: {pattern: ..., max_length: n}``."""
    max_length = None
    if isinstance(argument, Mapping):
        unknown = [str(key) for key in argument if key not in _REGEX_OPTIONS]
        if unknown:
            known = ", ".join(_REGEX_OPTIONS)
            raise ConditionError(path, f"unknown regex option {unknown[0]!r} (known: {known})")
        max_length = argument.get("max_length")
        if max_length is not None and not _positive_int(max_length):
            got = _kind(max_length)
            raise ConditionError(f"{path}.max_length", f"expected a count of at least 1, got {got}")
        argument, path = argument.get("pattern"), f"{path}.pattern"
    try:
        search = compile_regex(_string(argument, path), guard, path, max_length=max_length)
    except RegexError as exc:
        raise ConditionError(exc.path, exc.message) from None

    def test(value: Any) -> bool:
        if type(value) is str:  # nearly every value: spares the abstract Mapping check below
            return search(value)
        if value is None or isinstance(value, Mapping | list):
            return False
        return search(as_text(value))

    return test


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _numeric(operator: str, argument: Any, path: str) -> Matcher:
    if isinstance(argument, bool) or not isinstance(argument, int | float):
        raise ConditionError(path, f"expected a number, got {_kind(argument)}")
    bound = float(argument)
    if operator == "gt":
        return lambda value: (number := as_number(value)) is not None and number > bound
    if operator == "gte":
        return lambda value: (number := as_number(value)) is not None and number >= bound
    if operator == "lt":
        return lambda value: (number := as_number(value)) is not None and number < bound
    return lambda value: (number := as_number(value)) is not None and number <= bound


def _exists(expected: bool, multi: bool) -> Matcher:
    if multi:
        return lambda values: bool(values) is expected
    return lambda value: (value is not None) is expected


def _scalar_key(argument: Any, path: str) -> str:
    if isinstance(argument, str | int | float | bool):
        key = compare_key(argument)
        assert key is not None
        return key
    raise ConditionError(
        path, f"expected a string, number or boolean, got {_kind(argument)} (quote it?)"
    )


def _string(argument: Any, path: str) -> str:
    if not isinstance(argument, str) or not argument:
        raise ConditionError(path, f"expected a non-empty string, got {_kind(argument)}")
    return argument


def _glob_to_regex(pattern: str) -> str:
    # Only * and ? are wild: brackets and everything else match themselves.
    return "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )


def _compile_group(name: str, value: Any, guard: RegexGuard, path: str) -> Predicate:
    if not isinstance(value, list) or not value:
        raise ConditionError(
            path, f"expected a non-empty list of condition maps, got {_kind(value)}"
        )
    predicates = [
        compile_condition_map(item, guard, f"{path}[{index}]") for index, item in enumerate(value)
    ]
    return any_of(predicates) if name == "any" else all_of(predicates)


def _is_exists(spec: Any) -> bool:
    return isinstance(spec, Mapping) and len(spec) == 1 and isinstance(spec.get("exists"), bool)


def _equality_keys(spec: Any) -> frozenset[str] | None:
    """The keys of an equals/in matcher on strings (already validated), else ``None``."""
    if isinstance(spec, Mapping) and len(spec) == 1:
        ((operator, spec),) = spec.items()
        if operator not in ("equals", "in"):
            return None
    items = spec if isinstance(spec, list) else [spec]
    if not all(isinstance(item, str) for item in items):
        return None
    return frozenset(item.casefold() for item in items)


def all_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:  # the usual residue of a gated map: no loop for it
        first, second = predicates
        return lambda observation: first(observation) and second(observation)
    frozen = tuple(predicates)

    def every(observation: Observation) -> bool:
        # A plain loop: all() over a generator costs a frame per call on this hot path.
        for predicate in frozen:  # noqa: SIM110
            if not predicate(observation):
                return False
        return True

    return every


def any_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda observation: first(observation) or second(observation)
    frozen = tuple(predicates)

    def some(observation: Observation) -> bool:
        for predicate in frozen:  # noqa: SIM110 - as in every()
            if predicate(observation):
                return True
        return False

    return some


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
