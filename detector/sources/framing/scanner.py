"""Where JSON values start and end in a byte stream, found without decoding them.

:class:`Scanner` reads a stream in chunks and yields :class:`Piece`\\ s: each
top-level value; each element of a top-level array of documents (an array whose
first element is an object or an array); a top-level array whose first element
is a scalar (Fluentd's ``[time, record]``) as one value; text that is no JSON
value, up to the end of its line (scanning goes on at the next line); and, when
the input ends inside a value, what there was of it. Whitespace, newlines and
nothing at all may separate values.

It never holds more than one chunk plus the first ``limit + 1`` bytes of the
current value: the rest of a longer value is scanned past, not kept. No Python
code runs per byte. A valid value is delimited by orjson itself, which parses
the first value of a window ahead and says where the rest begins (one call in C
per record). Anything else (control characters in strings, broken or overlong
values) is delimited by matching brackets: compiled regular expressions step
over whole strings to the next bracket, so Python runs once per bracket.

    >>> [p.data for p in split_values(b'[{"a": 1},\\n {"b": [2]}]')]
    [b'{"a": 1}', b'{"b": [2]}']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import orjson

__all__ = ["Piece", "PieceKind", "Scanner", "split_values"]

_CHUNK = 1 << 18
_MIN_WIDTH = 1 << 12
_TRAILING = "unexpected content after document"
_END_OF_DATA = "unexpected end of data"
_SPACES = b" \t\r\n"

# Everything up to the next bracket or quote that opens a string not closed in the buffer:
# runs of ordinary bytes and whole strings, each swallowed by the regex engine at once.
_TO_BRACKET = re.compile(rb'[^"{}\[\]]*+(?:"[^"\\]*+(?:\\.[^"\\]*+)*+"[^"{}\[\]]*+)*+', re.S)
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_SPACE = re.compile(rb"[ \t\r\n]*+")
_SPACE_OR_COMMA = re.compile(rb"[ \t\r\n,]*+")
_TOKEN = re.compile(rb'[^ \t\r\n,\[\]{}"]*+')  # a number, true, false or null
# A batch object: a CloudTrail log file (S3) or an Azure diagnostic export, one key holding
# the list of records. Its records are streamed like those of a top-level array: S3 files
# of busy accounts are megabytes on one line, far past the record limit as one value.
BATCH_OBJECT = re.compile(rb'\{[ \t\r\n]*+"(?:Records|records)"[ \t\r\n]*+:[ \t\r\n]*+\[')
_BATCH_PREFIX_MAX = 64

_QUOTE = ord('"')
_OPEN_OBJECT, _CLOSE_OBJECT = ord("{"), ord("}")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_CLOSER = {_OPEN_OBJECT: _CLOSE_OBJECT, _OPEN_ARRAY: _CLOSE_ARRAY}
_DOCUMENT_STARTS = b"{[]"
_VALUE_STARTS = (_OPEN_OBJECT, _OPEN_ARRAY)


class PieceKind(StrEnum):
    VALUE = "value"
    """One complete JSON value, its brackets balanced (not yet decoded: it may still be bad)."""
    TEXT = "text"
    """Bytes where a value should start but none does (or one whose brackets do not match),
    up to the end of that line."""
    UNTERMINATED = "unterminated"
    """The input ended inside a value: the start of that value."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One value (or non-value) found: at most ``limit + 1`` bytes of it, and where.

    ``size`` is the full length in bytes (more than ``len(data)`` when cut), ``line``
    the 1-based line where it starts and ``end_line`` the line where it ends.
    """

    kind: PieceKind
    data: bytes
    line: int
    end_line: int
    size: int


class Scanner:
    """Pieces of a byte stream, read with ``read(n)`` (``None``: ``head`` is everything).

    ``head`` holds bytes already read from the stream (they come first) and
    ``first_line`` is the line number of its first byte.
    """

    def __init__(
        self,
        read: Callable[[int], bytes] | None,
        *,
        limit: int,
        head: bytes = b"",
        first_line: int = 1,
        chunk: int = _CHUNK,
    ) -> None:
        self._read = read
        self._chunk = chunk
        self._limit = limit
        self._width = min(_MIN_WIDTH, limit + 1)
        self._buf = head
        self._i = 0
        self._line = first_line  # the line of self._buf[self._counted]
        self._counted = 0
        # The value being captured: its start in the buffer, the parts of it already
        # moved out of earlier buffers (at most limit + 1 bytes kept), and its size.
        self._start = -1
        self._parts: list[bytes] = []
        self._kept = 0
        self._size = 0

    @property
    def line(self) -> int:
        """The line the scan has reached."""
        return self._line_at(self._i)

    def __iter__(self) -> Iterator[Piece]:
        array_line = 0  # the line of the open top-level array of documents, 0 outside one
        in_batch_object = False  # that array is the list of a batch object: a "}" follows
        while True:
            if not self._skip(_SPACE_OR_COMMA if array_line else _SPACE):
                if array_line:
                    yield self._unclosed_array(array_line)
                return
            first = self._buf[self._i]
            if first == _OPEN_ARRAY and not array_line and self._opens_documents():
                array_line = self.line
                self._i += 1
                continue
            if first == _OPEN_OBJECT and not array_line and (end := self._batch_object()) > 0:
                array_line, in_batch_object = self.line, True
                self._i = end
                continue
            if first in _VALUE_STARTS:
                piece = self._value()
            elif array_line and first == _CLOSE_ARRAY:
                self._i += 1
                array_line = 0
                if in_batch_object:
                    in_batch_object = False
                    self._close_batch_object()
                continue
            elif array_line and first != _CLOSE_OBJECT:
                piece = self._scalar()  # an array element: the normalizer says it is no object
            else:
                piece = self._text()
            yield piece
            if piece.kind is PieceKind.UNTERMINATED:
                return  # one dead letter for the end of input, not one per open bracket

    # -- the buffer -------------------------------------------------------------

    def _fill(self) -> bool:
        """Appends the next chunk, dropping what is scanned (kept in parts if captured).

        False at the end of input, the buffer unchanged.
        """
        if self._read is None:
            return False
        chunk = self._read(self._chunk)
        if not chunk:
            self._read = None
            return False
        buf, i = self._buf, self._i
        if self._start >= 0:
            self._capture(buf, self._start, i)
            self._start = 0
        self._line += buf.count(b"\n", self._counted, i)
        self._counted = 0
        self._buf = buf[i:] + chunk
        self._i = 0
        return True

    def _line_at(self, position: int) -> int:
        self._line += self._buf.count(b"\n", self._counted, position)
        self._counted = position
        return self._line

    def _capture(self, buf: bytes, start: int, end: int) -> None:
        room = self._limit + 1 - self._kept
        if room > 0:
            part = buf[start : min(end, start + room)]
            self._parts.append(part)
            self._kept += len(part)
        self._size += end - start

    def _begin(self) -> int:
        self._start = self._i
        self._parts, self._kept, self._size = [], 0, 0
        return self._line_at(self._i)

    def _end(self, kind: PieceKind, line: int, end: int) -> Piece:
        """The captured piece from its start to ``end`` in the buffer."""
        self._capture(self._buf, self._start, end)
        self._start = -1
        self._i = max(self._i, end)
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        if kind is PieceKind.TEXT:
            data = data.strip()
        return Piece(kind, data, line, self._line_at(end), self._size)

    def _skip(self, pattern: re.Pattern[bytes]) -> bool:
        """Moves past ``pattern``; False when the input ends first."""
        while True:
            self._i = pattern.match(self._buf, self._i).end()  # type: ignore[union-attr]
            if self._i < len(self._buf):
                return True
            if not self._fill():
                return False

    # -- what a value is --------------------------------------------------------

    def _opens_documents(self) -> bool:
        """At a top-level ``[``: does an object, an array or ``]`` come next (a batch)?"""
        ahead = 1
        while True:
            j = _SPACE.match(self._buf, self._i + ahead).end()  # type: ignore[union-attr]
            if j < len(self._buf):
                return self._buf[j] in _DOCUMENT_STARTS
            ahead = j - self._i
            if not self._fill():
                return False

    def _batch_object(self) -> int:
        """At a top-level ``{``: the end of a batch object's opening, through its ``[``; else 0."""
        while len(self._buf) - self._i < _BATCH_PREFIX_MAX and self._fill():
            pass
        match = BATCH_OBJECT.match(self._buf, self._i)
        return match.end() if match else 0

    def _close_batch_object(self) -> None:
        """Past the ``}`` after a batch object's list; other keys there are scanned as text."""
        if self._skip(_SPACE) and self._buf[self._i] == _CLOSE_OBJECT:
            self._i += 1

    def _value(self) -> Piece:
        """From an opening bracket to its match: VALUE, TEXT if brackets mismatch, or cut off."""
        return self._parsed_value() or self._bracketed_value()

    def _parsed_value(self) -> Piece | None:
        """The value found by orjson over a window ahead; None when it cannot say (then brackets).

        orjson stops at the end of the first value and says where the rest begins: one
        call in C per value, for the usual case of valid JSON well under the limit.
        """
        width = self._width
        while True:
            buf, i = self._buf, self._i
            window = memoryview(buf)[i : i + width]
            try:
                orjson.loads(window)
                end = i + len(window)
            except orjson.JSONDecodeError as exc:
                if exc.msg == _TRAILING:
                    ahead = exc.pos  # in characters: as many bytes while they are all ASCII
                    if not window[:ahead].tobytes().isascii():
                        ahead = len(exc.doc[:ahead].encode())
                    end = i + ahead
                elif exc.msg != _END_OF_DATA:
                    return None  # not valid JSON (or a window cut inside a character)
                elif len(window) < width:
                    if not self._fill():
                        return None  # the input ends inside the value
                    continue
                elif width <= self._limit:
                    width = min(width * 4, self._limit + 1)  # a longer value: look further
                    continue
                else:
                    return None  # longer than the limit: the brackets scan skips the rest
            data = buf[i:end].rstrip(_SPACES)
            line = self._line_at(i)
            self._i = i + len(data)
            self._width = min(max(_MIN_WIDTH, 2 * len(data)), self._limit + 1)
            return Piece(PieceKind.VALUE, data, line, self._line_at(self._i), len(data))

    def _bracketed_value(self) -> Piece:
        line = self._begin()
        expected = bytearray()  # the closing brackets owed, innermost last
        i = self._i
        in_string = False
        while True:
            buf = self._buf
            if in_string:
                i = _STRING_REST.match(buf, i).end()  # type: ignore[union-attr]
                if i < len(buf) and buf[i] == _QUOTE:
                    i += 1
                    in_string = False
                    continue
                # The buffer ends inside the string (perhaps right after a backslash).
            else:
                i = _TO_BRACKET.match(buf, i).end()  # type: ignore[union-attr]
                if i < len(buf):
                    found = buf[i]
                    i += 1
                    if found == _QUOTE:
                        in_string = True  # a string that goes on past this buffer
                        continue
                    closer = _CLOSER.get(found)
                    if closer is not None:
                        expected.append(closer)
                        continue
                    if not expected or expected.pop() != found:
                        self._i = i
                        return self._rest_of_line(line)
                    if not expected:
                        self._i = i
                        return self._end(PieceKind.VALUE, line, i)
                    continue
            self._i = i
            if not self._fill():
                return self._end(PieceKind.UNTERMINATED, line, len(self._buf))
            i = self._i

    def _scalar(self) -> Piece:
        """A string, number or literal inside an array of documents."""
        line = self._begin()
        i = self._i
        if self._buf[i] == _QUOTE:
            i += 1
            while True:
                buf = self._buf
                i = _STRING_REST.match(buf, i).end()  # type: ignore[union-attr]
                if i < len(buf) and buf[i] == _QUOTE:
                    self._i = i + 1
                    return self._end(PieceKind.VALUE, line, i + 1)
                self._i = i
                if not self._fill():
                    return self._end(PieceKind.UNTERMINATED, line, len(self._buf))
                i = self._i
        while True:
            buf = self._buf
            i = _TOKEN.match(buf, i).end()  # type: ignore[union-attr]
            self._i = i
            if i < len(buf):
                return self._end(PieceKind.VALUE, line, i)
            if not self._fill():
                return self._end(PieceKind.VALUE, line, len(self._buf))
            i = self._i

    def _text(self) -> Piece:
        """No value starts here: the rest of the line, then scanning resumes on the next."""
        return self._rest_of_line(self._begin())

    def _rest_of_line(self, line: int) -> Piece:
        while True:
            newline = self._buf.find(b"\n", self._i)
            if newline >= 0:
                self._i = newline + 1
                return self._end(PieceKind.TEXT, line, newline)
            self._i = len(self._buf)
            if not self._fill():
                return self._end(PieceKind.TEXT, line, len(self._buf))

    def _unclosed_array(self, line: int) -> Piece:
        end = self.line
        return Piece(PieceKind.UNTERMINATED, b"[", line, end, 1)


def split_values(value: bytes, limit: int | None = None) -> Iterator[Piece]:
    """The pieces of one in-memory value (a Kafka message holding several documents)."""
    return iter(Scanner(None, limit=len(value) if limit is None else limit, head=value))
