"""Typed decoding: a record on a stream declared to hold one log type, decoded only as far as
its parser reads.

A parser that declares what it reads (:attr:`Parser.reads`) gets a msgspec decoder whose
schema holds those paths and skips the rest of the record unbuilt. Okta's and Kubernetes'
parsers declare theirs: much of their records (request chains, response bodies,
annotations) is never read by the parser, and stays as text in the event's
:class:`~detector.events.decoding.RawDocument` for rules on ``raw.*``. CloudTrail's parser
reads most of a record (its request parameters and response elements whole): there typed
decoding cost more than it saved, on the published samples, and it declares nothing.

Exactness: the decoder is only an answer where it cannot differ from the general path
(orjson, then :class:`~detector.events.normalizer.Normalizer`'s checks):

- text outside ASCII falls back: msgspec does not check the UTF-8 of what it skips;
- so does a record whose brackets could nest deeper than the depth limit (the general
  path walks it; a skipped part would not be);
- and a record with an envelope's key (the general path opens envelopes first).

The normalizer also falls back when the parser refuses the document or finds no event id
(an id hashed from the record needs all of it). Everything else a record holds is decoded
by both as the same values, bar one: an integer past 64 bits is exact here and a float in
orjson; no field a parser reads holds one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict, Union, cast

import msgspec

from detector.events.decoding import shallow
from detector.events.parsers.base import Parser

__all__ = ["TypedDecoder", "schema"]

_Tree = dict[str, "_Tree"]
_SCALARS: tuple[Any, ...] = (type(None), bool, int, float, str, list[Any])
_union: Any = Union  # built from a tuple at run time, which a checker cannot follow
# What a read key may hold: any JSON value. As a union, msgspec builds a Kubernetes record's
# read part in 3.8 µs where ``Any`` took 4.8 (orjson, the whole record: 5.3).
_WHOLE = _union[(*_SCALARS, dict[str, Any])]


def schema(paths: Iterable[str], keys: Iterable[str] = (), name: str = "Read") -> Any:
    """The msgspec type of a document of which only ``paths`` and top-level ``keys`` are read.

    A path's last key is read whole, whatever it holds; the keys before it are objects
    of which only the paths below are kept, or whatever else JSON holds there. ``keys``
    are read whole too, taken as they are (an envelope's ``event.original`` is one key).
    Each key also in its data-lake lower-case spelling (:func:`~detector.events.fields.get`).
    """
    tree: _Tree = {}
    for path in paths:
        node = tree
        for key in path.split("."):
            node = node.setdefault(key, {})
    for key in keys:
        tree.setdefault(key, {})
    return _object(tree, name)


def _object(tree: _Tree, name: str) -> Any:
    fields: dict[str, Any] = {}
    for key, below in tree.items():
        kind = _WHOLE if not below else _union[(*_SCALARS, _object(below, f"{name}_{key}"))]
        fields[key] = kind
        fields.setdefault(key.lower(), kind)
    return cast(Any, TypedDict)(name, fields, total=False)


class TypedDecoder:
    """Decodes the records of one declared log type for ``parser`` (which declares ``reads``).

    ``also``: keys that send a record down the general path when present (the envelopes'
    keys, which it opens before parsing); ``max_depth``: the normalizer's depth limit.
    """

    def __init__(self, parser: Parser, also: Iterable[str], max_depth: int) -> None:
        if parser.reads is None:
            raise ValueError(f"parser {parser.name!r} declares no reads")
        self.parser = parser
        self._envelope_keys = frozenset(also)
        self._decoder = msgspec.json.Decoder(
            schema(parser.reads, self._envelope_keys, f"{parser.name}_read")
        )
        self._max_depth = max_depth

    def decode(self, value: bytes) -> dict[str, Any] | None:
        """The read part of ``value``, or None where only the general path can answer."""
        if not value.isascii() or not shallow(value, self._max_depth):
            return None
        try:
            doc = self._decoder.decode(value)
        except (msgspec.DecodeError, RecursionError):
            return None
        if not self._envelope_keys.isdisjoint(doc):
            return None
        return cast(dict[str, Any], doc)
