"""Compression recognised by content, not by name: gzip (``1f 8b``) and zstd (``28 b5 2f fd``).

A file is decompressed as a stream, never whole in memory (:func:`open_decompressed`);
one record, such as a Kafka message value, is decompressed up to a bound
(:func:`decompress`), so that a few kilobytes of hostile input cannot grow into
gigabytes. A corrupt or truncated stream raises :class:`CompressionError`, whose
message names the compression.

    >>> decompress(gzip.compress(b'{"a": 1}'), limit=1 << 20)
    b'{"a": 1}'
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO, TYPE_CHECKING, Any, cast

from detector.errors import SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "GZIP_MAGIC",
    "ZSTD_MAGIC",
    "CompressionError",
    "DecompressedTooLargeError",
    "compression_of",
    "decompress",
    "open_decompressed",
]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 18
_STEP = 1 << 20  # a compressed record is decompressed this much at a time


class CompressionError(SourceError, ValueError):
    """A gzip or zstd stream that is corrupt or ends early; the message names which."""


class DecompressedTooLargeError(SourceError, ValueError):
    """A compressed record that expands past the bound it was read with."""


def compression_of(head: bytes) -> str | None:
    """``"gzip"`` or ``"zstd"`` when ``head`` (the first bytes) carries that magic, else None."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompress(value: bytes, limit: int) -> bytes:
    """``value`` decompressed by its magic (returned as is without one), at most ``limit`` bytes.

    Raises :class:`DecompressedTooLargeError` as soon as the output passes ``limit``
    (it is produced in steps, so nothing much past ``limit`` is ever held) and
    :class:`CompressionError` for a corrupt or truncated stream. Concatenated gzip
    members and zstd frames are read as one stream, as ``zcat`` and ``zstdcat`` do.
    """
    kind = compression_of(value)
    if kind is None:
        return value
    try:
        parts = _gunzip(value, limit) if kind == "gzip" else _unzstd(value, limit)
    except (OSError, EOFError, zlib.error, _zstd_error()) as exc:
        raise CompressionError(f"{kind}: {exc}") from None
    if parts is None:
        raise DecompressedTooLargeError(f"{kind} record decompresses to more than {limit} bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def open_decompressed(raw: IO[bytes]) -> tuple[IO[bytes], str | None]:
    """A buffered stream of ``raw``'s content, decompressed when it starts with a magic.

    Returns the stream and the compression found (None for plain). Works on pipes
    (standard input): the bytes read to look for a magic are put back in front.
    Closing the returned stream does not close ``raw``. Reading a corrupt or
    truncated stream raises :class:`CompressionError`.
    """
    head = b""
    while len(head) < len(ZSTD_MAGIC):
        more = raw.read(len(ZSTD_MAGIC) - len(head))
        if not more:
            break
        head += more
    # read1: a pipe (tail -f | ciwatch normalize -) gives what it has, not a full chunk.
    plain = io.BufferedReader(_Prefixed(head, getattr(raw, "read1", raw.read)), _CHUNK)
    kind = compression_of(head)
    if kind == "gzip":
        inflated = _Checked(cast(IO[bytes], gzip.GzipFile(fileobj=plain, mode="rb")), kind)
        return io.BufferedReader(inflated, _CHUNK), kind
    if kind == "zstd":
        import zstandard  # imported here: only zstd input needs it

        frames = _ZstdFrames()
        source = _Prefixed(b"", plain.read1, frames.feed)
        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], source), read_size=_CHUNK, read_across_frames=True
        )
        return io.BufferedReader(_Checked(cast(IO[bytes], reader), kind, frames), _CHUNK), kind
    return plain, None


def _gunzip(value: bytes, limit: int) -> list[bytes] | None:
    """The decompressed parts, or None past ``limit``."""
    parts: list[bytes] = []
    size = 0
    data = value
    while data:
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        while not inflater.eof:
            part = inflater.decompress(data, _STEP)
            if not part and not inflater.unconsumed_tail and not inflater.eof:
                raise EOFError("the stream ends before its end-of-stream marker")
            data = inflater.unconsumed_tail
            size += len(part)
            if size > limit:
                return None
            parts.append(part)
        # Another member may follow (concatenated .gz files); zero padding may end it.
        data = inflater.unused_data.lstrip(b"\0")
    return parts


def _unzstd(value: bytes, limit: int) -> list[bytes] | None:
    """The decompressed parts, or None past ``limit``."""
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(value), read_size=_CHUNK, read_across_frames=True
    )
    parts: list[bytes] = []
    size = 0
    while part := reader.read(_STEP):
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    frames = _ZstdFrames()
    frames.feed(value)
    frames.check_complete()
    return parts


def _zstd_error() -> type[Exception]:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a dependency; only zstd input needs it
        return CompressionError
    return cast(type[Exception], zstandard.ZstdError)


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of a stream; optionally shows every byte read to ``observe``."""

    def __init__(
        self,
        head: bytes,
        read: Callable[[int], bytes],
        observe: Callable[[bytes], None] | None = None,
    ) -> None:
        self._head = head
        self._read = read
        self._observe = observe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
        else:
            data = self._read(len(view))
        if self._observe is not None:
            self._observe(data)
        view[: len(data)] = data
        return len(data)


class _Checked(io.RawIOBase):
    """A decompressing reader whose errors become :class:`CompressionError`.

    zstandard's reader ends quietly on truncated input: ``frames`` follows the
    frame structure so that the end of input inside a frame is an error too.
    """

    def __init__(self, inner: IO[bytes], kind: str, frames: _ZstdFrames | None = None) -> None:
        self._inner = inner
        self._kind = kind
        self._frames = frames
        self._errors = (OSError, EOFError, zlib.error, _zstd_error())

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(view))
            if not data and self._frames is not None:
                self._frames.check_complete()
        except self._errors as exc:
            raise CompressionError(f"{self._kind}: {exc}") from None
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class _ZstdFrames:
    """Follows zstd frame and block headers (RFC 8878) to tell a whole stream from a cut one.

    Only headers are read (a few bytes per block of up to 128 KiB of output); the
    data itself is decompressed by zstandard.
    """

    _MAGIC, _HEADER, _HEADER_REST, _BLOCK = range(4)

    def __init__(self) -> None:
        self._state = self._MAGIC
        self._need = 4
        self._pending = b""
        self._skip = 0
        self._checksum = 0

    def feed(self, data: bytes) -> None:
        i, end = 0, len(data)
        while i < end:
            if self._skip:
                step = min(self._skip, end - i)
                self._skip -= step
                i += step
                continue
            take = self._need - len(self._pending)
            self._pending += data[i : i + take]
            i += take
            if len(self._pending) < self._need:
                return
            header, self._pending = self._pending, b""
            self._advance(header)

    def check_complete(self) -> None:
        if self._state != self._MAGIC or self._pending or self._skip:
            raise EOFError("the stream ends inside a frame (truncated)")

    def _advance(self, header: bytes) -> None:
        if self._state == self._MAGIC:
            if header == ZSTD_MAGIC:
                self._state, self._need = self._HEADER, 1
            elif header[1:] == b"\x2a\x4d\x18" and header[0] & 0xF0 == 0x50:  # skippable frame
                self._state, self._need = self._HEADER_REST, 4
            # Anything else is for zstandard to reject; stay between frames.
        elif self._state == self._HEADER:
            descriptor = header[0]
            single_segment = descriptor >> 5 & 1
            content_size = (single_segment, 2, 4, 8)[descriptor >> 6]
            dictionary = (0, 1, 2, 4)[descriptor & 3]
            self._checksum = 4 if descriptor >> 2 & 1 else 0
            self._skip = (0 if single_segment else 1) + dictionary + content_size
            self._state, self._need = self._BLOCK, 3
        elif self._state == self._HEADER_REST:  # a skippable frame's length
            self._skip = int.from_bytes(header, "little")
            self._state, self._need = self._MAGIC, 4
        else:
            block = int.from_bytes(header, "little")
            kind, size = block >> 1 & 3, block >> 3
            self._skip = 1 if kind == 1 else size
            if block & 1:  # the last block: then the optional checksum, then the next frame
                self._skip += self._checksum
                self._state, self._need = self._MAGIC, 4
