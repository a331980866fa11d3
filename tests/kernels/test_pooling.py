"""The pooling kernels (minibert.kernels.pooling) in Triton's interpreter on CPU tensors.

Every case: fresh seeded random inputs, the output buffer poisoned with NaN before the call, every element
compared with a float64 NumPy reference computed from the same (already rounded) input values. Bounds
(testing.tables.KERNEL_TOLERANCES): |Δ| ≤ tol + tol·|ref|, tol = 1e-5 for fp32, 2e-3 for fp16, 1e-2 for bf16
(the values are O(1), so the absolute term is the same size as the relative one).

The interpreter loads fp16 as NumPy float16 and bf16 as raw uint16 bits widened to float32 by a shift;
both widenings are exact, so the interpreted kernel sees exactly the values the reference does and only
its float32 accumulation differs. What the interpreter cannot show: GPU rounding of the compiled kernel
(it uses div.rn / sqrt.rn, IEEE like NumPy) and races between threads (the normalize pass's barrier);
those need a CUDA run.
"""

from __future__ import annotations

import itertools
import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np
import pytest
import torch

from minibert.errors import InputError, InputTypeError
from minibert.kernels import pooling
from minibert.kernels.checks import Segments
from minibert.kernels.pooling import cls_pool, mean_pool
from minibert.testing import assert_close
from minibert.testing.tables import AWKWARD_LENGTHS, POOLING_WIDTHS
from tests.kernels.helpers import DEVICE, DTYPE_TOL, check_result, randn, skip_module_without_device, zeros

skip_module_without_device()



def make_inputs(lengths, hidden_size, dtype, seed):
    """(hidden [N, C] of dtype, cu_seqlens [B + 1] int32) for segments of the given lengths."""
    hidden = randn(sum(lengths), hidden_size, dtype=dtype, seed=seed)  # [N, C]
    cu_seqlens = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int32, device=DEVICE)  # [B + 1]
    return hidden, cu_seqlens


def reference_pool(hidden, cu_seqlens, *, mode, normalize):
    """float64 NumPy: mean (count clamped at 1e-9) or first token, then x / max(‖x‖₂, 1e-12)."""
    h = hidden.double().cpu().numpy()  # [N, C]
    offsets = cu_seqlens.tolist()
    rows = []
    for start, end in itertools.pairwise(offsets):
        if mode == "mean":
            rows.append(h[start:end].sum(axis=0) / max(end - start, 1e-9))
        else:
            rows.append(h[start])
    pooled = np.stack(rows)  # [B, C]
    if normalize:
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled


def poisoned(batch, hidden_size):
    return torch.full((batch, hidden_size), float("nan"), dtype=torch.float32, device=DEVICE)


def run_and_check(pool, hidden, cu_seqlens, *, tol, normalize, what, **blocks):
    mode = "mean" if pool is mean_pool else "cls"
    out = poisoned(cu_seqlens.numel() - 1, hidden.shape[1])
    result = pool(hidden, cu_seqlens, normalize=normalize, out=out, **blocks)
    assert result is out, "the launcher must return the out buffer it was given"
    assert result.dtype == torch.float32
    check_result(result, reference_pool(hidden, cu_seqlens, mode=mode, normalize=normalize), tol=tol, what=what)
    return result


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("hidden_size", POOLING_WIDTHS)
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_mean_pool_mixed_lengths(dtype, tol, hidden_size, normalize):
    lengths = [*AWKWARD_LENGTHS[:4], 0, *AWKWARD_LENGTHS[4:]]  # an empty segment pools to zeros
    hidden, cu_seqlens = make_inputs(lengths, hidden_size, dtype, seed=hidden_size)
    result = run_and_check(
        mean_pool, hidden, cu_seqlens, tol=tol, normalize=normalize, what=f"mean_pool {dtype} C={hidden_size}"
    )
    assert (result[4] == 0).all(), "an empty segment must give zeros"


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("hidden_size", POOLING_WIDTHS)
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_cls_pool_mixed_lengths(dtype, tol, hidden_size, normalize):
    hidden, cu_seqlens = make_inputs(AWKWARD_LENGTHS, hidden_size, dtype, seed=100 + hidden_size)
    run_and_check(cls_pool, hidden, cu_seqlens, tol=tol, normalize=normalize, what=f"cls_pool {dtype} C={hidden_size}")


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize(("block_t", "block_c"), [(1, 16), (2, 32), (8, 64), (64, 128), (32, 256), (128, 8), (16, 512)])
def test_mean_pool_block_sizes(block_t, block_c, normalize):
    """Tiles smaller, equal and larger than segments and than C = 65 (a C block with one live column)."""
    hidden, cu_seqlens = make_inputs([3, 0, 64, 65, 130, 1], 65, torch.float32, seed=block_t * block_c)
    run_and_check(
        mean_pool,
        hidden,
        cu_seqlens,
        tol=1e-5,
        normalize=normalize,
        block_t=block_t,
        block_c=block_c,
        what=f"mean_pool block_t={block_t} block_c={block_c}",
    )


@pytest.mark.parametrize("block_c", [1, 16, 64, 1024])
def test_cls_pool_block_sizes(block_c):
    hidden, cu_seqlens = make_inputs([1, 5, 2], 37, torch.float32, seed=block_c)
    for normalize in (False, True):
        run_and_check(
            cls_pool, hidden, cu_seqlens, tol=1e-5, normalize=normalize, block_c=block_c, what=f"block_c={block_c}"
        )


@pytest.mark.parametrize("length", [1, 512])
@pytest.mark.parametrize("pool", [mean_pool, cls_pool], ids=["mean", "cls"])
def test_batch_of_one(pool, length):
    hidden, cu_seqlens = make_inputs([length], 384, torch.float16, seed=length)
    for normalize in (False, True):
        result = run_and_check(pool, hidden, cu_seqlens, tol=2e-3, normalize=normalize, what=f"B=1, T={length}")
        assert result.shape == (1, 384)


@pytest.mark.parametrize("pool", [mean_pool, cls_pool], ids=["mean", "cls"])
@pytest.mark.parametrize(("dtype", "tol"), DTYPE_TOL)
def test_strided_hidden(pool, dtype, tol):
    """A column slice of a wider tensor: row stride 400 + 3, last-dim stride 1."""
    wide, cu_seqlens = make_inputs([7, 65, 1, 33], 403, dtype, seed=7)
    hidden = wide[:, 3:387]  # [N, 384], stride (403, 1)
    assert hidden.stride() == (403, 1) and not hidden.is_contiguous()
    for normalize in (False, True):
        run_and_check(pool, hidden, cu_seqlens, tol=tol, normalize=normalize, what=f"strided {dtype}")


def test_default_output_is_new_float32_tensor():
    hidden, cu_seqlens = make_inputs([4, 9], 37, torch.bfloat16, seed=3)
    for pool in (mean_pool, cls_pool):
        result = pool(hidden, cu_seqlens)
        assert result.dtype == torch.float32 and result.shape == (2, 37) and result.is_contiguous()
        mode = "mean" if pool is mean_pool else "cls"
        assert_close(result.cpu().numpy(), reference_pool(hidden, cu_seqlens, mode=mode, normalize=False), atol=1e-2)


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
def test_all_segments_empty(normalize):
    """N = 0 tokens: every segment is empty, mean pooling gives zeros (no NaN from 0 / 0 or 0 / ‖0‖)."""
    hidden = torch.empty(0, 32, dtype=torch.float16, device=DEVICE)
    cu_seqlens = torch.zeros(4, dtype=torch.int32, device=DEVICE)
    out = mean_pool(hidden, cu_seqlens, normalize=normalize, out=poisoned(3, 32))
    assert (out == 0).all()


def test_normalize_of_zero_vector_is_zero():
    hidden = torch.zeros(5, 40, device=DEVICE)
    hidden[3:] = 2.0
    cu_seqlens = torch.tensor([0, 3, 5], dtype=torch.int32, device=DEVICE)
    for pool in (mean_pool, cls_pool):
        out = pool(hidden, cu_seqlens, normalize=True, out=poisoned(2, 40))
        assert (out[0] == 0).all()
        assert_close(out[1].cpu().numpy(), np.full(40, 1 / np.sqrt(40)), atol=1e-6, what=pool.__name__)


def test_matches_sentence_transformers_math_on_padded_batch():
    """Packed mean_pool == sum(h·mask) / clamp(mask.sum, 1e-9) on the right-padded equivalent (torch fp32)."""
    lengths = [5, 0, 1, 64, 17]
    hidden, cu_seqlens = make_inputs(lengths, 384, torch.float32, seed=11)
    longest = max(lengths)
    token_embeddings = torch.randn(len(lengths), longest, 384)  # [B, T, C]; padding rows are garbage
    attention_mask = torch.zeros(len(lengths), longest, dtype=torch.int64)  # [B, T]
    for b, (start, end) in enumerate(itertools.pairwise(cu_seqlens.tolist())):
        token_embeddings[b, : end - start] = hidden[start:end].cpu()
        attention_mask[b, : end - start] = 1
    mask = attention_mask.unsqueeze(-1).expand(token_embeddings.size()).to(token_embeddings.dtype)  # [B, T, C]
    sum_embeddings = torch.sum(token_embeddings * mask, 1)  # [B, C]
    sum_mask = torch.clamp(mask.sum(1), min=1e-9)  # [B, C]
    expected = sum_embeddings / sum_mask
    ours = mean_pool(hidden, cu_seqlens, out=poisoned(len(lengths), 384))
    assert_close(ours.cpu().numpy(), expected.numpy(), atol=1e-6, rtol=1e-5, what="mean_pool vs padded torch math")
    ours = mean_pool(hidden, cu_seqlens, normalize=True, out=poisoned(len(lengths), 384))
    expected = torch.nn.functional.normalize(expected, p=2, dim=1)
    assert_close(ours.cpu().numpy(), expected.numpy(), atol=1e-6, rtol=1e-5, what="normalized mean_pool vs torch")


@pytest.mark.parametrize("mode", ["mean", "cls"])
def test_matches_sentence_transformers_modules(mode):
    """The real sentence-transformers Pooling (+ Normalize) modules on the padded batch."""
    modules = pytest.importorskip("sentence_transformers.sentence_transformer.modules")
    lengths = [3, 1, 40, 9] + ([0] if mode == "mean" else [])
    hidden, cu_seqlens = make_inputs(lengths, 32, torch.float32, seed=12)
    longest = max(lengths)
    token_embeddings = torch.randn(len(lengths), longest, 32)  # [B, T, C]
    attention_mask = torch.zeros(len(lengths), longest, dtype=torch.int64)  # [B, T]
    for b, (start, end) in enumerate(itertools.pairwise(cu_seqlens.tolist())):
        token_embeddings[b, : end - start] = hidden[start:end].cpu()
        attention_mask[b, : end - start] = 1
    features = {"token_embeddings": token_embeddings, "attention_mask": attention_mask}
    expected = modules.Pooling(32, pooling_mode=mode)(dict(features))["sentence_embedding"]
    pool = mean_pool if mode == "mean" else cls_pool
    assert_close(pool(hidden, cu_seqlens).cpu().numpy(), expected.numpy(), atol=1e-6, rtol=1e-5, what=f"{mode} vs ST")
    expected = modules.Normalize()({"sentence_embedding": expected})["sentence_embedding"]
    ours = pool(hidden, cu_seqlens, normalize=True)
    assert_close(ours.cpu().numpy(), expected.numpy(), atol=1e-6, rtol=1e-5, what=f"normalized {mode} vs ST")


# -- bad inputs: each raises the documented type with a message that says what is wrong -----------------------

H = torch.zeros(6, 8, device=DEVICE)
CU = torch.tensor([0, 2, 6], dtype=torch.int32, device=DEVICE)


def offsets(*values):
    return torch.tensor(values, dtype=torch.int32, device=DEVICE)


BAD_CALLS = {
    "hidden not a tensor": (lambda: mean_pool(H.cpu().numpy(), CU), InputTypeError, "hidden must be a torch.Tensor"),
    "cu_seqlens not a tensor": (lambda: mean_pool(H, [0, 2, 6]), InputTypeError, "cu_seqlens must be a torch.Tensor"),
    "hidden int": (lambda: mean_pool(H.long(), CU), InputError, "hidden has dtype int64"),
    "hidden float64": (lambda: mean_pool(H.double(), CU), InputError, "expected one of float32, float16, bfloat16"),
    "hidden 3-d": (lambda: mean_pool(H.view(2, 3, 8), CU), InputError, "hidden must have 2 dimensions"),
    "hidden 1-d": (lambda: cls_pool(H.flatten(), CU), InputError, "hidden must have 2 dimensions"),
    "hidden last dim strided": (lambda: mean_pool(zeros(8, 6).t(), CU), InputError, "contiguous in its last"),
    "hidden zero columns": (lambda: mean_pool(zeros(6, 0), CU), InputError, "0 columns"),
    "cu_seqlens int64": (lambda: mean_pool(H, CU.long()), InputError, "cu_seqlens has dtype int64"),
    "cu_seqlens 2-d": (lambda: mean_pool(H, CU.view(1, 3)), InputError, "cu_seqlens must have 1 dimensions"),
    "cu_seqlens on other device": (lambda: mean_pool(H, CU.to("meta")), InputError, "cu_seqlens is on meta"),
    "empty batch": (lambda: mean_pool(H, CU[:1]), InputError, "empty batch"),
    "cu_seqlens bad end": (lambda: mean_pool(H, CU.clone().fill_(0)), InputError, "end at the token count 6"),
    "cu_seqlens bad start": (lambda: cls_pool(H, CU + 1), InputError, "start at 0"),
    "cu_seqlens decreasing": (
        lambda: mean_pool(H, offsets(0, 4, 2, 6)),
        InputError,
        "non-decreasing",
    ),
    "cls empty segment": (
        lambda: cls_pool(H, offsets(0, 2, 2, 6)),
        InputError,
        "segment 1 is empty",
    ),
    "out not a tensor": (lambda: mean_pool(H, CU, out=np.zeros((2, 8))), InputTypeError, "out must be a torch.Tensor"),
    "out wrong shape": (lambda: mean_pool(H, CU, out=zeros(3, 8)), InputError, "out must have shape [B, C]"),
    "out wrong dtype": (
        lambda: cls_pool(H, CU, out=zeros(2, 8, dtype=torch.float16)),
        InputError,
        "out has dtype float16",
    ),
    "out 1-d": (lambda: mean_pool(H, CU, out=zeros(16)), InputError, "out must have 2 dimensions"),
    "out on other device": (lambda: mean_pool(H, CU, out=torch.empty(2, 8, device="meta")), InputError, "out is on"),
    "out not contiguous": (lambda: mean_pool(H, CU, out=zeros(2, 16)[:, ::2]), InputError, "contiguous"),
    "out transposed": (lambda: mean_pool(H, CU, out=zeros(8, 2).t()), InputError, "out must be contiguous"),
    "block_t not power of two": (lambda: mean_pool(H, CU, block_t=12), InputError, "block_t must be a power of two"),
    "block_t zero": (lambda: mean_pool(H, CU, block_t=0), InputError, "block_t must be a power of two"),
    "block_c negative": (lambda: mean_pool(H, CU, block_c=-4), InputError, "block_c must be a power of two"),
    "block_c float": (lambda: cls_pool(H, CU, block_c=16.0), InputTypeError, "block_c must be an int"),
    "block_t bool": (lambda: mean_pool(H, CU, block_t=True), InputTypeError, "block_t must be an int"),
    "tile too large": (lambda: mean_pool(H, CU, block_t=512, block_c=256), InputError, "65536 elements"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input(case):
    call, error, message = BAD_CALLS[case]
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value), f"{case}: unhelpful message {str(info.value)!r}"


def test_cpu_tensor_without_interpreter(monkeypatch):
    """Compiled kernels need CUDA tensors; a CPU tensor is refused before any launch."""
    monkeypatch.setattr(pooling, "interpreting", lambda: False)
    with pytest.raises(InputError, match="need CUDA tensors"):
        mean_pool(torch.zeros(6, 8), torch.tensor([0, 2, 6], dtype=torch.int32))


def test_errors_are_value_and_type_errors():
    with pytest.raises(ValueError):
        mean_pool(H, CU, block_t=3)
    with pytest.raises(TypeError):
        mean_pool("hidden", CU)


def test_segments_checked_once_pool_like_the_raw_offsets():
    """Offsets checked on the host (Segments.from_host, as the GPU forward builds them once per batch) give the
    launch exactly what the raw tensor gives; segments of another batch, or from the host with bad offsets, are
    refused before any launch."""
    lengths = [3, 0, 5, 1]
    offsets = [0, *itertools.accumulate(lengths)]
    hidden = torch.randn(offsets[-1], 40, generator=torch.Generator().manual_seed(5)).to(DEVICE)
    segments = Segments.from_host(offsets, DEVICE)
    assert (segments.n_tokens, segments.max_seqlen, segments.empty, segments.batch) == (9, 5, (1,), 4)
    raw = torch.tensor(offsets, dtype=torch.int32, device=DEVICE)
    for normalize in (False, True):
        expected = mean_pool(hidden, raw, normalize=normalize)
        torch.testing.assert_close(mean_pool(hidden, segments, normalize=normalize), expected, rtol=0, atol=0)
    with pytest.raises(InputError, match="segment 1 is empty"):
        cls_pool(hidden, segments)
    with pytest.raises(InputError, match="the segments hold 9 tokens, but the input has 8 rows"):
        mean_pool(hidden[:8], segments)
    with pytest.raises(InputError, match="non-decreasing"):
        Segments.from_host([0, 4, 2, 9], DEVICE)
    with pytest.raises(InputError, match="start at 0"):
        Segments.from_host(np.array([1, 4, 9]), DEVICE)
