"""What a benchmark run leaves behind: the markdown report on stdout, CSV rows, a PNG.

:func:`append_csv` is the one way every benchmark (minibert bench, benchmarks/bench_*.py) appends rows: the header
is written once, with the first rows, and a file that has other columns is refused rather than mixed.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .contenders import REFERENCE

RSS_MARGIN = 300 * 2**20
MB = 2**20
CSV_COLUMNS = [
    "date",
    "machine",
    "cores",
    "threads",
    "versions",
    "model",
    "corpus",
    "passages",
    "tokens",
    "batch_size",
    "contender",
    "round",
    "docs_per_s",
    "tokens_per_s",
    "gflops",
    "sgemm_peak_gflops",
    "max_abs_diff",
]


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


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def format_report(runs: list[ModelRun], header: dict[str, str], rounds: int) -> str:
    """The markdown report: a header, the throughput table, cold start and RSS tables, the notes."""
    lines = [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        "| model | contender | docs/s median (min–max) | tokens/s | GFLOP/s | % of sgemm peak | "
        "× sentence-transformers | max \\|Δ\\| vs sentence-transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        reference = statistics.median(run.rates[REFERENCE]) if REFERENCE in run.rates else None
        for name, rates in run.rates.items():
            docs = statistics.median(rates)
            gflops = run.flops / run.passages * docs / 1e9
            ratio = f"{docs / reference:.2f}×" if reference else "–"
            gap = run.max_diff[name]
            gap_text = "(reference)" if name == REFERENCE else "–" if gap is None else f"{gap:.1e}"
            lines.append(
                f"| {run.label} | {name} | {_spread(rates)} | {run.tokens / run.passages * docs:,.0f} | "
                f"{gflops:.1f} | {100 * gflops / run.sgemm_peak:.0f}% | {ratio} | {gap_text} |"
            )
    for run in runs:
        for name, why in run.unavailable.items():
            lines.append(f"\n{run.label}: {name}: {why}")
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


def csv_rows(runs: list[ModelRun], common: Mapping[str, object]) -> list[dict[str, object]]:
    """One row of CSV_COLUMNS per contender per round; `common` holds the columns every row shares."""
    rows = []
    for run in runs:
        for name, rates in run.rates.items():
            gap = run.max_diff[name]
            for round_index, docs in enumerate(rates):
                rows.append(
                    {
                        **common,
                        "model": run.label,
                        "passages": run.passages,
                        "tokens": run.tokens,
                        "contender": name,
                        "round": round_index,
                        "docs_per_s": f"{docs:.3f}",
                        "tokens_per_s": f"{run.tokens / run.passages * docs:.1f}",
                        "gflops": f"{run.flops / run.passages * docs / 1e9:.3f}",
                        "sgemm_peak_gflops": f"{run.sgemm_peak:.2f}",
                        "max_abs_diff": "" if gap is None else f"{gap:.3g}",
                    }
                )
    return rows


def plot(path: Path, runs: list[ModelRun], title: str) -> str:
    """A PNG bar chart of median docs/s per contender per model with min–max error bars; returns what it did."""
    try:
        import matplotlib
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for run in runs for name in run.rates))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 * len(runs) + 2), 4.5))
    for i, name in enumerate(names):
        xs, medians, low, high = [], [], [], []
        for x, run in enumerate(runs):
            if name in run.rates:
                rates = run.rates[name]
                median = statistics.median(rates)
                xs.append(x - 0.4 + width * (i + 0.5))
                medians.append(median)
                low.append(median - min(rates))
                high.append(max(rates) - median)
        bars = ax.bar(xs, medians, width, yerr=[low, high], capsize=4, label=name)
        ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_xticks(range(len(runs)), [run.label for run in runs])
    ax.set_ylabel("docs/s (median, min–max)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot: {path}"
