"""The normalizer a config describes: bundled taxonomy and overlays, formats, limits.

The pipeline (``run``, ``replay``, ``demo``), ``train``, the rule tests and the
scale-out stages build their normalizer here, so that they normalize alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from detector.config import PipelineConfig
from detector.events.normalizer import AUTO, Limits, Normalizer
from detector.events.taxonomy import Taxonomy, bundled_taxonomy_dir

__all__ = ["build_normalizer"]


def build_normalizer(
    config: PipelineConfig, *, wall_clock: Callable[[], datetime] | None = None
) -> Normalizer:
    """The normalizer with the bundled taxonomy, the configured overlays and limits.

    With a ``wall_clock``, events further ahead of it than ``max_future_skew`` are
    ``future_time`` dead letters (the daemon); without, none are (replay, normalize).
    """
    taxonomy = Taxonomy.from_dirs(
        [bundled_taxonomy_dir(), *config.taxonomy.dirs], automation=config.taxonomy.automation
    )
    settings = config.normalizer
    return Normalizer(
        taxonomy,
        formats=settings.formats,
        default_format=settings.default_format or AUTO,
        limits=Limits(
            settings.max_record_bytes, settings.max_depth, settings.max_decompressed_bytes
        ),
        clock=wall_clock,
        max_future_skew=settings.max_future_skew,
    )
