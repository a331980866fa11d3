"""Where minibert's CPU encode spends its time: tokenization, GEMMs, GELU, attention, LayerNorm, the rest.

Runs `encode`'s pipeline on one thread with one BLAS thread (so the pieces add up and do not depend on how
busy the other cores are), timing each piece of the fast forward by wrapping its functions; the GEMMs are
what is left of the encoder layers' time, reported with the GFLOP/s that implies next to a single-thread
sgemm rate measured in the same run. `encode` itself runs one group of sequences per core, so its wall
time on k cores is about this total / k.

    python benchmarks/profile_cpu.py [--model NAME] [--corpus FILE] [--limit N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PIECES = ("bias_gelu_", "self_attention", "residual_layernorm_", "encode_packed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="name or directory (or bert-base-shape)")
    parser.add_argument("--corpus", type=Path, help="passages (.tsv/.jsonl/text); default: minibert bench's corpus")
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import numpy as np

    import minibert
    from minibert import _blas, fast
    from minibert.bench.corpus import default_corpus
    from minibert.bench.models import resolve_bench_model
    from minibert.bench.timing import wall_seconds
    from minibert.corpus import read_corpus
    from minibert.pooling import after_pooling, pool

    _, model_dir = resolve_bench_model(args.model)
    model = minibert.SentenceTransformer(model_dir)
    cfg = model.config
    corpus = args.corpus or default_corpus()
    texts = [p.embed_text for p in read_corpus(corpus)][: args.limit]
    order = np.argsort([-len(t) for t in texts], kind="stable")  # encode()'s batching: longest first
    batches = [[texts[i] for i in order[s : s + args.batch_size]] for s in range(0, len(texts), args.batch_size)]

    seconds: collections.Counter[str] = collections.Counter()
    for name in PIECES:
        original = getattr(fast, name)

        def timed(*a, _original=original, _name=name):
            start = time.perf_counter()
            result = _original(*a)
            seconds[_name] += time.perf_counter() - start
            return result

        setattr(fast, name, timed)
    fast._threads = lambda: 1  # one group: the pieces run back to back on this thread

    def one_pass() -> None:
        for batch_texts in batches:
            start = time.perf_counter()
            batch = model.tokenizer(batch_texts)
            seconds["tokenize"] += time.perf_counter() - start
            start = time.perf_counter()
            hidden = fast.forward(batch, model.weights, cfg)  # [N, C]
            seconds["forward"] += time.perf_counter() - start
            start = time.perf_counter()
            pooled = pool(hidden, batch.cu_seqlens, cfg.pooling_modes)  # [B, C · modes]
            after_pooling(pooled, model.weights.dense, cfg, normalized=False)
            seconds["pool"] += time.perf_counter() - start

    with _blas.blas_threads(1):
        one_pass()  # warm-up
        seconds.clear()
        one_pass()
        a = np.ones((4096, cfg.hidden_size), np.float32)
        w = np.ones((cfg.hidden_size, cfg.intermediate_size), np.float32)
        best = min(wall_seconds(lambda: a @ w) for _ in range(5))
    sgemm = 2 * a.shape[0] * a.shape[1] * w.shape[1] / best / 1e9

    n_tokens = int(sum(model.tokenizer(b).lengths.sum() for b in batches))
    C, F = cfg.hidden_size, cfg.intermediate_size
    flops = 2 * n_tokens * (4 * C * C + 2 * C * F) * cfg.num_hidden_layers  # QKV, attention output, FFN in and out
    layers = seconds["encode_packed"]
    gemm = layers - seconds["bias_gelu_"] - seconds["self_attention"] - seconds["residual_layernorm_"]
    total = seconds["tokenize"] + seconds["forward"] + seconds["pool"]
    rows = [
        ("tokenization (tokenizers, Rust)", seconds["tokenize"]),
        ("GEMMs (the rest of the encoder layers)", gemm),
        ("bias + GELU", seconds["bias_gelu_"]),
        ("attention (per sequence: relayout, QKᵀ, softmax, A·V)", seconds["self_attention"]),
        ("residual + LayerNorm (incl. embeddings')", seconds["residual_layernorm_"]),
        ("forward outside the layers (packing, embeddings gather, scatter)", seconds["forward"] - layers),
        ("pooling, Dense, Normalize", seconds["pool"]),
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
        f"GEMMs: {flops / 1e9:.0f} GFLOP (QKV, attention output, FFN in and out, on real tokens) in {gemm:.2f} s "
        f"→ ≈ {flops / gemm / 1e9:.0f} GFLOP/s; single-thread sgemm [4096, {cfg.hidden_size}] @ "
        f"[{cfg.hidden_size}, {cfg.intermediate_size}] this run: {sgemm:.0f} GFLOP/s"
    )


if __name__ == "__main__":
    main()
