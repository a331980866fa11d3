"""The cross-encoder task (``minibert bench --task rerank``): (query, passage) pairs/s and the latency of reranking
one query's candidates, for minibert's CrossEncoder, sentence-transformers' CrossEncoder and ONNX Runtime behind
minibert's CrossEncoder (:mod:`minibert.bench.contenders`), each in a process of its own, the others idle
(:mod:`minibert.bench.worker`, which times each call in the contender's process).

* Pairs: pair i is (query i mod Q, passage i) for the first --limit passages of the corpus (Q: the queries), so
  every pair is distinct and the passages are the embedding task's. Each contender scores the first
  :data:`PARITY_PAIRS` of them once (the warm-up, and the max |Δ| of its scores against sentence-transformers'),
  then all of them with ``predict(pairs, batch_size)`` per round, the contenders alternating, each round after
  :data:`~minibert.bench.worker.SETTLE_S` idle seconds (:func:`~minibert.bench.timing.alternating`). Both
  libraries sort a call's pairs longest first before batching.
* Latency: query j's candidates are the --candidates passages of the corpus from j·candidates on (taken round and
  round: every query its own slice, no retrieval run first); each contender ranks them with one ``rank(query,
  candidates, batch_size)`` call per query, the contenders taking turns every :data:`RERANK_TURN` queries, each
  turn after one untimed call (:func:`~minibert.bench.queries.call_latencies_ms`).
* FLOPs: the encoder layers' on the pairs' real tokens (:func:`~minibert.bench.work.encoder_flops`), against the
  sgemm peak measured in the same run; the head (pooler and classifier on [CLS]) is left out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from .choice import resolve_bench_cross_encoder
from .contenders import Pair
from .machine import sgemm_peak_gflops
from .paths import bench_home
from .queries import call_latencies_ms
from .report import RerankRun
from .timing import Spread
from .work import default_limit, encoder_flops
from .worker import gaps_and_rates, worker_contenders

PARITY_PAIRS = 64
RERANK_PASSES = 1  # rank calls per query per contender: one pass over the queries
RERANK_TURN = 8  # queries per contender's turn (each turn after one untimed call): ~10 s on 2 cores at MiniLM size


def rerank_pairs(queries: Sequence[str], passages: Sequence[str], limit: int) -> list[Pair]:
    """(query i mod len(queries), passage i) for the first `limit` passages."""
    return [(queries[i % len(queries)], passage) for i, passage in enumerate(passages[:limit])]


def candidate_lists(queries: Sequence[str], passages: Sequence[str], candidates: int) -> list[tuple[str, list[str]]]:
    """Each query with its `candidates` passages: query j's start at passage j·candidates, the corpus taken round
    and round (a corpus shorter than `candidates` repeats within one list)."""
    n = len(passages)
    return [(query, [passages[(j * candidates + i) % n] for i in range(candidates)]) for j, query in enumerate(queries)]


def bench_cross_encoder(name: str, texts: list[str], queries: list[str], args: argparse.Namespace) -> RerankRun:
    """Every measurement of one --model of --task rerank (module docstring)."""
    from ..cross_encoder import CrossEncoder

    label, model_dir = resolve_bench_cross_encoder(name)
    model = CrossEncoder(model_dir)
    c = model.config
    limit = args.limit or default_limit(c.hidden_size, c.intermediate_size, c.num_hidden_layers)
    pairs = rerank_pairs(queries, texts, limit)
    lengths = model.pack(pairs).lengths  # real tokens per pair
    flops = encoder_flops(
        lengths, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size, num_layers=c.num_hidden_layers
    )
    peak = sgemm_peak_gflops(c.hidden_size, c.intermediate_size, 256 if args.smoke else 4096)
    candidates = candidate_lists(queries, texts, args.candidates)
    candidate_lengths = model.pack([(query, d) for query, documents in candidates for d in documents]).lengths
    run = RerankRun(
        label,
        model_dir,
        len(pairs),
        int(lengths.sum()),
        flops,
        peak,
        queries=len(candidates),
        candidates=args.candidates,
        candidate_tokens=float(np.mean(candidate_lengths)),
    )
    print(f"[{label}] {len(pairs)} pairs, sgemm peak {peak:.0f} GFLOP/s; loading the contenders", file=sys.stderr)

    with worker_contenders("rerank", model_dir, args.batch_size, bench_home() / "onnx", run.unavailable) as contenders:
        calls = {c.name: c.predict for c in contenders}
        run.max_diff, run.rates = gaps_and_rates(calls, pairs, pairs[:PARITY_PAIRS], args.rounds,
                                                 f"[{label}] pairs, round")  # fmt: skip
        print(f"[{label}] rerank {args.candidates} candidates, {len(candidates)} queries", file=sys.stderr)
        calls = {c.name: Spread(c.rank) for c in contenders}
        run.latencies = call_latencies_ms(calls, candidates, RERANK_PASSES, RERANK_TURN)
    return run
