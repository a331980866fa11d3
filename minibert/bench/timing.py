"""The benchmarks' clocks — wall seconds of one call (or, for a contender in a worker process, the seconds that
process measured), and the median milliseconds of a GPU kernel — and the alternation of contenders round by round.

Every benchmark (minibert bench, benchmarks/bench_*.py) times with these, so a number means the same everywhere.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping


def wall_seconds(fn: Callable[[], object], synchronize: Callable[[], object] | None = None) -> float:
    """Wall-clock seconds of one call of `fn`. `synchronize` (e.g. torch.cuda.synchronize) runs before the clock
    starts and before it stops, so work queued before is not counted and work `fn` queued is."""
    if synchronize is not None:
        synchronize()
    start = time.perf_counter()
    fn()
    if synchronize is not None:
        synchronize()
    return time.perf_counter() - start


def call_seconds(call: Callable[..., object], *args: object) -> float:
    """Seconds of one ``call(*args)``: as the contender's own process measured it when the call runs in a worker
    (:class:`~minibert.bench.worker.WorkerCall`, which has ``seconds``), else the wall time here."""
    seconds = getattr(call, "seconds", None)
    return seconds(*args) if seconds is not None else wall_seconds(lambda: call(*args))


class Spread:
    """``call(*item)`` as a call of one item, timed by :func:`call_seconds` as ``call`` is."""

    def __init__(self, call: Callable[..., object]) -> None:
        self.call = call

    def __call__(self, item: tuple) -> object:
        return self.call(*item)

    def seconds(self, item: tuple) -> float:
        return call_seconds(self.call, *item)


def median_ms(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median milliseconds of `fn`: triton.testing.do_bench's median on a GPU; when the kernels run in Triton's
    interpreter (on CPU, where the time is no speed), the median wall time of `repeats` calls."""
    from ..encoder.gpu import interpreting

    if not interpreting():
        import triton.testing

        return triton.testing.do_bench(fn, return_mode="median")
    return 1e3 * statistics.median(wall_seconds(fn) for _ in range(repeats))


def alternating(
    measures: Mapping[str, Callable[[], float]], rounds: int, progress: str | None = None, pause_s: float = 0.0
) -> dict[str, list[float]]:
    """Each contender's measurement (a rate, say) per round: `rounds` rounds, in each every contender once, in
    order (A B C A B C ...), so machine noise hits all alike, each after `pause_s` idle seconds. With `progress`,
    "<progress> i/rounds" goes to stderr before each round."""
    values: dict[str, list[float]] = {name: [] for name in measures}
    for round_index in range(rounds):
        if progress is not None:
            print(f"{progress} {round_index + 1}/{rounds}", file=sys.stderr)
        for name, measure in measures.items():
            time.sleep(pause_s)
            values[name].append(measure())
    return values
