"""JSON as vendors publish it, within limits: decoding and the nesting-depth check.

Strict first (orjson), then lenient about raw control characters inside strings,
which vendors (AWS documentation among them) publish; and a depth check that
walks a document only when counting its brackets says it could be too deep.
A record's document is kept as its text (:class:`RawDocument`) and decoded
again only if something reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

__all__ = ["RawDocument", "decode_json", "deeper_than", "shallow", "too_deep"]


def decode_json(value: bytes | str) -> Any:
    """The JSON value of ``value``; ``ValueError`` with orjson's message when it is none."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as strict_error:
        try:
            text = value.decode("utf-8") if isinstance(value, bytes) else value
            return json.loads(text, strict=False)
        except (ValueError, RecursionError):
            raise ValueError(str(strict_error)) from None


def shallow(value: bytes, max_depth: int) -> bool:
    """Whether ``value``'s brackets alone keep its nesting within ``max_depth``: counted in
    C, so that only the records that could be too deep are walked (most are not)."""
    return value.count(b"{") + value.count(b"[") <= max_depth


def too_deep(value: bytes, doc: Mapping[str, Any] | list[Any], max_depth: int) -> bool:
    """Is ``doc`` (decoded from ``value``) nested deeper than ``max_depth``?"""
    if value and shallow(value, max_depth):
        return False
    return deeper_than(doc, max_depth)


def deeper_than(doc: Mapping[str, Any] | list[Any], max_depth: int) -> bool:
    """Is ``doc`` nested deeper than ``max_depth`` (the document itself is level 1)?"""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, Mapping) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, Mapping | list))
    return False


class RawDocument(Mapping[str, Any]):
    """A vendor document kept as the JSON text it was decoded from: decoded again on first read.

    An event keeps its vendor document for rules on ``raw.*`` fields, which read
    it for few events. Kept decoded, a batch's documents stayed alive until the
    batch was done: each record's decoding then took fresh memory and the batch's
    end freed it all. Freed as soon as its event is built, the daemon spent about
    4 µs of CPU per record less (``docs/performance-history.md``, twentieth session).
    ``encoded`` is the text (``stdlib``: written, or to be read, by the standard
    library's json: integers beyond 64 bits, lone surrogates, raw control
    characters); internal topics hand it on as it came (:mod:`detector.scale.wire`).
    """

    __slots__ = ("_parsed", "encoded", "stdlib")

    def __init__(self, encoded: bytes, *, stdlib: bool = False) -> None:
        self.encoded = encoded
        self.stdlib = stdlib
        self._parsed: dict[str, Any] | None = None

    @property
    def parsed(self) -> bool:
        """Whether something has looked into it yet."""
        return self._parsed is not None

    def _document(self) -> dict[str, Any]:
        if self._parsed is None:
            encoded = self.encoded
            if self.stdlib:
                parsed = json.loads(encoded, strict=False)
            else:
                try:
                    parsed = orjson.loads(encoded)
                except orjson.JSONDecodeError:
                    # Typed decoding skips what orjson refuses and the standard library reads
                    # (a number past a double's range): read it as the general path does.
                    parsed = json.loads(encoded, strict=False)
            self._parsed = parsed if isinstance(parsed, dict) else {}
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._document()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._document()

    def __iter__(self) -> Iterator[str]:
        return iter(self._document())

    def __len__(self) -> int:
        return len(self._document())

    def __repr__(self) -> str:
        return f"RawDocument({len(self.encoded)} bytes)"
