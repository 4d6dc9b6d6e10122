"""Typed decoding on declared streams: what a parser declares it reads, and the same results
as decoding records whole."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import msgspec
import orjson
import pytest

from detector.events.model import DeadLetterReason, Event
from detector.events.normalizer import Normalized, Normalizer
from detector.events.parsers import PARSERS
from detector.events.parsers.choice import ParserChoice
from detector.events.taxonomy import Taxonomy
from detector.events.typed import TypedDecoder, schema
from detector.generator import generate
from detector.sources.record import Position, RawRecord
from tests.samples import load_samples, sample_names

TYPED = sorted(name for name, parser in PARSERS.items() if parser.reads is not None)
ENVELOPE_KEYS = ("Records", "logEvents", "event.original")


class _Reading(dict[str, Any]):
    """A document that notes the paths read of it: ``a.b`` a key, ``a.*`` all of ``a``."""

    def __init__(self, doc: dict[str, Any], prefix: str, log: set[str]) -> None:
        super().__init__(doc)
        self._prefix, self._log = prefix, log

    def _note(self, key: str) -> str:
        path = f"{self._prefix}{key}"
        self._log.add(path)
        return path

    def _wrap(self, key: str, value: Any) -> Any:
        path = self._note(key)
        if isinstance(value, dict):
            return _Reading(value, f"{path}.", self._log)
        if isinstance(value, list):
            self._log.add(f"{path}.*")  # a list is read as a whole
        return value

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        if not dict.__contains__(self, key):
            return default
        return self._wrap(key, dict.__getitem__(self, key))

    def __getitem__(self, key: str) -> Any:
        return self._wrap(key, dict.__getitem__(self, key))

    def __contains__(self, key: object) -> bool:
        self._note(str(key))
        return dict.__contains__(self, key)

    def _all(self) -> None:
        self._log.add(f"{self._prefix}*")

    def __iter__(self) -> Iterator[str]:
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._all()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._all()
        return dict.keys(self)

    def items(self) -> Any:
        self._all()
        return dict.items(self)

    def values(self) -> Any:
        self._all()
        return dict.values(self)


def _covered(read: str, declared: tuple[str, ...]) -> bool:
    """Is a path read (``a.b``, ``a.*``) within the declaration, as the schema decodes it?"""
    read = read.lower()
    whole = read.endswith(".*") or read == "*"
    steps = read.removesuffix("*").removesuffix(".").split(".") if read != "*" else []
    for path in (p.lower().split(".") for p in declared):
        if steps[: len(path)] == path:
            return True  # within a key read whole
        if not whole and path[: len(steps)] == steps:
            return True  # an object on the way to declared keys, not read as a whole
    return False


@cache
def _world_docs() -> tuple[dict[str, Any], ...]:
    return tuple(record.doc for record in generate(seed=5, days=3, people=25).records)


def _documents(name: str) -> list[dict[str, Any]]:
    """The published samples and generated records that ``name``'s parser is chosen for."""
    choice = ParserChoice(cls() for cls in PARSERS.values())
    docs = [s.event for file in sample_names() for s in load_samples(file)]
    docs += _world_docs()
    return [
        doc
        for doc in docs
        if isinstance(doc, dict) and (chosen := choice.choose(doc)) and chosen.name == name
    ]


@pytest.mark.parametrize("name", TYPED)
def test_a_parser_reads_only_what_it_declares(name: str) -> None:
    parser = PARSERS[name]()
    assert parser.reads is not None
    read: set[str] = set()
    documents = _documents(name)
    assert len(documents) > 50
    for doc in documents:
        with contextlib.suppress(Exception):  # refusing a document still reads it
            parser.parse(_Reading(doc, "", read))
    assert sorted(p for p in read if not _covered(p, parser.reads)) == []


def test_the_coverage_check_tells_a_missing_path() -> None:
    assert _covered("user.username", ("user.username",))
    assert _covered("user", ("user.username",))
    assert _covered("user.*", ("user",))
    assert _covered("useridentity.arn", ("userIdentity",))
    assert not _covered("user.*", ("user.username",))
    assert not _covered("user.groups", ("user.username",))


def _normalizers(name: str) -> tuple[Normalizer, Normalizer]:
    """Two normalizers with ``name`` declared on the stream "declared": typed, and not."""
    parsers = {n: cls() for n, cls in PARSERS.items()}
    whole = type(f"Whole{name}", (type(parsers[name]),), {"reads": None})()
    formats = {"declared": name}
    return (
        Normalizer(Taxonomy.bundled(), formats=formats, parsers=parsers),
        Normalizer(Taxonomy.bundled(), formats=formats, parsers={**parsers, name: whole}),
    )


def _records(values: list[bytes]) -> list[RawRecord]:
    return [RawRecord(value, Position("declared", i, 0)) for i, value in enumerate(values)]


def _same(name: str, values: list[bytes]) -> Normalized:
    typed, whole = _normalizers(name)
    got = typed.normalize_batch(_records(values))
    expected = whole.normalize_batch(_records(values))
    assert got.events == expected.events
    assert [dict(e.raw) for e in got.events] == [dict(e.raw) for e in expected.events]
    assert got.dead_letters == expected.dead_letters
    assert got.skipped == expected.skipped
    return got


@pytest.mark.parametrize("name", TYPED)
def test_typed_decoding_gives_the_events_of_whole_decoding(name: str) -> None:
    values = [json.dumps(doc).encode() for doc in _documents(name)]
    got = _same(name, values)
    assert len(got.events) > 50
    decoder = TypedDecoder(PARSERS[name](), ENVELOPE_KEYS, max_depth=64)
    assert sum(decoder.decode(value) is not None for value in values) > 0.8 * len(values)


def _k8s(**fields: Any) -> dict[str, Any]:
    doc = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a-1",
        "stage": "ResponseComplete", "verb": "get",
        "user": {"username": "alice", "groups": ["dev"]}, "sourceIPs": ["10.0.0.1"],
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"},
        "responseStatus": {"code": 200}, "requestReceivedTimestamp": "2026-11-02T10:00:00.000000Z",
        "responseObject": {"big": ["skipped"] * 3},
    }  # fmt: skip
    doc.update(fields)
    return doc


def test_typed_decoding_skips_what_the_parser_does_not_read() -> None:
    decoder = TypedDecoder(PARSERS["k8s_audit"](), ENVELOPE_KEYS, max_depth=64)
    doc = decoder.decode(orjson.dumps(_k8s()))
    assert doc is not None
    assert "responseObject" not in doc and "kind" not in doc
    assert doc["objectRef"] == {"resource": "secrets", "namespace": "prod", "name": "db"}


def test_lower_case_spellings_are_read_too() -> None:
    decoder = TypedDecoder(PARSERS["k8s_audit"](), (), max_depth=64)
    doc = decoder.decode(b'{"verb": "get", "objectref": {"resource": "pods", "x": 1}}')
    assert doc == {"verb": "get", "objectref": {"resource": "pods"}}
    assert decoder.decode(b"[1, 2]") is None


_OUT_OF_RANGE = orjson.dumps(_k8s())[:-1] + b',"x":1e400}'
"""A number orjson refuses and msgspec skips unread; the standard library reads it."""


@pytest.mark.parametrize(
    ("why", "value"),
    [
        ("outside ASCII", orjson.dumps(_k8s(userAgent="kubectl/ü"))),
        ("an envelope", orjson.dumps({"Records": [_k8s()]})),
        ("an envelope key with a dot", orjson.dumps({"event.original": json.dumps(_k8s())})),
        (
            "deeper than the limit",
            orjson.dumps(_k8s(responseObject=[[[[[[[[[[[[[[[]]]]]]]]]]]]]]])),
        ),
    ],
)
def test_the_typed_decoder_leaves_to_the_general_path(why: str, value: bytes) -> None:
    assert TypedDecoder(PARSERS["k8s_audit"](), ENVELOPE_KEYS, max_depth=12).decode(value) is None
    _same("k8s_audit", [value])


def test_a_record_deeper_than_the_limit_is_dead_lettered_on_a_declared_stream() -> None:
    got = _same("k8s_audit", [orjson.dumps(_k8s(responseObject=json.loads("[" * 70 + "]" * 70)))])
    assert [d.reason for d in got.dead_letters] == [DeadLetterReason.TOO_DEEP]


def test_a_record_the_parser_refuses_is_dead_lettered_whole() -> None:
    got = _same("k8s_audit", [orjson.dumps(_k8s(verb=None))])
    assert got.dead_letters[0].excerpt.startswith('{"kind":"Event"')  # as received, not as read


def test_an_event_without_id_is_hashed_from_the_whole_record() -> None:
    got = _same("k8s_audit", [orjson.dumps(_k8s(auditID=None))])
    assert got.events[0].id.startswith("k8s_audit:")


def test_a_number_only_the_standard_library_reads_is_read_as_without_typed_decoding() -> None:
    got = _same("k8s_audit", [_OUT_OF_RANGE])
    assert got.events[0].raw["x"] == float("inf")


def test_an_event_from_the_future_is_dead_lettered_as_without_typed_decoding() -> None:
    parsers = {n: cls() for n, cls in PARSERS.items()}
    normalizer = Normalizer(
        Taxonomy.bundled(), formats={"declared": "k8s_audit"}, parsers=parsers,
        clock=lambda: datetime(2026, 11, 1, tzinfo=UTC), max_future_skew=timedelta(hours=1),
    )  # fmt: skip
    got = normalizer.normalize_batch(_records([orjson.dumps(_k8s())]))
    assert [d.reason for d in got.dead_letters] == [DeadLetterReason.FUTURE_TIME]


def test_an_undeclared_stream_decodes_whole() -> None:
    typed, _ = _normalizers("k8s_audit")
    record = RawRecord(orjson.dumps(_k8s()), Position("other", 0, 0))
    event = typed.normalize_batch([record]).events[0]
    assert isinstance(event, Event) and event.raw["responseObject"] == {"big": ["skipped"] * 3}


def test_the_schema_reads_a_declared_path_under_anything_json_holds() -> None:
    decoder = msgspec.json.Decoder(schema(["a.b"], ["c.d"]))
    assert decoder.decode(b'{"a": "text", "c.d": [1], "e": 1}') == {"a": "text", "c.d": [1]}
    assert decoder.decode(b'{"a": {"b": {"x": [1]}, "z": 2}}') == {"a": {"b": {"x": [1]}}}
