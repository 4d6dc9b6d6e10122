"""Memory per actor of the whole pipeline state, and of its checkpoint.

    python bench/memory.py [--actors 10000 50000 100000] [--events-per-actor 12]
                           [--no-models] [--restore] [--breakdown] [--max-keys N]

Builds the pipeline exactly as ``ciwatch run`` does with the default config
(bundled rules and models: the **baseline**), then feeds it ever more
distinct actors, in cohorts, through :meth:`Pipeline.process_events`: the real
dedup, feature store, rule engine, anomaly scorer and suppressor.

The events are realistic: a generated world (``ciwatch generate``: GitHub,
Okta, Kubernetes and CloudTrail audit logs of 60 people over 7 days, no
attacks) is normalized, and each bench actor replays a stretch of one person's
events under its own name, with its own addresses in place of that person's
(the organisation's repositories, namespaces and accounts stay shared, as in
a real organisation). Each cohort's events fill one day of event time after
the previous cohort's, so rule windows of earlier cohorts close as they would
(feature state lasts ``evict_idle_after``, 30 days: no actor is evicted).

After each cohort, printed per actor count:

- RSS of the process minus the baseline (``/proc/self/status``, after a full
  garbage collection; what the kernel's OOM killer counts), and per actor;
- the marginal cost: RSS growth since the previous row / actors added (the
  dedup memory is capped per source and fills early, so this is the slope
  that scales with actors);
- the deep size of each part (Python objects reachable from it, shared
  objects counted once) per actor: features, rules, dedup, alerts;
- on the last row only (what writing it leaves in the allocator would be
  counted against the next row's actors): the checkpoint, bytes on disk per
  actor, the seconds writing it took (the daemon's loop processes nothing
  meanwhile), and the peak RSS (VmHWM, reset before) while writing it, above the
  RSS before;
- with ``--restore``, on the last row: a fresh process that builds the pipeline and restores
  the checkpoint, its peak RSS (what a pod restarted with this state needs);
- with ``--breakdown``, at the end: the feature store's deep size per actor
  by key kind and part of a key's state (counter, remembered values, profile).

The collector is set as every ``ciwatch`` command sets it (:mod:`detector.collector`):
with CPython's own thresholds a checkpoint of 30,000 actors took 7 to 9 s to write,
against about 3 s in the daemon. Nothing here asserts a figure. 100,000 actors take
about 4 minutes on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from detector import collector
from detector.checkpoint import Checkpoint
from detector.config import PipelineConfig, load_config
from detector.events.model import ActorType, Event
from detector.features.store import FeatureStore
from detector.features.windows import WindowCounter
from detector.generator import generate
from detector.normalizing import build_normalizer
from detector.pipeline import Pipeline
from detector.sources.record import Position, RawRecord

MiB = 2**20
_BATCH = 2_000
_START = datetime(2026, 3, 2, tzinfo=UTC)


def proc_status(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def rss() -> int:
    gc.collect()
    return proc_status("VmRSS")


def reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux: clear_refs 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of every object reachable from ``root`` not already in ``seen`` (types excluded)."""
    size = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        size += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return size


def template_actors(seed: int) -> list[list[Event]]:
    """Per person of a generated world, their normalized events in time order."""
    world = generate(seed=seed, days=7, people=60, attacks=False)
    normalizer = build_normalizer(load_config(None))
    records = [
        RawRecord(orjson.dumps(record.doc), Position("world", number))
        for number, record in enumerate(world.records)
    ]
    per_actor: dict[str, list[Event]] = defaultdict(list)
    for event in normalizer.normalize_batch(records).events:
        if event.actor_type is ActorType.HUMAN:  # the vendor object is not needed
            per_actor[event.actor].append(dataclasses.replace(event, raw={}))
    return [events for events in per_actor.values() if len(events) >= 50]


def actor_events(
    number: int, template: list[Event], count: int, window: tuple[float, float], rng: random.Random
) -> Iterator[tuple[float, Event]]:
    """``count`` consecutive events of ``template`` as bench actor ``number``, within ``window``."""
    start = rng.randrange(len(template) - count)
    stretch = template[start : start + count]
    addresses: dict[str, str] = {}
    for index, event in enumerate(stretch):
        ip = None
        if event.ip:
            own = len(addresses.setdefault(event.ip, "x" * (len(addresses) + 1)))
            ip = f"10.{own}.{number >> 8 & 255}.{number & 255}"
        at = rng.uniform(*window)
        # Every string its own copy, as each record parsed from Kafka brings its own.
        yield (
            at,
            dataclasses.replace(
                event,
                actor=f"user{number}@bench.example",
                ip=ip,
                id=f"bench:{number}:{index}",
                time=_START + timedelta(seconds=at),
                action=_copy(event.action),
                source=_copy(event.source),
                country=_copy(event.country),
                user_agent=_copy(event.user_agent),
                target=_copy(event.target),
                attributes={_copy(key): _copy(value) for key, value in event.attributes.items()},
            ),
        )


def _copy(text: str | None) -> Any:
    return None if text is None else text.encode().decode()


def feed(pipeline: Pipeline, first: int, last: int, args: Any, templates: list[list[Event]]) -> int:
    """Actors ``first`` .. ``last - 1``, their events within the cohort's span, in time order."""
    rng = random.Random(first)
    # Cohorts in event-time order; all of them within 20 days, inside evict_idle_after.
    span = 20 * 86_400.0 * 1000 / max(args.actors)
    day = float(first // 1000) * span
    events = [
        pair
        for number in range(first, last)
        for pair in actor_events(
            number,
            templates[number % len(templates)],
            args.events_per_actor,
            (day, day + span),
            rng,
        )
    ]
    events.sort(key=lambda pair: pair[0])
    ordered = [event for _, event in events]
    for start in range(0, len(ordered), _BATCH):
        pipeline.detect(ordered[start : start + _BATCH])
    return len(ordered)


def part_sizes(pipeline: Pipeline) -> dict[str, int]:
    """Deep sizes of the state's parts; strings shared between parts count in the first."""
    # The pipeline itself (reached through the rules' known-values callback), its
    # normalizer and models are the baseline, not state.
    seen = {id(pipeline), id(pipeline.normalizer), id(pipeline.scorer), id(pipeline.stats)}
    seen.update(id(obj) for obj in gc.get_referents(pipeline.features.settings))
    return {
        "features": deep_size(pipeline.features, seen),
        "rules": deep_size(pipeline.rules, seen),
        "dedup": deep_size(pipeline.duplicates, seen),
        "alerts": deep_size(pipeline.suppressor, seen),
    }


def feature_parts(pipeline: Pipeline) -> dict[str, int]:
    """Deep sizes of the feature store's parts, per key kind and per part of a key's state.

    Reads the store's tables (private: this is a measurement, not an interface).
    A key's own string counts with its table; values shared between keys (a
    country, a user agent, an actor's name in its IP's set) count where first met.
    """
    store = pipeline.features
    # The settings, and the spec every counter shares (with its queue of hot counters).
    seen = {id(store.settings), id(store._spec)}
    seen.update(id(obj) for obj in gc.get_referents(store.settings))
    sizes: dict[str, int] = {}
    counter_slots = set(slot_names(WindowCounter))
    tables = store._tables
    for kind, table in (("actor", tables.actors), ("ip", tables.ips), ("target", tables.targets)):
        sizes[f"{kind} table"] = deep_size(list(table), seen) + sys.getsizeof(table)
        for state in table.values():
            for name in slot_names(type(state)):
                value = getattr(state, name)
                part = f"{kind}.{name.lstrip('_')}"
                if isinstance(value, float):
                    part = f"{kind} state"
                elif name in counter_slots:  # the window counter a key state is built on
                    part = f"{kind}.counter"
                sizes[part] = sizes.get(part, 0) + deep_size(value, seen)
            sizes[f"{kind} state"] = sizes.get(f"{kind} state", 0) + sys.getsizeof(state)
    return sizes


def slot_names(cls: type) -> list[str]:
    """The ``__slots__`` of ``cls`` and its bases (a key state extends its window counter)."""
    return [name for base in cls.__mro__ for name in getattr(base, "__slots__", ())]


def checkpoint_cost(pipeline: Pipeline, directory: Path) -> tuple[int, int, float]:
    """Bytes written, the peak RSS above the RSS before, and the seconds of writing a
    checkpoint (as the daemon does, in its loop: no batch is processed meanwhile)."""
    before = rss()
    reset_peak()
    started = time.perf_counter()
    written = Checkpoint(directory).save(pipeline.snapshot(streamed=True), {("bench", 0): 1})
    return written, proc_status("VmHWM") - before, time.perf_counter() - started


def in_child(directory: Path | None, models: bool, kinds_read: bool) -> tuple[int, int, float]:
    """A fresh process builds the pipeline (and restores ``directory``'s checkpoint).

    Its RSS at the end and its peak RSS, in bytes, and its seconds.
    """
    started = time.perf_counter()
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(directory or ""),
            *([] if models else ["--no-models"]),
            *(["--kinds-read"] if kinds_read else []),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    now, peak = (int(value) for value in output.split()[-2:])
    return now, peak, time.perf_counter() - started


def built(config: PipelineConfig, kinds_read: bool) -> Pipeline:
    """The pipeline; unless ``kinds_read``, its store counting every key kind, as the
    issue's memory target reads (an actor with its IP and target keys), though the
    bundled rules and models read no target feature (docs/features.md)."""
    pipeline = Pipeline.from_config(config)
    if not kinds_read:
        pipeline.features = FeatureStore(config.features)
    return pipeline


def child(directory: str, models: bool, kinds_read: bool) -> None:
    """Build the pipeline, restore the checkpoint if any, print VmRSS and VmHWM in bytes."""
    pipeline = built(configured(models), kinds_read)
    if directory:
        loaded = Checkpoint(Path(directory)).load()
        assert loaded is not None
        pipeline.restore(loaded[0])
        del loaded
    print(rss(), proc_status("VmHWM"))


def configured(models: bool, max_keys: int | None = None) -> PipelineConfig:
    config = load_config(None)
    features = config.features
    if max_keys is not None:  # the default cap (50,000 per kind) would evict past it
        features = features.model_copy(update={"max_keys": max_keys})
    return config.model_copy(
        update={
            "models": config.models.model_copy(update={"enabled": models}),
            "features": features,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--actors", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--events-per-actor", type=int, default=12)
    parser.add_argument("--no-models", action="store_true")
    parser.add_argument("--restore", action="store_true", help="also restore in a fresh process")
    parser.add_argument(
        "--breakdown", action="store_true", help="also the feature store's deep size by part"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-keys",
        type=int,
        help="features.max_keys per kind (default: the config's 50,000; not --restore's process)",
    )
    parser.add_argument(
        "--kinds-read",
        action="store_true",
        help="count only the key kinds the rules and models read (the pipeline's default: no"
        " target keys), not every kind",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    collector.tune()  # as every ciwatch command sets it: a checkpoint's seconds are the daemon's
    models = not args.no_models
    if args.child is not None:
        child(args.child, models, args.kinds_read)
        return
    alone, alone_peak, seconds = in_child(None, models, args.kinds_read)
    templates = template_actors(args.seed)
    pipeline = built(configured(models, args.max_keys), args.kinds_read)
    baseline = rss()
    print(
        f"baseline, a fresh process with the pipeline built ({len(pipeline.rules.rules)} rules,"
        f" models: {'bundled' if models else 'none'}): {alone / MiB:.0f} MiB RSS"
        f" (peak {alone_peak / MiB:.0f} MiB, {seconds:.1f} s); here, with"
        f" {len(templates)} template people: {baseline / MiB:.0f} MiB"
    )
    print(
        "| actors | events | RSS above baseline | per actor | marginal per actor |"
        " deep size per actor: features / rules / dedup / alerts | checkpoint per actor |"
        " peak while writing it | restore: peak RSS of a fresh process |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    done, events, previous = 0, 0, baseline
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-memory-") as tmp:
        for target in sorted(args.actors):
            for first in range(done, target, 1000):
                events += feed(pipeline, first, min(first + 1000, target), args, templates)
            now = rss()
            parts = part_sizes(pipeline)
            checkpoint, restored = "- | -", "-"
            if target == max(args.actors):  # last: its leftovers would count as the next row's
                written, peak, took = checkpoint_cost(pipeline, Path(tmp))
                checkpoint = f"{written / target:,.0f} B | +{peak / MiB:.0f} MiB ({took:.1f} s)"
                if args.restore:
                    _, restore_peak, seconds = in_child(Path(tmp), models, args.kinds_read)
                    restored = f"{restore_peak / MiB:.0f} MiB ({seconds:.0f} s)"
            print(
                f"| {target:,} | {events:,} | {(now - baseline) / MiB:.0f} MiB"
                f" | {(now - baseline) / target:,.0f} B"
                f" | {(now - previous) / (target - done):,.0f} B"
                f" | {' / '.join(f'{size / target:,.0f}' for size in parts.values())} B"
                f" | {checkpoint} | {restored} |",
                flush=True,
            )
            done, previous = target, now
    if args.breakdown:
        actors = max(args.actors)
        parts = feature_parts(pipeline)
        print("feature store, deep size per actor by part:")
        for part, size in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {part:16} {size / actors:7,.0f} B")
        print(f"  {'total':16} {sum(parts.values()) / actors:7,.0f} B")
    groups = sum(pipeline.rules.group_counts().values())
    print(
        f"keys: {pipeline.features.key_counts}; rule groups: {groups};"
        f" dedup ids: {len(pipeline.duplicates)}"
    )


if __name__ == "__main__":
    main()
