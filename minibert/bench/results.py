"""The one benchmark schema: a long-format row per measured value, appended to ``benchmarks/results.csv``.

Every row is self-describing — what was measured (model and workload), the contender, the metric and its unit, the
independent variable ``x`` (a batch size, a length), the median and the 20th / 80th percentiles over the repeats,
and where and when (machine, versions, date) — so rows of different benchmarks and runs sit in one file and any of
them can be plotted against the others. ``minibert bench`` writes its rows so (:func:`bench_rows`); the older,
per-benchmark CSVs under ``benchmarks/`` stay as they are, as history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .contenders import MINIBERT
from .report import LATENCY_PERCENTILES, MB, ModelRun, floor_ms

RESULT_COLUMNS = ["what", "contender", "metric", "unit", "x", "median", "p20", "p80", "machine", "versions", "date"]


def result_row(
    what: str, contender: str, metric: str, unit: str, x: object, values: Iterable[float], where: Mapping[str, str]
) -> dict[str, object]:
    """One row: the median and the 20th / 80th percentiles of `values` (linear interpolation, NumPy's default);
    `where` holds ``machine``, ``versions`` and ``date``."""
    values = np.asarray(list(values), dtype=np.float64)
    p20, median, p80 = (f"{v:.6g}" for v in np.percentile(values, [20, 50, 80]))
    return {"what": what, "contender": contender, "metric": metric, "unit": unit, "x": x, "median": median,
            "p20": p20, "p80": p80, **{key: where[key] for key in ("machine", "versions", "date")}}  # fmt: skip


def bench_rows(
    runs: Sequence[ModelRun],
    batch_size: int,
    corpus: str,
    where: Mapping[str, str],
    bandwidth: tuple[float, int] | None,
) -> list[dict[str, object]]:
    """Every measurement of a ``minibert bench`` run as result rows: per model and contender, docs/s, tokens/s and
    GFLOP/s over the rounds and the max |Δ| to sentence-transformers; the query rows (queries/s, one-query latency
    p50 with p20 / p80, p95, p99, and the bandwidth floor); the cold starts and the peak RSS."""
    rows = []
    for run in runs:
        passages = f"{run.label}: {corpus} passages ({run.passages}, {run.tokens / run.passages:.1f} tokens each)"
        for name, rates in run.rates.items():
            rows.append(result_row(passages, name, "throughput", "docs/s", batch_size, rates, where))
            tokens = [run.tokens / run.passages * r for r in rates]
            rows.append(result_row(passages, name, "throughput", "tokens/s", batch_size, tokens, where))
            gflops = [run.flops / run.passages * r / 1e9 for r in rates]
            rows.append(result_row(passages, name, "compute", "GFLOP/s", batch_size, gflops, where))
            if run.max_diff.get(name) is not None:
                rows.append(result_row(passages, name, "max |Δ| vs sentence-transformers", "1", batch_size,
                                       [run.max_diff[name]], where))  # fmt: skip
        rows.append(result_row(passages, "numpy sgemm", "peak compute", "GFLOP/s", "", [run.sgemm_peak], where))
        if run.queries and bandwidth is not None:
            queries = f"{run.label}: queries ({run.queries} distinct, {run.query_tokens:.1f} tokens each)"
            for name, rates in run.query_rates.items():
                rows.append(result_row(queries, name, "throughput", "queries/s", run.query_batch, rates, where))
                rows.append(result_row(queries, name, "one-query latency", "ms", 1, run.latencies[name], where))
                for q in LATENCY_PERCENTILES[1:]:
                    value = np.percentile(run.latencies[name], q)
                    rows.append(result_row(queries, name, f"one-query latency p{q}", "ms", 1, [value], where))
            rows.append(result_row(queries, MINIBERT, "bandwidth floor", "ms", 1, [floor_ms(run, bandwidth)], where))
        for name, seconds in run.cold_start.items():
            rows.append(result_row(f"{run.label}: cold start", name, "spawn to exit", "s", "", seconds, where))
        if run.rss:
            what = f"{run.label}: encode {run.rss['passages']} passages in a fresh process"
            rows.append(result_row(what, MINIBERT, f"peak RSS ({run.rss['peak_source']})", "MB", batch_size,
                                   [run.rss["peak"] / MB], where))  # fmt: skip
    return rows
