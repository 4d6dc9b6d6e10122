"""Anomaly detectors behind one small contract, registered by name.

Every detector follows pyod's contract: :meth:`Detector.fit` on a training
matrix, then :meth:`Detector.decision_function` gives one raw score per row,
**higher = more anomalous**; scoring before fitting raises
:class:`NotFittedError`. Detectors know nothing of thresholds or features:
training (:mod:`detector.scoring.training`) calibrates those around them.

Names (:data:`DETECTORS`, plus any ``pyod:<Name>`` that ``pyod.models`` has):

- ``iforest`` — scikit-learn ``IsolationForest`` (the default; 200 trees).
- ``pyod:IForest``, ``pyod:ECOD``, ``pyod:HBOS``, ``pyod:COPOD``, ...
- ``ensemble`` — the mean of its members' rank-normalized scores.

A spec is a name or a mapping ``{"name": ..., "params": {...}}`` (an
ensemble: ``{"name": "ensemble", "members": [spec, ...]}``):

>>> make_detector("iforest").spec
{'name': 'iforest', 'params': {'n_estimators': 200, 'max_samples': 1024}}
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from detector.errors import CiwatchError, ConfigError

__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorSpec",
    "EnsembleDetector",
    "IsolationForestDetector",
    "Matrix",
    "NotFittedError",
    "PyodDetector",
    "make_detector",
]

Matrix = npt.NDArray[np.float64]
DetectorSpec = str | Mapping[str, Any]

_PYOD_PREFIX = "pyod:"
_PYOD_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
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


class NotFittedError(CiwatchError):
    """A detector was asked to score before it was fitted."""


@runtime_checkable
class Detector(Protocol):
    """pyod's contract: ``fit(X)``, then ``decision_function(X)``, higher = more anomalous.

    ``spec`` is the canonical mapping :func:`make_detector` rebuilds it from
    (recorded in the model envelope).
    """

    @property
    def spec(self) -> dict[str, Any]: ...

    def fit(self, matrix: Matrix) -> Detector: ...

    def decision_function(self, matrix: Matrix) -> Matrix: ...


class _Fitted:
    """Holds the fitted estimator; raises :class:`NotFittedError` until there is one."""

    _name = "detector"

    def __init__(self) -> None:
        self._model: Any = None

    def _estimator(self) -> Any:
        if self._model is None:
            raise NotFittedError("score requested before fit", where=self._name)
        return self._model


class IsolationForestDetector(_Fitted):
    """scikit-learn's ``IsolationForest``; the raw score is minus ``score_samples``.

    Defaults: 200 trees of up to 1024 samples each (fewer if the training set
    is smaller). scikit-learn's usual 256 caps a tree's depth at 8, and every
    point far beyond the training range then isolates at about the same depth:
    a 150-repo sweep would score like a 20-repo one.
    """

    _name = "iforest"

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        super().__init__()
        self._params = {"n_estimators": 200, "max_samples": 1024, **params}
        self._seed = seed

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self._name, "params": dict(self._params)}

    def fit(self, matrix: Matrix) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

        params = dict(self._params)
        if isinstance(params["max_samples"], int):
            params["max_samples"] = min(params["max_samples"], len(matrix))
        model = IsolationForest(**params, random_state=self._seed)
        model.fit(matrix)
        self._model = model
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        # score_samples is higher for normal points; flip it to pyod's direction.
        scores: Matrix = -np.asarray(self._estimator().score_samples(matrix), dtype=np.float64)
        return scores


class PyodDetector(_Fitted):
    """Any detector class of ``pyod.models`` (imported when first built, pyod is slow to load)."""

    def __init__(self, class_name: str, *, seed: int = 0, **params: Any) -> None:
        super().__init__()
        self._class = _pyod_class(class_name)
        self._name = f"{_PYOD_PREFIX}{class_name}"
        self._params = dict(params)
        if "random_state" in _init_parameters(self._class) and "random_state" not in params:
            self._params["random_state"] = seed

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self._name, "params": dict(self._params)}

    def fit(self, matrix: Matrix) -> PyodDetector:
        model = self._class(**self._params)
        model.fit(matrix)
        self._model = model
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        return np.asarray(self._estimator().decision_function(matrix), dtype=np.float64)


class EnsembleDetector(_Fitted):
    """The mean of its members' scores, each mapped to its rank among its training scores.

    Rank normalization (the share of training scores at or below a score,
    see :func:`_rank`) puts members with different scales on one scale
    before averaging.
    """

    _name = "ensemble"

    def __init__(self, members: Sequence[Detector]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble needs at least one member", where="detector.members")
        self._members = tuple(members)

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self._name, "members": [member.spec for member in self._members]}

    def fit(self, matrix: Matrix) -> EnsembleDetector:
        self._model = [
            np.sort(member.fit(matrix).decision_function(matrix)) for member in self._members
        ]
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        references: list[Matrix] = self._estimator()
        ranks = [
            _rank(member.decision_function(matrix), reference)
            for member, reference in zip(self._members, references, strict=True)
        ]
        mean: Matrix = np.mean(ranks, axis=0).astype(np.float64)
        return mean


def _rank(scores: Matrix, reference: Matrix) -> Matrix:
    """The share of ``reference`` (sorted) at or below each score, extended past its maximum.

    Beyond the highest training score the rank keeps growing (1 + distance
    past the maximum in units of the maximum's distance from the median), so
    an ensemble can still tell a far outlier from the most unusual training row.
    """
    ranks = np.searchsorted(reference, scores, side="right") / len(reference)
    top = reference[-1]
    scale = max(float(top - reference[len(reference) // 2]), 1e-12)
    beyond: Matrix = np.where(scores > top, 1.0 + (scores - top) / scale, ranks)
    return beyond


def _iforest(params: Mapping[str, Any], seed: int) -> Detector:
    return IsolationForestDetector(seed=seed, **params)


DETECTORS: dict[str, Callable[[Mapping[str, Any], int], Detector]] = {
    "iforest": _iforest,
}
"""Detector name → factory ``(params, seed) -> Detector``; ``pyod:<Name>`` and ``ensemble`` too."""


def make_detector(spec: DetectorSpec, *, seed: int = 0) -> Detector:
    """A new, unfitted detector from a name or a ``{"name", "params" | "members"}`` mapping.

    Unknown names and malformed specs raise :class:`ConfigError`.
    """
    name, params, members = _parse_spec(spec)
    if name == "ensemble":
        return EnsembleDetector([make_detector(member, seed=seed) for member in members])
    if name.startswith(_PYOD_PREFIX):
        return PyodDetector(name.removeprefix(_PYOD_PREFIX), seed=seed, **params)
    factory = DETECTORS.get(name)
    if factory is None:
        known = ", ".join([*sorted(DETECTORS), "ensemble", "pyod:<Name>"])
        raise ConfigError(f"unknown detector {name!r} (known: {known})", where="detector")
    return factory(params, seed)


def _parse_spec(spec: DetectorSpec) -> tuple[str, dict[str, Any], list[DetectorSpec]]:
    if isinstance(spec, str):
        return spec, {}, []
    unknown = set(spec) - {"name", "params", "members"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", where="detector")
    name = spec.get("name")
    params = spec.get("params", {})
    members = spec.get("members", [])
    if not isinstance(name, str):
        raise ConfigError("a detector spec needs a string 'name'", where="detector.name")
    if not isinstance(params, Mapping):
        raise ConfigError("'params' must be a mapping", where=f"detector {name}.params")
    if not isinstance(members, list) or (members and name != "ensemble"):
        raise ConfigError("'members' is a list, for 'ensemble' only", where=f"detector {name}")
    if name == "ensemble" and params:
        raise ConfigError("an ensemble takes 'members', not 'params'", where="detector ensemble")
    return name, dict(params), members


def _pyod_class(class_name: str) -> Any:
    where = f"detector {_PYOD_PREFIX}{class_name}"
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
