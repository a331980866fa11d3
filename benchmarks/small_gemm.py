"""Which weight layout NumPy's BLAS multiplies fastest at few rows: the encoder's four GEMMs at M query rows.

For each of a layer's matrices (QKV [C, 3C], attention output [C, C], FFN in [C, F], FFN out [F, C]) and each M,
three ways of computing X [M, I] @ W [I, O] are timed, alternating:

* view — W as minibert holds it: the transposed view of torch's [O, I] rows (what BLAS gets as a transposed
  operand; no copy at load);
* contiguous — W copied once into C-contiguous [I, O] (a copy at load, and memory the page cache no longer
  shares between processes);
* W·Xᵀ — torch's [O, I] rows as the left operand: Yᵀ = W Xᵀ (the weights on BLAS's packed side).

`--copies` distinct matrices of each shape are cycled so none stays in cache (a forward streams every layer's
weights from memory). Reported: µs per product (median over repeats) and the weight bytes ÷ that time, at one BLAS
thread and at all the cores NumPy's OpenBLAS uses; and each way's largest |Δ| against the float64 product.

    python benchmarks/small_gemm.py [--hidden 384 --intermediate 1536] [--rows 1,9,16,160] [--copies 12]
    python benchmarks/small_gemm.py --smoke     # tiny sizes, one repeat: every code path in a second
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout without `pip install -e .`

from minibert.bench.machine import machine_description, versions
from minibert.bench.timing import wall_seconds
from minibert.encoder.blas import blas_threads
from minibert.encoder.threads import usable_cores

LAYOUTS = ("view", "contiguous", "W·Xᵀ")


def products(torch_rows: list[np.ndarray], x: np.ndarray, layout: str):
    """A function running X @ W for every matrix of `torch_rows` ([O, I] each) the given way."""
    if layout == "W·Xᵀ":
        xt = np.ascontiguousarray(x.T)  # [I, M]
        out = np.empty((torch_rows[0].shape[0], x.shape[0]), np.float32)
        return lambda: [np.matmul(w, xt, out=out) for w in torch_rows]
    mats = [w.T if layout == "view" else np.ascontiguousarray(w.T) for w in torch_rows]
    out = np.empty((x.shape[0], mats[0].shape[1]), np.float32)
    return lambda: [np.matmul(x, w, out=out) for w in mats]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--rows", default="1,9,16,160", help="comma-separated M values")
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.hidden, args.intermediate, args.rows, args.copies, args.repeats = 32, 64, "2,9", 2, 1
    C, F = args.hidden, args.intermediate
    rows = [int(m) for m in args.rows.split(",")]
    shapes = {"QKV": (3 * C, C), "attention output": (C, C), "FFN in": (F, C), "FFN out": (C, F)}
    rng = np.random.default_rng(0)

    print(f"- machine: {machine_description()}\n- versions: {versions()}\n- C = {C}, F = {F}, {args.copies} copies")
    print(f"\n| BLAS threads | matrix | M | {' | '.join(f'{layout} µs (GB/s)' for layout in LAYOUTS)} | max |Δ| |")
    print("|---|---|---|" + "---|" * len(LAYOUTS) + "---|")
    for count in dict.fromkeys([1, usable_cores()]):
        with blas_threads(count):  # capped by OpenBLAS's own count (OPENBLAS_NUM_THREADS)
            table_rows(count, shapes, rows, args, rng)
    return 0


def table_rows(count: int, shapes: dict, rows: list[int], args: argparse.Namespace, rng: np.random.Generator) -> None:
    """The table's rows at `count` BLAS threads."""
    for name, (o, i) in shapes.items():
        torch_rows = [rng.standard_normal((o, i), dtype=np.float32) for _ in range(args.copies)]
        for m in rows:
            x = rng.standard_normal((m, i), dtype=np.float32)
            runs = {layout: products(torch_rows, x, layout) for layout in LAYOUTS}
            times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
            reference = x.astype(np.float64) @ torch_rows[-1].T.astype(np.float64)  # [M, O]
            gap = 0.0
            for layout, run in runs.items():
                y = run()[-1]  # warm-up (the copies' pages, BLAS's buffers); its last product checked
                gap = max(gap, float(np.abs((y.T if layout == "W·Xᵀ" else y) - reference).max()))
            for _ in range(args.repeats):
                for layout, run in runs.items():
                    times[layout].append(wall_seconds(run) / args.copies)
            cells = []
            for layout in LAYOUTS:
                t = statistics.median(times[layout])
                cells.append(f"{1e6 * t:.0f} ({torch_rows[0].nbytes / t / 1e9:.1f})")
            print(f"| {count} | {name} | {m} | {' | '.join(cells)} | {gap:.1e} |")


if __name__ == "__main__":
    sys.exit(main())
