"""Window counters in their plain form or in compiled arenas (:mod:`detector.features.arena`).

A process that has compiled the counter kernels keeps hot counters in arenas from
then on; tests of the plain form's own layout ask for ``plain_counters``, tests
that must hold for both forms are run in each (``counter_form``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from detector.features.counter_kernels import dump_kernel, load_kernel, step_kernel
from detector.features.windows import WindowSpec


@pytest.fixture
def plain_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hot counters in their plain form, whatever this process compiled before."""
    monkeypatch.setattr(WindowSpec, "arena", lambda self, kind: None)


@pytest.fixture
def compiled_counters() -> None:
    """Hot counters in arenas: the counter kernels compiled (or loaded from numba's cache)."""
    for kernel in (step_kernel, load_kernel, dump_kernel):
        assert kernel.compiled() is not None


@pytest.fixture(params=["plain", "compiled"])
def counter_form(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test using it runs with plain counters, then with compiled ones."""
    fixture = "plain_counters" if request.param == "plain" else "compiled_counters"
    request.getfixturevalue(fixture)
    yield request.param
