"""A lazy kernel: handed out after enough rows, compiled on the main thread only, else None."""

from __future__ import annotations

import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from detector import jit
from detector.jit import Kernel, LazyKernel, compile_all


def _body(values: list[int]) -> None:
    values.append(1)


class _FakeNumba(types.ModuleType):
    """``numba.njit`` that returns the body itself and records the options it was given."""

    def __init__(self, *, cache_fails: bool = False) -> None:
        super().__init__("numba")
        self.cache_fails = cache_fails
        self.options: list[dict[str, Any]] = []

    def njit(self, **options: Any) -> Callable[[Kernel], Kernel]:
        self.options.append(options)
        if options.get("cache") and self.cache_fails:
            raise RuntimeError("cannot cache function: no locator available")
        return lambda body: body


@pytest.fixture
def numba(monkeypatch: pytest.MonkeyPatch) -> _FakeNumba:
    fake = _FakeNumba()
    monkeypatch.setitem(sys.modules, "numba", fake)
    return fake


def _lazy(after_rows: int = 1000) -> LazyKernel:
    return LazyKernel(_body, sample_args=([],), after_rows=after_rows)


def test_the_kernel_comes_once_enough_rows_went_by(numba: _FakeNumba) -> None:
    lazy = _lazy()
    assert lazy.kernel(600) is None
    assert lazy.kernel(600) is None  # 600 before: still short of 1000
    assert not lazy.built  # nothing compiled while short
    assert lazy.kernel(10) is _body
    assert lazy.rows_seen == 1200  # counted only until the kernel is handed out
    assert numba.options == [{"cache": True, "nogil": True}]


def test_a_worker_thread_never_compiles_but_gets_the_compiled_kernel(numba: _FakeNumba) -> None:
    lazy = _lazy(after_rows=0)
    got: list[Kernel | None] = []

    def in_a_worker() -> None:
        worker = threading.Thread(target=lambda: got.append(lazy.kernel(10)))
        worker.start()
        worker.join()

    in_a_worker()
    assert got == [None]
    assert not lazy.built and numba.options == []
    assert lazy.kernel(10) is _body  # the main thread compiles it
    in_a_worker()
    assert got == [None, _body]


def test_without_numba_the_kernel_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    lazy = _lazy(after_rows=0)
    assert lazy.kernel(10) is None
    assert lazy.built  # not tried again
    assert lazy.compiled() is None


def test_no_place_for_the_cache_compiles_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNumba(cache_fails=True)
    monkeypatch.setitem(sys.modules, "numba", fake)
    assert _lazy().compiled() is _body
    assert fake.options == [{"cache": True, "nogil": True}, {"nogil": True}]


def test_a_kernel_that_fails_on_its_sample_is_none(numba: _FakeNumba) -> None:
    lazy = LazyKernel(_body, sample_args=(None,), after_rows=0)  # None has no append
    assert lazy.compiled() is None
    assert lazy.kernel(10) is None


def test_compile_all_compiles_every_live_kernel_before_its_rows(
    numba: _FakeNumba, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only this test's kernels: the scorer's own stay as they are for the other tests.
    monkeypatch.setattr(jit, "_KERNELS", weakref.WeakSet())
    first, second = _lazy(after_rows=1_000_000), _lazy(after_rows=1_000_000)
    assert compile_all() == 2
    assert first.built and second.built
    assert first.kernel(10) is _body  # no longer waits for a million rows
