"""The Markdown model card written next to each model: what it is, what it learnt, its limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.features.families import FAMILIES
from detector.scoring.calibration import HIGH_SCORE, THRESHOLD_SCORE
from detector.scoring.training import TrainedModel

__all__ = ["model_card"]


def model_card(model: TrainedModel, envelope: Mapping[str, Any]) -> str:
    """The card for ``model``, from the same numbers as its envelope."""
    family = FAMILIES.get(model.family)
    about = family.about if family is not None else "(family unknown to this version)"
    training = envelope["training"]
    calibration = model.calibration
    lines = [
        f"# Model card: `{model.family}` anomaly model",
        "",
        f"**What it scores**: {about}. One score per event of this family, from the "
        "features the event's actor, IP and target show at that moment.",
        "",
        "## Training data",
        "",
        f"- Window (event time): {training['first'] or 'unknown'} to "
        f"{training['last'] or 'unknown'}",
        f"- Rows: {training['rows']} events of {training['actors']} actors "
        "(late events and actors with under a day of history left out)",
        f"- Created: {envelope['created_at']}",
        f"- Libraries: {', '.join(f'{k} {v}' for k, v in envelope['libraries'].items())}",
        "",
        "## Detector and threshold",
        "",
        f"- Detector: `{_compact(envelope['detector'])}`; features transformed with `log1p`",
        f"- Target alert rate: {calibration.target_alert_rate:g} of events; raw threshold "
        f"{calibration.threshold:.6g} (the training score that at most that share reach)",
        f"- Scores are mapped to [0, 1]: the threshold is {THRESHOLD_SCORE}, "
        f"high severity from {HIGH_SCORE} (see docs/models.md)",
        "",
        "Raw training-score distribution:",
        "",
        "| percentile | raw score |",
        "|---|---|",
        *(f"| {name} | {value:.6g} |" for name, value in calibration.percentiles.items()),
        "",
        "## Features",
        "",
        f"Schema hash `{model.schema_hash}`.",
        "",
        "| feature | population median | population p95 |",
        "|---|---|---|",
        *(
            f"| `{name}` | {stats.median:g} | {stats.p95:g} |"
            for name, stats in model.population.items()
        ),
        "",
        "## Caveats",
        "",
        "- Train on **your own** organisation's history: what is unusual depends on how your "
        "people and bots work. A model trained on generated or another organisation's data "
        "only shows the mechanics.",
        "- The model learns whatever the training window contained, attacks included; keep "
        "known incidents out of it and retrain when the way people work changes.",
        "- An anomaly is unusual, not necessarily malicious: read the explanation (top features "
        "against the actor's and the population's usual values) before acting.",
        "",
    ]
    return "\n".join(lines)


def _compact(spec: Mapping[str, Any]) -> str:
    name = spec.get("name", "?")
    if "members" in spec:
        return f"{name}({', '.join(_compact(member) for member in spec['members'])})"
    params = ", ".join(f"{key}={value}" for key, value in sorted(spec.get("params", {}).items()))
    return f"{name}({params})"
