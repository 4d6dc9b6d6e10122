"""The held-out organisations of bench/detection.py: apart from everything used for tuning."""

from __future__ import annotations

import argparse

import pytest
from heldout import HELD_OUT, select

from detector.cli.generate import add_shape_options, add_world_options, shape_from
from detector.generator import DEFAULT_SHAPE, MAX_PEOPLE, MIN_PEOPLE

TUNING_SEEDS = {7, 3, 11, 5, 6, 101}  # the tests', the demo's and the bundled models' worlds


def test_held_out_seeds_and_shapes_are_apart_from_the_tuning_ones() -> None:
    seeds = [seed for held in HELD_OUT for seed in (held.seed, held.history_seed)]
    assert len(set(seeds)) == len(seeds) and min(seeds) >= 1000
    assert not TUNING_SEEDS & set(seeds)
    assert all(held.shape != DEFAULT_SHAPE for held in HELD_OUT)
    sizes = [held.people for held in HELD_OUT]
    assert sizes == sorted(sizes) and sizes[0] <= 25 and sizes[-1] == MAX_PEOPLE >= MIN_PEOPLE


def test_each_organisations_generate_options_give_its_shape() -> None:
    parser = argparse.ArgumentParser()
    add_world_options(parser, days=7)
    add_shape_options(parser)
    for held in HELD_OUT:
        args = parser.parse_args(held.generate_options())
        assert (args.people, args.days) == (held.people, held.days)
        assert shape_from(args) == held.shape, held.name


def test_quick_is_the_small_ones_and_an_unknown_name_is_refused() -> None:
    assert [held.name for held in select(None, quick=True)] == [
        "startup-night-owls",
        "platform-team",
    ]
    assert [held.name for held in select(["large-org"], quick=False)] == ["large-org"]
    with pytest.raises(SystemExit, match="unknown held-out organisation 'nope'"):
        select(["nope"], quick=False)
