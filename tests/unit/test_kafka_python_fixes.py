"""The kafka-python 3.0 work-arounds KafkaSource applies before each poll.

The group-join one is shown against a stand-in for kafka-python's coordinator
(the real one needs a broker: tests/integration/test_daemon_partitions.py runs
it); a second test checks that the installed kafka-python still has what the
work-around relies on, so an upgrade that changes it fails here, not in a flake.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from kafka.coordinator.base import BaseCoordinator, Generation, MemberState
from kafka.future import Future

from detector.sources.kafka_python_fixes import adopt_finished_join, free_inline_slot


class _Net:
    def run(self, coro: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        return asyncio.run(coro(*args))


class _Coordinator:
    """What :func:`adopt_finished_join` touches of kafka-python's ConsumerCoordinator."""

    def __init__(self, task: Future | None) -> None:
        self._join_task = task
        self._generation = Generation(4, "member-1", "range")
        self._lock = threading.RLock()
        self._net = _Net()
        self.rejoining = True
        self.rejoin_needed = True
        self.state = MemberState.REBALANCING
        self.heartbeat_on = False
        self.completed: list[tuple[int, str, str, bytes]] = []

    def _enable_heartbeat(self) -> None:
        self.heartbeat_on = True

    async def _on_join_complete_async(
        self, generation: int, member_id: str, protocol: str, assignment: bytes
    ) -> None:
        self.completed.append((generation, member_id, protocol, assignment))


class _Consumer:
    def __init__(self, coordinator: _Coordinator) -> None:
        self._coordinator = coordinator


def _finished(value: bytes) -> Future:
    task = Future()
    task.success(value)
    return task


def test_a_join_that_finished_between_polls_is_completed_not_thrown_away() -> None:
    coordinator = _Coordinator(_finished(b"assignment"))
    assert adopt_finished_join(_Consumer(coordinator))
    assert coordinator.completed == [(4, "member-1", "range", b"assignment")]
    assert coordinator._join_task is None
    assert not coordinator.rejoin_needed and not coordinator.rejoining
    assert coordinator.state is MemberState.STABLE
    assert coordinator.heartbeat_on
    assert not adopt_finished_join(_Consumer(coordinator))  # once only
    assert len(coordinator.completed) == 1


def _in_flight() -> _Coordinator:
    return _Coordinator(Future())


def _failed() -> _Coordinator:
    task = Future()
    task.failure(RuntimeError("rebalance in progress"))
    return _Coordinator(task)


def _not_rebalancing() -> _Coordinator:
    coordinator = _Coordinator(_finished(b"assignment"))
    coordinator.rejoining = False  # kafka-python completed it itself
    return coordinator


@pytest.mark.parametrize(
    "make",
    [_in_flight, _failed, _not_rebalancing, lambda: _Coordinator(None)],
    ids=["in-flight", "failed", "not-rebalancing", "no-join"],
)
def test_other_joins_are_left_to_kafka_python(make: Callable[[], _Coordinator]) -> None:
    coordinator = make()
    assert not adopt_finished_join(_Consumer(coordinator))
    assert coordinator.completed == []
    assert coordinator.state is MemberState.REBALANCING


def test_a_consumer_without_that_private_state_is_left_alone() -> None:
    assert not adopt_finished_join(object())
    free_inline_slot(object())


def test_installed_kafka_python_still_has_what_the_join_work_around_uses() -> None:
    join = inspect.getsource(BaseCoordinator.join_group_async)
    # The bug: a done join task is replaced by a new JoinGroup, its result unread.
    assert "self._join_task is None or self._join_task.is_done" in join, (
        "kafka-python changed how it rejoins: is adopt_finished_join still needed?"
    )
    for name in ("_on_join_complete_async", "_enable_heartbeat", "_do_join_and_sync_async"):
        assert hasattr(BaseCoordinator, name), name
    for name in ("rejoining", "rejoin_needed", "_join_task", "_generation", "_lock", "_net"):
        assert f"self.{name} =" in inspect.getsource(BaseCoordinator), name
