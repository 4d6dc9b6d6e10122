"""Arbitrary bytes and arbitrary JSON never crash the normalizer or any parser."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.events.model import DeadLetter, Event, ParseError, Skipped
from detector.events.normalizer import Normalizer
from detector.events.parsers import PARSERS
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord

NORMALIZER = Normalizer(Taxonomy.bundled())
# Keys the parsers look at, so generated objects reach deep into their code paths.
VENDOR_KEYS = [
    "action", "actor", "created_at", "@timestamp", "eventType", "eventtype", "published",
    "eventName", "eventSource", "eventTime", "eventVersion", "userIdentity", "kind", "verb",
    "objectRef", "user", "requestReceivedTimestamp", "event_type", "author_id", "details",
    "entity_type", "operationName", "category", "properties", "time", "event", "outcome",
    "client", "sourceIPAddress", "responseStatus", "type", "arn", "result", "status",
    "integration", "github", "Records", "records", "source", "case", "errorCode", "name",
]  # fmt: skip
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(VENDOR_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.sampled_from(VENDOR_KEYS), json_values, max_size=8)


def normalize(value: bytes) -> list[Event | DeadLetter | Skipped]:
    return NORMALIZER.normalize(RawRecord(value, Position("fuzz", 1, 0)))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(value: bytes) -> None:
    results = normalize(value)
    assert results
    assert all(isinstance(r, Event | DeadLetter | Skipped) for r in results)


@settings(max_examples=600, deadline=None)
@given(json_objects)
def test_arbitrary_json_objects_never_crash(doc: dict[str, Any]) -> None:
    # The stdlib encoder, unlike orjson, writes integers past 64 bits: they reach the decoder too.
    results = normalize(json.dumps(doc).encode())
    assert all(isinstance(r, Event | DeadLetter | Skipped) for r in results)
    assert not any(isinstance(r, DeadLetter) and r.reason == "parser_error" for r in results)


@settings(max_examples=300, deadline=None)
@given(json_objects)
def test_every_parser_raises_only_parse_errors(doc: dict[str, Any]) -> None:
    for cls in PARSERS.values():
        parser = cls()
        assert isinstance(parser.matches(doc), bool)
        with contextlib.suppress(ParseError):
            parser.parse(doc)
