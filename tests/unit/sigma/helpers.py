"""Shared helpers for the Sigma tests: convert our own rule texts, load and run them.

Every Sigma rule in these tests was written for them (original text, not copied from
SigmaHQ or any other repository: this project never commits fetched rule content).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from detector.cli.replay import with_model_options
from detector.config import PipelineConfig
from detector.pipeline import Pipeline
from detector.rules.loader import load_rules
from detector.rules.model import Rule
from detector.sigma import Conversion, convert_texts, write_pack
from detector.sources.record import Position, RawRecord


def convert(*texts: str) -> Conversion:
    """Convert Sigma YAML texts (dedented), named rule0.yml, rule1.yml ..."""
    return convert_texts({f"rule{n}.yml": textwrap.dedent(text) for n, text in enumerate(texts)})


def only_rule(text: str) -> dict[str, Any]:
    """The one converted rule of ``text``; fails with the reason when it did not convert."""
    conversion = convert(text)
    assert not conversion.skipped, conversion.skipped
    assert len(conversion.converted) == 1
    return conversion.converted[0].rule


def skip_reason(text: str) -> str:
    conversion = convert(text)
    assert not conversion.converted, conversion.converted
    assert len(conversion.skipped) == 1
    return conversion.skipped[0].reason


def load_converted(conversion: Conversion, directory: Path) -> list[Rule]:
    """Write the converted rules as packs and load them as ciwatch does."""
    return load_rules(write_pack(conversion.converted, directory))


def alerting_rules(rules: list[Rule], docs: Iterable[Any]) -> list[str]:
    """The rule ids that alert when ``docs`` go through the real pipeline (no models)."""
    config = with_model_options(PipelineConfig(), None, True)
    pipeline = Pipeline.from_config(config, rules=rules)
    records = [
        RawRecord(json.dumps(doc).encode(), Position("sample", n)) for n, doc in enumerate(docs)
    ]
    outcome = pipeline.process(records)
    assert not outcome.dead_letters, outcome.dead_letters
    alerts = [*outcome.alerts, *pipeline.finish()]
    return sorted({alert.detection.name for alert in alerts})
