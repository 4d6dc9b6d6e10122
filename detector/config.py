"""Typed pipeline settings: one YAML file (``pipelines/default.yaml`` is the default).

Every section is a frozen pydantic model that rejects unknown keys, so a typo
fails at start-up with one line naming the file and the key::

    ciwatch: error: my.yaml: features.learning_perod: unknown setting

Relative paths in the file (rule packs, taxonomy directories) are resolved
against the file's own directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from detector.alerts.risk import RiskSettings
from detector.errors import ConfigError
from detector.events.normalizer import AUTO
from detector.events.parsers import PARSERS
from detector.features.dedup import DuplicateSettings
from detector.features.durations import DurationOrOff
from detector.features.settings import FeatureSettings
from detector.resources import pipelines_dir
from detector.rules.context import ChangeWindow
from detector.scoring.detectors import DEFAULT_DETECTOR
from detector.scoring.learn_settings import LearnSettings
from detector.service_settings import ServiceSettings, apply_environment
from detector.yamlfile import line_of, read_yaml_file

__all__ = [
    "BUNDLED",
    "AlertSettings",
    "EvidenceSettings",
    "ModelSettings",
    "NormalizerSettings",
    "PipelineConfig",
    "RuleSettings",
    "TaxonomySettings",
    "default_config_path",
    "load_config",
]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _known_log_type(name: str) -> str:
    # Checked here, not only by Normalizer, so the error names normalizer.formats.<stream>
    # and its line in the file rather than the stream alone.
    if name != AUTO and name not in PARSERS:
        known = ", ".join([AUTO, *sorted(PARSERS)])
        raise PydanticCustomError("unknown_log_type", f"unknown log type {name!r} (known: {known})")
    return name


LogType = Annotated[str, AfterValidator(_known_log_type)]
"""A registered parser name (``cloudtrail``, ``okta_system_log``, ...) or ``auto``."""


class NormalizerSettings(_Section):
    max_record_bytes: int = Field(default=1 << 20, gt=0)
    max_depth: int = Field(default=64, gt=0)
    max_decompressed_bytes: int = Field(default=64 << 20, gt=0)
    """A compressed record (a gzip or zstd Kafka message) inflates to at most this much."""
    default_format: str | None = None
    """A log type that replaces detection for every stream not in ``formats``; None
    detects per record (and an unrecognised record is an ``unknown_format`` dead letter)."""
    formats: dict[str, LogType] = {}
    """Stream → log type, skipping auto-detection for that stream: a Kafka topic name, or a
    file path as the file source reports it (the path as given; inside a directory given,
    that directory joined with the path below it; ``-`` for standard input)."""
    max_future_skew: DurationOrOff = timedelta(hours=1)
    """``ciwatch run`` dead-letters events dated further ahead of its wall clock than this
    (``future_time``); 0 or null switches the check off. Replay never compares with the clock."""


class TaxonomySettings(_Section):
    dirs: tuple[Path, ...] = ()
    """Taxonomy directories loaded after the bundled one (later entries refine earlier)."""
    automation: tuple[str, ...] = ()
    """Actor globs that are machines (CI bots, deploy roles) in every source."""


class RuleSettings(_Section):
    bundled: bool = True
    """Load the default rule pack shipped with ciwatch."""
    packs: tuple[Path, ...] = ()
    """More rule files or directories of ``*.yaml``."""
    disabled: tuple[str, ...] = ()
    """Rule ids to switch off."""


class AlertSettings(_Section):
    max_evidence: int = Field(default=50, gt=0)
    max_open: int = Field(default=100_000, gt=0)


class EvidenceSettings(_Section):
    """What an anomaly needs to become an alert (docs/models.md, "Evidence")."""

    actor_quantile: float = Field(default=0.95, ge=0.5, lt=1.0)
    """A feature is evidence only above the actor's own quantile of it (streaming estimate)."""
    population_quantile: float = Field(default=0.95, ge=0.5, le=0.95)
    """... and above the population's quantile recorded in the model (median to p95)."""
    min_actor_rows: int = Field(default=10, ge=1)
    """Rows of an actor before its own quantile counts; until then the population's alone."""
    population_margin: float = Field(default=0.5, ge=0.0, le=5.0)
    """How far (log1p units) a count must lie beyond the population's quantile to be evidence."""
    score_every_row: bool = False
    """Also score rows with nothing beyond the population's quantile: they never alert, but
    their high scores are then counted as ``without_evidence`` (docs/models.md)."""


BUNDLED = Path("bundled")
"""``models.dir: bundled``: the models shipped with ciwatch (trained on a generated world)."""


class ModelSettings(_Section):
    dir: Path | None = None
    """Model directory (``ciwatch train --out``), or ``bundled``; None: learn in the state
    directory (``ciwatch run``, ``ciwatch replay --learn``)."""
    enabled: bool = True
    """Score events with the anomaly models beside the rules."""
    detector: str = DEFAULT_DETECTOR
    """What ``ciwatch train`` fits: ensemble (isolation forest + ECOD), iforest, pyod:ECOD, ..."""
    target_alert_rate: float = Field(default=0.001, gt=0, lt=0.5)
    """Share of training events above the alert threshold."""
    evidence: EvidenceSettings = EvidenceSettings()
    """An anomaly alerts only with a feature beyond the actor's and the population's quantile."""
    learn: LearnSettings = LearnSettings()
    """How the daemon learns its models when ``dir`` is null (docs/models.md, "Learning")."""


class PipelineConfig(_Section):
    """Everything detection needs; identical in run, replay and demo."""

    normalizer: NormalizerSettings = NormalizerSettings()
    taxonomy: TaxonomySettings = TaxonomySettings()
    features: FeatureSettings = FeatureSettings()
    duplicates: DuplicateSettings = DuplicateSettings()
    rules: RuleSettings = RuleSettings()
    change_windows: tuple[ChangeWindow, ...] = ()
    alerts: AlertSettings = AlertSettings()
    risk: RiskSettings = RiskSettings()
    models: ModelSettings = ModelSettings()
    service: ServiceSettings = ServiceSettings()


def default_config_path() -> Path:
    return pipelines_dir() / "default.yaml"


def load_config(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read and validate a pipeline file; ConfigError names the file and the key.

    ``environ``: the ``CIWATCH_*`` overrides to apply (see
    :mod:`detector.service_settings`); ``None`` reads none, so replays and tests
    do not depend on the caller's environment. ``ciwatch run`` passes ``os.environ``.
    """
    path = path or default_config_path()
    data = read_yaml_file(path, ConfigError, what="config")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of settings at the top", where=str(path))
    applied = apply_environment(data, environ) if environ is not None else []
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        # The line is found only now, by composing the file again (loading keeps none).
        line = line_of(path, exc.errors()[0]["loc"])
        where = f"{path}{f':{line}' if line is not None else ''}: {_location(exc)}"
        if applied:
            where += f" (environment: {', '.join(applied)})"
        raise ConfigError(_first_problem(exc), where=where) from None
    return _resolve_paths(config, path.parent)


def _location(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return ".".join(str(part) for part in error["loc"]) or "(top)"


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    if error["type"] == "extra_forbidden":
        return "unknown setting"
    message: str = error["msg"]
    return message if len(exc.errors()) == 1 else f"{message} (and {len(exc.errors()) - 1} more)"


def _resolve_paths(config: PipelineConfig, base: Path) -> PipelineConfig:
    def resolved(paths: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(p if p.is_absolute() else base / p for p in paths)

    changes: dict[str, Any] = {
        "taxonomy": config.taxonomy.model_copy(update={"dirs": resolved(config.taxonomy.dirs)}),
        "rules": config.rules.model_copy(update={"packs": resolved(config.rules.packs)}),
    }
    if config.models.dir not in (None, BUNDLED):
        (models_dir,) = resolved((config.models.dir,))
        changes["models"] = config.models.model_copy(update={"dir": models_dir})
    return config.model_copy(update=changes)
