"""Recognising one line of a pretty-printed JSON document that arrived as a record of its own.

A shipper that tails a pretty-printed file line by line (or a producer that sends
``json.dumps(indent=2)`` output split on newlines) delivers ``{``, then
``"eventVersion": "1.08",`` and so on, each as one record. Those are not events
that happen to be broken but a framing mistake upstream: the dead letter says so.

    >>> looks_like_fragment(b'  "eventVersion": "1.08",')
    True
    >>> looks_like_fragment(b"not json at all")
    False
"""

from __future__ import annotations

import re

__all__ = ["FRAGMENT_DETAIL", "looks_like_fragment"]

FRAGMENT_DETAIL = (
    "looks like one line of a pretty-printed JSON document that was split into records: "
    "send whole documents (JSON Lines, an array, or one object per message)"
)

_STRING = rb'"(?:[^"\\\n]|\\.)*"'
_SCALAR = rb"(?:" + _STRING + rb"|-?\d[\d.eE+-]*|true|false|null)"
_FRAGMENT = re.compile(
    rb"[ \t]*(?:"
    rb"[\[\]{},]{1,4}"  # {   },   ]   [{   }]   ],
    rb"|" + _STRING + rb"[ \t]*:.*"  # "key": value,   "key": {   "key": [
    rb"|" + _SCALAR + rb"[ \t]*,"  # an array item: "x",   42,
    rb"|[}\]][ \t]*,?[ \t]*[{\[]"  # }, {
    rb"|[{\[][ \t]*" + _STRING + rb"[ \t]*:.*[,{\[:]"  # {"eventVersion": "1.08",
    rb")[ \t\r]*",
    re.S,
)
_MAX_FRAGMENT_BYTES = 1 << 14


def looks_like_fragment(value: bytes) -> bool:
    """True if ``value`` is one line of pretty-printed JSON rather than a document.

    Only single lines are considered; whole documents never match (the caller asks
    only about records that failed to decode).
    """
    text = value.strip()
    if not text or len(text) > _MAX_FRAGMENT_BYTES or b"\n" in text:
        return False
    return _FRAGMENT.fullmatch(text) is not None
