"""The compiled steps of a :class:`~detector.features.value_pool.ValuePool`.

Every owner's remembered values live in one pool of numpy arrays:

- an entry per remembered (owner slot, field, value id): ``ints[e]`` holds its
  value id, field, next and previous entry of the same owner (the values' order,
  as :class:`~detector.features.remembered.RememberedValues` keeps it), and
  ``times[e]`` its last and first sighting;
- a table with open addressing and linear probing: ``keys[t]`` is an entry's key,
  ``(slot * fields + field) << 32 | value id``, or :data:`EMPTY` or :data:`GONE`
  (a removed key, passed over by lookups), ``at[t]`` the entry;
- per slot its first and last entry, and per field how many it holds;
- ``refs[v]``: how many entries hold value id ``v`` (its owner frees unused ids).

``state`` counts: entries used, free entries (stacked in ``free``), table
positions filled (keys and removed keys), drops and known-value lists written.
The bodies are plain Python over numpy arrays, compiled by numba; their hash
gives the same positions either way.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detector.jit import LazyKernel

__all__ = [
    "EMPTY",
    "GONE",
    "KNOWN",
    "NEXT",
    "PREVIOUS",
    "TRACKED",
    "UNIT",
    "load_kernel",
    "observe_kernel",
    "read_kernel",
    "rehash_kernel",
    "release_kernel",
]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

EMPTY, GONE = -1, -2
"""Table keys of a position never filled, and of a removed key."""
VALUE, FIELD, NEXT, PREVIOUS = 0, 1, 2, 3
"""Columns of ``ints``; ``times`` holds (last, first)."""
USED, FREE, FILLED, DROPS, KNOWN_LISTS = 0, 1, 2, 3, 4
"""Positions in ``state``."""
UNIT, TRACKED = 1, 2
"""Flags in ``rules[f, 2]``: the field's values are counted distinct; its new values
are reported."""
KNOWN = 10
"""Values per known-value list (the most recently seen first)."""


def _home(key: int, mask: int) -> int:
    """Where ``key``'s probe starts in a table of ``mask + 1`` positions: the same in numba
    and in Python (the product's low 32 bits, which int64 overflow keeps)."""
    low = (key ^ (key >> 32)) & 0xFFFFFFFF
    return ((low * 0x9E3779B1) & 0xFFFFFFFF) & mask


def _probe(keys: Ints, key: int) -> int:
    """Where ``key`` is in ``keys``, else the :data:`EMPTY` position its probe ends at."""
    mask = len(keys) - 1
    at = _home(key, mask)
    while keys[at] != key and keys[at] != EMPTY:
        at = (at + 1) & mask
    return at


def _store(keys: Ints, key: int) -> int:
    """The position to put ``key`` (absent from ``keys``) at: the first removed key on its
    probe, else the empty position it ends at."""
    mask = len(keys) - 1
    at = _home(key, mask)
    while keys[at] != EMPTY and keys[at] != GONE:
        at = (at + 1) & mask
    return at


def _append(
    slot: int, field: int, value: int, last: float, first: float, fields: int,
    table: tuple[Ints, Ints], ints: Ints, times: Floats, owners: tuple[Ints, Ints, Ints],
    free: Ints, state: Ints, refs: Ints,
) -> None:  # fmt: skip
    """A new entry at the end of ``slot``'s values (the caller knows it is absent)."""
    keys, at = table
    heads, tails, counts = owners
    if state[FREE] > 0:
        state[FREE] -= 1
        entry = free[state[FREE]]
    else:
        entry = state[USED]
        state[USED] += 1
    key = ((slot * fields + field) << 32) | value
    position = _store(keys, key)
    if keys[position] == EMPTY:
        state[FILLED] += 1
    keys[position] = key
    at[position] = entry
    ints[entry, VALUE] = value
    ints[entry, FIELD] = field
    ints[entry, NEXT] = -1
    ints[entry, PREVIOUS] = tails[slot]
    times[entry, 0] = last
    times[entry, 1] = first
    if tails[slot] >= 0:
        ints[tails[slot], NEXT] = entry
    else:
        heads[slot] = entry
    tails[slot] = entry
    counts[slot, field] += 1
    refs[value] += 1


def _remove(
    slot: int, entry: int, fields: int, table: tuple[Ints, Ints], ints: Ints,
    owners: tuple[Ints, Ints, Ints], free: Ints, state: Ints, refs: Ints,
) -> None:  # fmt: skip
    """Take ``entry`` out of ``slot``'s values and the table."""
    keys = table[0]
    heads, tails, counts = owners
    value, field = ints[entry, VALUE], ints[entry, FIELD]
    keys[_probe(keys, ((slot * fields + field) << 32) | value)] = GONE
    before, after = ints[entry, PREVIOUS], ints[entry, NEXT]
    if before >= 0:
        ints[before, NEXT] = after
    else:
        heads[slot] = after
    if after >= 0:
        ints[after, PREVIOUS] = before
    else:
        tails[slot] = before
    counts[slot, field] -= 1
    refs[value] -= 1
    free[state[FREE]] = entry
    state[FREE] += 1


def _field_entries(slot: int, field: int, ints: Ints, owners: tuple[Ints, Ints, Ints]) -> Ints:
    """``slot``'s entries of ``field``, in order."""
    heads, _, counts = owners
    found = np.empty(counts[slot, field], np.int64)
    taken = 0
    entry = heads[slot]
    while entry >= 0:
        if ints[entry, FIELD] == field:
            found[taken] = entry
            taken += 1
        entry = ints[entry, NEXT]
    return found


def _trim(
    event: int, slot: int, field: int, now: float, forget: float, keep: int, fields: int,
    table: tuple[Ints, Ints], ints: Ints, times: Floats, owners: tuple[Ints, Ints, Ints],
    free: Ints, state: Ints, refs: Ints, drops: tuple[Ints, Floats],
) -> None:  # fmt: skip
    """``RememberedValues.trim``: the forgotten values of ``field`` go, then its least
    recently seen down to ``keep``; each dropped (event, field, value, last) is written."""
    entries = _field_entries(slot, field, ints, owners)
    kept = np.zeros(len(entries), np.bool_)
    recency = np.empty(len(entries), np.float64)
    held = 0
    for index in range(len(entries)):
        if times[entries[index], 0] > now - forget:
            kept[index] = True
            recency[held] = -times[entries[index], 0]
            held += 1
    if held > keep:
        positions = np.flatnonzero(kept)
        order = np.argsort(recency[:held], kind="mergesort")  # ties: in the values' order
        for rank in range(keep, held):
            kept[positions[order[rank]]] = False
    dropped, lasts = drops
    for index in range(len(entries)):
        if not kept[index]:
            entry = entries[index]
            row = state[DROPS]
            dropped[row, 0] = event
            dropped[row, 1] = field
            dropped[row, 2] = ints[entry, VALUE]
            lasts[row] = times[entry, 0]
            state[DROPS] += 1
            _remove(slot, entry, fields, table, ints, owners, free, state, refs)


def _known(
    event: int, slot: int, field: int, ints: Ints, times: Floats,
    owners: tuple[Ints, Ints, Ints], state: Ints, known: tuple[Ints, Ints],
) -> None:  # fmt: skip
    """``RememberedValues.recent(field, KNOWN)`` of ``slot`` now, as value ids."""
    entries = _field_entries(slot, field, ints, owners)
    recency = np.empty(len(entries), np.float64)
    for index in range(len(entries)):
        recency[index] = -times[entries[index], 0]
    order = np.argsort(recency, kind="mergesort")
    lists, values = known
    row = state[KNOWN_LISTS]
    taken = min(len(entries), KNOWN)
    lists[row, 0] = event
    lists[row, 1] = field
    lists[row, 2] = taken
    for rank in range(taken):
        values[row, rank] = ints[entries[order[rank]], VALUE]
    state[KNOWN_LISTS] += 1


def pool_observe(
    slots: Ints, moments: Floats, values: Ints, learning: npt.NDArray[np.bool_],
    forget: Floats, rules: Ints, table: tuple[Ints, Ints], ints: Ints, times: Floats,
    owners: tuple[Ints, Ints, Ints], free: Ints, state: Ints, refs: Ints,
    new: Ints, groups: tuple[Floats, Ints, Ints], drops: tuple[Ints, Floats],
    known: tuple[Ints, Ints],
) -> None:  # fmt: skip
    """Observe each event ``i`` (``slots[i]`` < 0: none) at ``moments[i]`` with value id
    ``values[f, i]`` of each field ``f`` (0: none), as the feature store observes an
    actor's remembered values one field after the other.

    Writes per event: ``new[i]``, the fields whose value was new (never seen, forgotten
    after ``forget[f]``, or trimmed); the groups of counted values (``rules[f, 2] &
    UNIT``) seen again earlier, by the sighting they move from (``groups``: from, field
    mask, how many), in the order the store moves them; then each new field past its
    cap (``rules[f, 0]``) is trimmed to ``rules[f, 1]`` (``drops``); and for each new
    tracked field of an event not ``learning``, the field's values most recently seen
    first (``known``).
    """
    keys, at = table
    fields = values.shape[0]
    froms, masks, counts = groups
    for event in range(len(slots)):
        slot = slots[event]
        new[event] = 0
        counts[event] = 0
        if slot < 0:
            continue
        now = moments[event]
        fresh = 0
        grouped = 0
        moving = 0
        moving_from = 0.0
        for field in range(fields):
            value = values[field, event]
            if value == 0:
                continue
            position = _probe(keys, ((slot * fields + field) << 32) | value)
            if keys[position] == EMPTY:
                _append(slot, field, value, now, now, fields, table, ints, times, owners,
                        free, state, refs)  # fmt: skip
                fresh |= 1 << field
                continue
            entry = at[position]
            last = times[entry, 0]
            if now - last >= forget[field]:
                times[entry, 0] = now
                times[entry, 1] = now
                fresh |= 1 << field
                continue
            if now > last:
                times[entry, 0] = now
            elif now < times[entry, 1]:
                times[entry, 1] = now
            if rules[field, 2] & UNIT and last < now:
                if last != moving_from and moving:
                    froms[event, grouped] = moving_from
                    masks[event, grouped] = moving
                    grouped += 1
                    moving = 0
                moving_from = last
                moving |= 1 << field
        if moving:
            froms[event, grouped] = moving_from
            masks[event, grouped] = moving
            grouped += 1
        new[event] = fresh
        counts[event] = grouped
        if not fresh:
            continue
        held = owners[2]
        for field in range(fields):
            if fresh >> field & 1 and held[slot, field] > rules[field, 0]:
                _trim(event, slot, field, now, forget[field], rules[field, 1], fields, table,
                      ints, times, owners, free, state, refs, drops)  # fmt: skip
        if not learning[event]:
            for field in range(fields):
                if fresh >> field & 1 and rules[field, 2] & TRACKED:
                    _known(event, slot, field, ints, times, owners, state, known)


def pool_load(
    slot: int, fields: int, entries: Ints, sightings: Floats, table: tuple[Ints, Ints],
    ints: Ints, times: Floats, owners: tuple[Ints, Ints, Ints], free: Ints, state: Ints,
    refs: Ints,
) -> None:  # fmt: skip
    """``slot``'s values, in order: ``entries[k]`` (field, value id), ``sightings[k]``
    (last, first); a value repeated in a field replaces the earlier one in its place."""
    keys, at = table
    for index in range(len(entries)):
        field, value = entries[index, 0], entries[index, 1]
        position = _probe(keys, ((slot * fields + field) << 32) | value)
        if keys[position] != EMPTY:
            times[at[position], 0] = sightings[index, 0]
            times[at[position], 1] = sightings[index, 1]
            continue
        _append(slot, field, value, sightings[index, 0], sightings[index, 1], fields, table,
                ints, times, owners, free, state, refs)  # fmt: skip


def pool_read(
    slot: int, ints: Ints, times: Floats, owners: tuple[Ints, Ints, Ints], entries: Ints,
    sightings: Floats,
) -> int:  # fmt: skip
    """Write ``slot``'s values in order (as :func:`pool_load` takes them); how many."""
    heads = owners[0]
    taken = 0
    entry = heads[slot]
    while entry >= 0:
        entries[taken, 0] = ints[entry, FIELD]
        entries[taken, 1] = ints[entry, VALUE]
        sightings[taken, 0] = times[entry, 0]
        sightings[taken, 1] = times[entry, 1]
        taken += 1
        entry = ints[entry, NEXT]
    return taken


def pool_clear(
    slot: int, fields: int, table: tuple[Ints, Ints], ints: Ints,
    owners: tuple[Ints, Ints, Ints], free: Ints, state: Ints, refs: Ints,
) -> None:  # fmt: skip
    """Remove all of ``slot``'s values."""
    heads = owners[0]
    while heads[slot] >= 0:
        _remove(slot, heads[slot], fields, table, ints, owners, free, state, refs)


def pool_release(
    slot: int, fields: int, table: tuple[Ints, Ints], ints: Ints, times: Floats,
    owners: tuple[Ints, Ints, Ints], free: Ints, state: Ints, refs: Ints, entries: Ints,
    sightings: Floats,
) -> int:  # fmt: skip
    """:func:`pool_read` then :func:`pool_clear` (an owner going cold), in one call; minus
    the entries needed, changing nothing, if ``entries`` has fewer rows."""
    held = 0
    for field in range(owners[2].shape[1]):
        held += owners[2][slot, field]
    if held > len(entries):
        return -held
    taken = pool_read(slot, ints, times, owners, entries, sightings)
    pool_clear(slot, fields, table, ints, owners, free, state, refs)
    return taken


def pool_rehash(old: tuple[Ints, Ints], new: tuple[Ints, Ints]) -> int:
    """Every key of ``old`` (removed ones left out) in ``new``; how many."""
    old_keys, old_at = old
    new_keys, new_at = new
    moved = 0
    for position in range(len(old_keys)):
        key = old_keys[position]
        if key >= 0:
            target = _store(new_keys, key)
            new_keys[target] = key
            new_at[target] = old_at[position]
            moved += 1
    return moved


def _sample() -> tuple[tuple[Ints, Ints], Ints, Floats, tuple[Ints, Ints, Ints], Ints, Ints, Ints]:
    table = (np.full(8, EMPTY, np.int64), np.zeros(8, np.int64))
    owners = (np.full(1, -1, np.int64), np.full(1, -1, np.int64), np.zeros((1, 1), np.int64))
    return (
        table,
        np.zeros((4, 4), np.int64),
        np.zeros((4, 2)),
        owners,
        np.zeros(4, np.int64),
        np.zeros(5, np.int64),
        np.zeros(4, np.int64),
    )


_HELPERS = (_home, _probe, _store, _append, _remove, _field_entries, _trim, _known)
_SAMPLE = _sample()
_INTS, _TIMES, _OWNERS = _SAMPLE[1], _SAMPLE[2], _SAMPLE[3]
observe_kernel = LazyKernel(
    pool_observe,
    sample_args=(
        np.zeros(1, np.int64),
        np.zeros(1),
        np.ones((1, 1), np.int64),
        np.zeros(1, np.bool_),
        np.ones(1),
        np.array([[1, 1, UNIT | TRACKED]], np.int64),
        *_sample(),
        np.zeros(1, np.int64),
        (np.zeros((1, 1)), np.zeros((1, 1), np.int64), np.zeros(1, np.int64)),
        (np.zeros((4, 3), np.int64), np.zeros(4)),
        (np.zeros((1, 3), np.int64), np.zeros((1, KNOWN), np.int64)),
    ),
    helpers=_HELPERS,
)
"""The compiled :func:`pool_observe`."""
load_kernel = LazyKernel(
    pool_load,
    sample_args=(0, 1, np.ones((1, 2), np.int64), np.zeros((1, 2)), *_sample()),
    helpers=_HELPERS,
)
read_kernel = LazyKernel(
    pool_read,
    sample_args=(
        0,
        _INTS,
        _TIMES,
        _OWNERS,
        np.zeros((4, 2), np.int64),
        np.zeros((4, 2)),
    ),
)
release_kernel = LazyKernel(
    pool_release,
    sample_args=(0, 1, *_SAMPLE, np.zeros((4, 2), np.int64), np.zeros((4, 2))),
    helpers=(*_HELPERS, pool_read, pool_clear),
)
rehash_kernel = LazyKernel(
    pool_rehash,
    sample_args=(
        (np.full(8, EMPTY, np.int64), np.zeros(8, np.int64)),
        (np.full(8, EMPTY, np.int64), np.zeros(8, np.int64)),
    ),
    helpers=_HELPERS,
)
