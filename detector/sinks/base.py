"""The Sink seam: ``send(batch)`` hands alerts over, ``flush()`` makes them durable.

The pipeline commits source positions only after every sink's ``flush`` has
returned, so a sink must not return from ``flush`` before the alerts it was
sent are delivered or durably spooled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType

from detector.alerts.model import Alert
from detector.detections import Severity

__all__ = ["Sink"]


class Sink(ABC):
    """An alert destination. ``min_severity`` filters what it is sent."""

    name: str = "sink"

    def __init__(self, *, min_severity: Severity = Severity.INFO) -> None:
        self.min_severity = min_severity
        # Called while the sink waits on purpose (a full spool, an acknowledgement):
        # the daemon points it at its liveness beat, so waiting is not taken for a hang.
        self.keepalive: Callable[[], None] = _nothing

    def accept(self, batch: Sequence[Alert]) -> None:
        """Send the alerts of ``batch`` at or above this sink's minimum severity."""
        wanted = [a for a in batch if a.severity.rank >= self.min_severity.rank]
        if wanted:
            self.send(wanted)

    @abstractmethod
    def send(self, batch: Sequence[Alert]) -> None: ...

    def flush(self) -> None:  # noqa: B027  (sinks that write through have nothing to flush)
        """Block until what was sent is delivered or durably spooled."""

    def close(self) -> None:  # noqa: B027
        """Release resources; the pipeline flushes first."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()
        self.close()


def _nothing() -> None:
    return None
