"""The envelope seam: one class per shipper or cloud transport, registered by name.

An envelope is an object (or a Fluentd ``[time, record]`` list) that carries vendor
events inside it: a CloudTrail S3 file, a Logstash document whose ``message`` holds
the raw event, a CloudWatch Logs subscription payload. Each envelope says cheaply
whether a document is one of its own (:attr:`Envelope.triggers`, one set
intersection with the document's keys, then :meth:`Envelope.matches`) and opens it
(:meth:`Envelope.open`) into :class:`Inner` items, each with the shipper's time as
a fallback for an event that carries none. Only the inner event's fields are parsed.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, TypeAlias, TypeVar

from detector.errors import CiwatchError
from detector.events.fields import is_mapping
from detector.events.model import SkipReason
from detector.sources.framing import CompressionError, DecompressedTooLargeError, decompress

__all__ = [
    "ENVELOPES",
    "Envelope",
    "EnvelopeError",
    "Inner",
    "Opening",
    "Reader",
    "b64decode",
    "base64_payload",
    "decompressed",
    "is_object",
    "items_of",
    "register",
]


class EnvelopeError(CiwatchError, ValueError):
    """An envelope recognised but impossible to open (bad base64, gzip, a missing payload).

    The normalizer turns it into a ``bad_envelope`` dead letter naming the envelope.
    """


class Inner(NamedTuple):
    """One item inside an envelope.

    ``value`` is an object, a list of items, or a JSON text (``str``/``bytes``) that
    the normalizer decodes with its own size and depth limits. ``fallback_time`` is
    the shipper's time for this item (any form ``parse_time`` reads), used only
    when the inner event carries no time of its own. A named tuple: one is made per
    event, and a frozen dataclass costs several times as much to build.
    """

    value: Any
    fallback_time: Any = None


@dataclass(frozen=True, slots=True)
class Reader:
    """How envelopes read payloads within the normalizer's limits.

    ``decode`` turns JSON text into a value or raises ``ValueError`` saying why (too
    large, too deep, not JSON); ``max_bytes`` bounds what a decompressed payload may be.
    """

    decode: Callable[[str | bytes], Any]
    max_bytes: int


Opening: TypeAlias = Sequence[Inner] | SkipReason | None
"""What :meth:`Envelope.open` returns: the items (an empty batch is skipped), a known
non-event, or None when a closer look shows the document is not this envelope after all."""


class Envelope(ABC):
    """Recognises and opens one kind of wrapper.

    ``triggers``: keys of which at least one must be present for :meth:`matches` to be
    asked (an empty set with ``for_lists`` means the envelope reads top-level lists).
    ``priority`` orders candidates when several match: lower is tried first.
    """

    name: ClassVar[str]
    triggers: ClassVar[frozenset[str]] = frozenset()
    for_lists: ClassVar[bool] = False
    priority: ClassVar[int] = 50

    @abstractmethod
    def matches(self, doc: Any) -> bool:
        """True if ``doc`` has this envelope's shape. Must be cheap and never raise."""

    @abstractmethod
    def open(self, doc: Any, reader: Reader) -> Opening:
        """The items inside ``doc``; raises :class:`EnvelopeError` when it cannot be opened."""


ENVELOPES: dict[str, type[Envelope]] = {}

_E = TypeVar("_E", bound=type[Envelope])


def register(cls: _E) -> _E:
    """Class decorator adding an envelope to :data:`ENVELOPES` under its ``name``."""
    if cls.name in ENVELOPES:
        raise ValueError(f"envelope {cls.name!r} registered twice")
    ENVELOPES[cls.name] = cls
    return cls


def b64decode(text: Any, what: str) -> bytes:
    """Strict base64 (RFC 4648) of a payload field, or :class:`EnvelopeError` saying which."""
    if not isinstance(text, str | bytes):
        raise EnvelopeError(f"{what} is {type(text).__name__}, not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"{what} is not valid base64: {exc}") from None


def decompressed(data: bytes, max_bytes: int, what: str) -> bytes:
    """``data`` decompressed when it starts with a gzip or zstd magic, at most ``max_bytes``.

    Bounded so that a small hostile payload cannot expand into gigabytes in memory.
    """
    try:
        return decompress(data, max_bytes)
    except CompressionError as exc:
        raise EnvelopeError(f"{what} is not valid {exc}") from None
    except DecompressedTooLargeError as exc:
        raise EnvelopeError(f"{what}: {exc}") from None


def base64_payload(text: Any, reader: Reader, what: str) -> bytes:
    """A base64 payload field, decompressed when gzip or zstd, within ``reader``'s bound."""
    return decompressed(b64decode(text, what), reader.max_bytes, what)


def items_of(batch: Any, what: str, fallback_time: Any = None) -> list[Inner]:
    """Every element of a batch list as an item, or :class:`EnvelopeError` if not a list."""
    if not isinstance(batch, list):
        raise EnvelopeError(f"{what} is {type(batch).__name__}, not a list")
    return [Inner(item, fallback_time) for item in batch]


is_object = is_mapping
"""True for a JSON object (parsed JSON is a dict; the ABC check is for other mappings).

:func:`~detector.events.fields.is_mapping`: a ``Mapping`` check that answers JSON's other
types without the ABC, whose "no" costs several dict lookups. Shippers' fields are often
strings (Logstash asks it of every ECS and GitHub record's ``event``).
"""
