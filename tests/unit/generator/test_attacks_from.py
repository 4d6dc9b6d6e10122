"""``--attacks-from DAY``: clean days first (a learning period), every attack after them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from detector.cli import main
from detector.errors import ConfigError
from detector.generator import ATTACK_IDS, ATTACKS_FROM, generate, labels
from detector.generator.world import START, isoformat
from tests.unit.generator.test_shape import digest

# Digest of generate(7, 10, 20) taken before --attacks-from existed: the default keeps it.
BEFORE_ATTACKS_FROM = "0a2aeff07da15c27aa8b37613a6ca4967682de9d302a6370b374bb8645446c1c"


def test_the_default_gives_the_same_bytes_as_before_and_no_label_for_it() -> None:
    world = generate(7, 10, 20)
    assert digest(world) == BEFORE_ATTACKS_FROM
    assert digest(generate(7, 10, 20, attacks_from=ATTACKS_FROM)) == BEFORE_ATTACKS_FROM
    assert "attacks_from" not in labels(world)


def test_every_attack_falls_on_the_day_asked_or_later_and_is_labeled() -> None:
    world = generate(3, 25, 20, attacks_from=15)
    found = labels(world)
    first_day = START + timedelta(days=15)
    assert found["attacks_from"] == 15
    assert sorted(attack["id"] for attack in found["attacks"]) == sorted(ATTACK_IDS)
    assert all(attack["start"] >= isoformat(first_day) for attack in found["attacks"])
    attack_records = [
        record
        for scenario in world.scenarios.values()
        if scenario.kind
        for record in scenario.records
    ]
    assert min(record.time for record in attack_records) >= first_day
    kinds = {attack["kind"] for attack in found["attacks"]}
    assert kinds == {"rule", "behavioural"}


def test_the_days_before_are_the_clean_history_of_the_same_organisation() -> None:
    first_day = START + timedelta(days=15)
    attacked = generate(3, 25, 20, attacks_from=15)
    clean = generate(3, 25, 20, attacks=False)
    before = [record.doc for record in attacked.records if record.time < first_day]
    assert before == [record.doc for record in clean.records if record.time < first_day]
    assert before


def test_the_cli_writes_labels_whose_attacks_all_start_on_or_after_the_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--seed", "5", "--days", "18", "--attacks-from", "15"]
    assert main(["generate", "--out", str(tmp_path), *options]) == 0
    found = orjson.loads((tmp_path / "labels.json").read_bytes())
    starts = [attack["start"] for attack in found["attacks"]]
    assert len(starts) == len(ATTACK_IDS)
    assert min(starts) >= isoformat(START + timedelta(days=15))
    assert max(attack["end"] for attack in found["attacks"]) < found["end"]
    assert "attacks from day 15" in capsys.readouterr().out


@pytest.mark.parametrize(("day", "days"), [(1, 25), (25, 25), (30, 25), (3, 3)])
def test_a_day_outside_two_to_the_last_is_one_line_exit_status_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], day: int, days: int
) -> None:
    out = tmp_path / "out"
    options = ["--days", str(days), "--attacks-from", str(day)]
    assert main(["generate", "--out", str(out), *options]) == 2
    error = f"attacks-from: must be from 2 to {days - 1}, a day of the {days} generated"
    assert capsys.readouterr().err == f"ciwatch: error: {error}\n"
    assert not out.exists()
    with pytest.raises(ConfigError, match="attacks-from"):
        generate(7, days, attacks_from=day)
