"""A pipeline counts an IP's or a target's events only when a rule or a model reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import PipelineConfig, load_config
from detector.events.model import Event
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.features.vector_table import feature_table
from detector.pipeline import Pipeline
from detector.rules.reads import features_read, kinds_read
from tests.unit.features.helpers import event
from tests.unit.rules.factories import rule
from tests.unit.test_rule_reload import touch

SHARED_REPO = """
rules:
  - id: shared-repo
    title: Many people on one repository
    description: Three people acted on one repository within the hour.
    runbook: Check who needs it.
    kind: match
    severity: medium
    where: {{source: github_audit, features.target.distinct_actors.1h: {{gte: {least}}}}}
    summary: "{{actor}} on {{target}}"
"""


def configured(tmp_path: Path, pack_text: str) -> Path:
    pack = tmp_path / "rules.yaml"
    pack.write_text(pack_text)
    path = tmp_path / "ciwatch.yaml"
    path.write_text(f"rules: {{bundled: false, packs: ['{pack}']}}\nmodels: {{enabled: false}}\n")
    return path


def on_one_repo() -> list[Event]:
    return [event(60.0 * n, actor=f"user{n}", target="acme/api", number=n) for n in range(4)]


def test_rules_read_the_features_their_conditions_and_summaries_name() -> None:
    condition = rule(kind="match", where={"features.ip.failures.1h": {"gte": 5}})
    summary = rule(
        id="other",
        kind="match",
        where={"source": "github_audit"},
        summary="{actor} by {features[target.distinct_actors.1h]}",
    )
    assert features_read([condition]) == {"ip.failures.1h"}
    assert features_read([summary]) == {"target.distinct_actors.1h"}
    assert kinds_read([condition, summary], models=False) == ("actor", "ip", "target")
    assert kinds_read([], models=False) == ("actor",)
    assert kinds_read([], models=True) == ("actor", "ip")  # ip.distinct_actors.1h


def test_the_default_pipeline_counts_no_target_and_names_no_target_feature() -> None:
    pipeline = Pipeline.from_config(PipelineConfig())
    (observation,) = pipeline.observe(on_one_repo()[:1])[0]
    assert pipeline.features.kinds == {"actor", "ip"}
    assert pipeline.features.key_counts["target"] == 0
    assert "ip.distinct_actors.1h" in observation.features
    assert not [name for name in observation.features if name.startswith("target.")]
    with pytest.raises(KeyError):
        feature_table([observation.features], ("target.distinct_actors.1h",))


def test_a_rule_reading_a_target_feature_has_targets_counted(tmp_path: Path) -> None:
    pipeline = Pipeline.from_config(load_config(configured(tmp_path, SHARED_REPO.format(least=3))))
    assert pipeline.features.kinds == {"actor", "target"}
    alerts = pipeline.process_events(on_one_repo())
    assert [alert.detection.actor for alert in alerts] == ["user2", "user3"]
    assert alerts[0].detection.features["target.distinct_actors.1h"] == 3


def test_rules_reloaded_to_read_a_kind_have_it_counted_from_then_on(tmp_path: Path) -> None:
    path = configured(tmp_path, "rules: []\n")
    pipeline = Pipeline.from_config(load_config(path))
    assert pipeline.features.kinds == {"actor"}
    events = on_one_repo()
    assert pipeline.process_events(events[:2]) == []
    touch(tmp_path / "rules.yaml", SHARED_REPO.format(least=2))
    assert pipeline.reload_rules(load_config(path))
    assert pipeline.features.kinds == {"actor", "target"}
    # The target's actors counted from the reload on: the third is the second it saw.
    assert [alert.detection.actor for alert in pipeline.process_events(events[2:])] == ["user3"]


def test_a_store_names_the_kinds_it_counts_or_is_handed() -> None:
    settings = FeatureSettings()
    actor_only = FeatureStore(settings, kinds=("actor",)).feature_names
    handed = FeatureStore(settings, kinds=("actor",), carried=("ip",)).feature_names
    assert not [name for name in actor_only if name.startswith(("ip.", "target."))]
    assert "actor.events.5m" in actor_only and "event.failure" in actor_only
    assert set(handed) - set(actor_only) == {
        name for name in FeatureStore(settings).feature_names if name.startswith("ip.")
    }
