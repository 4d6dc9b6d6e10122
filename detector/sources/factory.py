"""The Kafka source ``service.kafka.client`` names: kafka-python (default) or confluent-kafka.

Both classes have the same methods and meaning (:class:`ConsumerSource`), so
the daemon never asks which one it holds. confluent-kafka is optional
(``pip install 'ciwatch[fast]'``); choosing it where it is not installed is
one line at start-up, not a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self

from detector.errors import ConfigError
from detector.sources.kafka import KafkaSettings, KafkaSource
from detector.sources.record import Position, RawRecord

__all__ = ["ConsumerSource", "open_source", "require_client"]

Partition = tuple[str, int]
"""(topic, partition)."""


class ConsumerSource(Protocol):
    """What the daemon uses of a Kafka source (see :class:`~detector.sources.kafka.KafkaSource`).

    ``assignment`` and ``lag`` are keyed by the client's own topic-partition
    objects; each has ``topic`` and ``partition``.
    """

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]: ...

    def commit(self, positions: Iterable[Position]) -> None: ...

    def commit_offsets(self, offsets: Mapping[Partition, int]) -> bool: ...

    def assignment(self) -> set[Any]: ...

    def assigned(self) -> set[Partition]: ...

    def unfinished(self) -> set[Partition]: ...

    def pause_only(self, partitions: Collection[Partition]) -> None: ...

    def unread(self, records: Iterable[RawRecord]) -> None: ...

    def lag(self) -> Mapping[Any, int]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def require_client(settings: KafkaSettings) -> None:
    """Raise :class:`ConfigError` when the chosen client library is not installed."""
    if settings.client != "confluent":
        return
    try:
        importlib.import_module("confluent_kafka")
    except ImportError:
        message = "confluent-kafka is not installed: pip install 'ciwatch[fast]'"
        raise ConfigError(message, where="service.kafka.client") from None


def open_source(
    settings: KafkaSettings,
    *,
    start_at: Mapping[Partition, int] | None = None,
    on_revoked: Callable[[list[Partition]], None] | None = None,
) -> ConsumerSource:
    """The source for ``settings.client``; arguments as :class:`KafkaSource`'s."""
    require_client(settings)
    if settings.client == "confluent":
        # Imported here: nothing loads confluent-kafka unless it was chosen.
        from detector.sources.kafka_confluent import ConfluentSource

        return ConfluentSource(settings, start_at=start_at, on_revoked=on_revoked)
    return KafkaSource(settings, start_at=start_at, on_revoked=on_revoked)
