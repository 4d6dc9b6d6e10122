"""The scorer's model input: feature_rows / feature_matrix over observations."""

from __future__ import annotations

import math

import numpy as np

from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.features.vector import FeatureVector
from detector.scoring.scorer import feature_matrix, feature_rows
from tests.unit.features.helpers import event

AGE = "actor.age_days"


def observations() -> list[Observation]:
    store = FeatureStore(FeatureSettings())
    return [
        store.observe(event(n * 600.0, actor=f"user{n % 3}", number=n, privileged=n % 4 == 0))
        for n in range(60)
    ]


def test_scorer_rows_split_off_the_age_and_keep_mappings_without_one() -> None:
    observed = observations()
    vectors = [o.features for o in observed]
    assert all(isinstance(vector, FeatureVector) for vector in vectors)
    names = FAMILIES["code"].features
    expected = np.array([[vector[name] for name in names] for vector in vectors], dtype=np.float64)
    matrix, ages = feature_rows(observed, names)
    assert matrix.flags.c_contiguous and matrix.tobytes() == expected.tobytes()
    assert ages.tolist() == [vector[AGE] for vector in vectors] and max(ages) > 0
    assert feature_matrix(observed, names).tobytes() == expected.tobytes()
    assert feature_rows([], names)[0].shape == (0, len(names))
    hand_made = [Observation(event(0.0), features={"a": 2.0, "b": 1}) for _ in range(2)]
    matrix, ages = feature_rows(hand_made, ("b", "a"))
    assert matrix.tolist() == [[1.0, 2.0], [1.0, 2.0]] and ages.tolist() == [math.inf, math.inf]
