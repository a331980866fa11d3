"""`make gpu-check`: everything GPU in one command — the kernels and the GPU forward proven on CUDA, then benchmarked.

Made for a GPU machine lent for minutes: one prepared command, time-boxed to finish within 8 minutes on one H200,
whose output settles whether the GPU path works and how fast it is. Sections, in order (each has a time budget;
one that runs out is stopped, the rows it wrote are kept and the summary says so; the later ones still run):

1. kernels   — every Triton kernel on CUDA vs a float64 torch reference on the same GPU, at the awkward shapes of
               the interpreter tests, output buffers NaN-poisoned first: varlen attention (lengths 1 … 512, head
               dims 16 … 128, ± MPNet's relative bias), mean / CLS pooling (± fused normalize, an empty segment),
               residual + bias + LayerNorm and bias + GELU (widths 1, 37, 384, 768, 1023, 1536, 3072), the
               cases and bounds of the interpreter tests (minibert.testing.tables): |Δ| ≤ tol·(1 + |ref|) (attention:
               ≤ tol · max |ref| per sequence), tol = 1e-5 fp32, 2e-3 fp16, 1e-2 bf16.
2. forward   — minibert's GPU path vs sentence-transformers on the same GPU: random-init BERT (MiniLM-L6 and
               BERT-base sizes), DistilBERT-base and MPNet-base, mean and CLS pooling + Normalize, a ragged batch
               (MS MARCO passages, documents and a text past max_seq_length = 256, an empty string). fp32 with TF32
               off: max |Δ| ≤ 1e-5; fp16 / bf16: max |Δ| to sentence-transformers fp32 ≤ 3 × sentence-transformers'
               own error in that dtype (flash-attention's rule).
3. cross_encoder — minibert.CrossEncoder on the Triton backend vs sentence-transformers' CrossEncoder on the same
               GPU: random-init BertForSequenceClassification (MiniLM-L6 size, 1 label) and
               ElectraForSequenceClassification (ELECTRA-base, 1 label; ELECTRA-small, embeddings projected, 3 labels)
               on reranking lists of MS MARCO passages for query-like texts (a passage's first words), a pair past
               max_length = 512 on either side and an empty passage. fp32 with TF32 off: max |Δscore| ≤ 1e-5 and the
               same ranking of every query's candidates; fp16 / bf16: the forward's rule. Then pairs/s of minibert
               (fp16, bf16) vs sentence-transformers fp16 on 1,000 pairs, batch 32, alternating, and the latency of
               reranking 100 candidates for one query (median over 8 queries), MiniLM-L6 size.
4. attention — benchmarks/bench_attention.py: TFLOP/s (4 · Σ len² · H · D, real tokens only) of the varlen kernel vs
               torch SDPA on the padded batch with a mask (each backend), nested tensors and torch's varlen_attn;
               lengths of MS MARCO documents of 1, 2, 4 passages truncated at 128, 256, 512; D = 32, 64; fp16, bf16.
5. pooling   — benchmarks/bench_pooling.py: GB/s of mean pooling (± normalize) vs the torch expression.
6. layernorm_gelu — GB/s (explicit byte counts below) of the LayerNorm and GELU kernels vs the torch expressions
               they replace, on the rows of a batch of 256 MS MARCO passages, C = 384 / 768, F = 4C, 3 dtypes.
7. e2e       — benchmarks/bench_e2e.py: docs/s of minibert (fp16, bf16) vs sentence-transformers fp16 on the same
               passages, batch 32 and 256, alternating, MFU against the bf16 matmul rate measured in this run;
               random-init MiniLM-L6 and BERT-base shapes.

Everything goes to one directory (--out; default $OUT, else .cache/gpu-check-out/): kernels.csv, forward.csv,
cross_encoder.csv, attention.csv, pooling.csv, layernorm_gelu.csv, e2e.csv, the benchmark scripts' tables
(attention.log, pooling.log, e2e.log), the token lengths benchmarked (lengths/), tracebacks of crashed sections
(errors.log) and summary.md, which is also printed last. Exit status 1 when a correctness check failed (a kernel,
forward or cross-encoder case, a benchmark's own parity check) or a section crashed, 0 otherwise; the benchmarks run
either way.

The device machine has no network and no weights: models are built there, random-init, with
minibert.bench.random_init from tokenizer files that travel with the checkout in --assets (default
.cache/gpu-check/, ignored by git, ~4 MB), filled once on a machine that has all-MiniLM-L6-v2 by --prepare: the
BERT tokenizer files, a DistilBERT and an MPNet tokenizer built from them (minibert.testing.tokenizers), the MS MARCO
passages and the models' sizes (the tests' tables), the cross-encoders' included, in manifest.json. The script
imports minibert from this source tree (benchmarks/_common.py maps kernels/ to minibert.kernels when minibert is not
installed), so the image's python3 runs it as it is: no venv, no pip.

    python benchmarks/gpu_check.py --prepare [--tokenizer-dir DIR] [--corpus FILE]   # here, once
    python3 benchmarks/gpu_check.py [--out DIR]          # on the GPU machine: `make gpu-check`
    python benchmarks/gpu_check.py --smoke [--out DIR]   # CPU, TRITON_INTERPRET=1, tiny shapes: every code path

--smoke runs every section on tiny shapes in Triton's interpreter on CPU tensors (its times are not speeds), so CI
keeps the script working between GPU sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import datetime
import functools
import importlib
import itertools
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, device_for, tokenized_lengths
from minibert.bench.queries import queries_from_passages
from minibert.bench.report import append_csv
from minibert.bench.timing import median_ms, wall_seconds
from minibert.testing.models import (
    CROSS_ENCODER_MAX_LENGTH,
    build_random_cross_encoder,
    build_random_model,
    legacy_pooling,
)
from minibert.testing.tables import (
    AWKWARD_LENGTHS,
    CROSS_ENCODER_CONFIGS,
    CROSS_ENCODER_SHAPES,
    EMBEDDING_ATOL,
    HALF_FACTOR,
    HEAD_DIMS,
    KERNEL_TOLERANCES,
    POOLING_WIDTHS,
    ROWS_BY_WIDTH,
)
from minibert.testing.tokenizers import TOKENIZER_FILES

PROG = "gpu_check"
DEFAULT_ASSETS = ROOT / ".cache" / "gpu-check"
DEFAULT_OUT = ROOT / ".cache" / "gpu-check-out"
MANIFEST = "manifest.json"
TOTAL_BUDGET_S = 450.0  # the whole run, imports included, stays under 8 minutes
# cross_encoder's 60 s: 35 s of the benchmarks' slack (attention 70 → 60, e2e 85 → 60) and 25 s of the margin left
# for imports (30 → 5 s; each section stops at the run's deadline anyway, so only e2e's last rows could be cut).
BUDGETS_S = {
    "kernels": 95,
    "forward": 120,
    "cross_encoder": 60,
    "attention": 60,
    "pooling": 25,
    "layernorm_gelu": 25,
    "e2e": 60,
}
DTYPES = ("float32", "float16", "bfloat16")
# (arch, shape key of the tests' tables) for the forward check; the sizes themselves go into manifest.json.
FORWARD_MODELS = {
    "real": [("bert", "minilm-l6"), ("mpnet", "mpnet-base"), ("distilbert", "distilbert-base"), ("bert", "bert-base")],
    "smoke": [("bert", "tiny-d32"), ("distilbert", "tiny-d32"), ("mpnet", "tiny-d32")],
}
# (arch, shape key, labels) for the cross_encoder check; the first is also timed. The sizes go into manifest.json.
CROSS_ENCODER_MODELS = {
    "real": [("bert", "minilm-l6", 1), ("electra", "electra-base", 1), ("electra", "electra-small", 3)],
    "smoke": [("bert", "tiny-d32", 1), ("electra", "tiny-d32", 3)],
}
# The tests' tiny ELECTRA shapes have head size 8, under the 16 … 128 the attention kernel takes: the smoke run's own,
# head size 32 like the other tiny-d32 shapes, and embedding_size ≠ hidden_size (ELECTRA's embeddings_project).
SMOKE_CROSS_ENCODER_SHAPES = {
    "electra": {
        "tiny-d32": dict(
            embedding_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
        )
    }
}
SCORE_ATOL = EMBEDDING_ATOL  # cross-encoder scores, fp32 (TF32 off) vs sentence-transformers: 1e-5 as embeddings
RERANK_BATCH_SIZE = 32  # CrossEncoder.predict's default, in both libraries
KERNEL_COLUMNS = ["kernel", "case", "dtype", "max_abs_err", "worst_err_over_bound", "not_finite", "status"]
FORWARD_COLUMNS = ["model", "arch", "pooling", "dtype", "texts", "max_abs_err", "bound", "reference_own_err", "status"]
CROSS_ENCODER_COLUMNS = [  # parity rows (check "parity") and speed rows (check "speed") of the cross_encoder section
    "check",
    "model",
    "arch",
    "labels",
    "contender",
    "dtype",
    "pairs",
    "batch_size",
    "max_abs_err",
    "bound",
    "reference_own_err",
    "rankings_same",
    "status",
    "pairs_per_s",
    "pairs_per_s_min",
    "pairs_per_s_max",
    "rerank_candidates",
    "rerank_ms_p50",
    "rerank_ms_max",
]
NORM_ACT_COLUMNS = [
    "date",
    "device",
    "op",
    "rows",
    "width",
    "dtype",
    "contender",
    "ms_median",
    "ms_min",
    "ms_max",
    "gb_per_s",
    "copy_gb_per_s",
    "max_abs_err",
]


# ---------------------------------------------------------------------------------------------- preparation


def prepare(assets: Path, tokenizer_dir: Path | None, corpus: Path | None) -> None:
    """Fill `assets` with what the device run needs and cannot fetch: tokenizers, passages, the models' sizes."""
    sys.path.insert(0, str(ROOT))
    from minibert.bench.corpus import default_corpus
    from minibert.loading.download import download
    from minibert.testing import ARCH_CONFIGS, ARCH_SHAPES, hidden_width
    from minibert.testing.tokenizers import TOKENIZER_BUILDERS

    # the real model as the tests get it (conftest's real_model_dir): minibert's cache, downloaded there if missing
    source = Path(tokenizer_dir) if tokenizer_dir else download()
    corpus = Path(corpus) if corpus else default_corpus()
    assets.mkdir(parents=True, exist_ok=True)
    tokenizers = assets / "tokenizers"
    shutil.rmtree(tokenizers, ignore_errors=True)
    (tokenizers / "bert").mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if not (source / name).is_file():
            sys.exit(f"{PROG}: {source} has no {name}; pass --tokenizer-dir (all-MiniLM-L6-v2's directory)")
        shutil.copyfile(source / name, tokenizers / "bert" / name)
    for arch, build in TOKENIZER_BUILDERS.items():
        build(source, tokenizers / arch)
    (assets / corpus.name).unlink(missing_ok=True)
    shutil.copyfile(corpus, assets / corpus.name)  # not its mode: the shared copy may be read-only

    def spec(arch: str, shape: str) -> dict:
        dims = ARCH_SHAPES[arch][shape]
        config = {**ARCH_CONFIGS[arch], **dims}  # minibert.testing.build_model_dir's
        return dict(name=f"{arch}-{shape}", type=arch, config=config, width=hidden_width(dims), tokenizer=arch)

    def cross_spec(arch: str, shape: str, labels: int) -> dict:
        dims = {**CROSS_ENCODER_SHAPES[arch], **SMOKE_CROSS_ENCODER_SHAPES.get(arch, {})}[shape]
        config = {**CROSS_ENCODER_CONFIGS[arch], **dims}  # minibert.testing.build_cross_encoder_dir's
        return dict(name=f"{arch}-{shape}", type=arch, config=config, labels=labels, tokenizer="bert")

    manifest = {
        "prepared": datetime.date.today().isoformat(),
        "tokenizer_source": str(source),
        "corpus": corpus.name,
        "models": {mode: [spec(*pair) for pair in pairs] for mode, pairs in FORWARD_MODELS.items()},
        "cross_encoders": {mode: [cross_spec(*m) for m in models] for mode, models in CROSS_ENCODER_MODELS.items()},
    }
    (assets / MANIFEST).write_text(json.dumps(manifest, indent=2))
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    print(f"{PROG}: prepared {assets} ({size / 2**20:.1f} MiB): tokenizers bert, distilbert, mpnet; {corpus.name}")


def load_manifest(assets: Path) -> dict:
    try:
        manifest = json.loads((assets / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        sys.exit(
            f"{PROG}: no usable {assets / MANIFEST} ({type(exc).__name__}); run `python benchmarks/gpu_check.py "
            f"--prepare` on a machine with all-MiniLM-L6-v2 (and carry {assets} to the GPU machine)"
        )
    return manifest


# ---------------------------------------------------------------------------------------------- time budgets


class OutOfTime(BaseException):
    """A section's time ran out. A BaseException, so the `except Exception` of the code it interrupts (a benchmark
    telling an unavailable contender) lets it through."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise OutOfTime in the main thread after `seconds` (None: no limit)."""
    if seconds is None:
        yield
        return

    def expire(signum, frame):
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Section:
    """One section's outcome, for the summary."""

    name: str
    budget_s: float | None
    status: str = "not run"  # ok | FAILED | error | stopped (time budget) | skipped (time budget)
    wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)
        print(f"  FAIL {message}", flush=True)


def run_section(
    section: Section, fn: Callable[[Section], None], deadline: float | None, errors_log: Path | None = None
) -> Section:
    """Run fn(section) within min(its budget, the time left before `deadline`); record status and wall time. A crash
    becomes a failure (its traceback appended to `errors_log`), so the next sections still run."""
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left < 5:
        section.status = "skipped (time budget)"
        return section
    limit = section.budget_s if left is None else min(section.budget_s or left, left)
    print(f"[{section.name}] started" + (f" (budget {limit:.3g} s)" if limit else ""), flush=True)
    start = time.monotonic()
    try:
        with time_limit(limit):
            fn(section)
        section.status = "FAILED" if section.failures else "ok"
    except OutOfTime:
        section.status = "stopped (time budget)"
        if section.failures:
            section.status += ", FAILED"
    except Exception as exc:
        section.status = "error"
        section.fail(f"{section.name} crashed: {type(exc).__name__}: {str(exc).strip()[:300]}")
        if errors_log is not None:
            with errors_log.open("a") as f:
                f.write(f"[{section.name}]\n{traceback.format_exc()}\n")
    section.wall_s = time.monotonic() - start
    print(f"[{section.name}] {section.status} in {section.wall_s:.1f} s", flush=True)
    return section


# ---------------------------------------------------------------------------------------------- shared context


@dataclass
class Context:
    smoke: bool
    device: object  # torch.device
    device_name: str
    out: Path
    assets: Path
    manifest: dict
    passages: list[str]
    models: Path  # a temporary folder for the random-init models (the base ones are 0.4 GB each: not in `out`)

    @property
    def bert_tokenizer(self) -> Path:
        return self.assets / "tokenizers" / "bert"

    @property
    def corpus(self) -> Path:
        return self.assets / self.manifest["corpus"]

    def lengths_file(self, name: str, limit: int, max_seq_length: int, passages_per_text: int = 1) -> Path:
        """Token counts of the first `limit` texts of `passages_per_text` passages, truncated, in a file."""
        lengths = tokenized_lengths(self.corpus, str(self.bert_tokenizer), limit, max_seq_length, passages_per_text)
        path = self.out / "lengths" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(" ".join(map(str, lengths)) + "\n")
        return path


def _seeded(ctx: Context, seed: int):
    import torch

    return torch.Generator(device=ctx.device).manual_seed(seed)


def _worst(ours, ref, tol: float) -> tuple[float, float, int]:
    """(max |Δ|, max |Δ| / (tol · (1 + |ref|)), non-finite outputs): the kernels' elementwise bound."""
    diff = (ours.double() - ref).abs()
    not_finite = int((~ours.isfinite()).sum())
    ratio = (diff / (tol * (1 + ref.abs()))).max().item() if diff.numel() else 0.0
    return (diff.max().item() if diff.numel() else 0.0), (math.inf if not_finite else ratio), not_finite


# ---------------------------------------------------------------------------------------------- 1. kernels


def _attention_case(ctx: Context, lengths: list[int], head_dim: int, dtype: str, with_bias: bool, seed: int):
    import torch

    from minibert.kernels.attention import varlen_attention

    heads, tol = 2, KERNEL_TOLERANCES[dtype]
    gen = _seeded(ctx, seed)
    qkv = torch.randn(sum(lengths), 3, heads, head_dim, generator=gen, device=ctx.device)  # [N, 3, H, D]
    qkv[:, 0] *= 2.0  # peaked softmax: the running max moves between key tiles
    q, k, v = qkv.to(getattr(torch, dtype)).unbind(1)  # 3 × [N, H, D], strided views as in the forward
    offsets = [0, *itertools.accumulate(lengths)]
    cu_seqlens = torch.tensor(offsets, dtype=torch.int32, device=ctx.device)
    longest = max(lengths)
    rel_bias = torch.randn(heads, 2 * longest - 1, generator=gen, device=ctx.device) if with_bias else None
    out = torch.full(q.shape, float("nan"), dtype=q.dtype, device=ctx.device)
    varlen_attention(q, k, v, cu_seqlens, longest, rel_bias=rel_bias, out=out)
    scale, worst, max_err = head_dim**-0.5, 0.0, 0.0
    for start, end in itertools.pairwise(offsets):
        if start == end:
            continue
        qs, ks, vs = (t[start:end].double().transpose(0, 1) for t in (q, k, v))  # [H, L, D]
        scores = qs @ ks.transpose(1, 2) * scale  # [H, L, L]
        if rel_bias is not None:
            pos = torch.arange(end - start, device=ctx.device)
            scores = scores + rel_bias.double()[:, pos[None, :] - pos[:, None] + longest - 1]
        ref = (scores.softmax(-1) @ vs).transpose(0, 1)  # [L, H, D]
        err = (out[start:end].double() - ref).abs().max().item()
        max_err = max(max_err, err)
        worst = max(worst, err / (tol * ref.abs().max().item()))  # NaN makes `worst` NaN: caught below
    not_finite = int((~out.isfinite()).sum())
    return max_err, (math.inf if not_finite or math.isnan(worst) else worst), not_finite


def _pooling_case(ctx: Context, lengths: list[int], width: int, dtype: str, mode: str, normalize: bool, seed: int):
    import torch

    from minibert.kernels.pooling import cls_pool, mean_pool

    hidden = torch.randn(sum(lengths), width, generator=_seeded(ctx, seed), device=ctx.device).to(getattr(torch, dtype))
    offsets = [0, *itertools.accumulate(lengths)]
    cu_seqlens = torch.tensor(offsets, dtype=torch.int32, device=ctx.device)
    out = torch.full((len(lengths), width), float("nan"), device=ctx.device)
    (mean_pool if mode == "mean" else cls_pool)(hidden, cu_seqlens, normalize=normalize, out=out)
    h = hidden.double()
    rows = [h[s:e].sum(0) / max(e - s, 1e-9) if mode == "mean" else h[s] for s, e in itertools.pairwise(offsets)]
    ref = torch.stack(rows)  # [B, C]
    if normalize:
        ref = torch.nn.functional.normalize(ref, dim=1, eps=1e-12)
    return _worst(out, ref, KERNEL_TOLERANCES[dtype])


def _layer_norm_case(ctx: Context, rows: list[int], width: int, dtype: str, variant: str, seed: int):
    import torch

    from minibert.kernels.layernorm import layer_norm

    worst = (0.0, 0.0, 0)
    for n in rows:
        gen = _seeded(ctx, seed + n)
        x, residual = (torch.randn(n, width, generator=gen, device=ctx.device) for _ in range(2))  # [N, C]
        input_bias, weight, bias = (torch.randn(width, generator=gen, device=ctx.device) for _ in range(3))  # [C]
        x, residual, input_bias, weight, bias = (
            t.to(getattr(torch, dtype)) for t in (x, residual, input_bias, 1 + 0.5 * weight, bias)
        )
        v = x.double() + (0 if variant == "no-residual-no-bias" else input_bias.double() + residual.double())
        ref = torch.nn.functional.layer_norm(v, (width,), weight.double(), bias.double(), 1e-12)
        extra = {} if variant == "no-residual-no-bias" else dict(residual=residual, input_bias=input_bias)
        out = x if variant == "in-place" else torch.full_like(x, float("nan"))
        layer_norm(x, weight, bias, eps=1e-12, out=out, **extra)
        worst = max(worst, _worst(out, ref, KERNEL_TOLERANCES[dtype]), key=lambda w: w[1])
    return worst


def _gelu_case(ctx: Context, rows: list[int], width: int, dtype: str, seed: int):
    import torch

    from minibert.kernels.gelu import bias_gelu_

    worst = (0.0, 0.0, 0)
    for n in rows:
        gen = _seeded(ctx, seed + n)
        x = (2 * torch.randn(n, width, generator=gen, device=ctx.device)).to(getattr(torch, dtype))  # [N, F]
        bias = torch.randn(width, generator=gen, device=ctx.device).to(x.dtype)  # [F]
        v = x.double() + bias.double()
        ref = 0.5 * v * (1 + torch.erf(v / math.sqrt(2)))
        out = torch.full_like(x, float("nan"))
        bias_gelu_(x, bias, out=out)
        worst = max(worst, _worst(out, ref, KERNEL_TOLERANCES[dtype]), key=lambda w: w[1])
    return worst


def kernel_cases(ctx: Context) -> list[tuple[str, str, str, Callable[[], tuple[float, float, int]]]]:
    """(kernel, case, dtype, check) for every kernel, interleaved so that a short budget still covers all four."""
    if ctx.smoke:
        lengths, head_dims, pool_widths, rows = [1, 7, 33], [32], [37], [1, 7]
        norm_widths, gelu_widths = [37, 384], [37, 384]
    else:  # the interpreter tests' awkward shapes (minibert.testing.tables), and on the GPU more rows of each
        lengths, head_dims, pool_widths = AWKWARD_LENGTHS, HEAD_DIMS[:2], POOLING_WIDTHS
        rows = [1, 7, 65, 1000]
        norm_widths = sorted(ROWS_BY_WIDTH, key=lambda width: width not in (384, 768))  # hidden sizes first
        gelu_widths = sorted(ROWS_BY_WIDTH, key=lambda width: width < 1536)  # FFN sizes first
    seeds = itertools.count(1)
    attention, pooling, norm, gelu = [], [], [], []
    for head_dim, dtype, bias in itertools.product(head_dims, DTYPES, (True, False)):
        label = f"lengths {lengths}, H 2, D {head_dim}, {'rel bias' if bias else 'no bias'}"
        a = (lengths, head_dim, dtype, bias, next(seeds))
        attention.append(("attention", label, dtype, lambda a=a: _attention_case(ctx, *a)))
    for width, dtype, mode, normalize in itertools.product(pool_widths, DTYPES, ("mean", "cls"), (False, True)):
        segments = [*lengths[:3], 0, *lengths[3:]] if mode == "mean" else lengths  # an empty one pools to zeros
        label = f"{mode}{' + normalize' if normalize else ''}, C {width}, lengths {segments}"
        a = (segments, width, dtype, mode, normalize, next(seeds))
        pooling.append(("pooling", label, dtype, lambda a=a: _pooling_case(ctx, *a)))
    for width, dtype in itertools.product(norm_widths, DTYPES):
        for variant in ("residual + bias", *(("in-place", "no-residual-no-bias") if width == norm_widths[0] else ())):
            a = (rows, width, dtype, variant, next(seeds))
            label = f"{variant}, C {width}, rows {rows}"
            norm.append(("layer_norm", label, dtype, lambda a=a: _layer_norm_case(ctx, *a)))
    for width, dtype in itertools.product(gelu_widths, DTYPES):
        a = (rows, width, dtype, next(seeds))
        gelu.append(("gelu", f"bias + GELU, F {width}, rows {rows}", dtype, lambda a=a: _gelu_case(ctx, *a)))
    if not ctx.smoke:  # the other head dims the launcher takes, in one dtype (each (D, dtype) is a compile)
        for head_dim in HEAD_DIMS[2:]:
            a = (lengths, head_dim, "float16", True, next(seeds))
            label = f"lengths {lengths}, H 2, D {head_dim}, rel bias"
            attention.append(("attention", label, "float16", lambda a=a: _attention_case(ctx, *a)))
    interleaved = itertools.zip_longest(attention, pooling, norm, gelu)
    return [case for group in interleaved for case in group if case is not None]


def section_kernels(ctx: Context, section: Section) -> None:
    cases = kernel_cases(ctx)
    section.notes.append(f"{len(cases)} cases planned")
    for done, (kernel, label, dtype, check) in enumerate(cases, start=1):
        max_err, ratio, not_finite = check()
        ok = not_finite == 0 and ratio <= 1.0
        row = dict(
            kernel=kernel,
            case=label,
            dtype=dtype,
            max_abs_err=f"{max_err:.3g}",
            worst_err_over_bound=f"{ratio:.3g}",
            not_finite=not_finite,
            status="ok" if ok else "FAIL",
        )
        append_csv(ctx.out / "kernels.csv", KERNEL_COLUMNS, [row])
        section.notes[-1] = f"{done} of {len(cases)} cases run"
        if not ok:
            section.fail(f"{kernel} {dtype} {label}: max |Δ| {max_err:.3g}, {ratio:.3g} × the bound, {not_finite} NaN")


# ---------------------------------------------------------------------------------------------- 2. forward


def forward_texts(ctx: Context) -> list[str]:
    """A ragged batch: MS MARCO passages, 4-passage documents (past max_seq_length), and odd texts."""
    n_passages, n_docs = (3, 1) if ctx.smoke else (40, 6)
    p = ctx.passages
    documents = [" ".join(p[i : i + 4]) for i in range(n_passages, n_passages + 4 * n_docs, 4)]
    odd = [
        "",
        "short",
        "Ünïcödé, 中文 and emoji 🙂 in one line",
        "<pad> literal special tokens <s> in the text </s> [CLS] [SEP] [MASK]",
        "word " * 600,  # past 512 tokens
    ]
    return [*p[:n_passages], *documents, *odd]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _with_pooling(model_dir: Path, mode: str, width: int) -> Path:
    """A sibling directory with the same files (hard links) and another pooling mode."""
    dest = model_dir.with_name(f"{model_dir.name}-{mode}")
    if not dest.exists():
        shutil.copytree(model_dir, dest, copy_function=_link_or_copy)
        config = dest / "1_Pooling" / "config.json"
        config.unlink()  # a hard link to the original's: replace it, do not write through it
        config.write_text(json.dumps(legacy_pooling(mode, width)))
    return dest


def _tf32_off() -> None:
    """fp32 matmuls in full fp32 on the GPU: the 1e-5 bounds need it (TF32 keeps 10 mantissa bits)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _parity_bound(
    reference, dtype: str, expected, fp32_atol: float, outputs: Callable[[object], object]
) -> tuple[float, float | None]:
    """(bound on max |Δ| to the reference's fp32 `expected`, the reference's own error or None) for minibert in
    `dtype`: `fp32_atol` in float32; in fp16 / bf16 HALF_FACTOR × the error of the reference itself in that dtype
    (a copy cast to it, run by `outputs(copy)` on the same inputs) — flash-attention's rule."""
    import numpy as np
    import torch

    if dtype == "float32":
        return fp32_atol, None
    half = copy.deepcopy(reference).to(getattr(torch, dtype))
    own = float(np.abs(np.asarray(outputs(half), dtype=np.float32) - expected).max())
    return HALF_FACTOR * own, own


def section_forward(ctx: Context, section: Section) -> None:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer as Reference

    import minibert

    _tf32_off()
    texts = forward_texts(ctx)
    batch_size, max_seq_length = (16, 32) if ctx.smoke else (16, 256)  # smoke: one batch (the interpreter is slow)
    specs = ctx.manifest["models"]["smoke" if ctx.smoke else "real"]
    smoke_modes = {"bert": "mean", "distilbert": "cls", "mpnet": "mean"}  # smoke: one mode each, both kernels
    base = ctx.models
    for seed, spec in enumerate(specs, start=1):
        shutil.rmtree(base / spec["name"], ignore_errors=True)
        model_dir = build_random_model(
            base / spec["name"],
            spec["type"],
            spec["config"],
            ctx.assets / "tokenizers" / spec["tokenizer"],
            pooling=legacy_pooling("mean", spec["width"]),
            normalize=True,
            max_seq_length=max_seq_length,
            seed=seed,
            noise=True,
        )
        for mode in (smoke_modes[spec["type"]],) if ctx.smoke else ("mean", "cls"):
            directory = model_dir if mode == "mean" else _with_pooling(model_dir, mode, spec["width"])
            reference = Reference(str(directory), device=str(ctx.device))
            expected = np.asarray(reference.encode(texts, batch_size=batch_size), dtype=np.float32)  # [n, C]
            for dtype in DTYPES:
                ours = minibert.SentenceTransformer(directory, device=str(ctx.device), dtype=dtype, backend="triton")
                error = float(np.abs(ours.encode(texts, batch_size=batch_size) - expected).max())
                bound, own = _parity_bound(
                    reference, dtype, expected, EMBEDDING_ATOL, lambda half: half.encode(texts, batch_size=batch_size)
                )
                ok = error <= bound
                row = dict(
                    model=spec["name"],
                    arch=spec["type"],
                    pooling=mode,
                    dtype=dtype,
                    texts=len(texts),
                    max_abs_err=f"{error:.3g}",
                    bound=f"{bound:.3g}",
                    reference_own_err="" if own is None else f"{own:.3g}",
                    status="ok" if ok else "FAIL",
                )
                append_csv(ctx.out / "forward.csv", FORWARD_COLUMNS, [row])
                print(f"  {spec['name']} {mode} {dtype}: max |Δ| {error:.3g} (bound {bound:.3g})", flush=True)
                if not ok:
                    section.fail(f"forward {spec['name']} {mode} {dtype}: max |Δ| {error:.3g} > {bound:.3g}")
                del ours
            del reference
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
        shutil.rmtree(base / spec["name"], ignore_errors=True)  # free the disk as we go
        shutil.rmtree(base / f"{spec['name']}-cls", ignore_errors=True)


# ---------------------------------------------------------------------------------------------- 3. cross_encoder


def rerank_lists(ctx: Context, queries: int, candidates: int) -> list[tuple[str, list[str]]]:
    """Reranking lists: query j — the first words of a passage past all the candidates (queries_from_passages) — with
    the `candidates` passages from j · candidates on."""
    p = ctx.passages
    texts = queries_from_passages(p[queries * candidates :], queries)
    return [(query, p[j * candidates : (j + 1) * candidates]) for j, query in enumerate(texts)]


def cross_encoder_lists(ctx: Context) -> list[tuple[str, list[str]]]:
    """The parity check's lists: reranking lists, the first one also with a document past max_length (12 passages:
    truncated on the passage side) and an empty passage, and one query past max_length (truncated on its side)."""
    n_queries, candidates = (2, 3) if ctx.smoke else (8, 16)
    lists = rerank_lists(ctx, n_queries, candidates)
    p = ctx.passages
    lists[0][1].extend([" ".join(p[:12]), ""])
    lists.append((" ".join(p[12:24]), [p[0], "short"]))
    return lists


def _pairs(lists: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    return [(query, document) for query, documents in lists for document in documents]


def _same_rankings(ours, theirs, lists: list[tuple[str, list[str]]]) -> int:
    """How many of the lists the two one-label score arrays (in _pairs order) sort the same way."""
    import numpy as np

    offsets = [0, *itertools.accumulate(len(documents) for _, documents in lists)]
    return sum(
        np.array_equal(np.argsort(-ours[start:end], kind="stable"), np.argsort(-theirs[start:end], kind="stable"))
        for start, end in itertools.pairwise(offsets)
    )


def _cross_encoder_parity(
    ctx: Context, section: Section, spec: dict, model_dir: Path, lists: list[tuple[str, list[str]]], batch_size: int
) -> None:
    """minibert.CrossEncoder (Triton backend, each dtype) vs sentence-transformers' CrossEncoder (fp32) on the pairs
    of `lists`: max |Δscore| within _parity_bound, and in fp32 the same ranking of every list (one-label models)."""
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder as Reference

    import minibert

    pairs = _pairs(lists)
    reference = Reference(str(model_dir), device=str(ctx.device))
    expected = np.asarray(reference.predict(pairs, batch_size=batch_size), dtype=np.float32)  # [n] or [n, labels]
    for dtype in DTYPES:
        ours = minibert.CrossEncoder(model_dir, device=str(ctx.device), dtype=dtype, backend="triton")
        scores = ours.predict(pairs, batch_size=batch_size)
        error = float(np.abs(scores - expected).max())
        bound, own = _parity_bound(
            reference, dtype, expected, SCORE_ATOL, lambda half: half.predict(pairs, batch_size=batch_size)
        )
        same = _same_rankings(scores, expected, lists) if spec["labels"] == 1 else None
        ranked = same is None or same == len(lists) or dtype != "float32"  # fp16 / bf16 may swap near-ties
        ok = error <= bound and ranked
        row = dict(
            check="parity",
            model=spec["name"],
            arch=spec["type"],
            labels=spec["labels"],
            contender="minibert triton",
            dtype=dtype,
            pairs=len(pairs),
            batch_size=batch_size,
            max_abs_err=f"{error:.3g}",
            bound=f"{bound:.3g}",
            reference_own_err="" if own is None else f"{own:.3g}",
            rankings_same="" if same is None else f"{same}/{len(lists)}",
            status="ok" if ok else "FAIL",
        )
        append_csv(ctx.out / "cross_encoder.csv", CROSS_ENCODER_COLUMNS, [row])
        rankings = "" if same is None else f", {same} of {len(lists)} rankings the same"
        print(f"  {spec['name']} {spec['labels']} label(s) {dtype}: max |Δ| {error:.3g} (bound {bound:.3g}){rankings}")
        if not ok:
            section.fail(
                f"cross_encoder {spec['name']} {dtype}: max |Δscore| {error:.3g} (bound {bound:.3g}){rankings}"
            )
        del ours
    del reference
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()


def _cross_encoder_speed(ctx: Context, spec: dict, model_dir: Path) -> None:
    """pairs/s of minibert (fp16, bf16) vs sentence-transformers fp16 on the pairs of reranking lists, predict with
    batch 32, the contenders alternating round by round (after one warm-up batch each); then the latency of ranking
    one query's candidates (rank(), batch 32), the contenders taking turns query by query."""
    import torch
    from sentence_transformers import CrossEncoder as Reference

    import minibert

    n_queries, candidates, rounds, timed_queries = (2, 4, 1, 1) if ctx.smoke else (10, 100, 3, 8)
    lists = rerank_lists(ctx, n_queries, candidates)
    pairs = _pairs(lists)
    synchronize = None if ctx.smoke else torch.cuda.synchronize
    contenders = {("sentence-transformers", "float16"): Reference(str(model_dir), device=str(ctx.device)).half()}
    for dtype in ("float16", "bfloat16"):
        ours = minibert.CrossEncoder(model_dir, device=str(ctx.device), dtype=dtype, backend="triton")
        contenders["minibert triton", dtype] = ours
    for model in contenders.values():  # warm-up: compilation, autotuning, allocator
        model.predict(pairs[:RERANK_BATCH_SIZE], batch_size=RERANK_BATCH_SIZE)
    rates: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
    for _ in range(rounds):
        for key, model in contenders.items():
            predict = functools.partial(model.predict, pairs, batch_size=RERANK_BATCH_SIZE)
            rates[key].append(len(pairs) / wall_seconds(predict, synchronize))
    latencies: dict[tuple[str, str], list[float]] = {key: [] for key in contenders}
    for query, documents in lists[:timed_queries]:
        for key, model in contenders.items():
            rank = functools.partial(model.rank, query, documents, batch_size=RERANK_BATCH_SIZE)
            latencies[key].append(1e3 * wall_seconds(rank, synchronize))
    rows = []
    for (contender, dtype), r in rates.items():
        ms = latencies[contender, dtype]
        rows.append(
            dict(
                check="speed",
                model=spec["name"],
                arch=spec["type"],
                labels=spec["labels"],
                contender=contender,
                dtype=dtype,
                pairs=len(pairs),
                batch_size=RERANK_BATCH_SIZE,
                pairs_per_s=f"{statistics.median(r):.1f}",
                pairs_per_s_min=f"{min(r):.1f}",
                pairs_per_s_max=f"{max(r):.1f}",
                rerank_candidates=candidates,
                rerank_ms_p50=f"{statistics.median(ms):.2f}",
                rerank_ms_max=f"{max(ms):.2f}",
            )
        )
        print(f"  {contender} {dtype}: {statistics.median(r):.1f} pairs/s, rerank p50 {statistics.median(ms):.1f} ms")
    append_csv(ctx.out / "cross_encoder.csv", CROSS_ENCODER_COLUMNS, rows)


def section_cross_encoder(ctx: Context, section: Section) -> None:
    specs = ctx.manifest.get("cross_encoders")
    if specs is None:
        section.fail(f"{ctx.assets / MANIFEST} predates the cross_encoder section: run --prepare again")
        return
    specs = specs["smoke" if ctx.smoke else "real"]
    _tf32_off()
    # smoke: two batches (several on the GPU), truncated to 32 tokens (the interpreter is slow); the GPU: the
    # published models' 512
    batch_size, max_length = (8, 32) if ctx.smoke else (RERANK_BATCH_SIZE, CROSS_ENCODER_MAX_LENGTH)
    lists = cross_encoder_lists(ctx)
    built = []
    for seed, spec in enumerate(specs, start=1):
        directory = ctx.models / f"cross-{spec['name']}-{spec['labels']}"
        shutil.rmtree(directory, ignore_errors=True)
        build_random_cross_encoder(
            directory,
            spec["type"],
            spec["config"],
            ctx.assets / "tokenizers" / spec["tokenizer"],
            seed=seed,
            num_labels=spec["labels"],
            max_length=max_length,
        )
        built.append(directory)
        _cross_encoder_parity(ctx, section, spec, directory, lists, batch_size)
        if seed > 1:
            shutil.rmtree(directory, ignore_errors=True)  # free the disk as we go; the first one is timed below
    _cross_encoder_speed(ctx, specs[0], built[0])
    shutil.rmtree(built[0], ignore_errors=True)


# ---------------------------------------------------------------------------------------------- 4.–7. benchmarks


class ScriptFailed(Exception):
    pass


@contextlib.contextmanager
def _as_script(name: str, argv: list[str], log: Path) -> Iterator[None]:
    """sys.argv as if `python benchmarks/<name>.py argv` ran (the scripts record their command line), stdout to log."""
    saved = sys.argv
    sys.argv = [f"benchmarks/{name}.py", *argv]
    try:
        with log.open("a") as f, contextlib.redirect_stdout(f):
            yield
    finally:
        sys.argv = saved


def call_script(ctx: Context, name: str, argv: list[str]) -> None:
    """benchmarks/<name>.py's main(argv), its table to <out>/<section>.log; its own parity check's sys.exit (and any
    other exit with a message) becomes ScriptFailed."""
    module = importlib.import_module(name)
    argv = [*argv, "--smoke"] if ctx.smoke else argv
    try:
        with _as_script(name, argv, ctx.out / f"{name.removeprefix('bench_')}.log"):
            module.main(argv)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise ScriptFailed(f"{name} {' '.join(argv)}: {exc.code}") from None


def section_attention(ctx: Context, section: Section) -> None:
    plan = [(48, 2)] if ctx.smoke else [(128, 1), (256, 2), (512, 4)]  # (max tokens, passages per text)
    for max_len, per_text in plan:
        lengths = ctx.lengths_file(f"msmarco-x{per_text}-max{max_len}", 128, max_len, per_text)
        argv = ["--lengths-file", str(lengths), "--batch-size", "128", "--fixed-lengths", "--rounds", "3"]
        try:
            call_script(ctx, "bench_attention", [*argv, "--csv", str(ctx.out / "attention.csv")])
        except ScriptFailed as exc:
            section.fail(str(exc))


def section_pooling(ctx: Context, section: Section) -> None:
    lengths = ctx.lengths_file("msmarco-x1-max256", 1024, 256)
    argv = ["--lengths-file", str(lengths), "--rounds", "3", "--csv", str(ctx.out / "pooling.csv")]
    if ctx.smoke:
        argv += ["--dtypes", "bfloat16"]  # one dtype: the code path is the same
    try:
        call_script(ctx, "bench_pooling", argv)
    except ScriptFailed as exc:
        section.fail(str(exc))


def section_layernorm_gelu(ctx: Context, section: Section) -> None:
    """GB/s of the two kernels vs the torch expressions they replace, bytes counted as the minimum traffic:
    LayerNorm reads x and the residual [N, C] and three [C] vectors (input bias, γ, β) and writes [N, C]:
    (3·N·C + 3·C) · itemsize; GELU in place reads and writes [N, F] and reads the bias: (2·N·F + F) · itemsize.
    Each contender's result is first compared with a float64 reference; minibert's must be within the kernel bound."""
    lengths = ctx.lengths_file("msmarco-x1-max256-b256", 256, 256).read_text().split()
    rows = 40 if ctx.smoke else sum(map(int, lengths))  # the tokens of one batch of 256 passages
    widths, rounds = ((64,), 1) if ctx.smoke else ((384, 768), 3)
    copy_gbs = _copy_bandwidth_gbs(ctx, (1 << 22) if ctx.smoke else (1 << 28))  # 16 MiB / 1 GiB of fp32
    for width, dtype in itertools.product(widths, ("float16", "bfloat16", "float32")):
        _bench_layernorm_gelu(ctx, section, rows, width, dtype, rounds, copy_gbs)


def _copy_bandwidth_gbs(ctx: Context, numel: int) -> float:
    """GB/s of dst.copy_(src) for float32 buffers of `numel` elements, counting read + write bytes."""
    import torch

    src = torch.randn(numel, device=ctx.device)
    dst = torch.empty_like(src)
    return 2 * numel * 4 / median_ms(lambda: dst.copy_(src)) / 1e6


def _bench_layernorm_gelu(
    ctx: Context, section: Section, rows: int, width: int, dtype_name: str, rounds: int, copy_gbs: float
) -> None:
    import torch
    import torch.nn.functional as F

    from minibert.kernels.gelu import bias_gelu_
    from minibert.kernels.layernorm import layer_norm

    gen, dtype = _seeded(ctx, width), getattr(torch, dtype_name)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, device=ctx.device).to(dtype)

    x, residual, out = randn(rows, width), randn(rows, width), randn(rows, width)  # [N, C]
    input_bias, weight, beta = randn(width), 1 + 0.5 * randn(width), randn(width)  # [C]
    ffn, ffn_bias = 2 * randn(rows, 4 * width), randn(4 * width)  # [N, F], [F]
    v = x.double() + input_bias.double() + residual.double()
    u = ffn.double() + ffn_bias.double()
    item = x.element_size()
    ops = {  # op: (width, bytes, minibert, torch, float64 reference)
        "layernorm": (
            width,
            (3 * rows * width + 3 * width) * item,
            lambda: layer_norm(x, weight, beta, eps=1e-12, residual=residual, input_bias=input_bias, out=out),
            lambda: F.layer_norm(x + input_bias + residual, (width,), weight, beta, 1e-12),
            F.layer_norm(v, (width,), weight.double(), beta.double(), 1e-12),
        ),
        "bias_gelu": (
            4 * width,
            (2 * rows * 4 * width + 4 * width) * item,
            lambda: bias_gelu_(ffn, ffn_bias),  # in place: the values drift over the repeats, the speed does not
            lambda: F.gelu(ffn + ffn_bias),
            0.5 * u * (1 + torch.erf(u / math.sqrt(2))),
        ),
    }
    date = datetime.date.today().isoformat()
    for op, (op_width, n_bytes, ours, theirs, reference) in ops.items():
        errors = {}
        for name, fn in (("minibert", ours), ("torch", theirs)):
            before = ffn.clone()
            errors[name] = _worst(fn(), reference, KERNEL_TOLERANCES[dtype_name])
            ffn.copy_(before)  # undo the in-place GELU before the next contender's check
        if not errors["minibert"][1] <= 1:
            section.fail(f"{op} {dtype_name} width {op_width}: max |Δ| {errors['minibert'][0]:.3g} over the bound")
        times: dict[str, list[float]] = {"minibert": [], "torch": []}
        for _ in range(rounds):  # alternate: minibert, torch, minibert, torch, …
            times["minibert"].append(median_ms(ours))
            times["torch"].append(median_ms(theirs))
        table = []
        for name, ms in times.items():
            median = statistics.median(ms)
            table.append(
                dict(
                    date=date,
                    device=ctx.device_name,
                    op=op,
                    rows=rows,
                    width=op_width,
                    dtype=dtype_name,
                    contender=name,
                    ms_median=f"{median:.5f}",
                    ms_min=f"{min(ms):.5f}",
                    ms_max=f"{max(ms):.5f}",
                    gb_per_s=f"{n_bytes / median / 1e6:.4g}",
                    copy_gb_per_s=f"{copy_gbs:.4g}",
                    max_abs_err=f"{errors[name][0]:.3g}",
                )
            )
        append_csv(ctx.out / "layernorm_gelu.csv", NORM_ACT_COLUMNS, table)


def section_e2e(ctx: Context, section: Section) -> None:
    import bench_e2e
    import sentence_transformers
    import torch
    import triton

    shapes = bench_e2e.SMOKE_SHAPE if ctx.smoke else bench_e2e.SHAPES
    batch_sizes, limit, rounds = ((2, 4), 4, 1) if ctx.smoke else ((32, 256), 2048, 3)
    texts = ctx.passages[:limit]
    peak = None if ctx.smoke else bench_e2e.bf16_matmul_tflops(torch)
    if peak:
        section.notes.append(f"measured bf16 matmul rate {peak:.0f} TFLOP/s")
    header = {
        "date": datetime.date.today().isoformat(),
        "gpu": ctx.device_name,
        "versions": f"torch {torch.__version__}, triton {triton.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}",
    }
    log = ctx.out / "e2e.log"
    for shape_name, shape in shapes.items():
        model_dir = bench_e2e.build_model(ctx.models, shape, ctx.bert_tokenizer)
        for batch_size in batch_sizes:
            with log.open("a") as f, contextlib.redirect_stdout(f):
                rows = bench_e2e.run_shape(
                    shape_name,
                    model_dir,
                    shape,
                    texts,
                    batch_size=batch_size,
                    rounds=rounds,
                    device=ctx.device,
                    smoke=ctx.smoke,
                    peak=peak,
                    header=header,
                )
            append_csv(ctx.out / "e2e.csv", bench_e2e.CSV_FIELDS, rows)
        shutil.rmtree(model_dir, ignore_errors=True)


SECTIONS: dict[str, Callable[[Context, Section], None]] = {
    "kernels": section_kernels,
    "forward": section_forward,
    "cross_encoder": section_cross_encoder,
    "attention": section_attention,
    "pooling": section_pooling,
    "layernorm_gelu": section_layernorm_gelu,
    "e2e": section_e2e,
}
OUTPUTS = [
    "kernels.csv",
    "forward.csv",
    "cross_encoder.csv",
    "attention.csv",
    "pooling.csv",
    "layernorm_gelu.csv",
    "e2e.csv",
    "summary.md",
]


# ---------------------------------------------------------------------------------------------- summary


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    if not rows:
        return ["(no rows)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _environment(ctx: Context) -> str:
    import numpy
    import sentence_transformers
    import torch
    import transformers
    import triton

    cuda = f", CUDA {torch.version.cuda}" if ctx.device.type == "cuda" else ""
    return (
        f"Python {platform.python_version()}, torch {torch.__version__}{cuda}, triton {triton.__version__}, "
        f"transformers {transformers.__version__}, sentence-transformers {sentence_transformers.__version__}, "
        f"numpy {numpy.__version__}"
    )


def summary(ctx: Context, sections: list[Section], wall_s: float) -> str:
    failed = [s for s in sections if s.failures]
    incomplete = [s for s in sections if s.status not in ("ok", "FAILED")]
    mode = "smoke: Triton interpreter on CPU, tiny shapes — times are not speeds" if ctx.smoke else "GPU"
    lines = [
        f"# minibert gpu-check — {ctx.device_name}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; {mode}; {_environment(ctx)}.",
        f"Command: `{' '.join(['python', 'benchmarks/gpu_check.py', *sys.argv[1:]])}`; wall time {wall_s:.0f} s.",
        "",
        f"**Correctness: {'FAIL' if failed else 'PASS'}**"
        + (f" — incomplete: {', '.join(s.name for s in incomplete)} (see Sections)" if incomplete else ""),
        "",
        "## Sections",
        "",
    ]
    lines += _table(
        ["section", "status", "wall s", "budget s", "notes"],
        [[s.name, s.status, f"{s.wall_s:.1f}", s.budget_s or "—", "; ".join(s.notes)] for s in sections],
    )
    failures = [f for s in sections for f in s.failures]
    if failures:
        lines += ["", "### Failures", "", *[f"- {f}" for f in failures[:20]]]
        if len(failures) > 20:
            lines.append(f"- … and {len(failures) - 20} more (see the CSVs)")

    kernels = _read(ctx.out / "kernels.csv")
    lines += ["", "## 1. Kernels vs float64 (minibert.testing.tables bounds; worst = max |Δ| / bound, ≤ 1 passes)", ""]
    by_kernel = itertools.groupby(sorted(kernels, key=lambda r: r["kernel"]), key=lambda r: r["kernel"])
    lines += _table(
        ["kernel", "cases", "failed", "worst err / bound", "largest max |Δ|"],
        [
            [
                name,
                len(rows := list(group)),
                sum(r["status"] != "ok" for r in rows),
                f"{max(float(r['worst_err_over_bound']) for r in rows):.3g}",
                f"{max(float(r['max_abs_err']) for r in rows):.3g}",
            ]
            for name, group in by_kernel
        ],
    )

    forward = _read(ctx.out / "forward.csv")
    bounds = f"fp32 ≤ {EMBEDDING_ATOL}; fp16 / bf16 ≤ {HALF_FACTOR:g} × sentence-transformers' own error"
    lines += ["", f"## 2. Forward vs sentence-transformers ({bounds})", ""]
    columns = ("model", "pooling", "dtype", "max_abs_err", "bound", "reference_own_err", "status")
    lines += _table(
        ["model", "pooling", "dtype", "max abs err", "bound", "ST own err", "status"],
        [[r[k] for k in columns] for r in forward],
    )

    cross = _read(ctx.out / "cross_encoder.csv")
    bounds = f"fp32 ≤ {SCORE_ATOL}, same rankings; fp16 / bf16 ≤ {HALF_FACTOR:g} × sentence-transformers' own error"
    lines += ["", f"## 3. Cross-encoder scores vs sentence-transformers ({bounds})", ""]
    columns = ("model", "labels", "dtype", "pairs", "max_abs_err", "bound", "reference_own_err", "rankings_same")
    lines += _table(
        ["model", "labels", "dtype", "pairs", "max abs err", "bound", "ST own err", "rankings same", "status"],
        [[*(r[k] for k in columns), r["status"]] for r in cross if r["check"] == "parity"],
    )
    speed = [r for r in cross if r["check"] == "speed"]
    baseline = next((float(r["pairs_per_s"]) for r in speed if r["contender"] == "sentence-transformers"), None)
    lines += ["", f"Pairs/s (predict, batch {RERANK_BATCH_SIZE}, median of rounds); latency of one query's rank:", ""]
    lines += _table(
        ["model", "contender", "dtype", "pairs", "pairs/s", "vs ST fp16", "candidates", "rerank p50 ms", "max ms"],
        [
            [
                *(r[k] for k in ("model", "contender", "dtype", "pairs", "pairs_per_s")),
                f"{float(r['pairs_per_s']) / baseline:.2f}×" if baseline else "–",
                *(r[k] for k in ("rerank_candidates", "rerank_ms_p50", "rerank_ms_max")),
            ]
            for r in speed
        ],
    )

    attention = _read(ctx.out / "attention.csv")
    contenders = list(dict.fromkeys(r["contender"] for r in attention))
    groups: dict[tuple, dict[str, str]] = {}
    for r in attention:
        cell = r["tflops"] if r["status"] == "ok" else "n/a"
        groups.setdefault((r["config"], r["max_len"], r["heads"], r["head_dim"], r["dtype"]), {})[r["contender"]] = cell
    lines += ["", "## 4. Attention TFLOP/s (4 · Σ len² · H · D on real tokens; median of rounds)", ""]
    lines += _table(
        ["lengths", "max len", "H", "D", "dtype", *contenders],
        [[*key, *(cells.get(c, "") for c in contenders)] for key, cells in groups.items()],
    )
    unavailable = sorted({f"{r['contender']}: {r['status']}" for r in attention if r["status"] != "ok"})
    lines += [f"- {u}" for u in unavailable[:8]]

    pooling = _read(ctx.out / "pooling.csv")
    lines += ["", "## 5. Mean pooling GB/s (N·C·itemsize + B·C·4 bytes)", ""]
    lines += _table(
        ["N", "B", "C", "dtype", "normalize", "contender", "GB/s", "% of copy", "max |Δ|"],
        [
            [r[k] for k in ("n_tokens", "batch", "hidden_size", "dtype", "normalize", "contender", "gb_per_s")]
            + [r["pct_of_copy"], r["max_abs_err"]]
            for r in pooling
        ],
    )

    norm_act = _read(ctx.out / "layernorm_gelu.csv")
    lines += ["", "## 6. LayerNorm and GELU GB/s (bytes: see --help)", ""]
    pairs = itertools.groupby(norm_act, key=lambda r: (r["op"], r["rows"], r["width"], r["dtype"]))
    table = []
    for key, group in pairs:
        cells = {r["contender"]: r for r in group}
        ours, theirs = cells.get("minibert"), cells.get("torch")
        speedup = float(theirs["ms_median"]) / float(ours["ms_median"]) if ours and theirs else float("nan")
        copy_gbs = (ours or theirs)["copy_gb_per_s"]
        table.append([*key, ours and ours["gb_per_s"], theirs and theirs["gb_per_s"], f"{speedup:.2f}×", copy_gbs])
    lines += _table(["op", "rows", "width", "dtype", "minibert GB/s", "torch GB/s", "speed-up", "copy GB/s"], table)

    e2e = _read(ctx.out / "e2e.csv")
    lines += ["", "## 7. End to end docs/s (MFU vs the bf16 matmul rate measured in this run)", ""]
    lines += _table(
        ["model", "batch", "encoder", "docs/s", "MFU"],
        [[r["model"], r["batch_size"], r["encoder"], r["docs_per_s"], r["mfu"]] for r in e2e],
    )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_check.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prepare", action="store_true", help="fill --assets on this machine, then exit")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU under TRITON_INTERPRET=1")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS, help="default .cache/gpu-check")
    parser.add_argument("--out", type=Path, help="output directory (default $OUT, else .cache/gpu-check-out)")
    parser.add_argument(
        "--tokenizer-dir", type=Path, help="--prepare: all-MiniLM-L6-v2's directory (default: minibert's cache)"
    )
    parser.add_argument("--corpus", type=Path, help="--prepare: passages (default: minibert bench's corpus, MS MARCO)")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="default: all")
    parser.add_argument(
        "--budget", type=float, help=f"total seconds (default {TOTAL_BUDGET_S:.0f} on a GPU, no limit with --smoke)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.prepare:
        prepare(args.assets, args.tokenizer_dir, args.corpus)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the GPU machine has no network; the check downloads nothing
    manifest = load_manifest(args.assets)
    device, device_name = device_for(PROG, args.smoke)  # --smoke sets TRITON_INTERPRET=1 before triton loads

    from minibert.retrieval.corpus import read_corpus

    out = args.out or Path(os.environ.get("OUT") or DEFAULT_OUT)
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:  # a fresh report: the CSVs are appended to section by section
        (out / name).unlink(missing_ok=True)
    for log in out.glob("*.log"):
        log.unlink()
    passages = [p.embed_text for p in read_corpus(args.assets / manifest["corpus"])]
    budget = args.budget if args.budget is not None else (None if args.smoke else TOTAL_BUDGET_S)
    deadline = None if budget is None else started + budget
    print(f"{PROG}: {device_name}; output in {out}", flush=True)

    sections = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-models-") as models:
        ctx = Context(args.smoke, device, device_name, out, args.assets, manifest, passages, Path(models))
        for name in args.sections:
            section = Section(name, None if args.smoke else BUDGETS_S[name])
            sections.append(run_section(section, functools.partial(SECTIONS[name], ctx), deadline, out / "errors.log"))
    report = summary(ctx, sections, time.monotonic() - started)
    (out / "summary.md").write_text(report)
    print("\n" + report, flush=True)
    return 1 if any(s.failures for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
