"""Tests of what operators deploy: the image, the Helm chart, the dashboards and alert rules."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository: the files under test live beside the package, not inside it."""
