"""End to end: docs/s of minibert's Triton backend (fp16, bf16) vs sentence-transformers (fp16) on one GPU.

Random-init models at the MiniLM-L6 (6 × 384) and BERT-base (12 × 768) shapes are built on the spot with
minibert.bench.random_init (speed does not depend on the weights' values; mean pooling, Normalize, max_seq_length
256), saved as sentence-transformers directories with the tokenizer taken from --tokenizer-dir, and both encoders
embed the same passages (default: `minibert bench`'s corpus — $MINIBERT_BENCH_CORPUS, else
../shared/data/msmarco-passages.tsv beside the checkout, else the Python stdlib's docstrings) with the same batch
size, the contenders alternating round by round. Reported: median docs/s, spread, the ratio to
sentence-transformers, and MFU = achieved FLOP/s ÷ the bf16 matmul rate measured in the same run, with the
encoder layers' FLOPs of minibert.bench.work.encoder_flops, Σ_docs [2 · (non-embedding parameters) · len +
layers · 4 · len² · C] (real tokens only). CSV rows (GPU, versions, date, model, batch size, encoder, docs/s,
MFU) go to benchmarks/e2e.csv.

    python benchmarks/bench_e2e.py [--corpus FILE] [--tokenizer-dir DIR] [--limit N] [--batch-size B ...] [--rounds R]
    python benchmarks/bench_e2e.py --smoke     # tiny model on CPU via TRITON_INTERPRET=1: checks the code paths

On the device machine (no model weights there), carry a folder holding all-MiniLM-L6-v2's tokenizer files
(tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json) and pass it as --tokenizer-dir.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from _common import device_for, save_rows
from minibert.bench.corpus import default_corpus
from minibert.bench.timing import median_ms, wall_seconds
from minibert.bench.work import encoder_flops
from minibert.testing.models import build_random_model, legacy_pooling

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / "benchmarks" / "e2e.csv"
CSV_FIELDS = ["date", "gpu", "versions", "model", "batch_size", "encoder", "docs_per_s", "mfu"]
SHAPES = {
    "MiniLM-L6 (6 × 384)": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "BERT-base (12 × 768)": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}
SMOKE_SHAPE = {"tiny (2 × 64)": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)}


def build_model(base: Path, shape: dict, tokenizer_dir: Path) -> Path:
    """A seeded random-init BERT of `shape` (mean pooling, Normalize, max_seq_length 256) in a folder of `base`."""
    return build_random_model(
        base / f"bert-{shape['num_hidden_layers']}x{shape['hidden_size']}",
        "bert",
        dict(vocab_size=30522, max_position_embeddings=512, **shape),
        tokenizer_dir,
        pooling=legacy_pooling("mean", shape["hidden_size"]),
        normalize=True,
        max_seq_length=256,
        seed=0,
    )


def bf16_matmul_tflops(torch) -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    return 2 * 8192**3 / (median_ms(lambda: a @ a) * 1e-3) / 1e12


def run_shape(
    shape_name: str,
    model_dir: Path,
    shape: dict,
    texts: list[str],
    *,
    batch_size: int,
    rounds: int,
    device: torch.device,
    smoke: bool,
    peak: float | None,
    header: dict[str, str],
) -> list[dict]:
    """docs/s of sentence-transformers and minibert's Triton backend on one model at one batch size, alternating
    round by round; prints a table and returns the CSV rows (``header`` gives date, gpu and versions)."""
    import numpy as np
    import sentence_transformers
    import torch

    import minibert

    synchronize = None if smoke else torch.cuda.synchronize
    reference = sentence_transformers.SentenceTransformer(str(model_dir), device=device)
    if not smoke:
        reference.half()
    contenders = {"sentence-transformers fp16" if not smoke else "sentence-transformers fp32": reference}
    for dtype in ("float32",) if smoke else ("float16", "bfloat16"):
        ours = minibert.SentenceTransformer(model_dir, device=device, dtype=dtype, backend="triton")
        contenders[f"minibert triton {dtype}"] = ours
    lengths = ours.tokenize(texts).lengths  # real tokens per passage
    work = encoder_flops(
        lengths,
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_layers=shape["num_hidden_layers"],
    )
    for model in contenders.values():  # warm-up: compilation, autotuning, allocator
        model.encode(texts[:batch_size], batch_size=batch_size)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, model in contenders.items():
            encode = functools.partial(model.encode, texts, batch_size=batch_size)
            rates[name].append(len(texts) / wall_seconds(encode, synchronize))
    gap = np.abs(ours.encode(texts[:16]) - reference.encode(texts[:16])).max()
    baseline = statistics.median(next(iter(rates.values())))
    print(f"\n{shape_name}, batch {batch_size}: {lengths.mean():.1f} tokens/passage; max |Δ| vs reference {gap:.2g}")
    print(f"{'encoder':<30}{'docs/s':>10}{'min–max':>20}{'ratio':>8}{'MFU':>8}")
    rows = []
    for name, r in rates.items():
        median = statistics.median(r)
        mfu = work * median / len(texts) / (peak * 1e12) if peak else float("nan")
        spread = f"{min(r):.1f}–{max(r):.1f}"
        print(f"{name:<30}{median:>10.1f}{spread:>20}{median / baseline:>7.2f}×{mfu:>8.1%}")
        values = [*header.values(), shape_name, batch_size, name, f"{median:.2f}", f"{mfu:.4f}"]
        rows.append(dict(zip(CSV_FIELDS, values, strict=True)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="passages (.tsv/.jsonl/text); default: minibert bench's corpus")
    parser.add_argument("--tokenizer-dir", type=Path, help="default: the all-MiniLM-L6-v2 directory minibert resolves")
    parser.add_argument("--limit", type=int, default=4096, help="passages per run")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256], help="one or more (default 256)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--csv", type=Path, help=f"CSV to append to (default {DEFAULT_CSV.relative_to(ROOT)})")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny model, CPU, Triton interpreter: checks the code paths"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.limit, args.rounds, args.batch_size = 8, 1, sorted({min(b, 4) for b in args.batch_size})
    device, gpu = device_for("bench_e2e", args.smoke)

    import sentence_transformers
    import torch
    import triton

    from minibert.loading.resolve import resolve_model_dir
    from minibert.retrieval.corpus import read_corpus

    corpus = args.corpus or default_corpus()
    if not corpus.exists():
        parser.error(f"--corpus {corpus} does not exist")
    tokenizer_dir = args.tokenizer_dir or resolve_model_dir("all-MiniLM-L6-v2")
    texts = [p.embed_text for p in read_corpus(corpus)][: args.limit]
    peak = None if args.smoke else bf16_matmul_tflops(torch)
    header = {
        "date": datetime.date.today().isoformat(),
        "gpu": gpu,
        "versions": f"torch {torch.__version__}, triton {triton.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}",
    }
    run = f"{len(texts)} passages, batch {', '.join(map(str, args.batch_size))}, {args.rounds} rounds"
    print(f"{gpu}; {header['versions']}; {header['date']}; {run}")
    if peak:
        print(f"measured bf16 matmul rate: {peak:.0f} TFLOP/s")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape_name, shape in (SMOKE_SHAPE if args.smoke else SHAPES).items():
            model_dir = build_model(Path(tmp), shape, tokenizer_dir)
            for batch_size in args.batch_size:
                rows += run_shape(
                    shape_name,
                    model_dir,
                    shape,
                    texts,
                    batch_size=batch_size,
                    rounds=args.rounds,
                    device=device,
                    smoke=args.smoke,
                    peak=peak,
                    header=header,
                )
    save_rows("bench_e2e", args.csv, DEFAULT_CSV, args.smoke, CSV_FIELDS, rows)


if __name__ == "__main__":
    main()
