"""Work-arounds for kafka-python 3.0 bugs, applied by :class:`~detector.sources.kafka.KafkaSource`
before each poll.

Both reach into the consumer's private state, and each does nothing when that
state is not there (another kafka-python version): the consumer then behaves
as its library does.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["adopt_finished_join", "free_inline_slot"]

_LOG = logging.getLogger("ciwatch.kafka")


def free_inline_slot(consumer: Any) -> None:
    """Work around kafka-python 3.0: a resumed partition whose fetched records were parked
    while it was paused is never fetched again.

    Its fetcher puts parked records back only while its in-line slot is None, but leaves a
    drained (falsy) one there; and it fetches nothing for a partition with parked records.
    Emptying a drained slot before each poll lets one parked partition back per poll.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    slot = getattr(fetcher, "_next_partition_records", None)
    if slot is not None and not slot:
        fetcher._next_partition_records = None  # type: ignore[union-attr]


def adopt_finished_join(consumer: Any) -> bool:
    """Work around kafka-python 3.0: a group join that ends while no poll waits for it is lost.

    A poll waits for the JoinGroup/SyncGroup round trip at most its own timeout
    and leaves the round running; the next poll starts a new JoinGroup when it
    finds the round done, throwing away the assignment it brought. A broker
    holds each JoinGroup for a while (Tansu half the session timeout, Kafka
    until every member has rejoined), so with polls much shorter than that the
    consumer can rejoin again and again and never be assigned anything.

    This completes such a round the way the waiting poll would have (the member
    is stable, its heartbeat on, the assignment applied and the rebalance
    listener told), before the poll can throw it away. True when it did.
    """
    coordinator: Any = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if task is None or not getattr(task, "is_done", False) or task.exception is not None:
        return False
    rebalancing = getattr(coordinator, "rejoining", False)
    if not (rebalancing and getattr(coordinator, "rejoin_needed", False)):
        return False
    try:
        from kafka.coordinator.base import MemberState
    except ImportError:  # another kafka-python: leave the join to it
        return False
    generation = coordinator._generation
    _LOG.debug("completing group join %s that finished between polls", generation)
    with coordinator._lock:
        coordinator._join_task = None
        coordinator.rejoining = False
        coordinator.rejoin_needed = False
        coordinator.state = MemberState.STABLE
        coordinator._enable_heartbeat()
    # On the consumer's IO thread, where a waiting poll would have run it too.
    coordinator._net.run(
        coordinator._on_join_complete_async,
        generation.generation_id,
        generation.member_id,
        generation.protocol,
        task.value,
    )
    return True
