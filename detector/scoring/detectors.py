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
  (model files hold only :data:`SAVEABLE` ones: see :mod:`detector.scoring.pyod_detector`)
- ``ensemble`` — the mean of its members' rank-normalized scores; named without
  members, :data:`DEFAULT_ENSEMBLE` (``iforest`` and ``ecod``), the default.

A spec is a name or a mapping ``{"name": ..., "params": {...}}`` (an
ensemble: ``{"name": "ensemble", "members": [spec, ...]}``):

>>> make_detector("iforest").spec
{'name': 'iforest', 'params': {'n_estimators': 200, 'max_samples': 1024}}

A fitted detector's state is plain numeric arrays (``to_arrays``);
:func:`detector_from_arrays` rebuilds it from them and its spec, without pickle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detector.errors import ConfigError
from detector.scoring.base import (
    Arrays,
    Detector,
    Fitted,
    Matrix,
    NotFittedError,
    StateError,
    numeric,
    sample_rows,
)
from detector.scoring.forest import Forest, ForestError, forest_arrays
from detector.scoring.pyod_detector import PYOD_PREFIX, SAVEABLE_PYOD, PyodDetector
from detector.scoring.tail_counts import TailCounts

__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_ENSEMBLE",
    "DETECTORS",
    "SAVEABLE",
    "Detector",
    "DetectorSpec",
    "EnsembleDetector",
    "IsolationForestDetector",
    "Matrix",
    "NotFittedError",
    "PyodDetector",
    "StateError",
    "TailProbabilityDetector",
    "detector_from_arrays",
    "make_detector",
]

DetectorSpec = str | Mapping[str, Any]


class IsolationForestDetector(Fitted):
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
        # Scored from its node arrays, fitted or loaded alike (detector.scoring.forest).
        self._model = Forest.from_arrays(forest_arrays(model))
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        forest: Forest = self._estimator()
        return forest.scores(matrix)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The forest's node arrays (:data:`~detector.scoring.forest.FOREST_ARRAYS`)."""
        forest: Forest = self._estimator()
        return forest.to_arrays()

    def load_arrays(self, arrays: Arrays) -> IsolationForestDetector:
        """This detector, fitted with ``arrays`` from :meth:`to_arrays`."""
        try:
            self._model = Forest.from_arrays(dict(arrays))
        except ForestError as error:
            raise StateError(f"iforest: {error}") from None
        return self


class TailProbabilityDetector(Fitted):
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
        rows = sample_rows(matrix, self._fit_rows, self._seed)
        centred = rows - rows.mean(axis=0)
        spread = np.sqrt((centred**2).mean(axis=0))
        third = (centred**3).mean(axis=0)
        skew = np.sign(np.where(spread > 0, third, 0.0))
        self._model = _tail_model(np.sort(rows, axis=0), skew)
        return self

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """``columns``: the training rows, each column sorted; ``skew``: each column's sign."""
        columns, skew, _, _ = self._estimator()
        return {"columns": columns, "skew": skew}

    def load_arrays(self, arrays: Arrays) -> TailProbabilityDetector:
        """This detector, fitted with ``arrays`` from :meth:`to_arrays`."""
        columns = numeric(arrays, "columns", 2).astype(np.float64)
        skew = numeric(arrays, "skew", 1).astype(np.float64)
        if len(columns) == 0 or columns.shape[1] != len(skew):
            raise StateError("ecod: columns and skew do not fit together")
        if np.any(np.diff(columns, axis=0) < 0):
            raise StateError("ecod: columns are not sorted")
        self._model = _tail_model(columns, skew)
        return self

    def decision_function(self, matrix: Matrix) -> Matrix:
        _, skew, tails, both_tails = self._estimator()
        if matrix.ndim != 2 or matrix.shape[1] != len(skew):
            raise ValueError(f"rows of shape {matrix.shape}, the detector has {len(skew)} columns")
        # Counts of each value's column at or below it and at or above it (see TailCounts),
        # and each tail's -ln((count + 1) / (n + 1)), looked up.
        at_or_below, at_or_above = tails.counts(matrix)
        left, right = tails.surprise[at_or_below], tails.surprise[at_or_above]
        # ECOD's max(max(left, right), the skew's tail or both) is the larger tail where the
        # column is skewed, their sum where not (a sum of tails, each >= 0 or -0.0, is never
        # below the larger one, and where equal it is that very number).
        terms = np.where(both_tails, left + right, np.maximum(left, right))
        scores: Matrix = terms.sum(axis=1)
        return scores


def _tail_model(
    columns: Matrix, skew: Matrix
) -> tuple[Matrix, Matrix, TailCounts, npt.NDArray[np.bool_]]:
    """A fitted ECOD's state: the sorted ``columns``, their ``skew``, the :class:`TailCounts`
    of them, and the columns whose skew points to no tail (0 or NaN): both tails count."""
    return columns, skew, TailCounts.of(columns), ~((skew < 0) | (skew > 0))


class EnsembleDetector(Fitted):
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

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Member i's arrays as ``member<i>.<name>``, its training scores as ``reference<i>``."""
        references: list[Matrix] = self._estimator()
        arrays: dict[str, npt.NDArray[Any]] = {}
        for index, (member, reference) in enumerate(zip(self._members, references, strict=True)):
            arrays[f"reference{index}"] = reference
            arrays.update({f"member{index}.{k}": v for k, v in member.to_arrays().items()})
        return arrays

    def load_arrays(self, arrays: Arrays) -> EnsembleDetector:
        """This ensemble and its members, fitted with ``arrays`` from :meth:`to_arrays`."""
        references = []
        for index, member in enumerate(self._members):
            reference = numeric(arrays, f"reference{index}", 1).astype(np.float64)
            if len(reference) == 0 or np.any(np.diff(reference) < 0):
                raise StateError(f"ensemble: reference{index} is empty or not sorted")
            prefix = f"member{index}."
            own = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            _load(member, own)
            references.append(reference)
        self._model = references
        return self


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
    if name.startswith(PYOD_PREFIX):
        return PyodDetector(name.removeprefix(PYOD_PREFIX), seed=seed, **params)
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


SAVEABLE = ("iforest", "ecod", "ensemble", *(PYOD_PREFIX + name for name in SAVEABLE_PYOD))
"""Detectors a model file can hold (an ensemble if all its members can)."""


def detector_from_arrays(spec: DetectorSpec, arrays: Arrays) -> Detector:
    """The fitted detector ``spec`` names, rebuilt from its :meth:`~Detector.to_arrays`.

    Only numbers are read: nothing is unpickled or imported beyond the classes the
    spec names. Arrays that do not fit the detector raise :class:`StateError`.
    """
    detector = make_detector(spec)
    _load(detector, arrays)
    return detector


def _load(detector: Detector, arrays: Arrays) -> None:
    load = getattr(detector, "load_arrays", None)
    if load is None:
        raise StateError(f"{detector.spec['name']} cannot be read from plain arrays")
    load(arrays)
