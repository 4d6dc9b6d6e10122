"""The profile pool reads and counts hours as HourOfWeekProfile does, and hands back the
very profile counting it the plain way leaves."""

from __future__ import annotations

import random

import numpy as np
import pytest

from detector.features import profile as profile_module
from detector.features import profile_pool
from detector.features.profile import HOURS_PER_WEEK, HourOfWeekProfile
from detector.features.profile_pool import ProfilePool


def hours_of(seed: int, count: int, spread: int) -> list[int]:
    """``count`` hours of the week, most of them among ``spread`` usual ones."""
    chosen = random.Random(seed)
    usual = chosen.sample(range(HOURS_PER_WEEK), spread)
    return [
        chosen.choice(usual) if chosen.random() < 0.9 else chosen.randrange(HOURS_PER_WEEK)
        for _ in range(count)
    ]


def counted_both_ways(streams: list[list[int]], stretch: int, *, cycle: bool) -> None:
    """Each actor's hours counted in a plain profile and in the pool (``stretch`` events a
    call, the actors' events interleaved), the reads held to each other; with ``cycle``, each
    actor goes cold (the pool's profile taken back) and hot again after every stretch."""
    plain = [HourOfWeekProfile() for _ in streams]
    pool = ProfilePool()
    for slot, profile in enumerate(plain):
        pool.load(slot, profile)
    events = [
        (slot, hour) for hours in zip(*streams, strict=True) for slot, hour in enumerate(hours)
    ]
    for start in range(0, len(events), stretch):
        chunk = events[start : start + stretch]
        slots = np.array([slot for slot, _ in chunk], np.int64)
        read, past = pool.read_then_add(slots, np.array([hour for _, hour in chunk], np.int64))
        got = [(*row, before) for row, before in zip(read.tolist(), past.tolist(), strict=True)]
        assert got == [plain[slot].read_then_add(hour) for slot, hour in chunk]
        for slot, profile in enumerate(plain):
            taken = pool.profile(slot)
            assert taken.form() == profile.form()
            assert (taken.total, taken.active_hours) == (profile.total, profile.active_hours)
            packed, expected = pool.packed(slot), profile.packed()  # the cold form
            if isinstance(expected, bytes):
                assert packed == expected
            else:
                assert isinstance(packed, HourOfWeekProfile) and packed.form() == expected.form()
            if cycle:  # cold and hot again
                if isinstance(packed, bytes):
                    pool.load_packed(slot, packed)
                else:
                    pool.load(slot, packed)


@pytest.mark.parametrize("cycle", [False, True])
def test_sparse_and_dense_profiles_count_and_come_back_as_the_plain_ones(cycle: bool) -> None:
    """A few usual hours (sparse, then past 255 events in one: dense in bytes, then in
    two-byte counts), and hours all over the week (past 48 active hours: dense)."""
    streams = [hours_of(1, 1200, 3), hours_of(2, 1200, 100), hours_of(3, 1200, 40)]
    counted_both_ways(streams, 97, cycle=cycle)
    wide = hours_of(4, 70_000, 1)  # one hour past 65,535 events: four-byte counts
    counted_both_ways([wide], 20_000, cycle=cycle)


def test_the_sparse_pairs_keep_the_order_their_hours_were_first_counted_in() -> None:
    pool = ProfilePool()
    pool.load_packed(5, bytes((90, 2, 3, 1)))
    pool.read_then_add(np.array([5, 5, 5], np.int64), np.array([7, 3, 120], np.int64))
    assert pool.profile(5).packed() == bytes((90, 2, 3, 2, 7, 1, 120, 1))
    assert pool.packed(5) == bytes((90, 2, 3, 2, 7, 1, 120, 1))


def test_a_halved_profile_keeps_the_typecode_of_its_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Halving (before a count would overflow) fades old habits the same way, and the
    counts keep the array they outgrew bytes for; the plain bodies of the kernels run, with
    the limit made small."""
    for module in (profile_module, profile_pool):
        monkeypatch.setattr(module, "HALVE_AT", 300)
    for kernel in (profile_pool._COUNT, profile_pool._PAIRS, profile_pool._LOAD_PAIRS):
        monkeypatch.setattr(kernel, "compiled", lambda: None)
    streams = [hours_of(6, 2000, 2), hours_of(7, 2000, 60)]
    counted_both_ways(streams, 250, cycle=True)
    plain = HourOfWeekProfile()
    for hour in streams[0]:
        plain.read_then_add(hour)
    assert plain.form()[2] == "H"  # halved at 300: two-byte counts, halved to 150
