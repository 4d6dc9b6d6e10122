"""``pyod:<Name>``: any detector class of ``pyod.models``, and which of them a model file can hold.

A model file holds plain arrays only (:mod:`detector.scoring.envelope`). The
pyod detectors whose fitted state is nothing but numbers and numeric arrays
— :data:`SAVEABLE_PYOD` (ECOD, COPOD, HBOS) — are saved attribute by
attribute and rebuilt by setting those attributes on a new instance of the
class, so they score exactly as before. The others keep objects (pyod's
IForest a scikit-learn forest, KNN a ball tree, ...); saving them is refused
with :class:`~detector.scoring.base.StateError` (``iforest`` covers IForest).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.errors import ConfigError
from detector.scoring.base import Arrays, Fitted, Matrix, StateError, sample_rows

__all__ = ["PYOD_PREFIX", "SAVEABLE_PYOD", "PyodDetector"]

PYOD_PREFIX = "pyod:"
SAVEABLE_PYOD = ("COPOD", "ECOD", "HBOS")
"""pyod classes whose fitted state is plain numbers and arrays (checked again when saving)."""

_PYOD_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How an attribute is stored: a numeric array, or a number kept as a 0-d array whose
# Python or numpy type comes back on load (pyod compares types in places).
_KINDS = ("array", "numpy", "python")
# pyod class → module where the module is not simply the lowercased class name.
_PYOD_MODULES = {
    "AutoEncoder": "auto_encoder",
    "DeepSVDD": "deep_svdd",
    "FeatureBagging": "feature_bagging",
    "KDE": "kde",
    "LODA": "loda",
    "LUNAR": "lunar",
    "SUOD": "suod",
    "VAE": "vae",
}


class PyodDetector(Fitted):
    """Any detector class of ``pyod.models`` (imported when first built, pyod is slow to load).

    ``fit_rows`` (ciwatch's, not pyod's): fit on at most that many rows, drawn at
    random with the seed. For detectors that keep their training data and
    compare every scored row with it (ECOD, COPOD, KNN), it bounds the model
    file's size and the cost of each scoring call, whatever the length of the history.
    """

    def __init__(
        self, class_name: str, *, seed: int = 0, fit_rows: int | None = None, **params: Any
    ) -> None:
        super().__init__()
        self._class = _pyod_class(class_name)
        self._class_name = class_name
        self._name = f"{PYOD_PREFIX}{class_name}"
        self._params = dict(params)
        self._fit_rows = fit_rows
        self._seed = seed
        if "random_state" in _init_parameters(self._class) and "random_state" not in params:
            self._params["random_state"] = seed

    @property
    def spec(self) -> dict[str, Any]:
        extra = {} if self._fit_rows is None else {"fit_rows": self._fit_rows}
        return {"name": self._name, "params": {**self._params, **extra}}

    def fit(self, matrix: Matrix) -> PyodDetector:
        model = self._class(**self._params)
        with _quiet_constant_columns():
            model.fit(sample_rows(matrix, self._fit_rows, self._seed))
        self._model = model
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        model = self._estimator()
        hist = getattr(model, "hist_", None)
        if isinstance(hist, np.ndarray) and hist.ndim == 2 and matrix.shape[1] != hist.shape[1]:
            # HBOS indexes its tables in compiled code without bounds checks.
            raise StateError(f"{self._name}: {matrix.shape[1]} features, fitted on {hist.shape[1]}")
        with _quiet_constant_columns():
            scores = model.decision_function(matrix)
        return np.asarray(scores, dtype=np.float64)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The fitted attributes, ``<kind>.<attribute>``; :class:`StateError` if not plain data."""
        model = self._estimator()
        if self._class_name not in SAVEABLE_PYOD:
            raise StateError(f"{self._name} keeps objects, not plain arrays")
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name, value in vars(model).items():
            if isinstance(value, str) or value is None:
                continue  # constructor parameters, in the spec
            arrays[f"{_kind(self._name, name, value)}.{name}"] = np.asarray(value)
        return arrays

    def load_arrays(self, arrays: Arrays) -> PyodDetector:
        """This detector, fitted with ``arrays`` from :meth:`to_arrays`."""
        if self._class_name not in SAVEABLE_PYOD:
            raise StateError(f"{self._name} cannot be read from plain arrays")
        model = self._class(**self._params)
        for key, value in arrays.items():
            kind, _, name = key.partition(".")
            if kind not in _KINDS or not _ATTRIBUTE.match(name) or name.startswith("__"):
                raise StateError(f"unexpected array {key!r}")
            if callable(getattr(self._class, name, None)) or value.dtype.kind not in "biuf":
                raise StateError(f"array {key!r} is not a numeric attribute")
            if kind == "array" or value.ndim != 0:
                setattr(model, name, value)
            else:
                setattr(model, name, value.item() if kind == "python" else value[()])
        _check_shapes(self._name, model)
        self._model = model
        return self


def _kind(detector: str, name: str, value: Any) -> str:
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return "array"
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return "numpy"
    if isinstance(value, bool | int | float):
        return "python"
    raise StateError(f"{detector} holds {name} as {type(value).__name__}, not plain data")


def _check_shapes(name: str, model: Any) -> None:
    """HBOS scores in compiled code that does not check bounds: its tables must fit together."""
    hist, edges = getattr(model, "hist_", None), getattr(model, "bin_edges_", None)
    if hist is None and edges is None:
        return
    if not (
        isinstance(hist, np.ndarray)
        and isinstance(edges, np.ndarray)
        and hist.ndim == edges.ndim == 2
        and edges.shape == (hist.shape[0] + 1, hist.shape[1])
        and getattr(model, "n_bins", None) == hist.shape[0]
    ):
        raise StateError(f"{name}: histogram and bin edges do not fit together")


@contextlib.contextmanager
def _quiet_constant_columns() -> Iterator[None]:
    """Silence scipy's warning on the skew of a constant column (ECOD, COPOD).

    Features that never vary in a family's training rows are common (a flag
    nobody raised) and harmless: pyod turns the NaN skew into 0. Left alone,
    the warning would be printed on every scoring call of the daemon.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        yield


def _pyod_class(class_name: str) -> Any:
    where = f"detector {PYOD_PREFIX}{class_name}"
    if not _PYOD_NAME.match(class_name):
        raise ConfigError("not a pyod class name", where=where)
    module_name = _PYOD_MODULES.get(class_name, class_name.lower())
    try:
        module = importlib.import_module(f"pyod.models.{module_name}")
    except ImportError as error:
        message = f"pyod.models has no {module_name} module ({error})"
        raise ConfigError(message, where=where) from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ConfigError(f"pyod.models.{module_name} has no class {class_name}", where=where)
    return found


def _init_parameters(cls: type) -> tuple[str, ...]:
    return tuple(inspect.signature(cls).parameters)
