"""Alerts to several sinks at once, each tried whatever the others do.

``ciwatch replay`` delivers with :func:`deliver`; the daemon with
:mod:`detector.delivery`, which also pauses on a full disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from detector.alerts.model import Alert
from detector.sinks.base import Sink

__all__ = ["deliver"]


def deliver(
    sinks: Sequence[Sink],
    alerts: list[Alert],
    *,
    on_failure: Callable[[Sink, Exception], None] | None = None,
) -> None:
    """Every sink delivers or spools ``alerts`` (accept, then flush) before anything is committed.

    Sinks fail independently: each is tried whatever the others do. If one
    fails (``on_failure`` hears of each), the first failure is raised after all
    were tried, so the batch is not committed and is read again; the sinks
    that took it get it again then, with the same ids.
    """
    if not alerts:
        return
    failure: Exception | None = None
    for sink in sinks:
        try:
            sink.accept(alerts)
            sink.flush()
        except Exception as exc:  # any sink error: the others are tried first
            if on_failure is not None:
                on_failure(sink, exc)
            failure = failure or exc
    if failure is not None:
        raise failure
