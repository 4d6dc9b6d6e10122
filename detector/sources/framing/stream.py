"""The records of one byte stream (a file, standard input), framing detected from its content.

JSON Lines when the first non-blank line is one complete JSON value (an object, or
Fluentd's ``[time, record]``): then each non-blank line is a record, read with
``readline`` as fast as the stream gives lines. Anything else goes through the
:class:`~detector.sources.framing.scanner.Scanner`: every element of a top-level
array of documents, every one of several concatenated values (with or without
newlines between them), or one pretty-printed document, each is a record.

Positions are ``name:line`` with the line where the record starts. A record longer
than the limit keeps only its first ``limit + 1`` bytes; what the stream cannot
frame (the input ends inside a value, a record too large) comes out as a
:class:`BadRecord` that the normalizer dead-letters with its reason and detail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Literal

import orjson

from detector.sources.framing.scanner import BATCH_OBJECT, PieceKind, Scanner
from detector.sources.record import Position, RawRecord

__all__ = ["BOM", "BadReason", "BadRecord", "FramedStream", "opens_batch"]

BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 16

BadReason = Literal["invalid_json", "too_large", "json_fragment"]


@dataclass(frozen=True, slots=True)
class BadRecord(RawRecord):
    """A record its source already knows cannot be read, and why.

    ``reason`` is a dead-letter reason value and ``detail`` one sentence for the
    operator; ``value`` holds what there was of the record (at most the size limit
    plus one byte), for the excerpt. The normalizer turns it into a dead letter as is.
    """

    reason: BadReason = "invalid_json"
    detail: str = ""


def opens_batch(doc: object) -> bool:
    """True for a JSON array of documents: empty, or its first element an object or array.

    An array whose first element is a scalar is one document (Fluentd ``[time, record]``).
    """
    return type(doc) is list and (not doc or isinstance(doc[0], dict | list))


class FramedStream:
    """Iterates the records of ``stream`` (already decompressed); ``name`` is for positions."""

    def __init__(self, stream: IO[bytes], name: str, *, limit: int) -> None:
        self._stream = stream
        self._name = name
        self._limit = limit
        self._line = 0
        self._scanner: Scanner | None = None
        self._what = "standard input" if name == "-" else "the file"

    @property
    def line(self) -> int:
        """The line reached so far (where a read error happened, say)."""
        return self._scanner.line if self._scanner is not None else max(self._line, 1)

    def __iter__(self) -> Iterator[RawRecord]:
        first = self._first_line()
        if not first:
            return
        if _is_one_line_record(first, self._limit):
            yield from self._lines(first)
        else:
            yield from self._scan(first)

    def _first_line(self) -> bytes:
        """The first non-blank line (at most limit + 1 bytes of it), BOM dropped."""
        while True:
            line = self._stream.readline(self._limit + 1)
            if not line:
                return b""
            self._line += 1
            if self._line == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            if line.strip():
                return line

    def _lines(self, line: bytes) -> Iterator[RawRecord]:
        readline, limit, name = self._stream.readline, self._limit, self._name
        while True:
            if len(line) > limit and not line.endswith(b"\n"):
                size = len(line) + self._skip_rest_of_line()
                detail = f"{size} bytes > {limit}"
                yield BadRecord(line, Position(name, self._line), reason="too_large", detail=detail)
            else:
                value = line.strip()
                if value:
                    yield RawRecord(value, Position(name, self._line))
            line = readline(limit + 1)
            if not line:
                return
            self._line += 1

    def _skip_rest_of_line(self) -> int:
        skipped = 0
        while True:
            chunk = self._stream.readline(_SKIP_CHUNK)
            skipped += len(chunk.rstrip(b"\r\n"))
            if not chunk or chunk.endswith(b"\n"):
                return skipped

    def _scan(self, head: bytes) -> Iterator[RawRecord]:
        read = getattr(self._stream, "read1", self._stream.read)
        self._scanner = Scanner(read, limit=self._limit, head=head, first_line=self._line)
        limit, name = self._limit, self._name
        for piece in self._scanner:
            position = Position(name, piece.line)
            if piece.kind is PieceKind.UNTERMINATED:
                detail = (
                    f"{self._what} ended at line {piece.end_line} inside a JSON value "
                    f"that starts at line {piece.line}"
                )
                yield BadRecord(piece.data, position, reason="invalid_json", detail=detail)
            elif piece.size > limit:
                detail = f"{piece.size} bytes > {limit}"
                yield BadRecord(piece.data, position, reason="too_large", detail=detail)
            else:
                # A VALUE, or TEXT that is none: the normalizer says what is wrong with it.
                yield RawRecord(piece.data, position)


def _is_one_line_record(line: bytes, limit: int) -> bool:
    """Is this (first) line one complete JSON value that is not a batch?"""
    if len(line) > limit and not line.endswith(b"\n"):
        return False
    text = line.strip()
    if BATCH_OBJECT.match(text):
        return False  # a CloudTrail S3 file on one line: its records are streamed
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            # Vendors publish raw control characters inside strings; still one value.
            doc = json.loads(text.decode("utf-8"), strict=False)
        except (ValueError, RecursionError):
            return False
    return not opens_batch(doc)
