"""A detector's arrays as ``.npz`` bytes: written reproducibly, read without pickle.

:func:`write_npz` stores each array in numpy's ``.npy`` format inside a
deflated zip whose entries carry a fixed time, so the same fitted detector
gives the same bytes (and the same SHA-256) on every run. :func:`read_npz`
reads with ``allow_pickle=False``: an object array — the one way an ``.npz``
can carry a pickle — raises :class:`NpzError` instead of being unpickled.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.errors import CiwatchError

__all__ = ["NpzError", "read_npz", "write_npz"]

# What numpy and zipfile raise on bytes that are not what they expect.
_READ_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    KeyError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip entry can carry


class NpzError(CiwatchError, ValueError):
    """Bytes that are not an ``.npz`` of plain numeric arrays."""


def write_npz(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """``arrays`` as the bytes of a compressed ``.npz`` (entries in name order).

    Object arrays are refused: they would be written as pickles.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            array = np.asarray(arrays[name])
            if array.dtype.hasobject:
                raise NpzError(f"array {name!r} holds Python objects, not numbers")
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            with archive.open(entry, "w", force_zip64=True) as file:
                np.lib.format.write_array(file, array, allow_pickle=False)
    return buffer.getvalue()


def read_npz(content: bytes) -> dict[str, npt.NDArray[Any]]:
    """Every array of an ``.npz``; :class:`NpzError` (one line) for anything else in it."""
    if not content.startswith(b"PK\x03\x04"):
        raise NpzError("not an .npz (zip) file")
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except _READ_ERRORS as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NpzError(f"not an .npz of plain arrays: {first}") from None
