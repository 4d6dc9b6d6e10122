"""Packed counts and the unpacked lanes a window counter keeps its buckets in.

A *packed* count holds every channel of a key in one Python int: channel
``c`` occupies bits ``40c .. 40c+39`` (:func:`lane`, :func:`unpack`), so
adding an event to all its channels is one addition. Window totals and
feature vectors stay packed. A bucket, though, is kept as *lanes*: one
array entry per channel, 1 byte each until a count outgrows it (2, 4, then 8
bytes, signed), since most buckets hold a few small counts and a packed int
of an actor's 17 channels costs 30 to 110 bytes.

The helpers here turn one form into the other. Increments and buckets repeat
(the same few event kinds, again and again), so the conversions are
remembered in small caches (:data:`SPLITS`, :data:`ROWS`), cleared when full.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

__all__ = [
    "KINDS",
    "LANE_BITS",
    "LANE_MASK",
    "PACKED",
    "ROWS",
    "SPLITS",
    "WIDER",
    "bucket_row",
    "channel_counts",
    "frozen",
    "lane",
    "packed_sum",
    "restrided",
    "split",
    "thawed",
    "unpack",
    "window_sums",
    "with_count",
]

LANE_BITS = 40  # a channel holds up to 2**40 - 1 counts per window
LANE_MASK = (1 << LANE_BITS) - 1
WIDER = {"B": "H", "H": "I", "I": "q"}
"""The next lane type when a count outgrows one (or goes below 0: ``q`` is signed)."""
_WIDEST = "q"
_LANE_BYTES = LANE_BITS // 8
_SPREADABLE = 4  # lanes of up to this many bytes spread into 5-byte fields without overlap
_CACHE_LIMIT = 1 << 14
_ID_TYPES = ("i", "q")  # a counter's bucket ids (frozen: which ones)
_LANE_TYPES = ("B", "H", "I", "q")
KINDS = len(_ID_TYPES) * len(_LANE_TYPES)
"""How many kinds of :func:`frozen` bytes there are (their first byte is below this)."""
_KIND_BYTES = [bytes((kind,)) for kind in range(KINDS)]
_BUCKET_BY_BUCKET = 4  # up to this many buckets, summing them one by one beats lane by lane
SPLITS: dict[int, tuple[tuple[int, int], ...]] = {}
"""Packed count → its ``(channel, count)`` pairs (see :func:`split`)."""
ROWS: dict[tuple[int, str, int], array[int]] = {}
"""(packed count, lane type, lanes per bucket) → a new bucket's lanes (:func:`bucket_row`)."""
PACKED: dict[tuple[str, bytes], int] = {}
"""(lane type, a bucket's lanes as bytes) → its packed count (see :func:`packed_sum`)."""


def lane(channel: int) -> int:
    """The packed form of a count of one in ``channel``."""
    return 1 << (channel * LANE_BITS)


def unpack(packed: int, channels: int) -> list[int]:
    """The per-channel counts held in one packed count."""
    return [(packed >> (channel * LANE_BITS)) & LANE_MASK for channel in range(channels)]


def channel_counts(packed: int) -> list[int]:
    """Every channel's count up to the last non-zero one (JSON ints stay below 2**64)."""
    counts = []
    while packed:
        counts.append(packed & LANE_MASK)
        packed >>= LANE_BITS
    return counts


def split(packed: int) -> tuple[tuple[int, int], ...]:
    """The ``(channel, count)`` pairs of a packed count's non-zero channels, at least one.

    >>> split(lane(0) + 3 * lane(2))
    ((0, 1), (2, 3))
    """
    found = SPLITS.get(packed)
    if found is None:
        if packed < 0:
            raise ValueError("a packed count is never negative")
        pairs = [(channel, count) for channel, count in enumerate(channel_counts(packed)) if count]
        if len(SPLITS) >= _CACHE_LIMIT:
            SPLITS.clear()
        SPLITS[packed] = found = tuple(pairs) or ((0, 0),)
    return found


def bucket_row(packed: int, typecode: str, stride: int) -> array[int]:
    """The ``stride`` lanes of a bucket holding ``packed``; ``OverflowError`` if they do not fit.

    The array is shared (remembered): copy it into a counter's lanes, never change it.
    """
    row = array(typecode, bytes(stride * array(typecode).itemsize))
    for channel, count in split(packed):
        row[channel] = count
    if len(ROWS) >= _CACHE_LIMIT:
        ROWS.clear()
    ROWS[packed, typecode, stride] = row
    return row


def with_count(lanes: array[int], index: int, count: int) -> array[int]:
    """``lanes`` widened until ``count`` fits at ``index``, with it there (a new array)."""
    while True:
        typecode = WIDER[lanes.typecode]
        lanes = array(typecode, lanes)
        try:
            lanes[index] = count
            return lanes
        except OverflowError:
            if typecode == _WIDEST:
                raise


def restrided(lanes: array[int], old: int, stride: int) -> array[int]:
    """The buckets of ``lanes`` (``old`` lanes each) with ``stride`` lanes each (more)."""
    wider = array(lanes.typecode, bytes(len(lanes) // max(old, 1) * stride * lanes.itemsize))
    for bucket in range(len(lanes) // old if old else 0):
        at = bucket * stride
        wider[at : at + old] = lanes[bucket * old : (bucket + 1) * old]
    return wider


def packed_sum(lanes: array[int], stride: int, first: int, stop: int) -> int:
    """The packed sum of buckets ``first .. stop - 1`` of ``lanes`` (``stride`` lanes each)."""
    if stop - first == 1 and lanes.itemsize <= _SPREADABLE:
        # One bucket (most often: the oldest expires): remembered by its bytes.
        raw = lanes[first * stride : stop * stride].tobytes()
        packed = PACKED.get((lanes.typecode, raw))
        if packed is None:
            size = lanes.itemsize  # its lanes spread into 5-byte fields, read as one int
            spread = bytearray(stride * _LANE_BYTES)
            for byte in range(size):
                spread[byte::_LANE_BYTES] = raw[byte::size]
            packed = int.from_bytes(spread, "little")
            if len(PACKED) >= _CACHE_LIMIT:
                PACKED.clear()
            PACKED[lanes.typecode, raw] = packed
        return packed
    packed = 0
    for channel in range(stride):
        count = sum(lanes[first * stride + channel : stop * stride : stride])
        if count:
            packed += count << (channel * LANE_BITS)
    return packed


def window_sums(lanes: array[int], stride: int, lengths: Sequence[int]) -> list[int]:
    """The packed sum of each window's run of buckets (``lengths[w]`` buckets, in order)."""
    sums = []
    first = 0
    for length in lengths:
        stop = first + length
        if length <= _BUCKET_BY_BUCKET:  # few buckets: each remembered by its bytes
            sums.append(sum(packed_sum(lanes, stride, k, k + 1) for k in range(first, stop)))
        else:
            sums.append(packed_sum(lanes, stride, first, stop))
        first = stop
    return sums


def frozen(ids: array[int], lanes: array[int]) -> bytes:
    """A counter's bucket ids and lanes as one bytes object (:func:`thawed` reads it).

    A cold counter keeps this instead of its two arrays: one object and one
    allocation instead of four, about 130 bytes less.
    """
    kind = _ID_TYPES.index(ids.typecode) * len(_LANE_TYPES) + _LANE_TYPES.index(lanes.typecode)
    return b"".join((_KIND_BYTES[kind], ids.tobytes(), lanes.tobytes()))


def thawed(data: bytes, windows: int) -> tuple[array[int], array[int]]:
    """The bucket ids and lanes :func:`frozen` made into ``data`` (ids: ``windows`` runs)."""
    kind = data[0]
    ids = array(_ID_TYPES[kind // len(_LANE_TYPES)])
    lanes = array(_LANE_TYPES[kind % len(_LANE_TYPES)])
    view = memoryview(data)
    header = 1 + 2 * windows * ids.itemsize  # the newest bucket and the length of each run
    ids.frombytes(view[1:header])
    end = header + sum(ids[windows:]) * ids.itemsize
    ids.frombytes(view[header:end])
    lanes.frombytes(view[end:])
    return ids, lanes
