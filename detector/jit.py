"""A numba kernel handed out only once a process has done enough rows without it.

Starting numba costs a process about a second (its import, then loading the
kernel numba cached beside the module that defines its body, ``cache=True``;
compiling it once after an install). That pays only on long runs, so a
:class:`LazyKernel` hands its kernel out once the process has handled
:data:`COMPILE_AFTER_ROWS` rows the plain (NumPy) way: a daemon or a long replay
switches early, a short run never starts numba. A daemon, which runs for
months, compiles every kernel at start-up instead (:func:`compile_all`), so it
scores the compiled way from its first batch. Without numba, or when the
kernel fails to compile, it hands out ``None`` and the caller keeps the plain
way, which gives the same results bit for bit.

The kernel is compiled on the main thread only: a training thread left to die
at a stop while inside LLVM aborts the whole process ("terminate called").

Example::

    doubled = LazyKernel(_double_rows, sample_args=(np.zeros(1), np.zeros(1)))
    kernel = doubled.kernel(len(rows))
    if kernel is None:
        out[:] = rows * 2  # the plain way
    else:
        kernel(rows, out)
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["COMPILE_AFTER_ROWS", "Kernel", "LazyKernel", "compile_all"]

Kernel = Callable[..., Any]

COMPILE_AFTER_ROWS = 100_000
"""Rows handled the plain way before numba pays its start (about a second): the
forest walk costs about 15 µs a row with NumPy over four models, the per-row
quantile update about 3 µs."""


_KERNELS: weakref.WeakSet[LazyKernel] = weakref.WeakSet()
"""Every kernel alive (the module-level ones, defined at import)."""


def compile_all() -> int:
    """Compile (or load from numba's cache) every kernel now, on the main thread; how
    many are compiled (0 without numba)."""
    return sum(kernel.compiled() is not None for kernel in list(_KERNELS))


class LazyKernel:
    """``body`` compiled with numba, handed out by :meth:`kernel` once enough rows went by.

    ``sample_args`` are the arguments of one small call of ``body``, made when it is
    compiled (or loaded from numba's cache), so that a failure shows there and not
    later; ``more_samples``, those of calls with other argument types it is also
    compiled for then, rather than when such a call first comes. ``rows_seen`` counts
    the rows handled in this process so far.
    """

    def __init__(
        self,
        body: Kernel,
        *,
        sample_args: tuple[object, ...],
        after_rows: int = COMPILE_AFTER_ROWS,
        helpers: Sequence[Callable[..., Any]] = (),
        more_samples: Sequence[tuple[object, ...]] = (),
    ) -> None:
        self.body = body
        self.sample_args = sample_args
        self.more_samples = tuple(more_samples)
        self.helpers = tuple(helpers)
        """Plain functions ``body`` calls by name: compiled too, and called compiled."""
        self.after_rows = after_rows
        self.rows_seen = 0
        self.built = False
        self._compiled: Kernel | None = None
        _KERNELS.add(self)

    def kernel(self, rows: int) -> Kernel | None:
        """The kernel to handle ``rows`` more rows with, once the process has handled
        enough or compiled it already (``None`` before that, off the main thread before
        it was compiled, or without numba: handle them the plain way)."""
        if not self.built and self.rows_seen < self.after_rows:
            self.rows_seen += rows
            return None
        if not self.built and threading.current_thread() is not threading.main_thread():
            # Compiled on the main thread only: a training thread left to die at a stop while
            # inside LLVM aborts the whole process ("terminate called").
            return None
        return self.compiled()

    def runnable(self) -> Kernel:
        """The compiled kernel, or its plain body (the same answers, slower)."""
        return self.compiled() or self.body

    def compiled(self) -> Kernel | None:
        """The kernel now, whatever the rows seen (compiled on the first call, then kept);
        ``None`` without numba or when it fails to compile."""
        if not self.built:
            self._compiled = self._compile()
            self.built = True
        return self._compiled

    def _compile(self) -> Kernel | None:
        try:
            import numba
        except ImportError:  # numba comes with pyod; a stripped install still scores, slower
            return None
        try:
            kernel: Kernel = numba.njit(cache=True, nogil=True)(self._with_helpers(numba, True))
        except RuntimeError:  # no writable place for numba's cache (a read-only image): compile
            kernel = numba.njit(nogil=True)(self._with_helpers(numba, False))
        try:  # compile (or load) now, on the samples, so that a failure is here and not later
            for args in (self.sample_args, *self.more_samples):
                kernel(*args)
        except Exception:  # any numba failure: the plain way gives the same results
            return None
        return kernel

    def _with_helpers(self, numba: Any, cache: bool) -> Kernel:
        """``body``, its helpers compiled in its globals (nopython code calls only compiled
        functions); ``body`` itself without helpers."""
        if not self.helpers:
            return self.body
        # One namespace for all: a helper that calls another finds it compiled there too.
        names = dict(self.body.__globals__)
        for helper in self.helpers:
            names[helper.__name__] = numba.njit(cache=cache, nogil=True)(_in(names, helper))
        return _in(names, self.body)


def _in(names: dict[str, Any], function: Kernel) -> Kernel:
    """``function`` with ``names`` for its globals."""
    code = function.__code__
    defaults = function.__defaults__
    return types.FunctionType(code, names, function.__name__, defaults)
