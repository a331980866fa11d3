"""The Triton backend's forward (minibert.gpu) run in Triton's interpreter on CPU tensors, fp32.

Same comparisons as the NumPy path, same DESIGN.md bounds: last hidden states vs transformers, embeddings vs
sentence-transformers, for tiny random-init BERT, DistilBERT and MPNet (head size 32, the kernels' smallest
supported size here) and for the real all-MiniLM-L6-v2 on a handful of sentences (the interpreter is slow).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import numpy as np
import pytest
import torch

import minibert
from minibert.gpu import forward_packed, position_ids
from tests.arch_fixtures import make_distilbert_dir, make_mpnet_dir  # noqa: F401 (pytest fixtures)
from tests.conftest import assert_close, legacy_pooling
from tests.test_architectures import _reference_hidden_states

TEXTS = [
    "short",
    "",
    "A sentence about packed variable-length attention and pooling kernels.",
    "Retrieval ranks passages by embedding similarity. " * 12,  # past max_seq_length (128)
    "<pad> literal special tokens <s> in the text </s>",
]


@pytest.fixture(scope="module")
def make_dir(make_bert_dir, make_distilbert_dir, make_mpnet_dir):  # noqa: F811
    factories = {"bert": make_bert_dir, "distilbert": make_distilbert_dir, "mpnet": make_mpnet_dir}

    def make(arch: str, mode: str = "mean", normalize: bool = False):
        return factories[arch]("tiny-d32", pooling=legacy_pooling(mode, 64), normalize=normalize, max_seq_length=128)

    return make


def _packed(model, texts):
    batch = model.tokenize(texts)
    mask = batch.attention_mask.astype(bool)
    lengths = mask.sum(axis=1)
    cu_seqlens = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int32)
    return batch, mask, torch.from_numpy(batch.input_ids[mask]), cu_seqlens, int(lengths.max())


@pytest.mark.parametrize("arch", ["bert", "distilbert", "mpnet"])
def test_packed_last_hidden_state_matches_transformers(make_dir, arch):
    model = minibert.SentenceTransformer(make_dir(arch), backend="triton")
    batch, mask, input_ids, cu_seqlens, max_seqlen = _packed(model, TEXTS)
    with torch.inference_mode():
        hidden = forward_packed(input_ids, cu_seqlens, max_seqlen, model._gpu.weights, model.config).numpy()
    reference = _reference_hidden_states(model.model_dir, batch)[mask]  # padded -> packed rows
    assert_close(hidden, reference, atol=1e-4, rtol=1e-5, what=f"{arch} packed last_hidden_state (Triton, fp32)")


@pytest.mark.parametrize(
    "arch, mode, normalize", [("bert", "mean", True), ("distilbert", "cls", False), ("mpnet", "mean", False)]
)
def test_embeddings_match_sentence_transformers(make_dir, arch, mode, normalize):
    from sentence_transformers import SentenceTransformer as Reference

    model_dir = make_dir(arch, mode, normalize)
    ours = minibert.SentenceTransformer(model_dir, backend="triton").encode(TEXTS, batch_size=3)
    reference = Reference(str(model_dir), device="cpu").encode(TEXTS, batch_size=3)
    atol, rtol = (1e-5, 0.0) if normalize else (1e-4, 1e-5)
    assert_close(ours, reference, atol=atol, rtol=rtol, what=f"{arch} {mode} embeddings (Triton, fp32)")


def test_real_all_minilm_l6_v2_matches_sentence_transformers(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    texts = ["How do I bake bread?", "Knead the dough, let it rise, bake until golden.", "東京は日本の首都です", ""]
    ours = minibert.SentenceTransformer(real_model_dir, backend="triton").encode(texts)
    assert_close(ours, Reference(str(real_model_dir), device="cpu").encode(texts), atol=1e-5, what="all-MiniLM-L6-v2")


def test_dense_head_runs_after_the_kernels(make_dir):
    from sentence_transformers import SentenceTransformer as Reference

    from tests.arch_fixtures import add_dense

    model_dir = add_dense(make_dir("bert", "mean", True), 16)
    ours = minibert.SentenceTransformer(model_dir, backend="triton").encode(TEXTS)
    assert_close(ours, Reference(str(model_dir), device="cpu").encode(TEXTS), atol=1e-5, what="Dense on Triton")


def test_packed_position_ids_equal_the_padded_ones():
    from minibert.forward import position_ids as padded_position_ids

    ids = np.array([[0, 5, 1, 7, 2, 1, 1], [0, 9, 2, 1, 1, 1, 1], [0, 4, 4, 4, 4, 4, 2]])  # 1 = pad, also inside text
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0], [1] * 7], dtype=bool)
    cu_seqlens = torch.tensor([0, 5, 8, 15], dtype=torch.int32)
    packed_ids = torch.from_numpy(ids[mask])
    for padding_idx in (None, 1):
        expected = np.broadcast_to(padded_position_ids(ids, padding_idx), ids.shape)[mask]
        np.testing.assert_array_equal(position_ids(packed_ids, cu_seqlens, padding_idx).numpy(), expected)


def test_pooling_mode_without_a_kernel_is_refused(make_dir, make_bert_dir):
    model_dir = make_bert_dir("tiny-d32", pooling={"embedding_dimension": 64, "pooling_mode": "max"})
    with pytest.raises(minibert.UnsupportedModelError, match="pooling mode 'max' has no GPU kernel"):
        minibert.SentenceTransformer(model_dir, backend="triton")


def test_interpreter_must_be_enabled(real_model_dir, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(minibert.BackendUnavailableError, match="TRITON_INTERPRET=1"):
        minibert.SentenceTransformer(real_model_dir, backend="triton")
    with pytest.raises(minibert.BackendUnavailableError, match="dtype='float64' is not supported"):
        minibert.SentenceTransformer(real_model_dir, device="cuda", dtype="float64")


def test_transformers_still_imports_and_runs_beside_minibert_kernels():
    """minibert's kernels live at minibert.kernels: the top-level name `kernels` (a PyPI distribution that
    transformers probes for) stays free, and transformers keeps working with them imported."""
    import importlib.util

    from transformers import BertConfig, BertModel

    import minibert.kernels.attention
    import minibert.kernels.pooling  # noqa: F401

    spec = importlib.util.find_spec("kernels")
    assert spec is None or "minibert" not in (spec.origin or "")
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37))
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([[101, 2000, 102]])).last_hidden_state
    assert out.shape == (1, 3, 32) and torch.isfinite(out).all()
