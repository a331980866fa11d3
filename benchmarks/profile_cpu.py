"""Where minibert's CPU encode spends its time: tokenization, GEMMs, GELU, attention, LayerNorm, the rest.

Runs `encode`'s stages (prepare, embed, finish) on one thread with one BLAS thread (so the pieces add up and do not
depend on how busy the other cores are), the NumPy backend given timed versions of its steps (``encoder.cpu.Steps``);
the GEMMs are what is left of the embed stage's time, reported with the GFLOP/s that implies next to a
single-thread sgemm rate measured in the same run. `encode` itself runs one group of sequences per core, so its wall
time on k cores is about this total / k.

    python benchmarks/profile_cpu.py [--model NAME] [--corpus FILE] [--limit N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="name or directory (or bert-base-shape)")
    parser.add_argument("--corpus", type=Path, help="passages (.tsv/.jsonl/text); default: minibert bench's corpus")
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import numpy as np

    import minibert
    from minibert.bench.choice import resolve_bench_model
    from minibert.bench.corpus import default_corpus
    from minibert.bench.timing import wall_seconds
    from minibert.encoder.blas import blas_threads
    from minibert.encoder.cpu import STEPS, NumpyEncoder, Steps
    from minibert.retrieval.corpus import read_corpus

    seconds: collections.Counter[str] = collections.Counter()

    def timed(name: str, function):
        def run(*a):
            start = time.perf_counter()
            result = function(*a)
            seconds[name] += time.perf_counter() - start
            return result

        return run

    steps = Steps(**{f.name: timed(f.name, getattr(STEPS, f.name)) for f in dataclasses.fields(Steps)})
    # One thread, its steps timed: the pieces run back to back on this thread, so they add up.
    _, model_dir = resolve_bench_model(args.model)
    model = minibert.SentenceTransformer(model_dir, encoder=functools.partial(NumpyEncoder, threads=1, steps=steps))
    cfg = model.config
    corpus = args.corpus or default_corpus()
    texts = [p.embed_text for p in read_corpus(corpus)][: args.limit]
    order = np.argsort([-len(t) for t in texts], kind="stable")  # encode()'s batching: longest first
    batches = [[texts[i] for i in order[s : s + args.batch_size]] for s in range(0, len(texts), args.batch_size)]

    def one_pass() -> None:  # encode()'s stages, each timed
        for batch_texts in batches:
            prepared = timed("prepare", model.prepare)(batch_texts)
            embedded = timed("embed", model.embed)(model.pack(prepared.token_ids))
            timed("finish", model.finish)(embedded)

    with blas_threads(1):
        one_pass()  # warm-up
        seconds.clear()
        one_pass()
        a = np.ones((4096, cfg.hidden_size), np.float32)
        w = np.ones((cfg.hidden_size, cfg.intermediate_size), np.float32)
        best = min(wall_seconds(lambda: a @ w) for _ in range(5))
    sgemm = 2 * a.shape[0] * a.shape[1] * w.shape[1] / best / 1e9

    n_tokens = int(sum(model.tokenize(b).lengths.sum() for b in batches))
    C, F = cfg.hidden_size, cfg.intermediate_size
    flops = 2 * n_tokens * (4 * C * C + 2 * C * F) * cfg.num_hidden_layers  # QKV, attention output, FFN in and out
    pieces = ("bias_gelu", "self_attention", "residual_layernorm", "pool")
    gemm = seconds["embed"] - sum(seconds[name] for name in pieces)
    total = seconds["prepare"] + seconds["embed"] + seconds["finish"]
    rows = [
        ("prepare: checks, prompt, tokenization (tokenizers, Rust)", seconds["prepare"]),
        ("GEMMs (the rest of the embed stage: with the embeddings gather, Dense, Normalize)", gemm),
        ("bias + GELU", seconds["bias_gelu"]),
        ("attention (per sequence: relayout, QKᵀ, softmax, A·V)", seconds["self_attention"]),
        ("residual + LayerNorm (incl. embeddings')", seconds["residual_layernorm"]),
        ("pooling", seconds["pool"]),
        ("finish: truncate_dim, normalize_embeddings", seconds["finish"]),
    ]
    print(
        f"{len(texts)} passages ({n_tokens / len(texts):.1f} tokens each) of "
        f"{corpus.name}, {args.model}, batch size {args.batch_size}; one thread, one BLAS thread"
    )
    print("| piece | s | share |\n|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.3f} | {s / total:.0%} |")
    print(f"| total | {total:.3f} | 100% |")
    print(
        f"GEMMs: {flops / 1e9:.0f} GFLOP (QKV, attention output, FFN in and out, on real tokens) in ≤ {gemm:.2f} s "
        f"→ ≥ {flops / gemm / 1e9:.0f} GFLOP/s; single-thread sgemm [4096, {cfg.hidden_size}] @ "
        f"[{cfg.hidden_size}, {cfg.intermediate_size}] this run: {sgemm:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
