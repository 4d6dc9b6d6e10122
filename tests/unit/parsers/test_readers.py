"""The compiled field readers answer exactly as the generic helpers they replace."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from detector.events.fields import first_str, get
from detector.events.readers import text_reader, texts_reader, value_reader

# Every kind of value a vendor field holds, in both spellings, nested and not.
DOCS: list[Any] = [
    {"actor": " alice ", "actor_name": "bob", "user": {"name": "carol", "id": 7}},
    {"actor": "", "actor_name": "bob", "user": {"name": " ", "id": 0}},
    {"actor": None, "actorname": "lower", "eventType": 3, "eventtype": "no"},
    {"eventtype": "x.y", "user": {"Name": "upper", "name": None}, "flag": True},
    {"actor": ["a"], "actor_name": {"x": 1}, "user": "not a mapping", "n": 1.5},
    {"created_at": 0, "timestamp": "", "@timestamp": None, "p_event_time": "t"},
    {"created_at": 1700000000000, "Created_At": "ignored"},
    {"debugContext": {"debugData": {"requestUri": " /x ", "threatSuspected": False}}},
    {"debugcontext": {"debugdata": {"requesturi": 5, "Flag": {"a": 1}}}, "user": {"name": 2}},
    {},
    "not a mapping",
    None,
    ["a", "list"],
]
PATHS = ["actor", "actor_name", "actorName", "eventType", "user.name", "user.id", "user.Name",
         "flag", "n", "missing", "user.name.deeper", "debugContext.debugData.requestUri",
         "debugContext.debugData.threatSuspected", "debugContext.debugData.Flag"]  # fmt: skip


@pytest.mark.parametrize(
    "paths", [*itertools.permutations(PATHS, 1), *itertools.permutations(PATHS, 2),
              *itertools.combinations(PATHS, 3)]
)  # fmt: skip
def test_text_reader_is_first_str(paths: tuple[str, ...]) -> None:
    read = text_reader(*paths)
    for doc in DOCS:
        assert read(doc) == first_str(doc, *paths)


def test_texts_reader_keeps_the_order_and_the_answers_of_first_str() -> None:
    flat = {"a": "actor", "b": "actor_name", "c": "eventType", "d": "n"}
    dotted = {**flat, "e": "user.name"}
    for fields in (flat, dotted):
        read = texts_reader(fields)
        for doc in DOCS:
            expected = {k: v for k, p in fields.items() if (v := first_str(doc, p)) is not None}
            assert list(read(doc).items()) == list(expected.items())


def test_value_reader_is_the_first_truthy_get() -> None:
    keys = ("@timestamp", "timestamp", "created_at", "p_event_time", "eventType")
    read = value_reader(*keys)
    for doc in DOCS:
        if isinstance(doc, dict):
            assert read(doc) == next((v for k in keys if (v := get(doc, k))), None)
