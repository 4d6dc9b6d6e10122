"""Field paths in rules: how a name written in a rule reaches a value of an Observation.

A path is a normalized field (``actor``, ``outcome`` ...), ``attributes.<name>``,
``raw.<dotted.path>`` into the vendor document, ``features.<feature name>`` or
``new_values.<tracked field>`` (the value the actor shows for the first time,
missing otherwise). Raw paths may reach several values (lists: every element);
all other paths reach at most one. A missing value is ``None`` for single paths
and an empty tuple for raw paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from detector.errors import RuleError
from detector.features.observation import Observation

__all__ = [
    "NORMALIZED_FIELDS",
    "FieldPath",
    "FieldPathError",
    "LocatedError",
    "group_key_function",
    "parse_field_path",
    "resolve_raw",
]

NORMALIZED_FIELDS = (
    "time",
    "source",
    "action",
    "category",
    "outcome",
    "actor",
    "actor_type",
    "ip",
    "country",
    "user_agent",
    "target",
    "privileged",
    "id",
)
_PREFIXES = ("attributes", "raw", "features", "new_values")


class LocatedError(RuleError, ValueError):
    """A rule is invalid at ``path`` (relative to where the validator sits: ``actor.regex``).

    Also a ``ValueError``, so that pydantic validators report it as a validation error.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message, where=path or None)
        self.path = path


class FieldPathError(RuleError, ValueError):
    """A field path in a rule names nothing an Observation has."""


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed field path and its getter.

    ``get(observation)`` returns the value or ``None`` when ``multi`` is false,
    and a tuple of values (empty when missing) when it is true.
    """

    text: str
    multi: bool
    get: Callable[[Observation], Any]

    def text_value(self, observation: Observation) -> str | None:
        """The value as text for group keys and distinct counts; several raw values are joined."""
        value = self.get(observation)
        if self.multi:
            parts = [as_text(item) for item in value]
            return ",".join(parts) if parts else None
        return None if value is None else as_text(value)


def group_key_function(
    paths: Sequence[FieldPath],
) -> Callable[[Observation], tuple[str | None, ...]]:
    """What :meth:`FieldPath.text_value` gives for each of ``paths``, as one call.

    A rule's group key is built for every event it keeps state for: one or two plain
    fields (``actor``; ``actor``, ``ip``) are read directly, without a call per path.
    """
    if any(path.multi for path in paths) or len(paths) > 2:
        text_values = tuple(path.text_value for path in paths)
        return lambda observation: tuple([text(observation) for text in text_values])
    if len(paths) == 1:
        get = paths[0].get

        def one(observation: Observation) -> tuple[str | None, ...]:
            value = get(observation)
            return (value if value is None or type(value) is str else as_text(value),)

        return one
    first, second = paths[0].get, paths[1].get

    def two(observation: Observation) -> tuple[str | None, ...]:
        a, b = first(observation), second(observation)
        return (
            a if a is None or type(a) is str else as_text(a),
            b if b is None or type(b) is str else as_text(b),
        )

    return two


def as_text(value: Any) -> str:
    """A field value as text: booleans as ``true``/``false``, whole floats without ``.0``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_field_path(text: Any) -> FieldPath:
    """Parse a field path; raise :class:`FieldPathError` naming what is wrong."""
    if not isinstance(text, str) or not text:
        raise FieldPathError(f"field path must be a non-empty string, got {text!r}")
    if text in NORMALIZED_FIELDS:
        return FieldPath(text, False, _normalized_getter(text))
    prefix, dot, rest = text.partition(".")
    if prefix not in _PREFIXES or not dot:
        known = ", ".join(NORMALIZED_FIELDS)
        raise FieldPathError(
            f"unknown field {text!r}; use one of {known}, or attributes.<name>, "
            "raw.<dotted.path>, features.<name>, new_values.<field>"
        )
    if not rest or rest.startswith(".") or rest.endswith(".") or ".." in rest:
        raise FieldPathError(f"field path {text!r} has an empty part after {prefix!r}")
    if prefix == "raw":
        segments = tuple(rest.split("."))
        return FieldPath(text, True, lambda obs: tuple(resolve_raw(obs.event.raw, segments)))
    if prefix == "attributes":
        return FieldPath(text, False, lambda obs: obs.event.attributes.get(rest))
    if prefix == "features":
        return FieldPath(text, False, lambda obs: obs.features.get(rest))
    return FieldPath(text, False, lambda obs: obs.new_values.get(rest))


def _normalized_getter(name: str) -> Callable[[Observation], Any]:
    if name == "time":
        return lambda obs: obs.event.time.isoformat().replace("+00:00", "Z")
    # Category, Outcome and ActorType are StrEnums: their values are already strings.
    return attrgetter(f"event.{name}")


def resolve_raw(document: Mapping[str, Any], segments: Sequence[str]) -> Iterator[Any]:
    """Every value at ``segments`` in ``document``; lists fan out, ``None`` is skipped.

    Keys that themselves contain dots (Kubernetes annotations such as
    ``authorization.k8s.io/decision``) are found by joining the remaining
    segments when the single segment is not a key. A numeric segment indexes a list.
    """
    return _walk(document, segments, 0)


def _walk(node: Any, segments: Sequence[str], index: int) -> Iterator[Any]:
    if isinstance(node, list):
        if index < len(segments) and segments[index].isdigit():
            position = int(segments[index])
            if position < len(node):
                yield from _walk(node[position], segments, index + 1)
            return
        for element in node:
            yield from _walk(element, segments, index)
        return
    if index == len(segments):
        if node is not None:
            yield node
        return
    if not isinstance(node, Mapping):
        return
    segment = segments[index]
    if segment in node:
        yield from _walk(node[segment], segments, index + 1)
        return
    for end in range(index + 2, len(segments) + 1):
        joined = ".".join(segments[index:end])
        if joined in node:
            yield from _walk(node[joined], segments, end)
            return
