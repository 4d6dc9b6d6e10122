"""What a config names, found and built: model directories, the learner, rule packs.

The pipeline (:mod:`detector.pipeline`) assembles itself from these; the CLI
asks them too (``--learn`` checks :func:`learns`, ``test-rules`` lists
:func:`configured_rules`). Signatures (names, sizes, modification times) let a
running daemon notice changed files cheaply.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from detector.config import BUNDLED, PipelineConfig
from detector.errors import CiwatchError, ConfigError
from detector.resources import bundled_models_dir, pipelines_dir
from detector.rules.loader import load_rules, rule_files
from detector.rules.model import Rule
from detector.scoring.learner import Learner

__all__ = [
    "build_learner",
    "build_rules",
    "configured_rules",
    "learns",
    "model_files_signature",
    "models_directory",
    "rules_signature",
]


def models_directory(config: PipelineConfig, *, fallback: bool = True) -> Path | None:
    """Where fixed models come from: the configured directory, or the bundled one.

    ``models.dir: bundled`` names the bundled models; a null ``models.dir`` falls
    back to them only with ``fallback`` (offline runs), else there are no fixed
    models (the daemon learns its own, see :func:`learns`).
    """
    settings = config.models
    if not settings.enabled or (settings.dir is None and not fallback):
        return None
    if settings.dir is not None and settings.dir != BUNDLED:
        _check_models_dir(settings.dir)
        return settings.dir
    bundled = bundled_models_dir()
    if bundled is None or not any(bundled.glob("*.json")):
        if settings.dir == BUNDLED:
            raise ConfigError("this install ships no models", where="models.dir: bundled")
        return None
    return bundled


def learns(config: PipelineConfig) -> bool:
    """Whether models are learnt where ciwatch runs: enabled, learning on, no fixed directory."""
    models = config.models
    return models.enabled and models.learn.enabled and models.dir is None


def build_learner(config: PipelineConfig, directory: Path) -> Learner:
    """The learner of ``directory`` with the config's ``models`` settings."""
    models = config.models
    return Learner(
        directory,
        models.learn,
        detector=models.detector,
        target_alert_rate=models.target_alert_rate,
    )


def _check_models_dir(directory: Path) -> None:
    """A configured model directory must hold models: else detection is silently rules only."""
    if not directory.is_dir():
        raise ConfigError("no such model directory (models.dir or --models)", where=str(directory))
    if not any(directory.glob("*.json")):
        message = "no models in this directory: `ciwatch train --out DIR` writes them"
        raise ConfigError(message, where=str(directory))


def model_files_signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the model files: cheap change detection."""
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in {".json", ".npz"})
        return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return ()


def rules_signature(config: PipelineConfig) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of every rule file the config loads."""
    roots = [pipelines_dir() / "rules"] if config.rules.bundled else []
    files: list[Path] = []
    for root in [*roots, *config.rules.packs]:
        with contextlib.suppress(CiwatchError):  # a missing pack: loading it reports that
            files.extend(rule_files([root]))
    found = []
    for path in files:
        with contextlib.suppress(OSError):
            status = path.stat()
            found.append((str(path), status.st_size, status.st_mtime_ns))
    return tuple(found)


def configured_rules(config: PipelineConfig) -> list[Rule]:
    """Every rule the config loads: the bundled pack (unless switched off), then its packs."""
    paths = [pipelines_dir() / "rules"] if config.rules.bundled else []
    return load_rules([*paths, *config.rules.packs], tracked=config.features.tracked)


def build_rules(config: PipelineConfig) -> list[Rule]:
    """The rules that run: configured, enabled and not disabled by the config."""
    rules = configured_rules(config)
    unknown = sorted(set(config.rules.disabled) - {rule.id for rule in rules})
    if unknown:
        raise ConfigError(f"unknown rule id {unknown[0]!r}", where="rules.disabled")
    disabled = set(config.rules.disabled)
    return [rule for rule in rules if rule.enabled and rule.id not in disabled]
