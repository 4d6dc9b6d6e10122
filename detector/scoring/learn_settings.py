"""The ``models.learn`` settings: how the daemon learns its models (:mod:`.learner`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from detector.features.durations import Duration

__all__ = ["LearnSettings"]


class LearnSettings(BaseModel):
    """The ``models.learn`` section: how the daemon learns its own models (docs/models.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    """Learn in the state directory when ``models.dir`` is null."""
    learning_period: Duration = timedelta(days=14)
    """No anomaly alerts until this much event time after the first row; scored and counted."""
    retrain_every: Duration = timedelta(days=1)
    window: Duration = timedelta(days=30)
    """Each training uses the rows of this much event time before the cut."""
    check_period: Duration = timedelta(days=1)
    """The newest rows held out of training to check the new models on."""
    per_day_rows: int = Field(default=2000, gt=0)
    """Rows kept per family and event day (a deterministic sample)."""
    keep_generations: int = Field(default=5, ge=1)
    max_alert_rate_factor: float = Field(default=5.0, ge=1.0)
    """A new model may alert on at most this many times the target rate of held-out rows."""
