"""Feature-store throughput and memory over generated events.

    python bench/features.py [--events 300000] [--actors 10000]

Prints FeatureStore.observe throughput (events/s, one core) over a generated
mix — many actors, a few busy bots, IPs, countries, repos, namespaces,
failures, slightly out-of-order times and a few late events — and the memory
the store holds per 10k actors (tracemalloc, after every actor was active for
a simulated day). Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore

BASE = datetime(2026, 1, 5, tzinfo=UTC)
CATEGORIES = list(Category)


def generate(count: int, actors: int, seed: int = 7) -> list[Event]:
    """``count`` events over ``actors`` actors, about one per second of event time."""
    rng = random.Random(seed)
    repos = [f"acme/repo-{index}" for index in range(500)]
    namespaces = [f"team-{index}" for index in range(40)]
    countries = ["US", "DE", "FR", "GB", "IN", "BR", "JP"]
    profiles = []
    for index in range(actors):
        ips = [f"10.{index % 250}.{rng.randrange(250)}.{rng.randrange(250)}" for _ in range(3)]
        profiles.append((f"user{index}@acme.example", ips, rng.choice(countries)))
    bots = [(f"ci-bot-{index}", [f"192.0.2.{index}"], "US") for index in range(5)]
    events = []
    clock = 0.0
    for number in range(count):
        clock += rng.expovariate(1.0)
        actor, ips, country = rng.choice(bots) if rng.random() < 0.3 else rng.choice(profiles)
        jitter = -rng.uniform(0, 120) if rng.random() < 0.05 else 0.0  # out of order
        jitter = -3600.0 if rng.random() < 0.001 else jitter  # late
        events.append(
            Event(
                time=BASE + timedelta(seconds=clock + jitter),
                source="github_audit",
                action="git.clone",
                category=rng.choice(CATEGORIES),
                outcome=Outcome.FAILURE if rng.random() < 0.1 else Outcome.SUCCESS,
                actor=actor,
                actor_type=ActorType.SERVICE if actor.startswith("ci-") else ActorType.HUMAN,
                id=f"bench:{number}",
                ip=rng.choice(ips),
                country=country if rng.random() < 0.98 else rng.choice(countries),
                user_agent="git/2.43",
                target=rng.choice(repos),
                privileged=rng.random() < 0.02,
                attributes={"repo": rng.choice(repos), "namespace": rng.choice(namespaces)},
            )
        )
    return events


def bench_throughput(events: list[Event]) -> None:
    store = FeatureStore(FeatureSettings())
    for event in events[:5000]:
        store.observe(event)  # warm up
    store = FeatureStore(FeatureSettings())
    started = time.perf_counter()
    for event in events:
        store.observe(event)
    elapsed = time.perf_counter() - started
    print(
        f"observe: {len(events):,} events in {elapsed:.2f} s = {len(events) / elapsed:,.0f}"
        f" events/s, {elapsed / len(events) * 1e6:.1f} µs/event"
        f" (late: {store.late_events}, keys: {store.key_counts})"
    )


def bench_memory(actors: int) -> None:
    """Every actor active ~20 times over one simulated day, then the store's size."""
    events = generate(actors * 20, actors, seed=11)
    span = events[-1].time - events[0].time
    gc.collect()
    tracemalloc.start()
    store = FeatureStore(FeatureSettings())
    for event in events:
        store.observe(event)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_10k = current / store.key_counts["actor"] * 10_000
    print(
        f"memory: {current / 2**20:.1f} MiB held for {store.key_counts} over {span}"
        f" (peak {peak / 2**20:.1f} MiB) = {per_10k / 2**20:.1f} MiB per 10k actors"
        " (incl. their IP and target keys; key strings not counted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--actors", type=int, default=10_000)
    args = parser.parse_args()
    bench_throughput(generate(args.events, args.actors))
    bench_memory(args.actors)


if __name__ == "__main__":
    main()
