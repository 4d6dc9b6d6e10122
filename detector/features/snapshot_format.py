"""A feature snapshot's format: its header, and what its rows need from it.

A snapshot is one JSON object: ``format``, ``version``, ``feature_schema``,
``windows`` (seconds), ``byteorder``, then the store's counters, its remembered
``fields`` and the three key tables (``actors``, ``ips``, ``targets``: key →
row). A row is the key's cold form, its bytes in base64
(:meth:`~detector.features.state.ActorState.to_row`): writing it copies what
a cold key keeps, where spelling every count out took ten times as long and
stopped a daemon's loop for seconds at each checkpoint. Reading one checks it
as strictly as the spelled-out form was, since the counters go to compiled
kernels that do not check indices.
"""

from __future__ import annotations

import sys
from binascii import a2b_base64, b2a_base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from detector.errors import ConfigError
from detector.features.remembered import RememberedValues
from detector.features.schema import FEATURE_SCHEMA_VERSION
from detector.features.seen import SetLimits

if TYPE_CHECKING:
    from detector.features.spec import WindowSpec
    from detector.features.state import TrackedField

__all__ = [
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "RowFields",
    "check_snapshot",
    "row_bytes",
    "row_text",
    "snapshot_header",
]

SNAPSHOT_FORMAT = "ciwatch-features"
SNAPSHOT_VERSION = 2
"""Version 2 keeps each key as a row of its cold form; version 1, its state spelled out as
JSON (:meth:`~detector.features.state.ActorState.from_snapshot`), is still read."""
_READABLE_VERSIONS = (1, SNAPSHOT_VERSION)


class RowFields:
    """The remembered fields of the store a version 2 snapshot was taken in, against this
    store's: their numbers may differ once the settings track other fields."""

    def __init__(self, written: Any, fields: tuple[TrackedField, ...]) -> None:
        mine = [[field.name, field.limits.remember_first] for field in fields]
        if not isinstance(written, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in written
        ):
            raise ValueError("the snapshot's remembered fields are damaged")
        self._same = written == mine
        self._count = len(written)
        self._names = tuple(str(name) for name, _ in written)
        self._limits = tuple(SetLimits(0.0, 0, remember_first=bool(first)) for _, first in written)
        self._numbers = {field.name: number for number, field in enumerate(fields)}

    def remembered(self, values: Any, sightings: bytes) -> tuple[str | bytes, ...]:
        """An actor's remembered values from its row: their frozen form, renumbered (and
        thawed) if the fields changed, as a version 1 snapshot would be read."""
        frozen = RememberedValues.checked_frozen(values, sightings, self._count)
        if self._same:
            return frozen
        state = RememberedValues.thawed(frozen).to_state(self._names, self._limits)
        return RememberedValues.from_state(self._numbers, state).frozen()


def row_text(data: bytes) -> str:
    """Bytes of a row, as its JSON holds them (base64)."""
    return b2a_base64(data, newline=False).decode("ascii")


def row_bytes(text: Any) -> bytes:
    """The bytes :func:`row_text` wrote; ``ValueError`` (``binascii.Error``) or ``TypeError``."""
    if not isinstance(text, str):
        raise TypeError(f"expected base64 text, not {type(text).__name__}")
    return a2b_base64(text, strict_mode=True)


def snapshot_header(spec: WindowSpec) -> dict[str, Any]:
    """What identifies a snapshot and the windows its counters were built for."""
    return {
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "feature_schema": FEATURE_SCHEMA_VERSION,
        "windows": list(spec.seconds),
        "byteorder": sys.byteorder,  # of the rows' numbers in bytes
    }


def check_snapshot(data: Any, spec: WindowSpec, *, where: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` is a snapshot this store can continue from."""
    if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
        raise ConfigError("not a ciwatch feature snapshot", where=where)
    version = data.get("version")
    if version not in _READABLE_VERSIONS:
        raise ConfigError(
            f"snapshot version {version!r} is not one of {list(_READABLE_VERSIONS)}; "
            "delete it to start with empty state",
            where=where,
        )
    if version > 1 and data.get("byteorder") != sys.byteorder:
        raise ConfigError(
            f"snapshot was written on a {data.get('byteorder')}-endian machine, this one is "
            f"{sys.byteorder}-endian; delete it to start with empty state",
            where=where,
        )
    schema = data.get("feature_schema")
    if schema != FEATURE_SCHEMA_VERSION:
        # Channels mean other things (or are missing) in another schema: counts
        # restored from it would be wrong, not just old.
        raise ConfigError(
            f"snapshot has feature schema {schema!r}, this version uses "
            f"{FEATURE_SCHEMA_VERSION!r}; delete it to start with empty state",
            where=where,
        )
    windows = data.get("windows")
    if not isinstance(windows, list) or [float(seconds) for seconds in windows] != list(
        spec.seconds
    ):
        raise ConfigError(
            f"snapshot was taken with windows of {windows} seconds, the settings say "
            f"{list(spec.seconds)}; delete it or set the old windows again",
            where=where,
        )
