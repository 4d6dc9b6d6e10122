"""Worker entries for tests/integration/test_workers.py: workers that fail on purpose.

The supervisor spawns ``entry(config)`` in a fresh interpreter, which imports
this module by name; it stays small so that a spawn is quick.
"""

from __future__ import annotations

import signal

from detector.config import PipelineConfig

__all__ = ["crash_at_start", "first_fails_with_2"]


def crash_at_start(config: PipelineConfig) -> int:
    """A worker that dies at once with an unexpected error (status 1), every time."""
    raise RuntimeError("boom")


def first_fails_with_2(config: PipelineConfig) -> int:
    """Worker 0 has a config error (status 2); the others run until SIGTERM and exit 0."""
    if config.service.kafka.client_id.endswith("-0"):
        return 2
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.sigwait({signal.SIGTERM})
    return 0
