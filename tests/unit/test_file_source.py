from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from detector.errors import SourceError
from detector.sources.files import FileSource
from detector.sources.framing import BadRecord
from detector.sources.record import Position, RawRecord


def read_all(source: FileSource, batch: int = 2) -> list[tuple[bytes, Position]]:
    return [(r.value, r.position) for records in source.batches(batch) for r in records]


def test_reads_files_in_the_order_given_with_line_positions(tmp_path: Path) -> None:
    first, second = tmp_path / "b.jsonl", tmp_path / "a.jsonl.gz"
    first.write_bytes(b'{"n": 1}\n\n{"n": 2}\r\n')
    second.write_bytes(gzip.compress(b'{"n": 3}\n{"n": 4}'))
    records = read_all(FileSource([first, second]))
    assert records == [
        (b'{"n": 1}', Position(str(first), 1)),
        (b'{"n": 2}', Position(str(first), 3)),
        (b'{"n": 3}', Position(str(second), 1)),
        (b'{"n": 4}', Position(str(second), 2)),
    ]


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(gzip.compress(b'{"n": 1}\n'))
    assert read_all(FileSource([path])) == [(b'{"n": 1}', Position(str(path), 1))]


def test_an_oversized_line_is_cut_not_held_and_the_next_line_survives(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"x": "' + b"a" * 10_000 + b'"}\n{"n": 2}\n')
    [(big, _), (small, position)] = read_all(FileSource([path], max_record_bytes=100))
    assert len(big) == 101  # only the first bytes are kept, for the dead letter's excerpt
    assert (small, position) == (b'{"n": 2}', Position(str(path), 2))


def test_source_is_finished_after_the_last_batch(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"{}\n" * 5)
    source = FileSource([path])
    assert len(source.poll(3)) == 3
    assert not source.finished
    assert len(source.poll(3)) == 2
    assert source.finished


def test_missing_file_fails_at_construction_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.jsonl: no such file"):
        FileSource([tmp_path / "nope.jsonl"])


def test_no_files_is_an_error() -> None:
    with pytest.raises(SourceError, match="no input files"):
        FileSource([])


def test_a_truncated_gzip_file_is_a_dead_letter_and_the_next_file_is_read(tmp_path: Path) -> None:
    cut, good = tmp_path / "cut.jsonl.gz", tmp_path / "good.jsonl"
    cut.write_bytes(gzip.compress(b'{"n": 1}\n' * 1000)[:-20])
    good.write_bytes(b'{"n": 2}\n')
    records = [r for batch in FileSource([cut, good]).batches(5000) for r in batch]
    [bad] = [r for r in records if isinstance(r, BadRecord)]
    assert bad.position.stream == str(cut)
    assert bad.reason == "invalid_json"
    assert bad.detail.startswith("cannot read: gzip: ")
    assert bad.detail.endswith("the rest of this file is skipped")
    assert records[-1] == RawRecord(b'{"n": 2}', Position(str(good), 1))


def test_an_oversized_line_says_its_whole_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"n": 1}\n{"x": "' + b"a" * 200_000 + b'"}\n')
    [_, big] = [r for batch in FileSource([path], max_record_bytes=100).batches() for r in batch]
    assert isinstance(big, BadRecord)
    assert (big.reason, big.detail, big.position) == (
        "too_large",
        "200009 bytes > 100",
        Position(str(path), 2),
    )


def test_a_directory_is_walked_in_sorted_path_order_without_hidden_names(tmp_path: Path) -> None:
    for name in ["b/2.json", "b/10.json", "a-c.json", "a/z.json", ".git/x.json", "a/.swp"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(f'{{"file": "{name}"}}'.encode())
    records = read_all(FileSource([tmp_path]))
    assert [position.stream for _, position in records] == [
        str(tmp_path / name) for name in ["a/z.json", "a-c.json", "b/10.json", "b/2.json"]
    ]


def test_files_and_directories_mix_in_the_order_given(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "in.json").write_bytes(b"{}")
    (tmp_path / "first.json").write_bytes(b"{}")
    records = read_all(FileSource([tmp_path / "first.json", tmp_path / "dir"]))
    assert [p.stream for _, p in records] == [
        str(tmp_path / "first.json"),
        str(tmp_path / "dir" / "in.json"),
    ]


def test_an_empty_directory_fails_at_construction_naming_it(tmp_path: Path) -> None:
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    with pytest.raises(SourceError, match=r"empty: no files in this directory"):
        FileSource([tmp_path / "empty"])


def test_standard_input_is_read_and_left_open(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'\xef\xbb\xbf{"n": 1}\r\n{"n": 2}\r\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert read_all(FileSource(["-"])) == [
        (b'{"n": 1}', Position("-", 1)),
        (b'{"n": 2}', Position("-", 2)),
    ]
    assert not stdin.closed
