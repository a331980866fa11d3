"""The benchmark run: each model's measurements (throughput rounds, cold start, peak RSS; with --task rerank, the
cross-encoder's, minibert.bench.rerank), then the report, the CSV rows and the plot. What is measured and how: the
package docstring (minibert.bench)."""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import bench
from ..encoder.threads import usable_cores
from ..errors import MinibertError
from ..retrieval.corpus import read_corpus
from . import options
from .choice import resolve_bench_model
from .contenders import (
    MINIBERT,
    REFERENCE,
    Contender,
)
from .corpus import default_corpus, default_queries
from .machine import cpu_name, machine_description, sgemm_peak_gflops, versions
from .paths import bench_home, default_csv, default_plot
from .processes import cold_start_seconds, peak_rss
from .queries import (
    QUERY_WORDS,
    latencies_ms,
    queries_from_passages,
    query_windows,
    read_bandwidth,
    read_queries,
    streamed_bytes,
    throughput,
)
from .report import ModelRun, append_csv, format_query_report, format_report, format_rerank_report, plot, plot_rerank
from .rerank import bench_cross_encoder
from .results import RESULT_COLUMNS, bench_rows, rerank_rows
from .timing import alternating
from .work import default_limit, encoder_flops
from .worker import SETTLE_S, gaps_and_rates, worker_contenders

if TYPE_CHECKING:
    from ..model import SentenceTransformer

PARITY_PASSAGES = 64
QUERY_WINDOWS = 8  # batches of distinct queries per throughput round
LATENCY_PASSES = 3  # one-query calls per query per contender


def bench_model(name: str, texts_all: list[str], queries: list[str], args: argparse.Namespace) -> ModelRun:
    """Every measurement of one --model: the contenders' docs/s over alternating rounds, their max |Δ| against
    sentence-transformers, the query rows (when there are queries), and (unless switched off) the cold starts and
    the peak RSS."""
    from ..model import SentenceTransformer

    label, model_dir = resolve_bench_model(name)
    model = SentenceTransformer(model_dir)
    c = model.config
    limit = args.limit or default_limit(c.hidden_size, c.intermediate_size, c.num_hidden_layers)
    texts = texts_all[:limit]
    lengths = model.tokenize(texts).lengths  # real tokens per passage
    flops = encoder_flops(
        lengths, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size, num_layers=c.num_hidden_layers
    )
    rows = 256 if args.smoke else 4096
    peak = sgemm_peak_gflops(c.hidden_size, c.intermediate_size, rows)
    run = ModelRun(label, model_dir, len(texts), int(lengths.sum()), flops, peak)
    print(f"[{label}] {len(texts)} passages, sgemm peak {peak:.0f} GFLOP/s; loading the contenders", file=sys.stderr)

    with worker_contenders("embed", model_dir, args.batch_size, bench_home() / "onnx", run.unavailable) as contenders:
        calls = {c.name: c.encode for c in contenders}
        run.max_diff, run.rates = gaps_and_rates(calls, texts, texts[:PARITY_PASSAGES], args.rounds, f"[{label}] round")
        if queries:
            bench_queries(run, contenders, model, queries, args)

    if args.cold_start:
        repeats = 1 if args.smoke else 3
        run.cold_start[MINIBERT] = cold_start_seconds(MINIBERT, model_dir, repeats)
        if REFERENCE in run.unavailable:
            run.cold_start_skipped[REFERENCE] = "not installed"
        elif args.smoke:
            run.cold_start_skipped[REFERENCE] = "skipped in --smoke (importing torch takes seconds)"
        else:
            run.cold_start[REFERENCE] = cold_start_seconds(REFERENCE, model_dir, repeats)
    if args.rss:
        rss_texts = texts if args.rss_limit is None else texts_all[: args.rss_limit or None]
        run.rss = peak_rss(model_dir, rss_texts, args.batch_size, repeats=2 if args.smoke else 3)
        run.rss["weights"] = (model_dir / "model.safetensors").stat().st_size
        run.rss["passages"] = len(rss_texts)
    return run


def bench_queries(
    run: ModelRun, contenders: list[Contender], model: SentenceTransformer, queries: list[str], args: argparse.Namespace
) -> None:
    """The query rows of one model: queries/s on batches of distinct queries over alternating rounds, then the
    one-query latencies (minibert.bench.queries)."""
    windows = query_windows(queries, args.batch_size, 1 if args.smoke else QUERY_WINDOWS)
    run.queries = len(queries)
    run.query_tokens = float(model.tokenize(queries).lengths.mean())
    run.query_batch = len(windows[0])
    run.weights_bytes = streamed_bytes(model.weights)
    rates = {contender.name: functools.partial(throughput, contender.encode, windows) for contender in contenders}
    run.query_rates = alternating(rates, args.rounds, f"[{run.label}] queries, round", pause_s=SETTLE_S)
    print(f"[{run.label}] one-query latency", file=sys.stderr)
    passes = 1 if args.smoke else LATENCY_PASSES
    run.latencies = latencies_ms({contender.name: contender.encode for contender in contenders}, queries, passes)


def _queries(args: argparse.Namespace, texts: list[str]) -> tuple[Path | None, list[str]]:
    """The query rows' file (None: cut from the corpus) and its distinct queries; none with --no-queries."""
    if not args.query_rows:
        return None, []
    path = args.queries or default_queries()
    queries = read_queries(path) if path else queries_from_passages(texts)  # an empty file is refused as a corpus is
    return path, queries[:4] if args.smoke else queries


def _header(corpus: Path, corpus_text: str, batch_size: int) -> tuple[dict[str, str], dict[str, str]]:
    """The report's first lines (command, machine, versions, date, corpus, batch size) and the CSV rows' `where`
    (machine, versions, date); made after the contenders ran, so the versions name what they imported."""
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    where = {"machine": machine_description(), "versions": versions(), "date": date}
    header = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), **where}
    header.update({"corpus": f"{corpus} ({corpus_text})", "batch size": str(batch_size)})
    return header, where


def run(args: argparse.Namespace) -> None:
    """Run the benchmark the parsed options describe; print the report, append the CSV, write the plot."""
    options.check(args)
    if args.smoke:
        args.limit = args.limit or 8
        args.batch_size = 4
        args.rounds = 1
        args.candidates = args.candidates or 8
        if args.csv is None:
            args.csv = Path(tempfile.mkdtemp(prefix="minibert-bench-smoke-")) / "results.csv"
    args.candidates = args.candidates or options.RERANK_CANDIDATES
    models = options.models(args)
    corpus = args.corpus or default_corpus()
    texts = [p.embed_text for p in read_corpus(corpus)]
    queries_file, queries = _queries(args, texts)
    csv_path = args.csv or default_csv()
    if args.task == options.RERANK:
        run_rerank(args, models, corpus, texts, queries_file, queries, csv_path)
        return
    plot_path = args.plot or (csv_path.with_suffix(".png") if args.csv else default_plot())

    runs = [bench_model(name, texts, queries, args) for name in models]
    bandwidth = read_bandwidth(usable_cores()) if queries else None
    header, where = _header(corpus, f"{len(texts)} passages; each model takes the first ones, below", args.batch_size)
    header.update(
        {f"passages ({run.label})": f"{run.passages}, {run.tokens / run.passages:.1f} tokens each" for run in runs}
    )
    if queries:
        header["queries"] = (
            f"{queries_file or f'the first {QUERY_WORDS} words of corpus passages'} ({len(queries)} distinct)"
        )
    print(format_report(runs, header, args.rounds))
    if bandwidth is not None:
        print(format_query_report(runs, bandwidth, args.rounds))
    rows = bench_rows(runs, args.batch_size, Path(corpus).name, where, bandwidth)
    print(f"\nCSV: {csv_path} (+{append_csv(csv_path, RESULT_COLUMNS, rows)} rows)")
    print(plot(plot_path, runs, f"minibert bench — {cpu_name()}, {where['date'][:10]}", bandwidth))


def run_rerank(
    args: argparse.Namespace,
    models: list[str],
    corpus: Path,
    texts: list[str],
    queries_file: Path | None,
    queries: list[str],
    csv_path: Path,
) -> None:
    """--task rerank: each cross-encoder's measurements (minibert.bench.rerank), the report, the CSV rows (their
    `what` begins "cross-encoder, "), the plot (default: beside the CSV as <name>-rerank.png, or
    benchmarks/cpu-rerank.png)."""
    default = csv_path.with_name(f"{csv_path.stem}-rerank.png") if args.csv else default_plot("cpu-rerank")
    plot_path = args.plot or default
    runs = [bench_cross_encoder(name, texts, queries, args) for name in models]
    header, where = _header(corpus, f"{len(texts)} passages", args.batch_size)
    header["queries"] = (
        f"{queries_file or f'the first {QUERY_WORDS} words of corpus passages'} ({len(queries)} distinct)"
    )
    for run in runs:
        header[f"pairs ({run.label})"] = (
            f"{run.pairs}: (query i mod {len(queries)}, passage i) for the first {run.pairs} passages, "
            f"{run.tokens / run.pairs:.1f} tokens each"
        )
        header[f"rerank ({run.label})"] = (
            f"{run.queries} queries × {run.candidates} candidates: query j's are the passages from j·{run.candidates} "
            f"on (mod {len(texts)}), {run.candidate_tokens:.1f} tokens per pair"
        )
    print(format_rerank_report(runs, header, args.rounds))
    rows = rerank_rows(runs, args.batch_size, Path(corpus).name, where)
    print(f"\nCSV: {csv_path} (+{append_csv(csv_path, RESULT_COLUMNS, rows)} rows)")
    print(plot_rerank(plot_path, runs, f"minibert bench --task rerank — {cpu_name()}, {where['date'][:10]}"))


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """`benchmarks/cpu.py`'s entry point; `minibert bench` reaches `run` through minibert.cli."""
    parser = argparse.ArgumentParser(
        prog=prog, description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run(args)
    except MinibertError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
