"""What a benchmark run leaves behind: the markdown report on stdout, CSV rows, a PNG — for the embedding task
(:class:`ModelRun`) and the cross-encoder task (:class:`RerankRun`, ``--task rerank``).

:func:`append_csv` is the one way every benchmark (minibert bench, benchmarks/bench_*.py) appends rows: the header
is written once, with the first rows, and a file that has other columns is refused rather than mixed. The rows of
``minibert bench`` are in the one long-format schema of :mod:`minibert.bench.results`.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .contenders import REFERENCE
from .queries import percentile

RSS_MARGIN = 300 * 2**20
MB = 2**20
LATENCY_PERCENTILES = (50, 95, 99)


@dataclass
class ModelRun:
    """Everything measured for one model."""

    label: str
    model_dir: Path
    passages: int
    tokens: int
    flops: int
    sgemm_peak: float
    rates: dict[str, list[float]] = field(default_factory=dict)  # contender -> docs/s per round
    max_diff: dict[str, float | None] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # contender -> why
    cold_start: dict[str, list[float]] = field(default_factory=dict)
    cold_start_skipped: dict[str, str] = field(default_factory=dict)
    rss: dict | None = None
    queries: int = 0  # distinct queries of the query rows (0: none measured)
    query_tokens: float = 0.0  # their mean real tokens
    query_batch: int = 0  # queries per encode call in the throughput rounds
    weights_bytes: int = 0  # the encoder layers' parameters: what one query streams from memory
    query_rates: dict[str, list[float]] = field(default_factory=dict)  # contender -> queries/s per round
    latencies: dict[str, list[float]] = field(default_factory=dict)  # contender -> ms of each one-query call


@dataclass
class RerankRun:
    """Everything measured for one cross-encoder (--task rerank)."""

    label: str
    model_dir: Path
    pairs: int  # (query, passage) pairs per throughput round
    tokens: int  # their real tokens ([CLS] query [SEP] passage [SEP], after truncation)
    flops: int  # the encoder layers' useful FLOPs on them
    sgemm_peak: float
    queries: int  # queries in the latency rows, each with `candidates` passages
    candidates: int
    candidate_tokens: float  # real tokens per (query, candidate) pair, mean
    rates: dict[str, list[float]] = field(default_factory=dict)  # contender -> pairs/s per round
    max_diff: dict[str, float | None] = field(default_factory=dict)  # contender -> max |Δ| of scores vs the reference
    unavailable: dict[str, str] = field(default_factory=dict)  # contender -> why
    latencies: dict[str, list[float]] = field(default_factory=dict)  # contender -> ms of each rerank call


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _gap_text(name: str, gap: float | None) -> str:
    return "(reference)" if name == REFERENCE else "–" if gap is None else f"{gap:.1e}"


def _ratio_text(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}×" if reference else "–"


def _throughput_table(
    runs: Sequence[ModelRun | RerankRun], unit: str, items: Callable[[Any], int], compared: str
) -> list[str]:
    """Rates per contender (median and spread of the rounds), tokens/s, GFLOP/s and its share of the sgemm peak, the
    ratio to sentence-transformers and the max |Δ| of what is `compared`; then why a contender is missing. `unit`:
    what is counted (docs, pairs), `items(run)` how many of them a round did."""
    lines = [
        "",
        f"| model | contender | {unit}/s median (min–max) | tokens/s | GFLOP/s | % of sgemm peak | "
        f"× sentence-transformers | max \\|Δ\\| {compared}vs sentence-transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        reference = statistics.median(run.rates[REFERENCE]) if REFERENCE in run.rates else None
        for name, rates in run.rates.items():
            rate = statistics.median(rates)
            gflops = run.flops / items(run) * rate / 1e9
            lines.append(
                f"| {run.label} | {name} | {_spread(rates)} | {run.tokens / items(run) * rate:,.0f} | {gflops:.1f} | "
                f"{100 * gflops / run.sgemm_peak:.0f}% | {_ratio_text(rate, reference)} | "
                f"{_gap_text(name, run.max_diff[name])} |"
            )
    for run in runs:
        for name, why in run.unavailable.items():
            lines.append(f"\n{run.label}: {name}: {why}")
    return lines


def format_report(runs: list[ModelRun], header: dict[str, str], rounds: int) -> str:
    """The markdown report: a header, the throughput table, cold start and RSS tables, the notes."""
    lines = [f"- {key}: {value}" for key, value in header.items()]
    lines += _throughput_table(runs, "docs", lambda run: run.passages, "")
    lines += [
        "",
        f"{rounds} alternating round(s) after a warm-up; GFLOP/s counts the encoder layers' useful FLOPs on real "
        "tokens (padding is not counted): per layer 2·L·C·3C + 2·L·C·C + 2·2·L·C·F + 2·2·L²·C. "
        + "; ".join(f"sgemm peak ({run.label}): {run.sgemm_peak:.1f} GFLOP/s" for run in runs)
        + " (best np.matmul on BERT-shaped float32 matrices, this run).",
    ]
    if any(run.cold_start or run.cold_start_skipped for run in runs):
        lines += ["", "| model | contender | cold start s, median (min–max) |", "|---|---|---|"]
        for run in runs:
            for name, seconds in run.cold_start.items():
                lines.append(f"| {run.label} | {name} | {_spread(seconds, 2)} over {len(seconds)} |")
            for name, why in run.cold_start_skipped.items():
                lines.append(f"| {run.label} | {name} | {why} |")
        lines.append("(a fresh `python -c`: import, load the model, encode one sentence; spawn to exit)")
    if any(run.rss for run in runs):
        lines += [
            "",
            "| model | passages | minibert peak RSS | RSS after load | RSS after each repeat | weights + 300 MB |",
            "|---|---|---|---|---|---|",
        ]
        for run in runs:
            if not run.rss:
                continue
            r = run.rss
            budget = r["weights"] + RSS_MARGIN
            verdict = "within" if r["peak"] <= budget else "over"
            after = " / ".join("n/a" if v is None else f"{v / MB:.0f}" for v in r["after_repeats"])
            load = "n/a" if r["after_load"] is None else f"{r['after_load'] / MB:.0f} MB"
            lines.append(
                f"| {run.label} | {r['passages']} | {r['peak'] / MB:.0f} MB ({r['peak_source']}; {verdict}) | {load} | "
                f"{after} MB | {r['weights'] / MB:.0f} + 300 = {budget / MB:.0f} MB |"
            )
        lines.append(
            "(a fresh process encodes that many passages of the corpus with minibert, once per repeat; VmHWM is the "
            "peak RSS of the process itself: on Linux ru_maxrss would carry over the size of the process that "
            "spawned it)"
        )
    return "\n".join(lines)


def format_rerank_report(runs: list[RerankRun], header: dict[str, str], rounds: int) -> str:
    """The cross-encoder report: a header; pairs/s (tokens/s, GFLOP/s, share of the sgemm peak, ratio to
    sentence-transformers, max |Δ| of the scores); the latency of reranking one query's candidates."""
    lines = [f"- {key}: {value}" for key, value in header.items()]
    lines += _throughput_table(runs, "pairs", lambda run: run.pairs, "score ")
    lines += [
        "",
        "| model | contender | rerank one query's candidates, p50 / p95 / p99 ms | p50 × sentence-transformers' | "
        "candidates/s at p50 |",
        "|---|---|---|---|---|",
    ]
    for run in runs:
        reference_p50 = percentile(run.latencies[REFERENCE], 50) if REFERENCE in run.latencies else None
        for name, ms in run.latencies.items():
            p50, p95, p99 = (percentile(ms, q) for q in LATENCY_PERCENTILES)
            lines.append(
                f"| {run.label} | {name} | {p50:.1f} / {p95:.1f} / {p99:.1f} | {_ratio_text(p50, reference_p50)} | "
                f"{1e3 * run.candidates / p50:.1f} |"
            )
    lines += [
        "",
        f"{rounds} alternating round(s) after a warm-up (the max |Δ| pairs); GFLOP/s counts the encoder layers' useful "
        "FLOPs on real tokens, as the embedding table does (the classification head is left out; minibert's last "
        "layer computes the [CLS] rows alone, so its arithmetic is less than the count). "
        + "; ".join(f"sgemm peak ({run.label}): {run.sgemm_peak:.1f} GFLOP/s" for run in runs)
        + ". Latency: one `rank(query, candidates)` call per query, the contenders taking turns (a few queries "
        "each, every turn after one untimed call); "
        + "; ".join(
            f"{run.label}: {run.queries} queries × {run.candidates} candidates, {run.candidate_tokens:.1f} tokens per "
            f"pair, {len(next(iter(run.latencies.values()), []))} calls each"
            for run in runs
        )
        + ".",
    ]
    return "\n".join(lines)


def floor_ms(run: ModelRun, bandwidth: tuple[float, int]) -> float:
    """The model's one-query floor: its streamed bytes ÷ the measured read bandwidth, in milliseconds."""
    return 1e3 * run.weights_bytes / bandwidth[0]


def format_query_report(runs: list[ModelRun], bandwidth: tuple[float, int], rounds: int) -> str:
    """The query table: queries/s on batches of distinct queries, one-query latency percentiles, the ratios to
    sentence-transformers, and minibert's distance to the bandwidth floor."""
    lines = [
        "",
        "| model | contender | queries/s, batch of distinct queries, median (min–max) | × sentence-transformers | "
        "one query p50 / p95 / p99 ms | p50 × sentence-transformers' | p50 ÷ bandwidth floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        floor = floor_ms(run, bandwidth)
        reference_rate = statistics.median(run.query_rates[REFERENCE]) if REFERENCE in run.query_rates else None
        reference_p50 = percentile(run.latencies[REFERENCE], 50) if REFERENCE in run.latencies else None
        for name, rates in run.query_rates.items():
            rate = statistics.median(rates)
            p50, p95, p99 = (percentile(run.latencies[name], q) for q in LATENCY_PERCENTILES)
            lines.append(
                f"| {run.label} | {name} | {_spread(rates)} | {_ratio_text(rate, reference_rate)} | "
                f"{p50:.1f} / {p95:.1f} / {p99:.1f} | {_ratio_text(p50, reference_p50)} | {p50 / floor:.1f}× |"
            )
    rate, threads = bandwidth
    lines += [
        "",
        f"{rounds} alternating round(s) of batches of {runs[0].query_batch} distinct queries; then every query "
        f"alone, the contenders taking turns pass by pass ({len(next(iter(runs[0].latencies.values())))} calls "
        "each). Bandwidth floor: the encoder layers' parameters ÷ the read bandwidth measured in this run "
        f"({rate / 1e9:.1f} GB/s, np.add.reduce of 256 MiB on {threads} thread(s)): "
        + "; ".join(f"{run.label} {run.weights_bytes / 1e6:.1f} MB → {floor_ms(run, bandwidth):.2f} ms" for run in runs)
        + "; queries: "
        + "; ".join(f"{run.label} {run.queries} distinct, {run.query_tokens:.1f} tokens each" for run in runs)
        + ".",
    ]
    return "\n".join(lines)


def append_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> int:
    """Append `rows` (dicts keyed by `columns`) to the CSV at `path`, writing the header first when the file is new
    or empty; returns the number of rows written. A file whose header is not `columns` is an InputError."""
    columns = list(columns)
    new_file = not path.exists() or path.stat().st_size == 0
    if new_file:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        with path.open(newline="") as f:
            existing = next(csv.reader(f), [])
        if existing != columns:
            raise InputError(f"CSV {path} has other columns ({', '.join(existing)}); pass a new file")
    count = 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new_file:
            writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _bars(
    ax, runs: Sequence[ModelRun | RerankRun], values_of: Callable[..., Mapping[str, list[float]]], ylabel: str
) -> None:
    """Grouped bars on `ax`: per model, per contender, the median of ``values_of(run)[contender]`` with min–max
    error bars."""
    names = list(dict.fromkeys(name for run in runs for name in values_of(run)))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs, medians, low, high = [], [], [], []
        for x, run in enumerate(runs):
            if name in values_of(run):
                values = values_of(run)[name]
                median = statistics.median(values)
                xs.append(x - 0.4 + width * (i + 0.5))
                medians.append(median)
                low.append(median - min(values))
                high.append(max(values) - median)
        bars = ax.bar(xs, medians, width, yerr=[low, high], capsize=4, label=name)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_xticks(range(len(runs)), [run.label for run in runs])
    ax.set_ylabel(ylabel)


def _figure(path: Path, title: str, panels: int, groups: int, draw: Callable[[list], None]) -> str:
    """A PNG of `panels` axes side by side (`groups` groups of bars on each), drawn by ``draw(axes)``; returns what
    it did (a line saying so when matplotlib is not installed)."""
    try:
        import matplotlib
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(panels * max(6.0, 2.5 * groups + 2), 4.5), squeeze=False)
    draw(list(axes[0]))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"


def _latency_spread(latencies: Mapping[str, list[float]]) -> dict[str, list[float]]:
    """p5, p50, p95 of each contender's latencies: drawn by :func:`_bars` as a bar at p50, whiskers to p5 and p95."""
    return {name: [percentile(ms, q) for q in (5, 50, 95)] for name, ms in latencies.items()}


def plot(path: Path, runs: list[ModelRun], title: str, bandwidth: tuple[float, int] | None = None) -> str:
    """A PNG of median docs/s per contender per model with min–max error bars, and — when the query rows were
    measured — queries/s on batches of distinct queries and one-query latency (p50, bars from p5 to p95) with each
    model's bandwidth floor; returns what it did."""

    def draw(axes: list) -> None:
        _bars(axes[0], runs, lambda run: run.rates, "passages: docs/s (median, min–max)")
        axes[0].legend(fontsize=8)
        if bandwidth is not None:
            _bars(axes[1], runs, lambda run: run.query_rates, "queries/s, batches of distinct queries")
            _bars(axes[2], runs, lambda run: _latency_spread(run.latencies), "one query: ms (p50, p5–p95)")
            for x, run in enumerate(runs):
                floor = floor_ms(run, bandwidth)
                axes[2].hlines(floor, x - 0.45, x + 0.45, colors="black", linestyles="dashed")
                axes[2].annotate(f"bandwidth floor {floor:.1f} ms", (x, floor), fontsize=7, va="bottom", ha="center")

    return _figure(path, title, 3 if bandwidth is not None else 1, len(runs), draw)


def plot_rerank(path: Path, runs: list[RerankRun], title: str) -> str:
    """A PNG of the cross-encoder task: median pairs/s per contender per model (min–max error bars) and the latency
    of reranking one query's candidates (p50, bars from p5 to p95); returns what it did."""

    def draw(axes: list) -> None:
        _bars(axes[0], runs, lambda run: run.rates, "(query, passage) pairs/s (median, min–max)")
        axes[0].legend(fontsize=8)
        candidates = "/".join(sorted({str(run.candidates) for run in runs}))
        ylabel = f"rerank {candidates} candidates: ms (p50, p5–p95)"
        _bars(axes[1], runs, lambda run: _latency_spread(run.latencies), ylabel)

    return _figure(path, title, 2, len(runs), draw)
