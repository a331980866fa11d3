"""The fused varlen attention kernel (minibert.kernels.attention) in Triton's interpreter on CPU tensors.

Every case: fresh seeded random inputs, the output buffer poisoned with NaN before the call, every element
checked finite and compared with a float64 NumPy reference (softmax(q·kᵀ·scale + bias)·v per sequence and
head) computed from the same, already rounded, input values.

Bound (testing.tables.KERNEL_TOLERANCES): per sequence, max |Δ| ≤ tol · max |reference| over that sequence, with
tol = 1e-5 for fp32, 2e-3 for fp16, 1e-2 for bf16. Relative to the sequence's largest output, not
elementwise: every output row is a convex combination of v rows, so its rounding error scales with the
size of the values averaged, not with the output element, which can be an arbitrarily small result of
cancellation (an elementwise rtol would fail any correct implementation there). Normalizing per sequence
rather than per batch keeps long sequences, whose outputs are small averages, from hiding behind the
short ones whose outputs are single v rows.

What the interpreter runs and what it cannot show (see the kernel's module docstring): fp32 and fp16 run
exactly the GPU kernel's arithmetic (the interpreter's fp16 dot accumulates in fp32, like the tensor cores);
for bf16 the interpreter cannot tl.dot bf16 operands, so the kernel widens them to fp32 there (exact
products, fp32 sums: the tensor cores' arithmetic up to summation order) and its fp32→bf16 casts truncate
where the GPU rounds to nearest, so the interpreted bf16 error is up to ~2× the GPU's. The compiled GPU
code (tensor-core instructions, pipelining) needs a CUDA run: on a GPU machine,
``TRITON_INTERPRET=0 python -m pytest tests/kernels/test_attention.py`` runs these same tests on CUDA tensors.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np
import pytest
import torch

from minibert.errors import InputError, InputTypeError
from minibert.kernels.attention import varlen_attention
from minibert.testing import assert_close
from minibert.testing.tables import AWKWARD_LENGTHS, MEDIUM_LENGTHS
from tests.helpers import ROOT
from tests.kernels.helpers import DEVICE, DTYPE_TOL, check_bad_input, meta_like, skip_module_without_device, zeros

skip_module_without_device()

# Shape letters: N = packed tokens, B = sequences, H = heads, D = head dim, L = one sequence's length.


def offsets(lengths: list[int]) -> torch.Tensor:
    """cu_seqlens [B + 1] int32 for the given lengths."""
    return torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32, device=DEVICE)


def make_qkv(
    lengths: list[int], heads: int, head_dim: int, dtype: torch.dtype, seed: int, *, layout: str = "fused"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random q, k, v [N, H, D] in `dtype` as the model produces them: views of one fused projection.

    layout "fused": slices of [N, 3, H, D] (BERT's fused QKV GEMM); "heads": slices of [N, H, 3, D];
    "separate": three contiguous tensors. q is scaled ×2 so the softmax is peaked enough for the running
    max to move between key tiles.
    """
    gen = torch.Generator().manual_seed(seed)
    n = sum(lengths)
    axis = {"fused": 1, "heads": 2, "separate": 0}[layout]
    shape = [n, heads, head_dim]
    qkv = torch.randn(*shape[:axis], 3, *shape[axis:], generator=gen)  # [3, N, H, D], [N, 3, H, D] or [N, H, 3, D]
    qkv.select(axis, 0).mul_(2.0)
    qkv = qkv.to(dtype).to(DEVICE)
    return qkv.select(axis, 0), qkv.select(axis, 1), qkv.select(axis, 2)


def make_bias(heads: int, width: int, seed: int) -> torch.Tensor:
    """A random relative-position bias table [H, W], float32."""
    return torch.randn(heads, width, generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def reference_attention(q, k, v, cu_seqlens, scale: float, rel_bias=None) -> np.ndarray:
    """float64 [N, H, D]: per sequence, softmax(q·kᵀ·scale + rel_bias[h, (k − q) + centre])·v."""
    q, k, v = (t.to(torch.float64).cpu().numpy() for t in (q, k, v))
    bias = None if rel_bias is None else rel_bias.to(torch.float64).cpu().numpy()
    context_layer = np.full(q.shape, np.nan)
    for start, end in itertools.pairwise(cu_seqlens.tolist()):
        if start == end:
            continue
        pos = np.arange(end - start)
        attention_scores = np.einsum("qhd,khd->hqk", q[start:end], k[start:end]) * scale  # [H, L, L]
        if bias is not None:
            centre = (bias.shape[1] - 1) // 2
            attention_scores = attention_scores + bias[:, pos[None, :] - pos[:, None] + centre]
        attention_scores -= attention_scores.max(axis=-1, keepdims=True)
        attention_probs = np.exp(attention_scores)
        attention_probs /= attention_probs.sum(axis=-1, keepdims=True)
        context_layer[start:end] = np.einsum("hqk,khd->qhd", attention_probs, v[start:end])
    return context_layer


def run_poisoned(q, k, v, cu_seqlens, max_seqlen, **kwargs) -> torch.Tensor:
    """varlen_attention into a NaN-filled [N, H, D] buffer (contiguous unless `out` is given poisoned)."""
    out = kwargs.pop("out", None)
    if out is None:
        out = torch.full(q.shape, float("nan"), dtype=q.dtype, device=q.device)
    else:
        out.fill_(float("nan"))
    result = varlen_attention(q, k, v, cu_seqlens, max_seqlen, out=out, **kwargs)
    assert result is out, "varlen_attention must return the out= buffer it was given"
    return result


def check_output(ours: torch.Tensor, ref: np.ndarray, cu_seqlens: torch.Tensor, tol: float, what: str) -> None:
    """Every element finite, and per sequence max |Δ| ≤ tol · max |ref| (see the module docstring)."""
    ours = ours.to(torch.float64).cpu().numpy()
    finite = np.isfinite(ours)
    if not finite.all():
        first = [tuple(int(i) for i in idx) for idx in np.argwhere(~finite)[:5]]
        pytest.fail(
            f"{what}: {int((~finite).sum())} of {ours.size} outputs not finite (never written?), first at {first}"
        )
    for b, (start, end) in enumerate(itertools.pairwise(cu_seqlens.tolist())):
        if start == end:
            continue
        ref_seq = ref[start:end]
        atol = tol * float(np.abs(ref_seq).max())
        assert_close(ours[start:end], ref_seq, atol=atol, rtol=0.0, what=f"{what}, sequence {b} (length {end - start})")


# ---------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
@pytest.mark.parametrize("head_dim", [32, 64])
@pytest.mark.parametrize("with_bias", [False, True], ids=["no-bias", "rel-bias"])
def test_packed_batch_matches_reference(dtype, tol, head_dim, with_bias):
    lengths = AWKWARD_LENGTHS
    heads, max_seqlen = 2, max(lengths)
    q, k, v = make_qkv(lengths, heads, head_dim, dtype, seed=head_dim + with_bias)
    cu = offsets(lengths)
    rel_bias = make_bias(heads, 2 * max_seqlen - 1, seed=7) if with_bias else None
    scale = 1.0 / head_dim**0.5

    ours = run_poisoned(q, k, v, cu, max_seqlen, rel_bias=rel_bias)

    assert ours.shape == q.shape and ours.dtype == dtype
    ref = reference_attention(q, k, v, cu, scale, rel_bias)
    check_output(ours, ref, cu, tol, f"{dtype} D={head_dim} bias={with_bias}")


@pytest.mark.parametrize(("block_m", "block_n"), [(16, 16), (32, 64), (64, 32), (64, 64), (128, 64), (16, 128)])
def test_block_sizes(block_m, block_n):
    lengths, heads, head_dim = MEDIUM_LENGTHS, 2, 32
    max_seqlen = max(lengths)
    q, k, v = make_qkv(lengths, heads, head_dim, torch.float32, seed=block_m * 1000 + block_n)
    cu = offsets(lengths)
    rel_bias = make_bias(heads, 2 * max_seqlen - 1, seed=3)

    ours = run_poisoned(q, k, v, cu, max_seqlen, rel_bias=rel_bias, block_m=block_m, block_n=block_n)

    ref = reference_attention(q, k, v, cu, head_dim**-0.5, rel_bias)
    check_output(ours, ref, cu, 1e-5, f"blocks {block_m}x{block_n}")


@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
@pytest.mark.parametrize("length", [1, 300])
def test_batch_of_one_sequence(dtype, tol, length):
    heads, head_dim = 3, 64
    q, k, v = make_qkv([length], heads, head_dim, dtype, seed=length)
    cu = offsets([length])
    rel_bias = make_bias(heads, 2 * length - 1, seed=5)

    ours = run_poisoned(q, k, v, cu, length, rel_bias=rel_bias)

    ref = reference_attention(q, k, v, cu, head_dim**-0.5, rel_bias)
    check_output(ours, ref, cu, tol, f"{dtype} single sequence of {length}")


@pytest.mark.parametrize("layout", ["fused", "heads", "separate"])
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL[:2])  # fp32, fp16
def test_strided_inputs_and_output(layout, dtype, tol):
    lengths, heads, head_dim = [5, 70, 33], 3, 32
    q, k, v = make_qkv(lengths, heads, head_dim, dtype, seed=11, layout=layout)
    assert q.is_contiguous() == (layout == "separate")  # strided views are the point of the test
    cu = offsets(lengths)
    # the output lands in a strided view too: heads interleaved with another [N, H, D] block
    buffer = torch.zeros(sum(lengths), heads, 2, head_dim, dtype=dtype, device=DEVICE)
    out = buffer[:, :, 1]

    ours = run_poisoned(q, k, v, cu, max(lengths), out=out, block_m=32, block_n=32)

    assert torch.equal(buffer[:, :, 0], torch.zeros_like(out)), "wrote outside the out= view"
    ref = reference_attention(q, k, v, cu, head_dim**-0.5)
    check_output(ours, ref, cu, tol, f"{layout} layout {dtype}")


@pytest.mark.filterwarnings("ignore:.*(NaN|invalid value).*:RuntimeWarning")  # the NaN sequences' own programs
def test_no_cross_sequence_reads():
    """NaN in every other sequence's q, k and v must not reach a sequence's output: no token is read across."""
    lengths, heads, head_dim = [37, 64, 1, 90, 20], 2, 32
    q, k, v = make_qkv(lengths, heads, head_dim, torch.float32, seed=13, layout="separate")
    cu = offsets(lengths)
    bounds = list(itertools.pairwise(cu.tolist()))
    for target, (start, end) in enumerate(bounds):
        q2, k2, v2 = (t.clone() for t in (q, k, v))
        for other, (s, e) in enumerate(bounds):
            if other != target:
                for t in (q2, k2, v2):
                    t[s:e] = float("nan")
        ours = run_poisoned(q2, k2, v2, cu, max(lengths), block_m=16, block_n=32)[start:end]
        ref = reference_attention(q[start:end], k[start:end], v[start:end], offsets([end - start]), head_dim**-0.5)
        check_output(ours, ref, offsets([end - start]), 1e-5, f"sequence {target} with NaN neighbours")


def test_empty_sequences_slack_max_seqlen_and_wide_bias():
    """Zero-length sequences, a max_seqlen above the longest length, and a bias table wider than 2·S − 1."""
    lengths, heads, head_dim = [0, 5, 0, 70, 3, 0], 2, 32
    max_seqlen = 200  # grid has 4 query tiles per sequence; most exit at once
    q, k, v = make_qkv(lengths, heads, head_dim, torch.float32, seed=17)
    cu = offsets(lengths)
    narrow = make_bias(heads, 2 * max_seqlen - 1, seed=19)
    wide = torch.zeros(heads, 2 * 512 - 1, device=DEVICE)  # a model-wide table, centre column 511
    wide[:, 511 - (max_seqlen - 1) : 511 + max_seqlen] = narrow
    wide[:, : 511 - (max_seqlen - 1)] = float("nan")  # offsets beyond ±(S − 1) must never be read
    wide[:, 511 + max_seqlen :] = float("nan")

    ref = reference_attention(q, k, v, cu, head_dim**-0.5, narrow)
    check_output(run_poisoned(q, k, v, cu, max_seqlen, rel_bias=narrow), ref, cu, 1e-5, "narrow bias")
    check_output(run_poisoned(q, k, v, cu, max_seqlen, rel_bias=wide), ref, cu, 1e-5, "wide bias")


def test_large_logits_and_custom_scale():
    """Scores past 88.7, where exp overflows fp32 without the running max, and a non-default scale.

    Kept near ±150: an fp32 softmax's error grows like |score|·2⁻²⁴ (measured: with scores up to ~380
    ours and torch's fp32 softmax both reach 1.2e-5 of the output), so larger scores would test fp32
    itself, not the kernel, against the fixed 1e-5 bound.
    """
    lengths, heads, head_dim = [40, 129], 2, 64
    q, k, v = make_qkv(lengths, heads, head_dim, torch.float32, seed=23)
    cu = offsets(lengths)
    big_q = q * 12.0  # q·kᵀ/√D up to ~±115
    rel_bias = 10.0 * make_bias(heads, 2 * 129 - 1, seed=29)

    ours = run_poisoned(big_q, k, v, cu, 129, rel_bias=rel_bias)
    check_output(ours, reference_attention(big_q, k, v, cu, head_dim**-0.5, rel_bias), cu, 1e-5, "large logits")

    ours = run_poisoned(q, k, v, cu, 129, scale=0.3, num_warps=8, num_stages=3)
    check_output(ours, reference_attention(q, k, v, cu, 0.3), cu, 1e-5, "scale 0.3")


def test_allocates_contiguous_output():
    lengths, heads, head_dim = [9, 20], 2, 16
    q, k, v = make_qkv(lengths, heads, head_dim, torch.float16, seed=31)
    cu = offsets(lengths)

    ours = varlen_attention(q, k, v, cu, 20)

    assert ours.is_contiguous() and ours.shape == q.shape and ours.dtype == torch.float16
    check_output(ours, reference_attention(q, k, v, cu, head_dim**-0.5), cu, 2e-3, "allocated output")


# ------------------------------------------------------------------------------------------ bad input

N, H, D = 10, 2, 32


def good_args() -> dict:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(N, H, D, generator=gen).to(DEVICE) for _ in range(3))
    return dict(q=q, k=k, v=v, cu_seqlens=cu([0, 4, 10]), max_seqlen=6)


def cu(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32, device=DEVICE)


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE)


BAD_INPUTS = {  # name: (change to the good arguments, exception type, message fragments)
    "q-not-a-tensor": (lambda a: a.update(q=a["q"].tolist()), InputTypeError, ["q must be a torch.Tensor", "list"]),
    "q-float64": (lambda a: a.update(q=a["q"].double()), InputError, ["q has dtype float64", "float16"]),
    "q-int": (lambda a: a.update(q=a["q"].int()), InputError, ["q has dtype int32"]),
    "mixed-dtypes": (lambda a: a.update(k=a["k"].half()), InputError, ["share one dtype", "float32", "float16"]),
    "all-on-meta": (
        lambda a: a.update(q=meta_like(a["q"]), k=meta_like(a["k"]), v=meta_like(a["v"])),
        InputError,
        ["q is on meta", "CUDA"],
    ),
    "k-on-other-device": (lambda a: a.update(k=meta_like(a["k"])), InputError, ["k is on meta", "other inputs are on"]),
    "cu_seqlens-on-other-device": (
        lambda a: a.update(cu_seqlens=meta_like(a["cu_seqlens"])),
        InputError,
        ["cu_seqlens is on meta"],
    ),
    "last-dim-strided": (
        lambda a: a.update(v=randn(N, D, H).transpose(1, 2)),
        InputError,
        ["v must be contiguous in its last dimension", ".contiguous()"],
    ),
    "shape-mismatch": (lambda a: a.update(k=a["k"][:-1]), InputError, ["same shape", "[10, 2, 32]", "[9, 2, 32]"]),
    "not-3d": (lambda a: a.update(q=a["q"].reshape(N, H * D)), InputError, ["q must have 3 dimensions"]),
    "head-dim-48": (
        lambda a: a.update(**{n: randn(N, H, 48) for n in "qkv"}),
        InputError,
        ["head dim 48", "power of two in 16..128"],
    ),
    "length-over-max_seqlen": (lambda a: a.update(max_seqlen=5), InputError, ["6 tokens", "max_seqlen=5"]),
    "max_seqlen-zero": (lambda a: a.update(max_seqlen=0), InputError, ["max_seqlen must be a positive int"]),
    "empty-batch": (
        lambda a: a.update(cu_seqlens=cu([0])),
        InputError,
        ["at least 2 offsets", "empty batch"],
    ),
    "no-tokens": (
        lambda a: a.update(**{n: randn(0, H, D) for n in "qkv"}, cu_seqlens=cu([0, 0])),
        InputError,
        ["N == 0"],
    ),
    "cu_seqlens-not-from-0": (
        lambda a: a.update(cu_seqlens=cu([1, 4, 10])),
        InputError,
        ["start at 0"],
    ),
    "cu_seqlens-short-of-N": (
        lambda a: a.update(cu_seqlens=cu([0, 4, 9])),
        InputError,
        ["end at the token count 10"],
    ),
    "cu_seqlens-decreasing": (
        lambda a: a.update(cu_seqlens=cu([0, 7, 4, 10])),
        InputError,
        ["non-decreasing"],
    ),
    "cu_seqlens-int64": (
        lambda a: a.update(cu_seqlens=a["cu_seqlens"].long()),
        InputError,
        ["cu_seqlens has dtype int64", "int32"],
    ),
    "rel_bias-too-narrow": (
        lambda a: a.update(rel_bias=zeros(H, 9)),
        InputError,
        ["rel_bias must have shape", "[2, 2·max_seqlen − 1 = 11]", "[2, 9]"],
    ),
    "rel_bias-even-width": (lambda a: a.update(rel_bias=zeros(H, 12)), InputError, ["rel_bias must have shape"]),
    "rel_bias-wrong-heads": (lambda a: a.update(rel_bias=zeros(3, 11)), InputError, ["[3, 11]"]),
    "rel_bias-fp16": (
        lambda a: a.update(rel_bias=zeros(H, 11, dtype=torch.float16)),
        InputError,
        ["rel_bias has dtype float16"],
    ),
    "block_m-48": (lambda a: a.update(block_m=48), InputError, ["block_m must be a power of two", "48"]),
    "block_n-8": (lambda a: a.update(block_n=8), InputError, ["block_n must be a power of two", "16..256"]),
    "out-wrong-dtype": (
        lambda a: a.update(out=zeros(N, H, D, dtype=torch.float16)),
        InputError,
        ["out has dtype float16"],
    ),
    "out-wrong-shape": (lambda a: a.update(out=zeros(N, H, 2 * D)), InputError, ["out must have q's shape"]),
    "scale-not-a-number": (lambda a: a.update(scale="0.1"), InputTypeError, ["scale must be a float", "str"]),
    "scale-nan": (lambda a: a.update(scale=float("nan")), InputError, ["scale must be finite"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input(case):
    check_bad_input(varlen_attention, good_args(), *BAD_INPUTS[case], case=case)


def test_good_args_run():
    """The base of the bad-input cases is itself valid (so each case fails for its own reason)."""
    args = good_args()
    out = varlen_attention(**args)
    ref = reference_attention(args["q"], args["k"], args["v"], args["cu_seqlens"], D**-0.5)
    check_output(out, ref, args["cu_seqlens"], 1e-5, "good args")


def test_cpu_tensors_without_interpreter_are_rejected():
    """Without TRITON_INTERPRET the kernel is compiled for a GPU: CPU tensors get a clear error, not a crash."""
    code = (
        "import torch\n"
        "from minibert.kernels.attention import varlen_attention\n"
        "q = torch.randn(4, 2, 32)\n"
        "try:\n"
        "    varlen_attention(q, q, q, torch.tensor([0, 4], dtype=torch.int32), 4)\n"
        "except ValueError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "InputError q is on cpu" in done.stdout and "TRITON_INTERPRET=1" in done.stdout, done.stdout
