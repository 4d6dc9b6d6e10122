"""A Sigma condition tree (pySigma's, after the field mapping) as a ciwatch condition map.

ciwatch negates single matchers (``{not: ...}``), not groups, so ``not`` is pushed down to
the leaves with De Morgan's laws; since a missing field satisfies a negated matcher, this
keeps Sigma's meaning (``not field: x`` holds when the field is missing). Both match
strings ignoring case by default. Anything ciwatch cannot express exactly raises
:class:`UnsupportedSigmaError` naming it: a rule is converted whole or not at all.
"""

from __future__ import annotations

import re
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

from detector.errors import CiwatchError

__all__ = ["UnsupportedSigmaError", "any_of", "condition_map", "merge_all"]

_COMPARE = {
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
}
_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
_WILD = {SpecialChars.WILDCARD_MULTI: "*", SpecialChars.WILDCARD_SINGLE: "?"}
_WILD_REGEX = {SpecialChars.WILDCARD_MULTI: ".*", SpecialChars.WILDCARD_SINGLE: "."}

Node = Any  # a pySigma condition tree node
Conditions = dict[str, Any]


class UnsupportedSigmaError(CiwatchError):
    """A Sigma construct ciwatch cannot express with the same meaning."""


def condition_map(node: Node, negate: bool = False) -> Conditions:
    """The ciwatch condition map equivalent to ``node`` (negated when ``negate``)."""
    if isinstance(node, ConditionNOT):
        return condition_map(node.args[0], not negate)
    if isinstance(node, ConditionAND | ConditionOR):
        parts = [condition_map(arg, negate) for arg in node.args]
        conjunction = isinstance(node, ConditionAND) != negate
        return merge_all(parts) if conjunction else any_of(parts)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _leaf(node.field, node.value, negate)
    if isinstance(node, ConditionValueExpression):
        raise UnsupportedSigmaError(
            "keyword search (a value without a field): ciwatch conditions always name a field"
        )
    if isinstance(node, ConditionItem):  # pragma: no cover - every ConditionItem is above
        raise UnsupportedSigmaError(f"condition {type(node).__name__}")
    raise UnsupportedSigmaError(f"unexpected condition {node!r}")


def merge_all(parts: list[Conditions]) -> Conditions:
    """One map in which every part holds: keys merged, clashing parts under ``all``."""
    merged: Conditions = {}
    rest: list[Conditions] = []
    for part in parts:
        if set(part) == {"all"}:
            for inner in part["all"]:
                _merge_into(merged, rest, inner)
        else:
            _merge_into(merged, rest, part)
    if rest:
        merged["all"] = [*merged.get("all", []), *rest]
    return merged


def _merge_into(merged: Conditions, rest: list[Conditions], part: Conditions) -> None:
    if merged.keys().isdisjoint(part):
        merged.update(part)
    else:
        rest.append(part)


def any_of(parts: list[Conditions]) -> Conditions:
    flat: list[Conditions] = []
    for part in parts:
        flat.extend(part["any"] if set(part) == {"any"} else [part])
    # Plain equalities on one field fold into a list: `action: [a, b]` reads better.
    folded: list[Conditions] = []
    for part in flat:
        previous = folded[-1] if folded else None
        if previous is not None and _same_field_equalities(previous, part):
            name = next(iter(part))
            folded[-1] = {name: [*_as_list(previous[name]), part[name]]}
        else:
            folded.append(part)
    return folded[0] if len(folded) == 1 else {"any": folded}


def _same_field_equalities(left: Conditions, right: Conditions) -> bool:
    if len(left) != 1 or len(right) != 1 or left.keys() != right.keys():
        return False
    name = next(iter(left))
    if name in ("any", "all"):
        return False
    return _is_scalar(right[name]) and all(_is_scalar(value) for value in _as_list(left[name]))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _leaf(field: str, value: SigmaType, negate: bool) -> Conditions:
    if isinstance(value, SigmaExpansion):  # windash, base64offset: any of the variants
        return condition_map_values(field, value.values, negate)
    matcher = matcher_of(value)
    if not negate:
        return {field: matcher}
    if isinstance(matcher, dict) and set(matcher) == {"exists"}:
        return {field: {"exists": not matcher["exists"]}}
    return {field: {"not": matcher if isinstance(matcher, dict) else {"equals": matcher}}}


def condition_map_values(field: str, values: list[SigmaType], negate: bool) -> Conditions:
    """Any of ``values`` (all of them negated, when ``negate``)."""
    parts = [_leaf(field, value, negate) for value in values]
    return merge_all(parts) if negate else any_of(parts)


def matcher_of(value: SigmaType) -> Any:
    """The ciwatch matcher for one Sigma value."""
    if isinstance(value, SigmaCasedString):
        # ciwatch compares strings ignoring case; only a regex without (?i) can be exact.
        return {"regex": f"^{_regex_body(value)}$"}
    if isinstance(value, SigmaString):
        return _string_matcher(value)
    if isinstance(value, SigmaRegularExpression):
        flags = "".join(sorted(_REGEX_FLAGS[flag] for flag in value.flags))
        return {"regex": (f"(?{flags})" if flags else "") + value.regexp.to_plain()}
    if isinstance(value, SigmaTimestampPart):
        raise UnsupportedSigmaError(
            "timestamp modifiers (minute, hour, ...): ciwatch has no such matcher"
        )
    if isinstance(value, SigmaBool):
        return value.boolean
    if isinstance(value, SigmaNumber):
        return value.number
    if isinstance(value, SigmaNull):
        return {"exists": False}
    if isinstance(value, SigmaExists):
        return {"exists": value.exists}
    if isinstance(value, SigmaCompareExpression):
        return _compare(value)
    if isinstance(value, SigmaCIDRExpression):
        return _cidr(value)
    if isinstance(value, SigmaFieldReference) and not (value.starts_with or value.ends_with):
        return {"equals_field": value.field}  # already mapped by the log source's pipeline
    raise UnsupportedSigmaError(f"value type {type(value).__name__} ({_describe(value)})")


def _string_matcher(value: SigmaString) -> Any:
    if value.contains_placeholder():
        raise UnsupportedSigmaError(f"placeholder in {value.original!r} (the expand modifier)")
    parts = list(value.s)
    literal = [part for part in parts if isinstance(part, str)]
    if any("\x00" in text for text in literal):
        raise UnsupportedSigmaError("wide/utf16 modifiers: binary encodings, not JSON text")
    if not value.contains_special():
        return "".join(literal)  # escaped wildcards are literal characters here
    multi = SpecialChars.WILDCARD_MULTI
    if len(literal) == 1 and SpecialChars.WILDCARD_SINGLE not in parts:
        text = literal[0]
        shapes = {
            (multi, text, multi): "contains",
            (text, multi): "prefix",
            (multi, text): "suffix",
        }
        if (kind := shapes.get(tuple(parts))) is not None:  # type: ignore[arg-type]
            return {kind: text}
    if any("*" in text or "?" in text for text in literal):
        # A glob cannot say "a literal * here": the regex can.
        return {"regex": f"(?i)^{_regex_body(value)}$"}
    # Placeholders were refused above: every other part is a wildcard.
    return {"glob": "".join(part if isinstance(part, str) else _WILD[part] for part in parts)}  # type: ignore[index]


def _regex_body(value: SigmaString) -> str:
    pieces: list[str] = []
    for part in value.s:
        if isinstance(part, str):
            pieces.append(re.escape(part))
        elif part in _WILD_REGEX:
            pieces.append(_WILD_REGEX[part])
        else:
            raise UnsupportedSigmaError(f"placeholder in {value.original!r} (the expand modifier)")
    return "".join(pieces)


def _compare(value: SigmaCompareExpression) -> Any:
    number = value.number.number
    if value.op is CompareOperators.NEQ:
        return {"not": {"equals": number}}
    return {_COMPARE[value.op]: number}


def _cidr(value: SigmaCIDRExpression) -> Any:
    if value.network.version != 4:
        # IPv6 text has many forms (zero compression, embedded IPv4): a prefix is not exact.
        raise UnsupportedSigmaError(f"cidr modifier with an IPv6 network ({value.cidr})")
    patterns = value.expand("*")
    prefixes = [pattern.removesuffix("*") for pattern in patterns]
    if any("*" in prefix for prefix in prefixes):  # pragma: no cover - expand's contract
        raise UnsupportedSigmaError(f"cidr {value.cidr}")
    exact = [
        prefix for prefix, pattern in zip(prefixes, patterns, strict=True) if prefix == pattern
    ]
    if exact and len(exact) == len(prefixes):
        return exact if len(exact) > 1 else exact[0]
    if len(prefixes) == 1:
        return {"prefix": prefixes[0]}
    # Several octet-aligned prefixes: one regex (ciwatch has no "any of these prefixes").
    return {"regex": "^(" + "|".join(re.escape(prefix) for prefix in prefixes) + ")"}


def _describe(value: SigmaType) -> str:
    names = {
        "SigmaFieldReference": "fieldref with startswith/endswith: ciwatch compares whole values",
        "SigmaTimestampPart": "timestamp modifiers (minute, hour, ...)",
        "SigmaQueryExpression": "a backend-specific query expression",
    }
    return names.get(type(value).__name__, str(value))
