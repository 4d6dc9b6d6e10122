"""Framing: how the bytes of a file or a message split into records, detected, not configured.

* :mod:`~detector.sources.framing.compression` - gzip and zstd by their magic bytes,
  streamed for files, bounded for one record;
* :mod:`~detector.sources.framing.scanner` - where JSON values start and end in a
  byte stream (arrays of documents, concatenated values, pretty-printed documents);
* :mod:`~detector.sources.framing.stream` - the records of one file or of standard
  input: JSON Lines read by line, anything else scanned;
* :mod:`~detector.sources.framing.fragments` - one line of a pretty-printed document
  sent as a record of its own, so that its dead letter can say so.

The file source frames each file; the normalizer frames each record again (a Kafka
message may hold a gzip of JSON Lines, an array, or several objects).
"""

from detector.sources.framing.compression import (
    CompressionError,
    DecompressedTooLargeError,
    compression_of,
    decompress,
    open_decompressed,
)
from detector.sources.framing.fragments import FRAGMENT_DETAIL, looks_like_fragment
from detector.sources.framing.scanner import Piece, PieceKind, Scanner, split_values
from detector.sources.framing.stream import BOM, BadRecord, FramedStream, opens_batch

__all__ = [
    "BOM",
    "FRAGMENT_DETAIL",
    "BadRecord",
    "CompressionError",
    "DecompressedTooLargeError",
    "FramedStream",
    "Piece",
    "PieceKind",
    "Scanner",
    "compression_of",
    "decompress",
    "looks_like_fragment",
    "open_decompressed",
    "opens_batch",
    "split_values",
]
