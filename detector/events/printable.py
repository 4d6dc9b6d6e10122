"""Text from input made safe to show: control characters escaped, length bounded.

Event fields come from whoever can write an audit record (a user name, a user
agent, a repository name). Put raw into an alert summary or onto a terminal, a
NUL truncates it in C-based tools, ``\\x1b[...`` recolours or rewrites the
screen and ``\\r`` overwrites what came before. :func:`printable` turns every
such character into a visible ``\\x00``-style escape.

It lives in the events layer, upstream of rules, scoring, alerts and the demo,
so that every one of them can use the same function.
"""

from __future__ import annotations

__all__ = ["MAX_TEXT", "printable"]

MAX_TEXT = 200
"""The default bound on one field's printed length: a summary stays one readable line."""

_ELLIPSIS = "…"
_C0_C1 = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
# Line separators and bidirectional overrides reorder or break what a reader sees
# ("trojan source"); they are not C0/C1 but do the same harm on a terminal.
_LAYOUT = [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES: dict[int, str] = {code: f"\\x{code:02x}" for code in _C0_C1} | {
    code: f"\\u{code:04x}" for code in _LAYOUT
}


def printable(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with control characters as ``\\x1b``-style escapes, at most ``limit`` long.

    C0 and C1 controls (NUL, ESC, CR, LF, tab, DEL, ...), line separators and
    bidirectional overrides are escaped; everything else, backslashes included,
    is kept. A longer result is cut, never inside an escape, and ends in ``…``.
    """
    escaped = text.translate(_ESCAPES)
    if len(escaped) <= limit:
        return escaped
    room = max(limit - len(_ELLIPSIS), 0)
    pieces: list[str] = []
    used = 0
    for char in text:
        piece = _ESCAPES.get(ord(char), char)
        if used + len(piece) > room:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + _ELLIPSIS
