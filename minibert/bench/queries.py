"""Short queries: throughput on batches of distinct queries, one-query latency, and the memory-bandwidth floor.

* Throughput. Each round encodes `windows` batches of `batch_size` consecutive queries of the query list (taken
  round and round, so every batch holds distinct queries: minibert's ``encode`` embeds equal texts of one call
  once, which would flatter it), every contender the same batches, contenders alternating round by round.
* Latency. Every query alone (a list of one text), `passes` times over the list, the contenders taking turns pass
  by pass (:func:`latencies_ms` says why not query by query); reported as percentiles of the per-call wall times.
* Bandwidth floor. At a few rows each GEMM reads its whole weight matrix for little arithmetic, so one query
  cannot take less than the bytes of the encoder layers' parameters ÷ the memory's read bandwidth (a GEMM reads
  its weights and writes only its few output rows). The bandwidth is measured in the same run as the best rate of
  ``np.add.reduce`` over a 256 MiB buffer (bytes read per second) on one thread and split over the cores, so it is
  what NumPy itself reaches here.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..loading.weights import Weights
from ..retrieval.corpus import read_corpus
from .timing import call_seconds, wall_seconds

READ_BYTES = 256 * 2**20
QUERY_WORDS = 8  # words of a passage's start taken as a query when there is no queries file
T = TypeVar("T")


def read_queries(path: Path) -> list[str]:
    """The queries of a .tsv (id<TAB>text), .jsonl or plain-text file, as ``minibert search`` reads a corpus,
    equal ones dropped (they would be one text to ``encode``)."""
    return list(dict.fromkeys(p.embed_text for p in read_corpus(path)))


def queries_from_passages(passages: Sequence[str], count: int = 256, words: int = QUERY_WORDS) -> list[str]:
    """Query-like short texts where no queries file is at hand: the first `words` words of the first `count`
    passages, equal ones dropped."""
    return list(dict.fromkeys(" ".join(text.split()[:words]) for text in passages[:count]))


def query_windows(queries: Sequence[str], batch_size: int, windows: int) -> list[list[str]]:
    """`windows` batches of min(batch_size, len(queries)) consecutive queries of the list taken round and round:
    the queries inside one batch are distinct."""
    size = min(batch_size, len(queries))
    cycled = itertools.cycle(queries)
    return [list(itertools.islice(cycled, size)) for _ in range(windows)]


def throughput(encode: Callable[[list[str]], object], windows: list[list[str]]) -> float:
    """Queries per second of encoding every window, one ``encode`` call per window."""
    seconds = sum(call_seconds(encode, window) for window in windows)
    return sum(map(len, windows)) / seconds


def call_latencies_ms(
    calls: Mapping[str, Callable[[T], object]], items: Sequence[T], passes: int, turn: int | None = None
) -> dict[str, list[float]]:
    """Milliseconds of each call of a contender on one item, per contender: `passes` passes over the items, the
    contenders taking turns every `turn` items (None: pass by pass), each turn after one untimed call on its first
    item. Not item by item: a contender's idle worker threads (OpenBLAS's, torch's OpenMP pool, ONNX Runtime's)
    spin for a while after its last call, and on few cores they would slow the next contender's next call — the
    untimed call takes that. Turns shorter than a pass spread a busy spell of a shared machine over the contenders
    instead of one contender's whole pass, when each call is long (seconds) and a pass would take minutes."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    step = turn or len(items)
    for _ in range(passes):
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            for name, call in calls.items():
                call(chunk[0])
                times[name] += [1e3 * call_seconds(call, item) for item in chunk]
    return times


def latencies_ms(
    contenders: Mapping[str, Callable[[list[str]], object]], queries: Sequence[str], passes: int
) -> dict[str, list[float]]:
    """Milliseconds of each one-query call (a list of one text), per contender (:func:`call_latencies_ms`)."""
    return call_latencies_ms(contenders, [[query] for query in queries], passes)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between order statistics (NumPy's default)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def streamed_bytes(weights: Weights) -> int:
    """Bytes of the encoder layers' parameters: what one forward reads from memory at least once, whatever M."""
    return sum(getattr(layer, f.name).nbytes for layer in weights.layers for f in dataclasses.fields(layer))


def read_bandwidth(threads: int, repeats: int = 5) -> tuple[float, int]:
    """(bytes/s, threads) of the best ``np.add.reduce`` over a READ_BYTES buffer, on one thread and on `threads`
    threads each summing a contiguous slice; the better of the two."""
    source = np.ones(READ_BYTES // 4, dtype=np.float32)
    best = (0.0, 1)
    for n in sorted({1, max(1, threads)}):
        bounds = np.linspace(0, source.size, n + 1).astype(int)
        slices = [slice(a, b) for a, b in itertools.pairwise(bounds.tolist())]
        with ThreadPoolExecutor(n) as pool:

            def read(pool=pool, slices=slices) -> None:
                for future in [pool.submit(np.add.reduce, source[s]) for s in slices]:
                    future.result()

            read()  # warm-up, untimed
            rate = source.nbytes / min(wall_seconds(read) for _ in range(repeats))
        best = max(best, (rate, n))
    return best
