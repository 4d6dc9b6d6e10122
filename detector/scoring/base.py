"""The detector contract, shared by :mod:`detector.scoring.detectors` and the pyod wrapper.

Every detector follows pyod's contract (``fit``, then ``decision_function``,
higher = more anomalous) and can hand over its fitted state as plain arrays
(:meth:`Detector.to_arrays`): numbers only, which a model file stores in a
``.npz`` read without pickle and from which the detector is rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from detector.errors import CiwatchError

__all__ = [
    "Arrays",
    "Detector",
    "Matrix",
    "NotFittedError",
    "StateError",
    "numeric",
    "sample_rows",
]

Matrix = npt.NDArray[np.float64]
Arrays = Mapping[str, npt.NDArray[Any]]
"""A detector's fitted state: name → numeric array (no object arrays)."""


class NotFittedError(CiwatchError):
    """A detector was asked to score before it was fitted."""


class StateError(CiwatchError, ValueError):
    """Arrays that cannot be a detector's fitted state (missing, wrong type or shape)."""


@runtime_checkable
class Detector(Protocol):
    """pyod's contract: ``fit(X)``, then ``decision_function(X)``, higher = more anomalous.

    ``spec`` is the canonical mapping :func:`~detector.scoring.detectors.make_detector`
    rebuilds it from (recorded in the model envelope); ``to_arrays`` is its fitted
    state as plain arrays, which ``detector_from_arrays`` turns back into it.
    """

    @property
    def spec(self) -> dict[str, Any]: ...

    def fit(self, matrix: Matrix) -> Detector: ...

    def decision_function(self, matrix: Matrix) -> Matrix: ...

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]: ...


class Fitted:
    """Holds the fitted state; raises :class:`NotFittedError` until there is one."""

    _name = "detector"

    def __init__(self) -> None:
        self._model: Any = None

    def _estimator(self) -> Any:
        if self._model is None:
            raise NotFittedError("score requested before fit", where=self._name)
        return self._model


def sample_rows(matrix: Matrix, limit: int | None, seed: int) -> Matrix:
    """``matrix``, or a seeded random ``limit`` of its rows (in their order) if it has more."""
    if limit is None or len(matrix) <= limit:
        return matrix
    chosen = np.random.default_rng(seed).choice(len(matrix), limit, replace=False)
    sampled: Matrix = matrix[np.sort(chosen)]
    return sampled


def numeric(arrays: Arrays, name: str, ndim: int) -> npt.NDArray[Any]:
    """``arrays[name]`` if a numeric array of ``ndim`` dimensions, else :class:`StateError`."""
    value = arrays.get(name)
    if value is None:
        raise StateError(f"missing array {name!r}")
    if value.dtype.kind not in "biuf" or value.ndim != ndim:
        raise StateError(f"array {name!r} is not {ndim}-dimensional numbers")
    return value
