"""Summary sentences: the placeholders a rule's ``summary`` template may use, and rendering.

A template is a ``str.format`` string: ``"{actor} failed to sign in {count}
times in {window} from {distinct_ips} addresses"``. Mappings are indexed:
``{attributes[repo]}``, ``{features[actor.events.5m]}``. A placeholder whose
value is unknown renders as ``-``. Templates are checked when the rule loads;
one that still fails at run time (a format spec on a missing value) falls back
to the kind's default sentence, so an alert is never lost to a typo.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from detector.events.printable import printable

__all__ = [
    "COMMON_FIELDS",
    "KIND_FIELDS",
    "check_template",
    "join_limited",
    "outcome_word",
    "render_template",
]

COMMON_FIELDS = frozenset(
    {
        "rule",
        "title",
        "severity",
        "actor",
        "actor_type",
        "action",
        "source",
        "category",
        "outcome",
        "target",
        "ip",
        "country",
        "user_agent",
        "id",
        "time",
        "key",
        "group",
        "attributes",
        "features",
    }
)
_WINDOWED = frozenset({"window", "count", "actions", "distinct_ips", "distinct_actors"})
KIND_FIELDS: Mapping[str, frozenset[str]] = {
    "match": frozenset(),
    "threshold": _WINDOWED
    | {"threshold", "distinct", "field", "values", "distinct_targets", "window_start"},
    "new_value": frozenset({"field", "value", "known"}),
    "sequence": _WINDOWED | {"elapsed", "steps"},
}
_MISSING = "-"
_SAMPLE: Mapping[str, Any] = {"count": 1, "threshold": 1, "distinct": 1, "distinct_ips": 1}


class _Lenient(dict[str, Any]):
    """A mapping whose unknown keys render as ``-`` instead of raising."""

    def __missing__(self, key: str) -> Any:
        return _MISSING


class _Sample(dict[str, Any]):
    """Stands in for attributes and features when checking a template: any key, a number."""

    def __missing__(self, key: str) -> Any:
        return 1


def check_template(template: str, kind: str) -> None:
    """Raise ``ValueError`` if ``template`` uses a placeholder ``kind`` does not provide."""
    allowed = COMMON_FIELDS | KIND_FIELDS[kind]
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad summary template: {exc}") from None
    for _, name, _, _ in parsed:
        if name is None:
            continue
        root = name.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise ValueError("summary placeholders need a name, like {actor}")
        if root not in allowed:
            known = ", ".join(sorted(allowed))
            raise ValueError(f"unknown summary placeholder {{{root}}} for kind {kind} ({known})")
    sample: dict[str, Any] = {name: _SAMPLE.get(name, name) for name in allowed}
    sample["attributes"] = _Sample()
    sample["features"] = _Sample()
    if _render(template, sample) is None:
        raise ValueError(f"summary template {template!r} cannot be rendered")


def render_template(template: str, values: Mapping[str, Any]) -> str | None:
    """The rendered template, or ``None`` if it cannot be rendered with these values.

    Text values come from input: their control characters are escaped
    (:func:`~detector.events.printable.printable`) before they reach the sentence.
    """
    lenient = _Lenient(
        {
            key: _Lenient({k: _text(v) for k, v in value.items()})
            if isinstance(value, Mapping)
            else _text(value)
            for key, value in values.items()
        }
    )
    return _render(template, lenient)


def _render(template: str, values: Mapping[str, Any]) -> str | None:
    try:
        return string.Formatter().vformat(template, (), values)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return None


def _text(value: Any) -> Any:
    if value is None:
        return _MISSING
    if isinstance(value, str):
        return printable(value)
    # Numbers keep their type, so format specs like {count:d} still apply; containers
    # render their items with repr(), which already escapes control characters.
    return value


def outcome_word(outcome: str) -> str:
    """``failure`` → ``failed``, ``success`` → ``successful``, anything else → empty."""
    return {"failure": "failed", "success": "successful"}.get(outcome, "")


def join_limited(items: Iterable[str], limit: int = 3) -> str:
    """``a, b, c and 2 more``: a short list for a sentence."""
    unique = list(dict.fromkeys(items))
    shown = ", ".join(unique[:limit])
    extra = len(unique) - limit
    return f"{shown} and {extra} more" if extra > 0 else shown
