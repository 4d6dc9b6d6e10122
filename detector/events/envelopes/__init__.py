"""Envelopes: shippers and cloud transports that carry vendor events, opened before parsing.

Importing this package registers every envelope in :data:`ENVELOPES`; the normalizer
opens documents with an :class:`Opener`. :func:`unwrap` is the plain form for tools
and tests: the documents inside one decoded value, without limits or fallback times.
"""

from __future__ import annotations

import functools
from typing import Any

from detector.events.decoding import decode_json
from detector.events.envelopes import (  # noqa: F401  (each module registers its envelopes)
    azure_diagnostic,
    cloudtrail_digest,
    cloudtrail_lake,
    cloudtrail_lookup,
    cloudtrail_s3,
    cloudwatch_logs,
    eventbridge,
    firehose,
    fluent,
    kafka_connect,
    kinesis,
    logstash,
    pubsub,
    sample_fixture,
    splunk_hec,
    vector,
    wazuh,
)
from detector.events.envelopes.base import (
    ENVELOPES,
    Envelope,
    EnvelopeError,
    Inner,
    Opening,
    Reader,
    register,
)
from detector.events.envelopes.walk import MAX_LEVELS, Failed, Found, Opener

__all__ = [
    "ENVELOPES",
    "MAX_LEVELS",
    "Envelope",
    "EnvelopeError",
    "Failed",
    "Found",
    "Inner",
    "Opener",
    "Opening",
    "Reader",
    "register",
    "unwrap",
]

_UNLIMITED = 1 << 30


_PLAIN = Reader(decode_json, _UNLIMITED)


def unwrap(doc: Any) -> list[Any]:
    """The documents inside ``doc`` (``[doc]`` when it is no envelope), in order.

    Known non-events are left out; an envelope that cannot be opened is returned as is.
    """
    opener = _opener()
    return [
        item.doc if isinstance(item, Found) else item.value
        for item in opener.open(doc, _PLAIN)
        if isinstance(item, Found | Failed)
    ]


@functools.cache
def _opener() -> Opener:
    # Built on first use, once every envelope module (also later plug-ins) is registered.
    return Opener()
