"""The Triton backend's forward (minibert.encoder.gpu) run in Triton's interpreter on CPU tensors, fp32.

Same comparisons as the NumPy path, the same bounds: last hidden states vs transformers, embeddings vs
sentence-transformers, for tiny random-init BERT, DistilBERT and MPNet (head size 32, the kernels' smallest
supported size here) and for the real all-MiniLM-L6-v2 on a handful of sentences (the interpreter is slow).
"""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

import pytest
import torch

import minibert
from minibert.testing import assert_close, legacy_pooling, reference_hidden_states

TEXTS = [
    "short",
    "",
    "A sentence about packed variable-length attention and pooling kernels.",
    "Retrieval ranks passages by embedding similarity. " * 12,  # past max_seq_length (128)
    "<pad> literal special tokens <s> in the text </s>",
]


@pytest.fixture(scope="module")
def make_dir(make_bert_dir, make_distilbert_dir, make_mpnet_dir):
    factories = {"bert": make_bert_dir, "distilbert": make_distilbert_dir, "mpnet": make_mpnet_dir}

    def make(arch: str, mode: str = "mean", normalize: bool = False):
        return factories[arch]("tiny-d32", pooling=legacy_pooling(mode, 64), normalize=normalize, max_seq_length=128)

    return make


@pytest.mark.parametrize("arch", ["bert", "distilbert", "mpnet"])
def test_packed_last_hidden_state_matches_transformers(make_dir, arch):
    model = minibert.SentenceTransformer(make_dir(arch), backend="triton")
    batch = model.tokenize(TEXTS)
    with torch.inference_mode():
        hidden, _ = model.encoder.hidden_states(batch)  # [N, C]
    reference = reference_hidden_states(model.model_dir, batch)  # [N, C]
    what = f"{arch} packed last_hidden_state (Triton, fp32)"
    assert_close(hidden.numpy(), reference, atol=1e-4, rtol=1e-5, what=what)


def test_no_launch_reads_the_offsets_back_from_the_device(make_dir, monkeypatch):
    """The batch's offsets are checked once, on the host (kernels.checks.Segments.from_host): no layer's attention
    launch and no pooling launch reads cu_seqlens back from the device (on a GPU each read is a sync)."""
    reads = []
    for name in ("tolist", "item"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda t, _f=original, _n=name: reads.append(_n) or _f(t))
    model = minibert.SentenceTransformer(make_dir("bert", "cls", True), backend="triton")
    assert model.config.num_hidden_layers == 2
    model.encode(TEXTS, batch_size=len(TEXTS))
    assert reads == []
    torch.tensor([0, 1], dtype=torch.int32).tolist()
    assert reads == ["tolist"]  # the probe sees reads


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


def test_dense_head_runs_after_the_kernels(make_dir, tmp_path):
    from sentence_transformers import SentenceTransformer as Reference

    from minibert.testing import add_dense

    model_dir = add_dense(make_dir("bert", "mean", True), 16, dest_dir=tmp_path)
    ours = minibert.SentenceTransformer(model_dir, backend="triton").encode(TEXTS)
    assert_close(ours, Reference(str(model_dir), device="cpu").encode(TEXTS), atol=1e-5, what="Dense on Triton")


def test_pooling_mode_without_a_kernel_is_refused(make_dir, make_bert_dir):
    model_dir = make_bert_dir("tiny-d32", pooling={"embedding_dimension": 64, "pooling_mode": "max"})
    with pytest.raises(minibert.UnsupportedModelError, match="pooling mode 'max' has no GPU kernel"):
        minibert.SentenceTransformer(model_dir, backend="triton")


def test_interpreter_must_be_enabled(real_model_dir):
    code = (
        "import sys, minibert\n"
        "try:\n    minibert.SentenceTransformer(sys.argv[1], backend='triton')\n"
        "except minibert.BackendUnavailableError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(real_model_dir)],
        env={**os.environ, "TRITON_INTERPRET": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "TRITON_INTERPRET=1" in done.stdout, done.stdout + done.stderr[-2000:]
    with pytest.raises(minibert.BackendUnavailableError, match="dtype='float64' is not supported"):
        minibert.SentenceTransformer(real_model_dir, device="cuda", dtype="float64")
