"""How many OpenBLAS threads a forward's GEMMs get (OpenBLAS builds of NumPy): :func:`blas_threads`.

The fast forward either runs one group of sequences per core, each on its own thread, or — a batch too small to
split, such as one query — one group on the calling thread. In the first case each GEMM must stay on one BLAS
thread: threads inside threads oversubscribed the cores. In the second the GEMMs are the whole forward, and
at a few rows they are bound by streaming the weights from memory, which one core does not saturate: there BLAS
should split them over the cores. OpenBLAS has no per-thread setting (``openblas_set_num_threads_local`` sets
the global count too), so the count is process-wide, and :func:`blas_threads` takes turns: forwards asking for
the same count run together under it (capped by the count found before, so ``OPENBLAS_NUM_THREADS=1`` is kept);
a forward asking for another count waits until they are done, and forwards arriving meanwhile wait behind it.
So every GEMM of a forward runs with the count its batch asked for, whatever runs beside it — OpenBLAS splits
a GEMM differently for another count, and the last bits of the result follow, so this keeps one text's
embedding the same alone and under concurrent load. When no forward is inside, the count found before is back.
NumPy matmuls that other threads run meanwhile get the same count.

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

_turns = threading.Condition()
_inside = 0  # forwards inside blas_threads
_inside_count = 0  # the BLAS threads they all run with
_waiting: dict[int, int] = {}  # BLAS threads asked for -> forwards waiting for their turn
_saved_threads = 0


def _mapped_openblas() -> list[str]:
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split(maxsplit=5)[-1] for line in lines if "openblas" in line.lower()}
    return sorted(p for p in paths if p.startswith("/"))


@functools.cache
def find_controls() -> tuple[Callable[[int], None], Callable[[], int]] | None:
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
def blas_threads(n: int) -> Iterator[None]:
    """Run the caller's GEMMs on `n` BLAS threads (capped by the count found before); forwards asking for the same
    count run together, others wait their turn (module docstring). The count found before is restored whenever
    no forward is inside."""
    global _inside, _inside_count, _saved_threads
    controls = find_controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    with _turns:
        _waiting[n] = _waiting.get(n, 0) + 1
        try:  # join the forwards inside when they run with this count and nobody else waits; else wait until empty
            while _inside and (_inside_count != n or any(k != n and w for k, w in _waiting.items())):
                _turns.wait()
        finally:
            _waiting[n] -= 1
        if not _inside:
            _saved_threads = get_threads()
            _inside_count = n
            set_threads(max(1, min(n, _saved_threads)))
        _inside += 1
    try:
        yield
    finally:
        with _turns:
            _inside -= 1
            if not _inside:
                set_threads(_saved_threads)
                _turns.notify_all()
