"""JSON as vendors publish it, within limits: decoding and the nesting-depth check.

Strict first (orjson), then lenient about raw control characters inside strings,
which vendors (AWS documentation among them) publish; and a depth check that
walks a document only when counting its brackets says it could be too deep.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["decode_json", "deeper_than", "too_deep"]


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


def too_deep(value: bytes, doc: Mapping[str, Any] | list[Any], max_depth: int) -> bool:
    """Is ``doc`` (decoded from ``value``) nested deeper than ``max_depth``?"""
    # Counting brackets in C is cheap; only records that could be too deep are walked.
    if value and value.count(b"{") + value.count(b"[") <= max_depth:
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
