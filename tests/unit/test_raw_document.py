"""An event's vendor document kept as the record's text, decoded again only when read."""

from __future__ import annotations

import copy

import orjson
import pytest

from detector.events.decoding import RawDocument
from detector.events.model import Event, ParseError
from detector.events.normalizer import Normalizer
from detector.events.ordering import EventSorter
from detector.events.parsers import PARSERS
from detector.events.taxonomy import Taxonomy
from detector.rules.fields import resolve_raw
from detector.sources.record import Position, RawRecord
from tests.samples import load_samples, sample_names

GITHUB_EVENT = {
    "@timestamp": 1606929874512,
    "action": "repo.create",
    "actor": "octocat",
    "_document_id": "doc-1",
    "repo": "octo-corp/widgets",
    "data": {"visibility": "public", "topics": ["ci", "infra"]},
}


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Taxonomy.bundled())


def only_event(normalizer: Normalizer, value: bytes) -> Event:
    (event,) = normalizer.normalize(RawRecord(value, Position("t", 1, 0)))
    assert isinstance(event, Event)
    return event


def test_a_bare_records_event_keeps_the_records_text_until_its_document_is_read(
    normalizer: Normalizer,
) -> None:
    value = orjson.dumps(GITHUB_EVENT)
    event = only_event(normalizer, value)
    assert isinstance(event.raw, RawDocument)
    assert event.raw.encoded is value
    assert not event.raw.parsed  # normalizing and building the event did not read it
    assert event.raw["data"]["topics"] == ["ci", "infra"]
    assert dict(event.raw) == GITHUB_EVENT
    assert event.raw.parsed


def test_rules_read_raw_fields_from_the_kept_text(normalizer: Normalizer) -> None:
    event = only_event(normalizer, orjson.dumps(GITHUB_EVENT))
    assert list(resolve_raw(event.raw, ["data", "visibility"])) == ["public"]
    assert list(resolve_raw(event.raw, ["data", "topics"])) == ["ci", "infra"]  # lists fan out
    assert list(resolve_raw(event.raw, ["missing"])) == []


def test_events_opened_from_an_envelope_or_read_leniently_keep_their_decoded_document(
    normalizer: Normalizer,
) -> None:
    second = {**GITHUB_EVENT, "_document_id": "doc-2"}
    found = normalizer.normalize(
        RawRecord(orjson.dumps([GITHUB_EVENT, second]), Position("t", 1, 0))
    )
    events = [event for event in found if isinstance(event, Event)]
    assert [type(event.raw) for event in events] == [dict, dict]
    assert [event.raw for event in events] == [GITHUB_EVENT, second]
    # A raw tab inside a string: not strict JSON, read by the standard library.
    lenient = orjson.dumps({**GITHUB_EVENT, "repo": "a\tb"}).replace(b"\\t", b"\t")
    event = only_event(normalizer, lenient)
    assert type(event.raw) is dict
    assert event.raw["repo"] == "a\tb"


def test_an_event_with_the_kept_text_serializes_with_its_document(
    normalizer: Normalizer,
) -> None:
    event = only_event(normalizer, orjson.dumps(GITHUB_EVENT))
    data = event.to_dict(with_raw=True)
    assert orjson.loads(orjson.dumps(data))["raw"] == GITHUB_EVENT
    with EventSorter(memory_budget=1) as sorter:  # spilled to a file and read back
        sorter.add(event)
        (back,) = sorter.sorted_events()
    assert back == event
    assert back.raw == GITHUB_EVENT


def test_text_the_standard_library_wrote_is_read_back_with_it() -> None:
    raw = RawDocument(b'{"n": 1180591620717411303424, "s": "a\tb"}', stdlib=True)
    assert dict(raw) == {"n": 2**70, "s": "a\tb"}


def _published_documents() -> list[object]:
    return [sample.event for name in sample_names() for sample in load_samples(name)]


def test_parsers_leave_the_documents_they_read_unchanged() -> None:
    """What makes decoding the text again give what the parser saw: no parser changes a
    document in place (every published sample, every parser that takes it)."""
    parsers = [cls() for cls in PARSERS.values()]
    parsed = 0
    documents = _published_documents()
    for document in documents:
        if not isinstance(document, dict):
            continue
        for parser in parsers:
            if not parser.matches(document):
                continue
            before = copy.deepcopy(document)
            try:
                parser.parse(document)
            except ParseError:  # refused whole: other tests say which and why
                pass
            else:
                parsed += 1
            assert document == before, f"{parser.name} changed a document it read"
    assert parsed > len(documents) // 2  # most of them were read whole, not refused
