"""On a real GPU: the Triton backend in fp32, fp16 and bf16 against sentence-transformers on the same GPU.

fp16 / bf16 are judged against the reference's own error (flash-attention's rule, ARCHITECTURE.md): minibert's
max |Δ| to sentence-transformers fp32 must be ≤ 3 × that of sentence-transformers run in the same half
dtype. fp32 (TF32 off) must match at 1e-5 on normalized embeddings. Skips only where no CUDA device exists
(or the kernels are forced into the interpreter); run it on a GPU with
``TRITON_INTERPRET=0 python -m pytest tests/encoder/test_gpu_cuda.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import minibert
from minibert.testing import legacy_pooling

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1",
    reason="needs a CUDA device (and TRITON_INTERPRET=0)",
)

TEXTS = [
    "how do I bake bread",
    "",
    "Knead the dough until smooth, let it rise until doubled, then bake in a hot oven.",
    "The seasons are caused by the tilt of Earth's axis. " * 40,
    *[f"passage number {i} about semantic search and dense retrieval" for i in range(40)],
]


@pytest.fixture(scope="module")
def model_dirs(make_bert_dir):
    shapes = ("minilm-l6", "bert-base")
    return {
        shape: make_bert_dir(
            shape, pooling=legacy_pooling("mean", 768 if shape == "bert-base" else 384), normalize=True,
            max_seq_length=256,
        )
        for shape in shapes
    }


def _reference(model_dir, dtype=None):
    from sentence_transformers import SentenceTransformer as Reference

    torch.backends.cuda.matmul.allow_tf32 = False
    model = Reference(str(model_dir), device="cuda")
    if dtype is not None:
        model.to(dtype)
    return model.encode(TEXTS, batch_size=16)


@pytest.mark.parametrize("shape", ["minilm-l6", "bert-base"])
def test_fp32_matches_sentence_transformers(model_dirs, shape):
    ours = minibert.SentenceTransformer(model_dirs[shape], device="cuda", dtype="float32").encode(TEXTS, batch_size=16)
    gap = np.abs(ours - _reference(model_dirs[shape])).max()
    assert gap <= 1e-5, f"{shape} fp32 max |Δ| {gap:.3g}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", ["minilm-l6", "bert-base"])
def test_half_precision_within_three_times_the_references_own_error(model_dirs, shape, dtype):
    reference32 = _reference(model_dirs[shape])
    reference_half = _reference(model_dirs[shape], getattr(torch, dtype))
    ours = minibert.SentenceTransformer(model_dirs[shape], device="cuda", dtype=dtype).encode(TEXTS, batch_size=16)
    own_error = np.abs(reference_half - reference32).max()
    ours_error = np.abs(ours - reference32).max()
    print(f"{shape} {dtype}: ours {ours_error:.3g}, sentence-transformers {own_error:.3g}")
    assert ours_error <= 3 * own_error, f"{shape} {dtype}: ours {ours_error:.3g} > 3 × reference's {own_error:.3g}"
