"""The stage producer's key partitions are exactly Kafka's default partitioner's.

A key's partition decides which task (and which changelog partition) owns its
state: replicas, and versions before and after this cache, must agree.
"""

from __future__ import annotations

from kafka.partitioner.default import DefaultPartitioner

from detector.scale.producing import KeyPartitions


class Cluster:
    """What the default partitioner asks of the cluster metadata."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"by-actor"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


def test_each_key_goes_where_the_default_partitioner_sends_it() -> None:
    cache, partitioner = KeyPartitions(limit=50), DefaultPartitioner()
    keys = [f"user-{n}@example.com".encode() for n in range(300)] + [b"", "ünï".encode()]
    for count in (1, 6, 12, 7):
        cluster, partitions = Cluster(count), list(range(count))
        for key in keys + keys:  # the second time from memory (or afresh past the limit)
            expected = partitioner.partition("by-actor", None, key, None, None, cluster)
            assert cache.of("by-actor", key, partitions) == expected
