"""The one benchmark schema: a long-format row per measured value, appended to ``benchmarks/results.csv``.

Every row is self-describing — what was measured (model and workload), the contender, the metric and its unit, the
independent variable ``x`` (a batch size, a length), the median and the 20th / 80th percentiles over the repeats,
and where and when (machine, versions, date) — so rows of different benchmarks and runs sit in one file and any of
them can be plotted against the others. ``minibert bench`` writes its rows so (:func:`bench_rows`; with ``--task
rerank``, :func:`rerank_rows`, whose ``what`` starts with ``cross-encoder, ``); the older, per-benchmark CSVs under
``benchmarks/`` stay as they are, as history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .contenders import MINIBERT
from .report import LATENCY_PERCENTILES, MB, ModelRun, RerankRun, floor_ms

CROSS_ENCODER = "cross-encoder"  # how the rows of --task rerank begin their `what`
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


def latency_rows(
    what: str, contender: str, metric: str, x: object, ms: Sequence[float], where: Mapping[str, str]
) -> list[dict[str, object]]:
    """A latency's rows: its p50 with p20 / p80 (`metric`), then one row per higher percentile (`metric` p95, p99)."""
    rows = [result_row(what, contender, metric, "ms", x, ms, where)]
    for q in LATENCY_PERCENTILES[1:]:
        rows.append(result_row(what, contender, f"{metric} p{q}", "ms", x, [np.percentile(ms, q)], where))
    return rows


def throughput_rows(
    what: str,
    run: ModelRun | RerankRun,
    items: int,
    unit: str,
    compared: str,
    batch_size: int,
    where: Mapping[str, str],
) -> list[dict[str, object]]:
    """Per contender: its rate over the rounds in `unit` (`items` per round), tokens/s, GFLOP/s, the max |Δ| of what
    is `compared` to sentence-transformers; then the sgemm peak."""
    rows = []
    for name, rates in run.rates.items():
        rows.append(result_row(what, name, "throughput", unit, batch_size, rates, where))
        tokens = [run.tokens / items * r for r in rates]
        rows.append(result_row(what, name, "throughput", "tokens/s", batch_size, tokens, where))
        gflops = [run.flops / items * r / 1e9 for r in rates]
        rows.append(result_row(what, name, "compute", "GFLOP/s", batch_size, gflops, where))
        if run.max_diff.get(name) is not None:
            rows.append(result_row(what, name, f"max |Δ| {compared}vs sentence-transformers", "1", batch_size,
                                   [run.max_diff[name]], where))  # fmt: skip
    rows.append(result_row(what, "numpy sgemm", "peak compute", "GFLOP/s", "", [run.sgemm_peak], where))
    return rows


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
        rows += throughput_rows(passages, run, run.passages, "docs/s", "", batch_size, where)
        if run.queries and bandwidth is not None:
            queries = f"{run.label}: queries ({run.queries} distinct, {run.query_tokens:.1f} tokens each)"
            for name, rates in run.query_rates.items():
                rows.append(result_row(queries, name, "throughput", "queries/s", run.query_batch, rates, where))
                rows += latency_rows(queries, name, "one-query latency", 1, run.latencies[name], where)
            rows.append(result_row(queries, MINIBERT, "bandwidth floor", "ms", 1, [floor_ms(run, bandwidth)], where))
        for name, seconds in run.cold_start.items():
            rows.append(result_row(f"{run.label}: cold start", name, "spawn to exit", "s", "", seconds, where))
        if run.rss:
            what = f"{run.label}: encode {run.rss['passages']} passages in a fresh process"
            rows.append(result_row(what, MINIBERT, f"peak RSS ({run.rss['peak_source']})", "MB", batch_size,
                                   [run.rss["peak"] / MB], where))  # fmt: skip
    return rows


def rerank_rows(
    runs: Sequence[RerankRun], batch_size: int, corpus: str, where: Mapping[str, str]
) -> list[dict[str, object]]:
    """Every measurement of a ``minibert bench --task rerank`` run as result rows, each ``what`` beginning
    ``cross-encoder, <model>: ``: per model and contender, pairs/s, tokens/s and GFLOP/s over the rounds (x: the
    batch size) and the max |Δ| of the scores to sentence-transformers; the sgemm peak; the latency of reranking
    one query's candidates, p50 with p20 / p80, p95, p99 (x: the candidates)."""
    rows = []
    for run in runs:
        pairs = (
            f"{CROSS_ENCODER}, {run.label}: (query, {corpus} passage) pairs ({run.pairs}, "
            f"{run.tokens / run.pairs:.1f} tokens each)"
        )
        rows += throughput_rows(pairs, run, run.pairs, "pairs/s", "score ", batch_size, where)
        rerank = (
            f"{CROSS_ENCODER}, {run.label}: rerank {run.candidates} {corpus} passages per query "
            f"({run.queries} queries, {run.candidate_tokens:.1f} tokens per pair, batch {batch_size})"
        )
        for name, ms in run.latencies.items():
            rows += latency_rows(rerank, name, "rerank latency", run.candidates, ms, where)
    return rows
