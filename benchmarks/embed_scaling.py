"""``minibert embed`` on one machine vs through Ray Data, and what a full MS MARCO embedding job would take.

In one run, on the MS MARCO sample (4,103 passages) with all-MiniLM-L6-v2, each as the command a user types:

- ``minibert embed`` (one process, the forward on every core);
- ``minibert embed --ray --actors 1 --threads-per-actor C`` and ``--actors C --threads-per-actor 1`` (a local Ray
  started by the command; C = this machine's cores).

Each is timed from process start to exit (Ray's start-up, model loads and file writes included), on the whole sample
and on its first ``--head-passages``: docs/s = rows / time, and docs/s after start-up = the extra rows / the extra
seconds (what a long job runs at; the fixed start-up cancels in the difference), each as a ratio to the single
process. ``--rounds`` repeats them, alternating.

Then the sizing table: a BERT-base-shaped random-init model (same code, 4.6× the FLOPs) is timed single-process on
the first ``--base-passages`` passages; each model's rate per core is its single-process docs/s ÷ C; hours for 8.8 M
passages on 8 / 64 / 512 cores assume that per-core rate (perfect scaling: the Ray overhead measured above is the
correction). Output sizes are bytes per row of the Parquet shards measured here (float32, int8, binary) × 8.8 M.

    python benchmarks/embed_scaling.py [--rounds 1] [--base-passages 400]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))

PASSAGES = ROOT.parent / "shared" / "data" / "msmarco-passages.tsv"
MSMARCO_ROWS = 8_841_823  # passages in the MS MARCO passage collection
CORES_TABLE = (8, 64, 512)
MINIBERT = Path(sys.executable).parent / "minibert"


def timed_embed(model: str, corpus: Path, out: Path, *extra: str) -> tuple[float, dict]:
    """(wall seconds, manifest) of one ``minibert embed`` process."""
    shutil.rmtree(out, ignore_errors=True)
    command = [str(MINIBERT), "embed", "--model", model, "--input", str(corpus), "--output", str(out), *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, json.loads((out / "manifest.json").read_text())


def bytes_per_row(out: Path) -> float:
    manifest = json.loads((out / "manifest.json").read_text())
    return sum((out / s["file"]).stat().st_size for s in manifest["shards"]) / manifest["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--corpus", type=Path, default=PASSAGES)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--head-passages", type=int, default=1000)
    parser.add_argument("--base-passages", type=int, default=400)
    parser.add_argument("--csv", type=Path, default=ROOT / "benchmarks" / "embed_scaling.csv")
    args = parser.parse_args()

    import pyarrow
    import ray

    import minibert
    from minibert.bench.machine import cpu_counts, cpu_name

    cores, _ = cpu_counts()
    work = Path(tempfile.mkdtemp(prefix="embed-scaling-"))
    head = work / "head.tsv"  # the first --head-passages: with the whole corpus, it separates start-up from rate
    with open(args.corpus, encoding="utf-8") as src:
        head.write_text("".join(line for _, line in zip(range(args.head_passages), src, strict=False)))
    runs = {
        "single process": [],
        f"Ray, 1 actor × {cores} threads": ["--ray", "--actors", "1", "--threads-per-actor", str(cores)],
        f"Ray, {cores} actors × 1 thread": ["--ray", "--actors", str(cores), "--threads-per-actor", "1"],
    }
    seconds: dict[tuple[str, str], list[float]] = {}
    rows: dict[str, int] = {}
    for round_ in range(args.rounds):
        for name, extra in runs.items():
            for size, corpus in (("head", head), ("all", args.corpus)):
                wall, manifest = timed_embed(args.model, corpus, work / "out", *extra)
                rows[size] = manifest["rows"]
                seconds.setdefault((name, size), []).append(wall)
                print(f"round {round_ + 1}: {name}: {rows[size]} rows in {wall:.1f} s ({rows[size] / wall:.1f} docs/s)",
                      flush=True)  # fmt: skip

    best = {key: min(values) for key, values in seconds.items()}
    n = rows["all"]

    def marginal(name: str) -> float:
        """docs/s of the rows beyond the head: the rate once started (start-up cancels in the difference)."""
        return (rows["all"] - rows["head"]) / (best[name, "all"] - best[name, "head"])

    single, single_marginal = n / best["single process", "all"], marginal("single process")
    lines = [
        f"`python benchmarks/embed_scaling.py --rounds {args.rounds}`, {datetime.date.today()}, {cpu_name()} "
        f"({cores} cores), minibert {minibert.__version__}, Ray {ray.__version__}, pyarrow {pyarrow.__version__}; "
        f"{args.model}, batch 32, shards of 10,000; each run the command a user types, timed from process start to "
        f"exit, on the {n} MS MARCO passages and on their first {rows['head']} (best of {args.rounds} round(s)). "
        "docs/s after start-up = the extra rows ÷ the extra seconds; start-up = the rest of the time.",
        "",
        f"| run | seconds ({n} rows) | docs/s | vs single | docs/s after start-up | vs single | start-up s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in runs:
        whole, rate = n / best[name, "all"], marginal(name)
        startup = best[name, "all"] - n / rate
        lines.append(f"| {name} | {best[name, 'all']:.1f} | {whole:.1f} | {whole / single:.2f}× | {rate:.1f} | "
                     f"{rate / single_marginal:.2f}× | {startup:.1f} |")  # fmt: skip

    # the sizing table: per-core rates of MiniLM-L6 and a BERT-base shape, bytes per row of each precision
    subset = work / "base-subset.tsv"
    with open(args.corpus, encoding="utf-8") as src:
        subset.write_text("".join(line for _, line in zip(range(args.base_passages), src, strict=False)))
    from minibert.testing.models import build_random_model, legacy_pooling

    base_dir = build_random_model(
        work / "bert-base", "bert",
        dict(vocab_size=30522, max_position_embeddings=512, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072),
        minibert.load(args.model).model_dir, pooling=legacy_pooling("mean", 768),
        normalize=False, max_seq_length=256, seed=1, noise=False,
    )  # fmt: skip
    base_wall, base_manifest = timed_embed(str(base_dir), subset, work / "base-out")
    base_rate = base_manifest["rows"] / base_wall
    sizes = {}
    for precision in ("float32", "int8", "binary"):
        timed_embed(args.model, subset, work / f"size-{precision}", "--precision", precision)
        sizes[precision] = bytes_per_row(work / f"size-{precision}")
    dims = {"MiniLM-L6 (384-d)": 384, "BERT-base (768-d)": 768}
    rates = {"MiniLM-L6 (384-d)": single_marginal / cores, "BERT-base (768-d)": base_rate / cores}
    lines += [
        "",
        f"Sizing for MS MARCO's {MSMARCO_ROWS:,} passages at the per-core rates measured here (single-process docs/s "
        f"after start-up ÷ {cores}: MiniLM-L6 {rates['MiniLM-L6 (384-d)']:.1f}; a BERT-base shape "
        f"{rates['BERT-base (768-d)']:.2f} docs/s per core, start-up included, on the first {base_manifest['rows']} "
        "passages), perfect scaling assumed; "
        "output bytes from the Parquet shards written here (bytes/row × rows; BERT-base's float32 and int8 rows scaled "
        "by 768/384, binary likewise):",
        "",
        "| model | 8 cores | 64 cores | 512 cores | float32 | int8 | binary |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, rate in rates.items():
        hours = [MSMARCO_ROWS / (rate * c) / 3600 for c in CORES_TABLE]
        scale = dims[model] / 384
        gib = [sizes[p] * scale * MSMARCO_ROWS / 2**30 for p in ("float32", "int8", "binary")]
        lines.append(f"| {model} | " + " | ".join(f"{h:,.1f} h" for h in hours) + " | "
                     + " | ".join(f"{g:.1f} GiB" for g in gib) + " |")  # fmt: skip
    print("\n".join(lines))
    with open(args.csv, "a", newline="") as f:
        writer = csv.writer(f)
        if f.tell() == 0:
            writer.writerow(["date", "cpu", "cores", "run", "rows", "seconds", "docs_per_s"])
        for (name, size), values in best.items():
            writer.writerow([datetime.date.today(), cpu_name(), cores, name, rows[size], f"{values:.2f}",
                             f"{rows[size] / values:.2f}"])  # fmt: skip
        writer.writerow([datetime.date.today(), cpu_name(), cores, "single process, BERT-base shape",
                         base_manifest["rows"], f"{base_wall:.2f}", f"{base_rate:.2f}"])  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
