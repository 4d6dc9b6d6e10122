"""CPython's garbage collector set for a process holding a large, long-lived state.

Every event allocates many short-lived objects (its decoded JSON, the event,
its observation and feature vector) while the feature state, the rules and
the models live as long as the process. CPython collects its youngest
generation every 700 net allocations, so it ran every few events, each time
also walking what had survived into the middle generation. Collected every
50,000 instead, the pipeline spent 13 to 15 % less time per event
(``bench/stages.py``, 45,826 events, default rules and bundled models:
122.5 and 124.5 → 105.6 and 106.2 µs with the same 56 alerts); the extra garbage held
between collections is a few megabytes.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune"]

YOUNG_THRESHOLD = 50_000
"""Net allocations between collections of the youngest generation (CPython's default: 700)."""


def tune() -> None:
    """Set the collector's thresholds for this process (see the module)."""
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
