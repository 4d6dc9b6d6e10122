"""Framing: the same published records in every shape real pipelines ship them give the same events.

Each test writes records from tests/data/samples (CloudTrail and Okta, as published)
in one framing into ``tmp_path`` - JSON Lines, arrays, concatenated or pretty-printed
objects, an S3 CloudTrail file, BOM and CRLF, gzip and zstd, a directory laid out
as an S3 export, standard input - reads it with :class:`FileSource` and checks that
the normalized events equal those of plain JSON Lines of the same records, with no
dead letter. Kafka-style records (one message holding several documents) go
through :meth:`Normalizer.normalize` directly. Bad input ends as dead letters that
say why, and memory stays bounded by the largest record, not by the file.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.events.model import DeadLetter, DeadLetterReason, Event, Skipped, SkipReason
from detector.events.normalizer import Limits, Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.files import FileSource
from detector.sources.framing import FRAGMENT_DETAIL, BadRecord, Piece, Scanner
from detector.sources.record import Position, RawRecord
from tests.normalizing import bundled_normalizer
from tests.samples import load_samples

Result = Event | DeadLetter | Skipped


@cache
def published(name: str) -> tuple[dict[str, Any], ...]:
    """The sample events of one log type that the bundled normalizer turns into events."""
    keep = []
    for item in load_samples(name):
        record = RawRecord(json.dumps(item.event).encode(), Position("t", 1))
        results = bundled_normalizer().normalize(record) if isinstance(item.event, dict) else []
        if results and all(isinstance(r, Event) for r in results):
            keep.append(item.event)
    return tuple(keep)


def cloudtrail() -> list[dict[str, Any]]:
    return list(published("cloudtrail"))


def mixed() -> list[dict[str, Any]]:
    """CloudTrail and Okta records interleaved, so that detection per record is exercised."""
    trail, okta = published("cloudtrail"), published("okta_system_log")
    out: list[dict[str, Any]] = []
    for index, record in enumerate(trail):
        out.append(record)
        if index < len(okta):
            out.append(okta[index])
    return out


def jsonl(records: Iterable[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def read(
    paths: Sequence[str | Path], normalizer: Normalizer | None = None, *, limit: int = 1 << 20
) -> list[Result]:
    normalizer = normalizer or bundled_normalizer()
    with FileSource(paths, max_record_bytes=limit) as source:
        return [
            item for batch in source.batches() for r in batch for item in normalizer.normalize(r)
        ]


def events_of(results: Iterable[Result]) -> list[dict[str, Any]]:
    """What the events say, without where they came from."""
    out = []
    for result in results:
        assert isinstance(result, Event), result
        data = result.to_dict()
        del data["position"]
        out.append(data)
    return out


def dead_letters(results: Iterable[Result]) -> list[DeadLetter]:
    return [r for r in results if isinstance(r, DeadLetter)]


def expected(tmp_path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``records`` as plain JSON Lines: what every framing must give."""
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(jsonl(records))
    return events_of(read([plain]))


def pretty_array(records: list[Any]) -> bytes:
    return json.dumps(records, indent=2).encode()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


FRAMINGS: dict[str, Callable[[list[Any]], bytes]] = {
    "json lines": jsonl,
    "pretty-printed array": pretty_array,
    "compact array on one line": lambda rs: json.dumps(rs, separators=(",", ":")).encode(),
    "concatenated pretty objects": lambda rs: b"\n".join(
        json.dumps(r, indent=4).encode() for r in rs
    ),
    "concatenated objects, no newline": lambda rs: b"".join(orjson.dumps(r) for r in rs),
    "objects separated by blank lines and tabs": lambda rs: b"\n\t\n".join(map(orjson.dumps, rs)),
    "BOM and CRLF": lambda rs: b"\xef\xbb\xbf" + jsonl(rs).replace(b"\n", b"\r\n"),
    "BOM and CRLF, pretty array": lambda rs: (
        b"\xef\xbb\xbf" + pretty_array(rs).replace(b"\n", b"\r\n")
    ),
    "gzip JSON Lines": lambda rs: gzip.compress(jsonl(rs)),
    "zstd JSON Lines": lambda rs: zstd(jsonl(rs)),
    "gzip of a pretty array": lambda rs: gzip.compress(pretty_array(rs)),
    "zstd of concatenated objects": lambda rs: zstd(b"".join(map(orjson.dumps, rs))),
    "two gzip members": lambda rs: gzip.compress(jsonl(rs[:10])) + gzip.compress(jsonl(rs[10:])),
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_framing_gives_the_events_of_json_lines(tmp_path: Path, framing: str) -> None:
    records = mixed()
    path = tmp_path / "input"
    path.write_bytes(FRAMINGS[framing](records))
    results = read([path])
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)


def test_a_compact_array_longer_than_the_record_limit_is_split_not_cut(tmp_path: Path) -> None:
    records = mixed()
    path = tmp_path / "array.json"
    path.write_bytes(json.dumps(records, separators=(",", ":")).encode())
    limit = 64 << 10
    assert path.stat().st_size > 8 * limit
    normalizer = Normalizer(Taxonomy.bundled(), limits=Limits(max_record_bytes=limit))
    results = read([path], normalizer, limit=limit)
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)


def test_a_pretty_printed_s3_cloudtrail_file_streams_its_records(tmp_path: Path) -> None:
    records = cloudtrail()[:150]
    path = tmp_path / "123456789012_CloudTrail_us-east-1_20240101T0000Z_abc.json"
    path.write_bytes(json.dumps({"Records": records}, indent=2).encode())
    with FileSource([path]) as source:
        raw = [record for batch in source.batches() for record in batch]
    assert len(raw) == len(records)
    assert raw[0].position == Position(str(path), 3)  # the line where the first record starts
    results = [result for record in raw for result in bundled_normalizer().normalize(record)]
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)


def test_an_s3_cloudtrail_file_far_past_the_record_limit_is_read_whole(tmp_path: Path) -> None:
    # S3 delivers one compact line per file; a busy account's files are megabytes.
    records = cloudtrail() * 8
    path = tmp_path / "123456789012_CloudTrail_eu-west-1_20240101T0005Z_big.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    assert len(gzip.decompress(path.read_bytes())) > 1 << 20
    results = read([path])
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)


def test_positions_are_the_lines_where_records_start(tmp_path: Path) -> None:
    path = tmp_path / "array.json"
    path.write_bytes(b'[\n  {"a": 1},\n  {\n    "b": 2\n  }, {"c": 3}\n]\n')
    with FileSource([path]) as source:
        records = [(r.value, r.position.offset) for batch in source.batches() for r in batch]
    assert records == [(b'{"a": 1}', 2), (b'{\n    "b": 2\n  }', 3), (b'{"c": 3}', 5)]


def test_fluentd_time_record_lines_are_one_record_each(tmp_path: Path) -> None:
    records = cloudtrail()[:5]
    path = tmp_path / "fluentd.log"
    path.write_bytes(
        b"".join(orjson.dumps([1700000000 + i, r]) + b"\n" for i, r in enumerate(records))
    )
    with FileSource([path]) as source:
        raw = [r for batch in source.batches() for r in batch]
    assert [r.value[:1] for r in raw] == [b"["] * 5
    results = [item for r in raw for item in bundled_normalizer().normalize(r)]
    assert events_of(results) == expected(tmp_path, records)


def test_an_s3_export_directory_is_read_in_path_order_skipping_hidden_files(tmp_path: Path) -> None:
    records = cloudtrail()
    root = tmp_path / "export"
    region = root / "AWSLogs" / "123456789012" / "CloudTrail" / "us-east-1"
    days = ["2024/01/09", "2024/01/10", "2024/02/01"]  # 09 < 10: sorted as paths, not walked
    chunks = [records[i::3] for i in range(3)]
    ordered: list[dict[str, Any]] = []
    for day, chunk in zip(days, chunks, strict=True):
        folder = region / day
        folder.mkdir(parents=True)
        for part, half in enumerate((chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :])):
            name = f"123456789012_CloudTrail_us-east-1_{day.replace('/', '')}T00{part}5Z_x.json.gz"
            (folder / name).write_bytes(gzip.compress(json.dumps({"Records": half}).encode()))
            ordered.extend(half)
    (region / ".hidden").mkdir()
    (region / ".hidden" / "junk.json").write_bytes(b"not json at all")
    (region / "2024" / ".DS_Store").write_bytes(b"\x00\x01binary")
    results = read([root])
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, ordered)


def test_standard_input_is_framed_like_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = mixed()
    stdin = io.TextIOWrapper(io.BytesIO(gzip.compress(pretty_array(records))))
    monkeypatch.setattr(sys, "stdin", stdin)
    results = read(["-"])
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)
    assert not stdin.closed


# -- one record holding several documents (a Kafka message) ---------------------------


def normalize(value: bytes, normalizer: Normalizer | None = None) -> list[Result]:
    record = RawRecord(value, Position("topic", 42, 3))
    return (normalizer or bundled_normalizer()).normalize(record)


KAFKA_FRAMINGS: dict[str, Callable[[list[Any]], bytes]] = {
    "array of objects": lambda rs: json.dumps(rs).encode(),
    "concatenated objects": lambda rs: b"".join(map(orjson.dumps, rs)),
    "JSON Lines in one message": jsonl,
    "gzip of JSON Lines": lambda rs: gzip.compress(jsonl(rs)),
    "zstd of an array": lambda rs: zstd(json.dumps(rs).encode()),
    "BOM then an array": lambda rs: b"\xef\xbb\xbf" + json.dumps(rs).encode(),
    "array of arrays": lambda rs: json.dumps([rs[:3], rs[3:]]).encode(),
}


@pytest.mark.parametrize("framing", KAFKA_FRAMINGS)
def test_one_record_holding_several_documents_gives_each_of_them(
    tmp_path: Path, framing: str
) -> None:
    records = mixed()[:12]
    results = normalize(KAFKA_FRAMINGS[framing](records))
    assert dead_letters(results) == []
    assert events_of(results) == expected(tmp_path, records)
    assert {r.position for r in results if isinstance(r, Event)} == {Position("topic", 42, 3)}


def test_one_gzip_or_zstd_document_in_a_record_is_one_event(tmp_path: Path) -> None:
    [record] = cloudtrail()[:1]
    for packed in (gzip.compress(orjson.dumps(record)), zstd(orjson.dumps(record))):
        assert events_of(normalize(packed)) == expected(tmp_path, [record])


def test_a_fluentd_time_record_pair_is_one_document(tmp_path: Path) -> None:
    [record] = cloudtrail()[:1]
    results = normalize(orjson.dumps([1700000000, record]))
    assert events_of(results) == expected(tmp_path, [record])


def test_an_empty_array_is_a_skipped_empty_batch() -> None:
    assert normalize(b"[]") == [Skipped(SkipReason.EMPTY_BATCH, Position("topic", 42, 3))]


# -- bad input: a dead letter that says why, and the rest still read ---------------


PRETTY_LINES = [b"{", b'  "eventVersion": "1.08",', b'  "userIdentity": {', b"  },", b"]", b"}"]


@pytest.mark.parametrize("line", PRETTY_LINES)
def test_a_line_of_pretty_printed_json_is_a_json_fragment(line: bytes) -> None:
    [dead] = normalize(line)
    assert isinstance(dead, DeadLetter)
    assert dead.reason is DeadLetterReason.JSON_FRAGMENT
    assert dead.detail == FRAGMENT_DETAIL
    assert dead.excerpt == line.decode()


def test_pretty_printed_lines_in_a_json_lines_file_are_fragments(tmp_path: Path) -> None:
    [first, second] = cloudtrail()[:2]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(orjson.dumps(first) + b"\n" + json.dumps(second, indent=2).encode() + b"\n")
    results = read([path])
    assert isinstance(results[0], Event)
    reasons = [d.reason for d in dead_letters(results)]
    # A lone "value" line (an array's last item) is valid JSON, just not an object.
    assert set(reasons) <= {DeadLetterReason.JSON_FRAGMENT, DeadLetterReason.NOT_AN_OBJECT}
    assert reasons.count(DeadLetterReason.JSON_FRAGMENT) > len(reasons) * 0.8
    assert len(results) == 1 + len(json.dumps(second, indent=2).splitlines())


def test_a_file_ending_inside_a_value_says_so_after_the_complete_records(tmp_path: Path) -> None:
    records = cloudtrail()[:6]
    whole = pretty_array(records)
    last = whole.rindex(b"\n  {")  # the newline before the last element
    cut = whole[: last + (len(whole) - last) // 2]  # halfway through it
    path = tmp_path / "cut.json"
    path.write_bytes(cut)
    results = read([path])
    assert events_of(results[:-1]) == expected(tmp_path, records[:-1])
    [dead] = dead_letters(results)
    last_start = whole[: last + 1].count(b"\n") + 1
    assert dead.reason is DeadLetterReason.INVALID_JSON
    assert dead.position == Position(str(path), last_start)
    end_line = cut.count(b"\n") + 1
    assert dead.detail == (
        f"the file ended at line {end_line} inside a JSON value that starts at line {last_start}"
    )
    assert len(dead.excerpt) <= 300


def test_an_array_never_closed_is_one_dead_letter_after_all_its_elements(tmp_path: Path) -> None:
    records = cloudtrail()[:3]
    path = tmp_path / "open.json"
    path.write_bytes(pretty_array(records).rstrip(b"]\n"))
    results = read([path])
    assert events_of(results[:-1]) == expected(tmp_path, records)
    [dead] = dead_letters(results)
    assert dead.position == Position(str(path), 1)
    assert "ended at line" in dead.detail and "starts at line 1" in dead.detail


def test_garbage_between_values_is_dead_lettered_and_scanning_resyncs(tmp_path: Path) -> None:
    records = cloudtrail()[:3]
    path = tmp_path / "garbage.json"
    path.write_bytes(
        json.dumps(records[0], indent=2).encode()
        + b"\n-- log rotated --\n"
        + json.dumps(records[1], indent=2).encode()
        + b"\n\x00\x01\x02 binary junk\n"
        + orjson.dumps(records[2])
    )
    results = read([path])
    assert events_of(r for r in results if isinstance(r, Event)) == expected(tmp_path, records)
    dead = dead_letters(results)
    assert [d.reason for d in dead] == [DeadLetterReason.INVALID_JSON] * 2
    assert [d.excerpt for d in dead] == ["-- log rotated --", "\x00\x01\x02 binary junk"]


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("cut.json.gz", lambda data: gzip.compress(data)[:-30]),
        (
            "flipped.json.gz",
            lambda data: (lambda z: z[:40] + b"\xff" * 40 + z[80:])(gzip.compress(data)),
        ),
        ("cut.json.zst", lambda data: zstd(data)[:-30]),
        ("flipped.json.zst", lambda data: (lambda z: z[:20] + b"\xff" * 40 + z[60:])(zstd(data))),
    ],
)
def test_a_corrupt_compressed_file_is_a_dead_letter_and_the_next_file_is_read(
    tmp_path: Path, name: str, damage: Callable[[bytes], bytes]
) -> None:
    records = cloudtrail()[:40]
    bad, good = tmp_path / name, tmp_path / "next.jsonl"
    bad.write_bytes(damage(pretty_array(records)))
    good.write_bytes(jsonl(records[:2]))
    results = read([bad, good])
    dead = [d for d in dead_letters(results) if d.position and d.position.stream == str(bad)]
    assert dead, "a damaged file must leave a dead letter"
    kind = "gzip" if name.endswith(".gz") else "zstd"
    assert dead[-1].reason is DeadLetterReason.INVALID_JSON
    assert f"cannot read: {kind}: " in dead[-1].detail
    from_good = [
        r for r in results if isinstance(r, Event) and r.position == Position(str(good), 1)
    ]
    from_good += [
        r for r in results if isinstance(r, Event) and r.position == Position(str(good), 2)
    ]
    assert events_of(from_good) == expected(tmp_path, records[:2])


def test_a_record_above_the_limit_inside_an_array_is_too_large_and_not_held(
    tmp_path: Path,
) -> None:
    records = cloudtrail()[:4]
    huge = {**records[1], "padding": "x" * 300_000}
    path = tmp_path / "array.json"
    path.write_bytes(pretty_array([records[0], huge, records[2], records[3]]))
    limit = 64 << 10
    with FileSource([path], max_record_bytes=limit) as source:
        raw = [r for batch in source.batches() for r in batch]
    assert [len(r.value) <= limit + 1 for r in raw] == [True] * 4
    normalizer = Normalizer(Taxonomy.bundled(), limits=Limits(max_record_bytes=limit))
    results = [item for r in raw for item in normalizer.normalize(r)]
    [dead] = dead_letters(results)
    assert dead.reason is DeadLetterReason.TOO_LARGE
    size, _, rest = dead.detail.partition(" bytes > ")
    assert (int(size) > 300_000, rest) == (True, str(limit))  # the whole record's size, not kept
    assert len(dead.excerpt) <= 300
    assert events_of(r for r in results if isinstance(r, Event)) == expected(
        tmp_path, [records[0], records[2], records[3]]
    )


@pytest.mark.parametrize("compress", [gzip.compress, zstd], ids=["gzip", "zstd"])
def test_a_decompression_bomb_in_one_record_stops_at_the_limit(
    compress: Callable[[bytes], bytes],
) -> None:
    bomb = compress(b"\0" * (40 << 20))
    assert len(bomb) < 1 << 20  # passes the record size check: only decompression can tell
    limits = Limits(max_decompressed_bytes=4 << 20)
    normalizer = Normalizer(Taxonomy.bundled(), limits=limits)
    tracemalloc.start()
    try:
        [dead] = normalize(bomb, normalizer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(dead, DeadLetter)
    assert dead.reason is DeadLetterReason.TOO_LARGE
    assert "decompresses to more than 4194304 bytes" in dead.detail
    assert peak < 16 << 20


def test_a_corrupt_gzip_record_is_invalid_json_naming_the_compression() -> None:
    [dead] = normalize(gzip.compress(b'{"a": 1}')[:-6])
    assert isinstance(dead, DeadLetter)
    assert dead.reason is DeadLetterReason.INVALID_JSON
    assert dead.detail.startswith("cannot decompress: gzip: ")


def test_a_bad_value_among_several_costs_only_itself(tmp_path: Path) -> None:
    [first, second] = cloudtrail()[:2]
    value = orjson.dumps(first) + b'\n{"a": [1}\nnot json\n' + orjson.dumps(second) + b"\n{"
    results = normalize(value)
    assert events_of(r for r in results if isinstance(r, Event)) == expected(
        tmp_path, [first, second]
    )
    dead = dead_letters(results)
    assert [d.reason for d in dead] == [
        DeadLetterReason.INVALID_JSON,
        DeadLetterReason.INVALID_JSON,
        DeadLetterReason.JSON_FRAGMENT,
    ]
    assert "line 2 of the record" in dead[0].detail


def test_a_bad_record_from_a_source_becomes_its_dead_letter() -> None:
    bad = BadRecord(b"partial", Position("f", 9), reason="too_large", detail="9 bytes > 8")
    [dead] = bundled_normalizer().normalize(bad)
    assert dead == DeadLetter(
        DeadLetterReason.TOO_LARGE, "9 bytes > 8", Position("f", 9), "partial"
    )


# -- memory: bounded by the largest record, not the file --------------------------


def test_a_large_streamed_array_is_read_in_memory_far_below_its_size(tmp_path: Path) -> None:
    records = [orjson.dumps(r) for r in cloudtrail()[:100]]
    path = tmp_path / "big.json"
    count = 50_000
    with path.open("wb") as out:
        out.write(b"[\n")
        for index in range(count):
            out.write(b",\n" if index else b"")
            out.write(records[index % len(records)])
        out.write(b"\n]\n")
    size = path.stat().st_size
    assert size > 40 << 20
    tracemalloc.start()
    try:
        seen = 0
        with FileSource([path]) as source:
            for batch in source.batches():
                seen += len(batch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < size // 20, f"peak {peak} bytes for a {size}-byte file"


# -- the scanner: chunk boundaries never change what it finds ----------------------


def scan(data: bytes, chunk: int, limit: int = 1 << 20) -> list[Piece]:
    return list(Scanner(io.BytesIO(data).read, limit=limit, chunk=chunk))


_TOKENS = [b"{", b"}", b"[", b"]", b'"', b"\\", b",", b":", b" ", b"\n", b"\r", b"a", b"1"]
_TOKENS += [b"\xc3\xa9", b'{"k": "v"}']
_structured = st.lists(st.sampled_from(_TOKENS), max_size=60).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_structured, st.binary(max_size=80)), st.integers(1, 9), st.integers(1, 40))
def test_chunk_boundaries_never_change_the_pieces(data: bytes, chunk: int, limit: int) -> None:
    assert scan(data, chunk, limit) == scan(data, 1 << 18, limit)


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
_documents = st.lists(
    st.dictionaries(st.text(max_size=5), _values, max_size=4), min_size=1, max_size=5
)
_LAYOUTS: dict[str, Callable[[list[Any]], str]] = {
    "lines": lambda ds: "\n".join(json.dumps(d) for d in ds),
    "array": json.dumps,
    "pretty": lambda ds: json.dumps(ds, indent=2, ensure_ascii=False),
    "concatenated": lambda ds: "".join(json.dumps(d, ensure_ascii=False) for d in ds),
}


@settings(max_examples=300, deadline=None)
@given(_documents, st.sampled_from(sorted(_LAYOUTS)), st.integers(1, 7))
def test_every_document_comes_back_whatever_the_layout(
    documents: list[dict[str, Any]], layout: str, chunk: int
) -> None:
    data = _LAYOUTS[layout](documents).encode()
    assert [json.loads(piece.data) for piece in scan(data, chunk)] == documents
