"""The options of `minibert bench` and `benchmarks/cpu.py` (one definition for both), and the checks of their values.

Light on purpose: `minibert --help` builds these without importing the benchmark itself.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, positive_int
from ..loading.resolve import SHORT_DEFAULT
from .corpus import CORPUS_ENV, QUERIES_ENV

EMBED, RERANK = "embed", "rerank"  # the --task values
# --task rerank's default --model: a seeded random-init cross-encoder of cross-encoder/ms-marco-MiniLM-L6-v2's shape
# (minibert.bench.choice builds it; the real checkpoint is passed by name or directory like any other model)
RERANK_DEFAULT = "ms-marco-MiniLM-L6-v2-shape"
RERANK_CANDIDATES = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the bench's options to `parser`."""
    parser.add_argument(
        "--task",
        choices=[EMBED, RERANK],
        default=EMBED,
        help=f"{EMBED}: sentence embeddings of passages and queries (default); {RERANK}: a cross-encoder scoring "
        "(query, passage) pairs, and the latency of reranking --candidates passages for one query",
    )
    parser.add_argument(
        "--model",
        action="append",
        help=f"name, hub id or directory minibert resolves, or 'bert-base-shape' (--task {EMBED}) / "
        f"'{RERANK_DEFAULT}' (--task {RERANK}, a random-init cross-encoder of that shape); repeat or "
        f"comma-separate for several (default {SHORT_DEFAULT}, or {RERANK_DEFAULT} with --task {RERANK})",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        help=f"passages (.tsv id<TAB>text, .jsonl, or one per line); default ${CORPUS_ENV}, else "
        "../shared/data/msmarco-passages.tsv beside a checkout, else the Python stdlib's docstrings",
    )
    parser.add_argument(
        "--queries",
        type=Path,
        help=f"short queries for the query rows (.tsv id<TAB>text, .jsonl, or one per line); default ${QUERIES_ENV}, "
        "else ../shared/data/msmarco-queries.tsv beside a checkout, else the first 8 words of corpus passages",
    )
    parser.add_argument(
        "--no-queries", dest="query_rows", action="store_false", help=f"skip the query rows (--task {EMBED})"
    )
    parser.add_argument(
        "--limit",
        type=int,
        help="passages (--task rerank: (query, passage) pairs) per run (default 512 for MiniLM-sized models, 128 for "
        "BERT-base)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        help=f"--task {RERANK}: passages reranked per query in the latency rows (default {RERANK_CANDIDATES})",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="the same for every contender (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per contender, alternating (default 3)")
    parser.add_argument(
        "--csv",
        type=Path,
        help="CSV to append the long-format result rows to (minibert.bench.results; default "
        "benchmarks/results.csv in a checkout, else ./minibert-bench.csv)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="PNG of docs/s (default: --csv's path with .png, else benchmarks/cpu.png in a checkout; --task rerank: "
        "pairs/s and rerank latency, default --csv's path with -rerank.png, else benchmarks/cpu-rerank.png)",
    )
    parser.add_argument(
        "--no-cold-start", dest="cold_start", action="store_false", help=f"skip the cold starts (--task {EMBED})"
    )
    parser.add_argument(
        "--no-rss", dest="rss", action="store_false", help=f"skip the peak-RSS subprocess (--task {EMBED})"
    )
    parser.add_argument(
        "--rss-limit",
        type=int,
        help="passages the peak-RSS subprocess encodes per repeat (default: the timed ones; 0: the whole corpus)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="8 passages (or pairs), 4 queries, batch 4, one round, small sgemm, one minibert cold start, 8 rerank "
        "candidates; CSV and PNG in a temp dir unless --csv/--plot are given (checks every code path in seconds)",
    )


def check(args: argparse.Namespace) -> None:
    """InputError (one line naming the option) for a value the bench cannot run with."""
    for option in ("limit", "batch_size", "rounds", "candidates"):
        if getattr(args, option) is not None:
            positive_int(f"--{option.replace('_', '-')}", getattr(args, option))
    if args.rss_limit is not None and args.rss_limit < 0:
        raise InputError(f"--rss-limit must be 0 (the whole corpus) or a positive integer, got {args.rss_limit}")
    if args.task == RERANK and not args.query_rows:
        raise InputError(f"--no-queries: --task {RERANK} pairs queries with passages; it cannot run without them")


def models(args: argparse.Namespace) -> list[str]:
    """The --model values, repeated or comma-separated (default all-MiniLM-L6-v2; with --task rerank, the random-init
    ms-marco-MiniLM-L6-v2 shape)."""
    default = RERANK_DEFAULT if args.task == RERANK else SHORT_DEFAULT
    names = [m.strip() for value in (args.model or [default]) for m in value.split(",") if m.strip()]
    if not names:
        raise InputError("--model is empty")
    return names
