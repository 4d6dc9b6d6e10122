"""CloudTrail Lake query results (``GetQueryResults``, ``aws cloudtrail get-query-results``).

The output is ``{"QueryStatus", "QueryStatistics", "QueryResultRows": [[{"column":
"value"}, ...], ...], "NextToken"}``: each row a list of one-column objects, every
value a string (the API's type is ``map<string, string>``), column names lower-case
as in the event data store schema (``eventname``, ``useridentity``). A row merged into
one object is a CloudTrail record the parser reads (it accepts lower-case names).
Nested columns (``useridentity``, ``requestparameters`` ...) come back as text: JSON
text is decoded, and so is the SQL engine's ``{key=value, ...}`` rendering of a
struct or map; a value that is neither stays the string it was.
"""

from __future__ import annotations

from typing import Any

import orjson

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, is_object, register

__all__ = ["CloudTrailLakeResults", "parse_row_text"]


@register
class CloudTrailLakeResults(Envelope):
    name = "cloudtrail_lake"
    triggers = frozenset({"QueryResultRows"})

    def matches(self, doc: Any) -> bool:
        return type(doc["QueryResultRows"]) is list

    def open(self, doc: Any, reader: Reader) -> Opening:
        return [Inner(_merge(row)) for row in doc["QueryResultRows"]]


def _merge(row: Any) -> Any:
    if type(row) is not list:
        return row  # not a row: dead-lettered for what it is
    merged: dict[str, Any] = {}
    for column in row:
        if is_object(column):
            merged.update((name, _value(text)) for name, text in column.items())
    return merged


def _value(text: Any) -> Any:
    if type(text) is not str or text[:1] not in ("{", "["):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    parsed = parse_row_text(text)
    return text if parsed is None else parsed


def parse_row_text(text: str) -> Any:
    """``{a=1, b={c=x}}`` / ``[x, y]`` (a SQL struct, map or array as text), or None.

    Best effort: a value that itself holds ``, `` or ``=`` at the top level is ambiguous
    in this rendering; such text is split where the engine would have put a separator.
    """
    try:
        value, end = _parse(text, 0)
    except (IndexError, ValueError):
        return None
    return value if end == len(text) else None


def _parse(text: str, at: int) -> tuple[Any, int]:
    opener = text[at]
    if opener == "{":
        return _parse_map(text, at + 1)
    if opener == "[":
        return _parse_list(text, at + 1)
    raise ValueError("not a struct")


def _parse_map(text: str, at: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    if text[at] == "}":
        return out, at + 1
    while True:
        equals = text.index("=", at)
        key = text[at:equals]
        value, at = _parse_scalar_or_nested(text, equals + 1, "}")
        out[key] = value
        if text[at] == "}":
            return out, at + 1
        at = _skip_separator(text, at)


def _parse_list(text: str, at: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    if text[at] == "]":
        return out, at + 1
    while True:
        value, at = _parse_scalar_or_nested(text, at, "]")
        out.append(value)
        if text[at] == "]":
            return out, at + 1
        at = _skip_separator(text, at)


def _parse_scalar_or_nested(text: str, at: int, closer: str) -> tuple[Any, int]:
    if text[at] in "{[":
        return _parse(text, at)
    end = at
    while text[end] != closer and not text.startswith(", ", end):
        end += 1
    scalar = text[at:end]
    return (None if scalar == "null" else scalar), end


def _skip_separator(text: str, at: int) -> int:
    if not text.startswith(", ", at):
        raise ValueError("expected a separator")
    return at + 2
