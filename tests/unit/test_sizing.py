"""The default key caps fit the Helm chart's default memory limit, with a quarter spare.

The figures below are measured, not computed here: ``python bench/memory.py
--restore`` (docs/sizing.md shows its table). This test only does the
arithmetic, so that a cap or a limit changed alone fails it: a pod whose cap
outgrows its limit is OOM-killed while restoring its checkpoint, and again
after every restart.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from detector.config import load_config
from detector.features.dedup import DuplicateSettings
from detector.features.settings import FeatureSettings
from detector.resources import pipelines_dir

MiB = 2**20

# Measured with `python bench/memory.py --restore` (2-core CI machine, Python 3.11, bundled
# rules and models): the baseline on 2026-12-01 at commit ba2786a plus the issue-12 memory
# changes; the actors on 2026-12-04 (issue 15, the checkpoint written and read a part at a
# time: `--actors 100000 --max-keys 1000000`).
MEASURED_BASELINE_BYTES = 222 * MiB
"""Peak RSS of a fresh process that built the pipeline: 46 rules, the bundled models."""
MEASURED_BYTES_PER_ACTOR = 5_000
"""Per actor (with its own IP keys, rule state and share of the dedup memory), the largest
of: the running RSS, which writing a checkpoint no longer raises, and the peak RSS of a
fresh process restoring that checkpoint (lower, since it is read a line at a time): 4,231 B
running above the baseline at 100,000 actors, rounded up."""
NUMBA_BYTES = 160 * MiB
"""What a daemon holds on top, whatever its keys: numba and its compiled kernels (100-160 MiB,
docs/daemon.md); and, counted from the settings, the arenas of its hot window counters
(actors; IPs and targets: ``features.arena_bytes`` each, filled as they are used)."""
MEASURED_BYTES_PER_EVENT_ID = 200
"""One remembered event id of the duplicate check (``duplicates.max_ids`` per source)."""
SOURCES = 4
"""Log types a deployment reads, each with its own ``max_ids`` (the generated world's four)."""
HEADROOM = 0.75

_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def quantity(text: str) -> float:
    """A Kubernetes memory quantity (``1Gi``, ``512Mi``, ``2G``) in bytes."""
    match = _QUANTITY.fullmatch(str(text))
    assert match, f"not a memory quantity: {text!r}"
    return float(match[1]) * _UNITS[match[2]]


def chart_values() -> dict[str, Any]:
    path = pipelines_dir().parent / "helm" / "ciwatch" / "values.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(values, dict)
    return values


def needed(max_keys: int, max_ids: int, arena_bytes: int) -> float:
    """Bytes a replica needs at its caps: baseline, arenas, actors at the cap, remembered ids."""
    ids = max_ids * SOURCES * MEASURED_BYTES_PER_EVENT_ID
    keys = max_keys * MEASURED_BYTES_PER_ACTOR
    return MEASURED_BASELINE_BYTES + NUMBA_BYTES + 2 * arena_bytes + keys + ids


def test_the_default_caps_fit_the_charts_memory_limit_with_a_quarter_spare() -> None:
    values = chart_values()
    limit = quantity(values["resources"]["limits"]["memory"])
    configured: dict[str, Any] = values.get("config") or {}
    features = FeatureSettings(**configured.get("features", {}))
    duplicates = DuplicateSettings(**configured.get("duplicates", {}))
    need = needed(features.max_keys, duplicates.max_ids, features.arena_bytes)
    assert need <= HEADROOM * limit, (
        f"max_keys {features.max_keys:,} and arena_bytes {features.arena_bytes / MiB:,.0f} MiB"
        f" need {need / MiB:,.0f} MiB,"
        f" over {HEADROOM:.0%} of the chart's {limit / MiB:,.0f} MiB limit (docs/sizing.md)"
    )


def test_the_request_covers_the_baseline_and_the_limit_is_above_it() -> None:
    resources = chart_values()["resources"]
    request = quantity(resources["requests"]["memory"])
    limit = quantity(resources["limits"]["memory"])
    assert MEASURED_BASELINE_BYTES < request <= limit


def test_the_default_yaml_and_the_code_agree_on_the_caps() -> None:
    config = load_config()
    assert config.features.max_keys == FeatureSettings().max_keys
    assert config.duplicates.max_ids == DuplicateSettings().max_ids
    assert config.features.arena_bytes == FeatureSettings().arena_bytes


def test_a_cap_raised_alone_would_not_fit() -> None:
    # A million keys need ~5 GiB (docs/sizing.md): raised without the limit, the check fails.
    # (Before the checkpoint was streamed, 200,000, the default before sizing, did not fit.)
    ids, arena = DuplicateSettings().max_ids, FeatureSettings().arena_bytes
    assert needed(1_000_000, ids, arena) > quantity("2Gi")
    assert needed(200_000, ids, 32 * MiB) <= HEADROOM * quantity("2Gi")
    # Arenas of 1 GiB each do not fit beside the default cap either.
    assert needed(FeatureSettings().max_keys, ids, 1024 * MiB) > HEADROOM * quantity("2Gi")
