"""Anomaly detectors behind one small contract, registered by name.

Every detector follows pyod's contract: :meth:`Detector.fit` on a training
matrix, then :meth:`Detector.decision_function` gives one raw score per row,
**higher = more anomalous**; scoring before fitting raises
:class:`NotFittedError`. Detectors know nothing of thresholds or features:
training (:mod:`detector.scoring.training`) calibrates those around them.

Names (:data:`DETECTORS`, plus any ``pyod:<Name>`` that ``pyod.models`` has):

- ``iforest`` — scikit-learn ``IsolationForest`` (200 trees).
- ``ecod`` — ECOD's per-feature tail probabilities, scored against the
  training rows only (pyod's ECOD ranks each batch with them: batch-dependent).
- ``pyod:IForest``, ``pyod:ECOD``, ``pyod:HBOS``, ``pyod:COPOD``, ...
- ``ensemble`` — the mean of its members' rank-normalized scores; named without
  members, :data:`DEFAULT_ENSEMBLE` (``iforest`` and ``ecod``), the default.

A spec is a name or a mapping ``{"name": ..., "params": {...}}`` (an
ensemble: ``{"name": "ensemble", "members": [spec, ...]}``):

>>> make_detector("iforest").spec
{'name': 'iforest', 'params': {'n_estimators': 200, 'max_samples': 1024}}
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from detector.errors import CiwatchError, ConfigError
from detector.scoring.forest import forest_scores

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_ENSEMBLE",
    "DETECTORS",
    "Detector",
    "DetectorSpec",
    "EnsembleDetector",
    "IsolationForestDetector",
    "Matrix",
    "NotFittedError",
    "PyodDetector",
    "TailProbabilityDetector",
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

    def __getstate__(self) -> dict[str, Any]:
        # Whether the fast loop agrees is checked again wherever the artifact is loaded.
        return {key: value for key, value in self.__dict__.items() if key != "_fast"}

    def decision_function(self, matrix: Matrix) -> Matrix:
        model = self._estimator()
        # The loop of detector.scoring.forest, once checked against scikit-learn's own.
        agreed: bool | None = getattr(self, "_fast", None)
        if agreed is not False:
            fast = forest_scores(model, matrix)
            if agreed is None:
                agreed = fast is not None and np.allclose(fast, -model.score_samples(matrix))
                self._fast = agreed
            if agreed and fast is not None:
                return fast
        # score_samples is higher for normal points; flip it to pyod's direction.
        scores: Matrix = -np.asarray(model.score_samples(matrix), dtype=np.float64)
        return scores


class TailProbabilityDetector(_Fitted):
    """ECOD (Li et al., 2022) scored against the training rows alone.

    Per feature, the left and right tail probabilities of a value among the
    training values (``(count + 1) / (n + 1)``, so a value beyond every
    training value scores ``ln(n + 1)`` and never infinity), as ``-ln``; the
    larger tail, or the one the training skew points to, summed over the
    features. pyod's ``ECOD`` ranks each scored batch together with the
    training rows, so a row's score depends on the rows scored with it; here
    it does not, and replay and the daemon agree whatever their batches.
    ``fit_rows``: training rows kept (a seeded random sample beyond that).
    """

    _name = "ecod"

    def __init__(self, *, seed: int = 0, fit_rows: int = 20_000) -> None:
        super().__init__()
        self._seed = seed
        self._fit_rows = fit_rows

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self._name, "params": {"fit_rows": self._fit_rows}}

    def fit(self, matrix: Matrix) -> TailProbabilityDetector:
        rows = _sample_rows(matrix, self._fit_rows, self._seed)
        centred = rows - rows.mean(axis=0)
        spread = np.sqrt((centred**2).mean(axis=0))
        third = (centred**3).mean(axis=0)
        skew = np.sign(np.where(spread > 0, third, 0.0))
        self._model = (np.sort(rows, axis=0), skew)
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        columns, skew = self._estimator()
        count = len(columns)
        at_or_below = np.column_stack(
            [np.searchsorted(columns[:, j], matrix[:, j], side="right") for j in range(len(skew))]
        ).reshape(matrix.shape)
        at_or_above = count - np.column_stack(
            [np.searchsorted(columns[:, j], matrix[:, j], side="left") for j in range(len(skew))]
        ).reshape(matrix.shape)
        left = -np.log((at_or_below + 1) / (count + 1))
        right = -np.log((at_or_above + 1) / (count + 1))
        skewed = np.where(skew < 0, left, np.where(skew > 0, right, left + right))
        scores: Matrix = np.maximum(np.maximum(left, right), skewed).sum(axis=1)
        return scores


def _sample_rows(matrix: Matrix, limit: int | None, seed: int) -> Matrix:
    """``matrix``, or a seeded random ``limit`` of its rows (in their order) if it has more."""
    if limit is None or len(matrix) <= limit:
        return matrix
    chosen = np.random.default_rng(seed).choice(len(matrix), limit, replace=False)
    sampled: Matrix = matrix[np.sort(chosen)]
    return sampled


class PyodDetector(_Fitted):
    """Any detector class of ``pyod.models`` (imported when first built, pyod is slow to load).

    ``fit_rows`` (ciwatch's, not pyod's): fit on at most that many rows, drawn at
    random with the seed. For detectors that keep their training data and
    compare every scored row with it (ECOD, COPOD, KNN), it bounds the artifact's
    size and the cost of each scoring call, whatever the length of the history.
    """

    def __init__(
        self, class_name: str, *, seed: int = 0, fit_rows: int | None = None, **params: Any
    ) -> None:
        super().__init__()
        self._class = _pyod_class(class_name)
        self._name = f"{_PYOD_PREFIX}{class_name}"
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
            model.fit(_sample_rows(matrix, self._fit_rows, self._seed))
        self._model = model
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        with _quiet_constant_columns():
            scores = self._estimator().decision_function(matrix)
        return np.asarray(scores, dtype=np.float64)


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


DEFAULT_DETECTOR = "ensemble"
"""What training fits unless told otherwise (``models.detector`` in the config)."""

DEFAULT_ENSEMBLE: tuple[DetectorSpec, ...] = ("iforest", "ecod")
"""The members of ``ensemble`` named without members: trees that isolate unusual
combinations, and per-feature tail probabilities that see a value beyond any trained
one even on a feature that never varied in training (a tree cannot split on it)."""


def _iforest(params: Mapping[str, Any], seed: int) -> Detector:
    return IsolationForestDetector(seed=seed, **params)


def _ecod(params: Mapping[str, Any], seed: int) -> Detector:
    return TailProbabilityDetector(seed=seed, **params)


DETECTORS: dict[str, Callable[[Mapping[str, Any], int], Detector]] = {
    "iforest": _iforest,
    "ecod": _ecod,
}
"""Detector name → factory ``(params, seed) -> Detector``; ``pyod:<Name>`` and ``ensemble`` too."""


def make_detector(spec: DetectorSpec, *, seed: int = 0) -> Detector:
    """A new, unfitted detector from a name or a ``{"name", "params" | "members"}`` mapping.

    Unknown names and malformed specs raise :class:`ConfigError`.
    """
    name, params, members = _parse_spec(spec)
    if name == "ensemble":
        chosen = DEFAULT_ENSEMBLE if members is None else members
        return EnsembleDetector([make_detector(member, seed=seed) for member in chosen])
    if name.startswith(_PYOD_PREFIX):
        return PyodDetector(name.removeprefix(_PYOD_PREFIX), seed=seed, **params)
    factory = DETECTORS.get(name)
    if factory is None:
        known = ", ".join([*sorted(DETECTORS), "ensemble", "pyod:<Name>"])
        raise ConfigError(f"unknown detector {name!r} (known: {known})", where="detector")
    return factory(params, seed)


def _parse_spec(
    spec: DetectorSpec,
) -> tuple[str, dict[str, Any], Sequence[DetectorSpec] | None]:
    """Name, params and members (``None``: not given) of a spec, checked."""
    if isinstance(spec, str):
        return spec, {}, None
    unknown = set(spec) - {"name", "params", "members"}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)}", where="detector")
    name = spec.get("name")
    params = spec.get("params", {})
    members = spec.get("members")
    if not isinstance(name, str):
        raise ConfigError("a detector spec needs a string 'name'", where="detector.name")
    if not isinstance(params, Mapping):
        raise ConfigError("'params' must be a mapping", where=f"detector {name}.params")
    if members is not None and (not isinstance(members, list) or name != "ensemble"):
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
