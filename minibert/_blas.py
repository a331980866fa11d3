"""Single-threaded BLAS while minibert's own threads each run GEMMs (OpenBLAS builds of NumPy).

The fast forward splits a batch into one group of sequences per core and runs each group on its own
thread. If every thread's GEMM then also fans out to OpenBLAS's thread pool, the cores are oversubscribed
(measured on 2 cores: 71 docs/s against 105 with one BLAS thread per group). OpenBLAS has no per-thread
setting (``openblas_set_num_threads_local`` sets the global count too), so :func:`single_threaded_blas`
sets the process-wide count to 1 while at least one forward is inside it and restores the previous count
when the last one leaves. NumPy matmuls other threads run in that window also get one BLAS thread.

The library is found the way threadpoolctl finds it, with the standard library only: the OpenBLAS shared
object mapped into this process (``/proc/self/maps``; NumPy's wheels bundle ``scipy_openblas``). Other
BLAS builds (MKL, Accelerate) are left alone.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# (set, get) symbol names: numpy ≥ 2 wheels (scipy-openblas, 64-bit ints), 64-bit OpenBLAS, plain OpenBLAS
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)

_lock = threading.Lock()
_users = 0
_saved_threads = 0


def _mapped_openblas() -> list[str]:
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split(maxsplit=5)[-1] for line in lines if "openblas" in line.lower()}
    return sorted(p for p in paths if p.startswith("/"))


@functools.cache
def _find_controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    import numpy as np

    np.ones((2, 2), dtype=np.float32) @ np.ones((2, 2), dtype=np.float32)  # make sure NumPy's BLAS is loaded
    for path in _mapped_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                return getattr(lib, set_name), getattr(lib, get_name)
    return None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One OpenBLAS thread while any caller is inside; the previous count again after the last leaves."""
    global _users, _saved_threads
    with _lock:
        controls = _find_controls()
        if controls is not None and _users == 0:
            set_threads, get_threads = controls
            _saved_threads = get_threads()
            set_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if controls is not None and _users == 0:
                controls[0](_saved_threads)
