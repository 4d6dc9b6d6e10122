"""Where the files shipped with ciwatch (pipelines, taxonomy, rule packs) are."""

from __future__ import annotations

from pathlib import Path

__all__ = ["bundled_models_dir", "pipelines_dir"]


def pipelines_dir() -> Path:
    """The ``pipelines/`` directory: in a source checkout or inside the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_pipelines", here.parent / "pipelines"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("ciwatch's bundled pipelines/ directory is missing from the install")


def bundled_models_dir() -> Path | None:
    """The ``models/`` shipped with ciwatch (a small model trained on a generated world)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_models", here.parent / "models"):
        if candidate.is_dir():
            return candidate
    return None
