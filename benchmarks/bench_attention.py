"""TFLOP/s of minibert's fused varlen attention (Triton) vs torch's attention kernels, on real and fixed lengths.

Batches: the token counts of the first --batch-size passages of a corpus (default: `minibert bench`'s —
$MINIBERT_BENCH_CORPUS, else ../shared/data/msmarco-passages.tsv beside the checkout, else the Python stdlib's
docstrings — in file order, tokenized with `tokenizers` from --model-dir, default all-MiniLM-L6-v2 found by
minibert.loading.resolve.resolve_model_dir, truncated at the model's max_seq_length), or of --lengths-file
(whitespace-separated token counts); plus batches of --batch-size sequences of each fixed length (default
128, 256, 512). q, k, v are random (speed does not depend on the values); H = --heads, D in --head-dims
(default 32 and 64), fp16 and bf16. Contenders, alternated round by round (A B C … A B C …):

* minibert          — minibert.kernels.attention.varlen_attention on packed [N, H, D] (no padding);
* torch-varlen      — torch.nn.attention.varlen.varlen_attn on the same packed tensors (FlashAttention-2);
* sdpa-nested       — scaled_dot_product_attention on jagged nested tensors [B, H, j, D] built on them;
* sdpa-<backend>    — scaled_dot_product_attention on zero-padded [B, H, S, D] with a boolean key-padding
                      mask [B, 1, 1, S] (no mask when all lengths are equal), restricted with
                      torch.nn.attention.sdpa_kernel to each backend: flash, efficient, cudnn, math.

A contender torch cannot run in this configuration (flash takes no mask; a backend or API missing from the
installed torch) is reported as "not available: <reason>", not skipped silently.

Work counted: only real tokens, flops = 4 · Σ len_i² · H · D (QKᵀ and PV of a bidirectional forward), the
same count for every contender, so padded contenders are charged for the padding they compute. Times are
triton.testing.do_bench medians (L2 flushed between calls; minibert.bench.timing.median_ms); the table shows
the median over --rounds rounds, the min–max spread, and each contender's time over minibert's from the same
run. Every output is first checked against torch's math backend in float32 on the real tokens; minibert must
be within the kernels' bounds (minibert.testing.tables: 2e-3 fp16, 1e-2 bf16, relative to max |reference|) or the
run stops.
CSV rows (command, GPU, torch/triton versions, date, config, ms, TFLOP/s) are appended to
benchmarks/attention.csv.

    python benchmarks/bench_attention.py [--corpus FILE] [--model-dir NAME|DIR] [--lengths-file FILE]
        [--batch-size B] [--fixed-lengths 128 256 512] [--heads H] [--head-dims 32 64] [--rounds R]
    python benchmarks/bench_attention.py --smoke   # tiny config on CPU under TRITON_INTERPRET=1 (perf_counter)

Without a CUDA GPU (and without --smoke) it exits with a one-line message.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import warnings
from pathlib import Path

from _common import device_for, read_lengths_file, save_rows, tokenized_lengths
from minibert.bench.corpus import default_corpus
from minibert.bench.timing import median_ms
from minibert.testing.tables import KERNEL_TOLERANCES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / "benchmarks" / "attention.csv"
DEFAULT_MODEL = "all-MiniLM-L6-v2"
SDPA_BACKENDS = ("flash", "efficient", "cudnn", "math")
CSV_FIELDS = [
    "date",
    "command",
    "device",
    "torch",
    "triton",
    "config",
    "batch",
    "n_tokens",
    "max_len",
    "heads",
    "head_dim",
    "dtype",
    "contender",
    "status",
    "ms_median",
    "ms_min",
    "ms_max",
    "tflops",
    "time_vs_minibert",
    "max_abs_err",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_attention.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, help="passages to tokenize (.tsv/.jsonl/text); default: minibert bench's corpus"
    )
    parser.add_argument(
        "--model-dir", default=DEFAULT_MODEL, help="model name or directory holding tokenizer.json (for the lengths)"
    )
    parser.add_argument("--lengths-file", type=Path, help="token counts, whitespace-separated (skips tokenizing)")
    parser.add_argument("--max-seq-length", type=int, help="truncation (default: the model's max_seq_length)")
    parser.add_argument("--batch-size", type=int, default=128, help="sequences per batch (default 128)")
    parser.add_argument("--fixed-lengths", type=int, nargs="*", default=[128, 256, 512], help="equal-length batches")
    parser.add_argument("--heads", type=int, default=12, help="attention heads (default 12)")
    parser.add_argument("--head-dims", type=int, nargs="+", default=[32, 64], help="default 32 64")
    parser.add_argument("--dtypes", nargs="+", default=["float16", "bfloat16"], choices=list(KERNEL_TOLERANCES))
    parser.add_argument("--block-m", type=int, default=64)
    parser.add_argument("--block-n", type=int, default=64)
    parser.add_argument("--num-warps", type=int, help="default: the launcher's")
    parser.add_argument("--num-stages", type=int, help="default: the launcher's")
    parser.add_argument("--rounds", type=int, default=5, help="timings per contender, alternating (default 5)")
    parser.add_argument("--csv", type=Path, help=f"CSV to append to (default {DEFAULT_CSV.relative_to(ROOT)})")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny configuration on CPU under TRITON_INTERPRET=1, timed with time.perf_counter; CSV to a temp file",
    )
    args = parser.parse_args(argv)
    for name in ("batch_size", "heads", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be ≥ 1")
    if any(n < 1 for n in args.fixed_lengths):
        parser.error("--fixed-lengths must be ≥ 1")
    return args


def length_sets(args: argparse.Namespace) -> list[tuple[str, list[int]]]:
    """[(config name, lengths)]: the corpus (or lengths-file) batch, then one batch per fixed length."""
    sets = []
    fixed = [(f"fixed-{n}x{args.batch_size}", [n] * args.batch_size) for n in args.fixed_lengths]
    if args.lengths_file is not None:
        lengths = read_lengths_file(args.lengths_file, "bench_attention")[: args.batch_size]
        sets.append((f"{args.lengths_file.stem}[:{args.batch_size}]", lengths))
    else:
        try:
            corpus = args.corpus or default_corpus()
            lengths = tokenized_lengths(corpus, args.model_dir, args.batch_size, args.max_seq_length)
            name = f"{corpus.stem}[:{len(lengths)}]@{args.max_seq_length or 'model'}"
        except Exception as exc:  # missing model or corpus: one line, not a traceback
            if args.smoke:
                print(f"(smoke: corpus/tokenizer unavailable, {first_line(exc)}; using synthetic lengths)")
                return [("synthetic", [1, 9, 33, 48]), *fixed]
            sys.exit(
                f"bench_attention: cannot get token lengths ({type(exc).__name__}: {exc}); "
                "pass --model-dir DIR (holding tokenizer.json) or --lengths-file"
            )
        if not lengths:
            sys.exit(f"bench_attention: no passages in {corpus}")
        sets.append((name, lengths))
    return sets + fixed


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:100] if text else ''}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.smoke:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the smoke run never downloads
        args.batch_size = min(args.batch_size, 4)
        args.max_seq_length = args.max_seq_length or 48
        args.fixed_lengths = [min(n, 40) for n in args.fixed_lengths[:1]]
        args.heads = min(args.heads, 2)
        args.rounds = min(args.rounds, 2)
    device, device_name = device_for("bench_attention", args.smoke)

    import torch
    import torch.nn.functional as F
    import triton

    from minibert.kernels.attention import varlen_attention

    command = " ".join(["python", "benchmarks/bench_attention.py", *sys.argv[1:]])
    print(f"device: {device_name}; torch {torch.__version__}, triton {triton.__version__}")

    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError as exc:
        varlen_attn, varlen_missing = None, f"not in torch {torch.__version__} ({first_line(exc)})"
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {
        "flash": getattr(SDPBackend, "FLASH_ATTENTION", None),
        "efficient": getattr(SDPBackend, "EFFICIENT_ATTENTION", None),
        "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None),
        "math": getattr(SDPBackend, "MATH", None),
    }

    def contenders_for(lengths, q, k, v, cu_seqlens, dtype):
        """{name: zero-arg fn returning [N, H, D] on the real tokens, or a 'not available: …' string}."""
        batch, max_len = len(lengths), max(lengths)
        n_heads, head_dim = q.shape[1], q.shape[2]
        lengths_t = torch.tensor(lengths, device=device)
        real = torch.arange(max_len, device=device)[None, :] < lengths_t[:, None]  # [B, S] True on real tokens

        def pad(x):  # [N, H, D] -> [B, H, S, D], a transposed view as HF's BERT makes it
            padded = torch.zeros(batch, max_len, n_heads, head_dim, dtype=dtype, device=device)
            padded[real] = x
            return padded.transpose(1, 2)

        qp, kp, vp = pad(q), pad(k), pad(v)
        mask = None if min(lengths) == max_len else real[:, None, None, :]  # [B, 1, 1, S] key-padding mask
        out = torch.empty_like(q)
        found = {
            "minibert": lambda: varlen_attention(
                q,
                k,
                v,
                cu_seqlens,
                max_len,
                out=out,
                block_m=args.block_m,
                block_n=args.block_n,
                num_warps=args.num_warps,
                num_stages=args.num_stages,
            )
        }
        if varlen_attn is None:
            found["torch-varlen"] = f"not available: {varlen_missing}"
        else:
            found["torch-varlen"] = lambda: varlen_attn(q, k, v, cu_seqlens, cu_seqlens, max_len, max_len)
        offsets = cu_seqlens.long()

        def nested():
            qn, kn, vn = (
                torch.nested.nested_tensor_from_jagged(x, offsets=offsets).transpose(1, 2) for x in (q, k, v)
            )  # [B, H, j, D]
            return F.scaled_dot_product_attention(qn, kn, vn).transpose(1, 2).values()  # [N, H, D]

        found["sdpa-nested"] = nested
        for name in SDPA_BACKENDS:
            backend = backends[name]
            if backend is None:
                found[f"sdpa-{name}"] = f"not available: no SDPBackend for {name} in torch {torch.__version__}"
                continue

            def padded(backend=backend):
                with sdpa_kernel([backend]):
                    o = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=mask)  # [B, H, S, D]
                return o.transpose(1, 2)[real]  # [N, H, D]

            found[f"sdpa-{name}"] = padded
        return found, (qp, kp, vp, mask, real)

    rows = []
    print(
        f"\n{'config':<28} {'D':>3} {'dtype':<8} {'contender':<15} {'median ms':>10} {'min–max ms':>19} "
        f"{'TFLOP/s':>8} {'t/minibert':>10} {'max |Δ|':>9}"
    )
    for config, lengths in length_sets(args):
        batch, n_tokens, max_len = len(lengths), sum(lengths), max(lengths)
        cu_seqlens = torch.zeros(batch + 1, dtype=torch.int32, device=device)
        cu_seqlens[1:] = torch.cumsum(torch.tensor(lengths, device=device), 0)
        print(
            f"# {config}: B = {batch}, N = {n_tokens} tokens (mean {n_tokens / batch:.1f}, max {max_len}), "
            f"padding {100 * (1 - n_tokens / (batch * max_len)):.0f}% of a padded batch"
        )
        for head_dim in args.head_dims:
            flops = 4 * sum(n * n for n in lengths) * args.heads * head_dim
            for dtype_name in args.dtypes:
                dtype = getattr(torch, dtype_name)
                gen = torch.Generator(device=device).manual_seed(head_dim)
                q, k, v = (
                    torch.randn(n_tokens, args.heads, head_dim, generator=gen, device=device).to(dtype)
                    for _ in range(3)
                )  # [N, H, D]
                contenders, (qp, kp, vp, mask, real) = contenders_for(lengths, q, k, v, cu_seqlens, dtype)
                with sdpa_kernel([backends["math"]]):  # float32 reference on the real tokens
                    reference = F.scaled_dot_product_attention(
                        qp.float(), kp.float(), vp.float(), attn_mask=mask
                    ).transpose(1, 2)[real]  # [N, H, D]
                errors, status = {}, {}
                for name, fn in list(contenders.items()):
                    if isinstance(fn, str):
                        status[name] = fn
                        continue
                    try:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")  # torch explains unusable backends in warnings
                            result = fn()
                    except Exception as exc:  # the backend cannot run this configuration
                        status[name] = f"not available: {first_line(exc)}"
                        continue
                    errors[name] = (result.float() - reference).abs().max().item()
                    status[name] = "ok"
                bound = KERNEL_TOLERANCES[dtype_name] * reference.abs().max().item()
                if status["minibert"] != "ok" or errors["minibert"] > bound:
                    sys.exit(
                        f"bench_attention: minibert is wrong for {config} D={head_dim} {dtype_name}: "
                        f"{status['minibert']}, max |Δ| {errors.get('minibert')} > {bound:.3g}"
                    )
                runnable = {name: fn for name, fn in contenders.items() if status[name] == "ok"}
                times = {name: [] for name in runnable}
                for _ in range(args.rounds):
                    for name, fn in runnable.items():  # alternate: minibert, torch-varlen, …, minibert, …
                        times[name].append(median_ms(fn))
                base = statistics.median(times["minibert"])
                for name in contenders:
                    row = {
                        "date": datetime.date.today().isoformat(),
                        "command": command,
                        "device": device_name,
                        "torch": torch.__version__,
                        "triton": triton.__version__,
                        "config": config,
                        "batch": batch,
                        "n_tokens": n_tokens,
                        "max_len": max_len,
                        "heads": args.heads,
                        "head_dim": head_dim,
                        "dtype": dtype_name,
                        "contender": name,
                        "status": status[name],
                    }
                    if name not in times:
                        print(f"{config:<28} {head_dim:>3} {dtype_name:<8} {name:<15} {status[name]}")
                        rows.append(row)
                        continue
                    ms = times[name]
                    median = statistics.median(ms)
                    tflops = flops / (median * 1e-3) / 1e12
                    print(
                        f"{config:<28} {head_dim:>3} {dtype_name:<8} {name:<15} {median:>10.4f} "
                        f"{min(ms):>9.4f}–{max(ms):<9.4f} {tflops:>8.3g} {median / base:>10.2f} {errors[name]:>9.2e}"
                    )
                    row.update(
                        ms_median=f"{median:.5f}",
                        ms_min=f"{min(ms):.5f}",
                        ms_max=f"{max(ms):.5f}",
                        tflops=f"{tflops:.4g}",
                        time_vs_minibert=f"{median / base:.3f}",
                        max_abs_err=f"{errors[name]:.3g}",
                    )
                    rows.append(row)

    save_rows("bench_attention", args.csv, DEFAULT_CSV, args.smoke, CSV_FIELDS, rows)


if __name__ == "__main__":
    main()
