"""Pipeline config: defaults, the bundled file, one-line errors naming the key, path resolution."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detector.config import PipelineConfig, default_config_path, load_config
from detector.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_the_bundled_file_states_the_defaults() -> None:
    assert load_config(default_config_path()) == load_config(None)
    bundled = load_config(None)
    defaults = PipelineConfig()
    assert bundled.features == defaults.features
    assert bundled.normalizer == defaults.normalizer
    assert bundled.alerts == defaults.alerts
    assert bundled.rules == defaults.rules


def test_an_empty_file_is_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == PipelineConfig()


def test_durations_and_change_windows_are_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "features: {learning_period: 14d, allowed_lateness: 2m}\n"
            "change_windows:\n"
            "  - {days: [tue], start: '09:00', end: '17:00', timezone: Europe/Berlin}\n",
        )
    )
    assert config.features.learning_period == timedelta(days=14)
    assert config.features.allowed_lateness == timedelta(minutes=2)
    assert len(config.change_windows) == 1


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("features: {learning_perod: 7d}", "features.learning_perod", "unknown setting"),
        ("normalizer: {max_depth: 0}", "normalizer.max_depth", "greater than 0"),
        ("features: {windows: [5 minutes]}", "features.windows.0", "duration"),
        ("rules: {disabled: 3}", "rules.disabled", ""),
        ("bogus: 1", "bogus", "unknown setting"),
    ],
)
def test_a_bad_key_is_one_line_naming_it(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    line = str(error.value)
    assert "\n" not in line
    assert line.startswith(f"{path}:1: {where}: ")
    assert message in line


def test_a_bad_key_names_its_line(tmp_path: Path) -> None:
    text = "features:\n  learning_period: 14d\n\n  windows:\n    - 5m\n    - 5 minutes\n"
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert str(error.value).startswith(f"{tmp_path / 'pipeline.yaml'}:6: features.windows.1: ")


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "features:\n  windows: [5m\n")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+: not valid YAML"):
        load_config(path)


def test_a_list_at_the_top_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- 1\n"))


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "rules: {packs: [mine]}\ntaxonomy: {dirs: [tax]}\n"))
    assert config.rules.packs == (tmp_path / "mine",)
    assert config.taxonomy.dirs == (tmp_path / "tax",)
