"""End to end: docs/s of minibert's Triton backend (fp16, bf16) vs sentence-transformers (fp16) on one GPU.

Random-init models at the MiniLM-L6 (6 × 384) and BERT-base (12 × 768) shapes are built on the spot (speed does
not depend on the weights' values), saved as sentence-transformers directories with the tokenizer taken from
--tokenizer-dir, and both encoders embed the same passages (default: ../shared/data/msmarco-passages.tsv) with
the same batch size, the contenders alternating round by round. Reported: median docs/s, spread, the ratio to
sentence-transformers, and MFU = achieved FLOP/s ÷ the bf16 matmul rate measured in the same run, with
FLOPs = Σ_docs [2 · (non-embedding parameters) · len + layers · 4 · len² · C] (real tokens only).
CSV rows (GPU, versions, date, model, encoder, docs/s, MFU) go to benchmarks/e2e.csv.

    python benchmarks/bench_e2e.py [--corpus FILE] [--tokenizer-dir DIR] [--limit N] [--rounds R]
    python benchmarks/bench_e2e.py --smoke     # tiny model on CPU via TRITON_INTERPRET=1: checks the code paths

On the device machine (no model weights there), carry a folder holding all-MiniLM-L6-v2's tokenizer files
(tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json) and pass it as --tokenizer-dir.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_CORPUS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHAPES = {
    "MiniLM-L6 (6 × 384)": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "BERT-base (12 × 768)": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
SMOKE_SHAPE = {"tiny (2 × 64)": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)}


def flops(lengths: list[int], shape: dict) -> float:
    """Forward FLOPs over real tokens: 2 · non-embedding params per token + 4 · len · C per token per layer."""
    C, L, F = shape["hidden_size"], shape["num_hidden_layers"], shape["intermediate_size"]
    params_per_layer = 4 * C * C + 2 * C * F  # Q, K, V, O + the two FFN matrices (biases and norms are noise)
    tokens = sum(lengths)
    return 2 * L * params_per_layer * tokens + L * 4 * C * sum(n * n for n in lengths)


def build_model(base: Path, shape: dict, tokenizer_dir: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    from tests.conftest import legacy_pooling, write_st_dir

    torch.manual_seed(0)
    model_dir = Path(tempfile.mkdtemp(dir=base))
    BertModel(BertConfig(vocab_size=30522, **shape)).save_pretrained(model_dir, safe_serialization=True)
    pooling = legacy_pooling("mean", shape["hidden_size"])
    write_st_dir(model_dir, tokenizer_dir, pooling=pooling, normalize=True, max_seq_length=256)
    return model_dir


def bf16_matmul_tflops(torch, triton) -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = triton.testing.do_bench(lambda: a @ a)
    return 2 * 8192**3 / (ms * 1e-3) / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--tokenizer-dir", type=Path, help="default: the all-MiniLM-L6-v2 directory minibert resolves")
    parser.add_argument("--limit", type=int, default=4096, help="passages per run")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--csv", type=Path, default=ROOT / "benchmarks" / "e2e.csv")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, CPU, Triton interpreter: checks the code paths"
    )
    args = parser.parse_args()
    if args.smoke:
        os.environ["TRITON_INTERPRET"] = "1"
        args.limit, args.rounds, args.batch_size = 8, 1, 4

    import torch

    if not args.smoke and not torch.cuda.is_available():
        sys.exit("bench_e2e.py needs a CUDA GPU (torch sees none); run it with --smoke to check it on CPU")
    import numpy as np
    import sentence_transformers
    import triton

    import minibert
    from minibert.corpus import read_corpus
    from minibert.hub import resolve_model_dir

    if not args.corpus.exists():
        parser.error(f"--corpus {args.corpus} does not exist")
    tokenizer_dir = args.tokenizer_dir or resolve_model_dir("all-MiniLM-L6-v2")
    texts = [p.embed_text for p in read_corpus(args.corpus)][: args.limit]
    device = "cpu" if args.smoke else "cuda"
    peak = None if args.smoke else bf16_matmul_tflops(torch, triton)
    gpu = "CPU (Triton interpreter)" if args.smoke else torch.cuda.get_device_name()
    versions = (
        f"torch {torch.__version__}, triton {triton.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}"
    )
    date = datetime.date.today().isoformat()
    print(f"{gpu}; {versions}; {date}; {len(texts)} passages, batch {args.batch_size}, {args.rounds} rounds")
    if peak:
        print(f"measured bf16 matmul rate: {peak:.0f} TFLOP/s")

    def timed(encode) -> float:
        if not args.smoke:
            torch.cuda.synchronize()
        start = time.perf_counter()
        encode(texts)
        if not args.smoke:
            torch.cuda.synchronize()
        return len(texts) / (time.perf_counter() - start)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape_name, shape in (SMOKE_SHAPE if args.smoke else SHAPES).items():
            model_dir = build_model(Path(tmp), shape, tokenizer_dir)
            reference = sentence_transformers.SentenceTransformer(str(model_dir), device=device)
            if not args.smoke:
                reference.half()
            contenders = {"sentence-transformers fp16" if not args.smoke else "sentence-transformers fp32": reference}
            dtypes = ("float32",) if args.smoke else ("float16", "bfloat16")
            for dtype in dtypes:
                ours = minibert.SentenceTransformer(model_dir, device=device, dtype=dtype, backend="triton")
                contenders[f"minibert triton {dtype}"] = ours
            lengths = [int(n) for n in ours.tokenize(texts).attention_mask.sum(axis=1)]
            work = flops(lengths, shape)
            for model in contenders.values():  # warm-up: compilation, autotuning, allocator
                model.encode(texts[: args.batch_size], batch_size=args.batch_size)
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, model in contenders.items():
                    rates[name].append(timed(lambda t, m=model: m.encode(t, batch_size=args.batch_size)))
            gap = np.abs(ours.encode(texts[:16]) - reference.encode(texts[:16])).max()
            baseline = statistics.median(next(iter(rates.values())))
            print(f"\n{shape_name}: {sum(lengths) / len(lengths):.1f} tokens/passage; max |Δ| vs reference {gap:.2g}")
            print(f"{'encoder':<30}{'docs/s':>10}{'min–max':>20}{'ratio':>8}{'MFU':>8}")
            for name, r in rates.items():
                median = statistics.median(r)
                mfu = work * median / len(texts) / (peak * 1e12) if peak else float("nan")
                spread = f"{min(r):.1f}–{max(r):.1f}"
                print(f"{name:<30}{median:>10.1f}{spread:>20}{median / baseline:>7.2f}×{mfu:>8.1%}")
                rows.append([date, gpu, versions, shape_name, name, f"{median:.2f}", f"{mfu:.4f}"])
    if not args.smoke:
        new = not args.csv.exists()
        with args.csv.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["date", "gpu", "versions", "model", "encoder", "docs_per_s", "mfu"])
            writer.writerows(rows)


if __name__ == "__main__":
    main()
