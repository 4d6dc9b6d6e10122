from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from detector.errors import SourceError
from detector.sources.files import FileSource
from detector.sources.record import Position


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
    assert len(big) == 101  # one byte over the limit marks it too large for the normalizer
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


def test_a_truncated_gzip_file_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"n": 1}\n' * 1000)[:-20])
    with pytest.raises(SourceError, match=r"cut\.jsonl\.gz: cannot read"):
        read_all(FileSource([path]), batch=5000)
