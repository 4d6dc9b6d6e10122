"""What is committed after a batch: per partition, the offset after its highest record."""

from __future__ import annotations

from detector.sources.record import Position, next_offsets


def test_the_offset_after_the_highest_record_of_each_partition_whatever_their_order() -> None:
    positions = [
        Position("audit", 7, 0), Position("audit", 3, 1), Position("audit", 5, 0),
        Position("audit", 9, 1), Position("other", 0, 0), Position("audit", 8, 0),
    ]  # fmt: skip
    assert next_offsets(positions) == {("audit", 0): 9, ("audit", 1): 10, ("other", 0): 1}
    assert next_offsets(reversed(positions)) == next_offsets(positions)


def test_a_file_line_counts_as_partition_0_and_a_record_before_the_first_commits_0() -> None:
    assert next_offsets([Position("events.jsonl", 12)]) == {("events.jsonl", 0): 13}
    assert next_offsets([Position("audit", -1, 2)]) == {("audit", 2): 0}
    assert next_offsets([]) == {}
