"""GB/s of minibert's Triton mean pooling (± fused L2 normalize) on packed hidden states, vs copy and vs torch.

Segment lengths come from tokenizing a corpus (default: `minibert bench`'s — $MINIBERT_BENCH_CORPUS, else
../shared/data/msmarco-passages.tsv beside the checkout, else the Python stdlib's docstrings) with the
all-MiniLM-L6-v2 tokenizer (`tokenizers`, truncated at the model's max_seq_length), or from --lengths-file
(whitespace-separated token counts). Hidden states are random [N, C] (speed does not depend on the values)
for C = 384 and 768 in fp16, bf16 and fp32. Contenders, alternated round by round (A B A B …):

* triton — ``minibert.kernels.pooling.mean_pool`` (one launch, fused normalize);
* torch  — ``torch.segment_reduce(hidden, "sum", lengths)`` → float32 ÷ clamp(count, 1e-9) (→ F.normalize);
  where segment_reduce lacks the dtype, ``index_add_`` of hidden.float() instead (the contender's name says which).

Bytes counted = N·C·itemsize read + B·C·4 written (the minimum traffic; the fused normalize also re-reads
and re-writes the B·C·4 output). GB/s is set against the device's copy bandwidth measured in the same run:
a ``dst.copy_(src)`` of --copy-mib MiB timed the same way, counting its read + write bytes. Times are
``triton.testing.do_bench`` medians (minibert.bench.timing.median_ms); the table shows the median over rounds
and the min–max spread. Each result is first checked against a float64 reference (index_add_). CSV rows (GPU,
versions, date, config, ms, GB/s, % of copy bandwidth) are appended to benchmarks/pooling.csv.

    python benchmarks/bench_pooling.py [--corpus FILE] [--model NAME|DIR] [--lengths-file FILE] [--rounds R]
    python benchmarks/bench_pooling.py --smoke   # tiny config on CPU under TRITON_INTERPRET=1 (perf_counter)

Without CUDA (and without --smoke) it exits with a one-line message. On a machine without the model cache,
pass --model DIR (a folder holding tokenizer.json) or --lengths-file.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
from pathlib import Path

from _common import device_for, read_lengths_file, save_rows, tokenized_lengths
from minibert.bench.corpus import default_corpus
from minibert.bench.timing import median_ms
from minibert.testing.tables import KERNEL_TOLERANCES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / "benchmarks" / "pooling.csv"
CSV_FIELDS = [
    "date",
    "command",
    "device",
    "torch",
    "triton",
    "lengths",
    "n_tokens",
    "batch",
    "hidden_size",
    "dtype",
    "normalize",
    "contender",
    "ms_median",
    "ms_min",
    "ms_max",
    "gb_per_s",
    "copy_gb_per_s",
    "pct_of_copy",
    "max_abs_err",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--corpus", type=Path, help="passages to tokenize (.tsv/.jsonl/text); default: minibert bench's corpus"
    )
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="model name or directory holding tokenizer.json")
    parser.add_argument("--lengths-file", type=Path, help="token counts, whitespace-separated (skips tokenizing)")
    parser.add_argument("--limit", type=int, help="use only the first N passages / lengths")
    parser.add_argument("--max-seq-length", type=int, help="truncation (default: the model's max_seq_length)")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[384, 768])
    parser.add_argument(
        "--dtypes", nargs="+", default=["float16", "bfloat16", "float32"], choices=list(KERNEL_TOLERANCES)
    )
    parser.add_argument("--block-t", type=int, default=16)
    parser.add_argument("--block-c", type=int, help="default: the launcher's")
    parser.add_argument("--rounds", type=int, default=5, help="timings per contender, alternating (default 5)")
    parser.add_argument("--copy-mib", type=int, default=1024, help="size of the copy-bandwidth buffer (MiB)")
    parser.add_argument("--csv", type=Path, help=f"CSV to append to (default {DEFAULT_CSV.relative_to(ROOT)})")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny configuration on CPU under TRITON_INTERPRET=1, timed with time.perf_counter; CSV to a temp file",
    )
    return parser.parse_args(argv)


def load_lengths(args: argparse.Namespace) -> tuple[list[int], str]:
    """(segment lengths, a short description of where they came from)."""
    if args.lengths_file is not None:
        return read_lengths_file(args.lengths_file, "bench_pooling", minimum=0)[: args.limit], args.lengths_file.name
    try:
        corpus = args.corpus or default_corpus()
        lengths = tokenized_lengths(corpus, args.model, args.limit, args.max_seq_length)
        return lengths, f"{corpus.name}[:{len(lengths)}] tokenized ({args.model})"
    except Exception as exc:  # the model or corpus is missing: say so in one line
        if not args.smoke:
            sys.exit(f"bench_pooling: cannot get lengths ({type(exc).__name__}: {exc}); pass --lengths-file or --model")
        print(f"(smoke: corpus/tokenizer unavailable, {type(exc).__name__}; using synthetic lengths)")
        return [1, 9, 0, 33, 70, 17, 64, 5, 128, 40, 2, 77], "synthetic"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.smoke:
        args.limit = args.limit or 12
        args.hidden_sizes = [48]
        args.rounds = min(args.rounds, 2)
        args.copy_mib = min(args.copy_mib, 16)
    device, device_name = device_for("bench_pooling", args.smoke)

    import torch
    import triton

    from minibert.kernels.pooling import mean_pool

    lengths, source = load_lengths(args)
    if not lengths:
        sys.exit("bench_pooling: no passages / lengths to pool")
    n_tokens, batch = sum(lengths), len(lengths)
    print(f"device: {device_name}; torch {torch.__version__}, triton {triton.__version__}")
    print(
        f"lengths: {source}: B = {batch} segments, N = {n_tokens} tokens "
        f"(mean {n_tokens / batch:.1f}, max {max(lengths)}, empty {lengths.count(0)})"
    )

    def copy_bandwidth_gbs(numel: int) -> float:
        """GB/s of dst.copy_(src) for float32 buffers of numel elements, counting read + write bytes."""
        src = torch.randn(numel, device=device)
        dst = torch.empty_like(src)
        ms = [median_ms(lambda: dst.copy_(src)) for _ in range(args.rounds)]
        return 2 * numel * 4 / statistics.median(ms) / 1e6

    copy_gbs = copy_bandwidth_gbs(args.copy_mib * 2**20 // 4)
    print(f"copy bandwidth: {copy_gbs:.1f} GB/s (copy_ of {args.copy_mib} MiB, read + write, median of {args.rounds})")

    lengths_t = torch.tensor(lengths, dtype=torch.int64, device=device)  # [B]
    cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32, device=device)  # [B + 1]
    cu_seqlens[1:] = torch.cumsum(lengths_t, 0)
    counts = lengths_t.float().clamp(min=1e-9)[:, None]  # [B, 1]
    segment_ids = torch.repeat_interleave(torch.arange(batch, device=device), lengths_t)  # [N]

    def segment_reduce_supports(dtype: torch.dtype) -> bool:
        try:
            ones = torch.ones(2, 1, dtype=torch.int64, device=device)[:, 0]
            torch.segment_reduce(torch.zeros(2, 1, dtype=dtype, device=device), "sum", lengths=ones, axis=0)
        except (RuntimeError, NotImplementedError):
            return False
        return True

    def torch_mean_pool(hidden, normalize, use_segment_reduce):
        if use_segment_reduce:
            sums = torch.segment_reduce(hidden, "sum", lengths=lengths_t, axis=0).float()  # [N, C] -> [B, C]
        else:  # segment_reduce lacks this dtype here: upcast and scatter-add instead
            sums = torch.zeros(batch, hidden.shape[1], device=device).index_add_(0, segment_ids, hidden.float())
        pooled = sums / counts  # [B, C]
        return torch.nn.functional.normalize(pooled, dim=1) if normalize else pooled

    rows = []
    header = f"{'C':>4} {'dtype':<8} {'norm':<5} {'contender':<20} {'median ms':>10} {'min–max ms':>19} {'GB/s':>8} "
    print(f"\n{header}{'% copy':>7} {'max |Δ|':>9}")
    for hidden_size in args.hidden_sizes:
        for dtype_name in args.dtypes:
            dtype = getattr(torch, dtype_name)
            hidden = torch.randn(n_tokens, hidden_size, device=device).to(dtype)  # [N, C]
            sums = torch.zeros(batch, hidden_size, dtype=torch.float64, device=device)
            reference_mean = sums.index_add_(0, segment_ids, hidden.double()) / counts.double()  # [B, C]
            out = torch.empty(batch, hidden_size, dtype=torch.float32, device=device)
            use_segment_reduce = segment_reduce_supports(dtype)
            torch_name = "torch:segment_reduce" if use_segment_reduce else "torch:index_add_"
            n_bytes = n_tokens * hidden_size * hidden.element_size() + batch * hidden_size * 4
            for normalize in (False, True):
                reference = torch.nn.functional.normalize(reference_mean, dim=1) if normalize else reference_mean
                contenders = {
                    "triton": lambda h=hidden, n=normalize, o=out: mean_pool(
                        h, cu_seqlens, normalize=n, block_t=args.block_t, block_c=args.block_c, out=o
                    ),
                    torch_name: lambda h=hidden, n=normalize, u=use_segment_reduce: torch_mean_pool(h, n, u),
                }
                errors = {}
                for name, fn in contenders.items():
                    errors[name] = (fn().double() - reference).abs().max().item() if batch else 0.0
                tol = KERNEL_TOLERANCES[dtype_name]
                bound = tol + tol * reference.abs().max().item()
                if errors["triton"] > bound:
                    sys.exit(f"bench_pooling: mean_pool is wrong for C={hidden_size} {dtype_name}: max |Δ| {errors}")
                times = {name: [] for name in contenders}
                for _ in range(args.rounds):
                    for name, fn in contenders.items():  # alternate: triton, torch, triton, torch, …
                        times[name].append(median_ms(fn))
                for name, ms in times.items():
                    median = statistics.median(ms)
                    gbs = n_bytes / median / 1e6
                    print(
                        f"{hidden_size:>4} {dtype_name:<8} {normalize!s:<5} {name:<20} {median:>10.4f} "
                        f"{min(ms):>9.4f}–{max(ms):<9.4f} {gbs:>8.4g} {100 * gbs / copy_gbs:>6.1f}% "
                        f"{errors[name]:>9.2e}"
                    )
                    rows.append(
                        {
                            "date": datetime.date.today().isoformat(),
                            "command": " ".join(["python", "benchmarks/bench_pooling.py", *sys.argv[1:]]),
                            "device": device_name,
                            "torch": torch.__version__,
                            "triton": triton.__version__,
                            "lengths": source,
                            "n_tokens": n_tokens,
                            "batch": batch,
                            "hidden_size": hidden_size,
                            "dtype": dtype_name,
                            "normalize": normalize,
                            "contender": name,
                            "ms_median": f"{median:.5f}",
                            "ms_min": f"{min(ms):.5f}",
                            "ms_max": f"{max(ms):.5f}",
                            "gb_per_s": f"{gbs:.4g}",
                            "copy_gb_per_s": f"{copy_gbs:.2f}",
                            "pct_of_copy": f"{100 * gbs / copy_gbs:.1f}",
                            "max_abs_err": f"{errors[name]:.3g}",
                        }
                    )

    save_rows("bench_pooling", args.csv, DEFAULT_CSV, args.smoke, CSV_FIELDS, rows)


if __name__ == "__main__":
    main()
