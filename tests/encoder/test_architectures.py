"""DistilBERT, MPNet and BERT at the sizes and pooling configurations of the MS MARCO / multi-qa table.

Random-init models (transformers, seeded) saved as sentence-transformers directories; minibert's
hidden states vs the transformers model and its embeddings vs sentence-transformers, on ragged
batches that include inputs longer than max_seq_length (and, for MPNet, longer than 128 tokens so the
log-spaced relative-position buckets are used).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import minibert
from minibert.loading.known_models import KNOWN_MODELS
from minibert.testing import (
    RAGGED,
    add_dense,
    assert_close,
    hidden_width,
    legacy_pooling,
    reference_hidden_states,
    transformers_outputs,
)
from minibert.testing.tables import ARCH_SHAPES, LONG, TABLE_CONFIGS
from tests.helpers import FORWARD_IMPLEMENTATIONS, packed_hidden_states

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)


@pytest.fixture(scope="module")
def make_dir(make_bert_dir, make_distilbert_dir, make_mpnet_dir):
    factories = {"bert": make_bert_dir, "distilbert": make_distilbert_dir, "mpnet": make_mpnet_dir}

    def make(arch: str, shape: str, mode: str = "mean", normalize: bool = False, **kwargs):
        pooling = legacy_pooling(mode, hidden_width(ARCH_SHAPES[arch][shape]))
        return factories[arch](shape, pooling=pooling, normalize=normalize, **kwargs)

    return make


@pytest.mark.parametrize("implementation", FORWARD_IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "arch, shape",
    [("distilbert", "tiny"), ("distilbert", "distilbert-base"), ("mpnet", "tiny"), ("mpnet", "mpnet-base")],
)
def test_last_hidden_state_matches_transformers(make_dir, arch, shape, implementation):
    model = minibert.SentenceTransformer(make_dir(arch, shape))
    texts = [*RAGGED, LONG]
    batch = model.tokenize(texts)
    lengths = batch.lengths
    assert lengths.max() == model.max_seq_length and len(set(lengths)) > 4  # ragged, truncated
    if arch == "mpnet":
        assert model.max_seq_length == 384 and sorted(lengths)[-2] > 128  # several rows past 128 tokens
    ours = packed_hidden_states(implementation, model, batch)  # [N, C]
    ref = reference_hidden_states(model.model_dir, batch)  # [N, C]
    assert_close(ours, ref, atol=1e-4, rtol=1e-5, what=f"{arch} {shape} last_hidden_state ({implementation})")


@pytest.mark.parametrize("implementation", FORWARD_IMPLEMENTATIONS)
@pytest.mark.parametrize("arch, shape", [("bert", "minilm-l6"), ("distilbert", "tiny"), ("mpnet", "tiny")])
def test_every_layer_matches_transformers(make_dir, arch, shape, implementation):
    """Each layer's output against transformers' output_hidden_states: a failure names the first layer that
    diverges, with the error of the layers before it."""
    model = minibert.SentenceTransformer(make_dir(arch, shape))
    batch = model.tokenize([*RAGGED, LONG])
    output, real = transformers_outputs(model.model_dir, batch, output_hidden_states=True)
    assert len(output.hidden_states) == model.config.num_hidden_layers + 1
    agreed = []
    for depth, reference in enumerate(output.hidden_states):  # 0: the embeddings' output; k: after layer k
        ours = packed_hidden_states(implementation, model, batch, layers=depth)  # [N, C]
        gap = np.abs(ours - reference.numpy()[real])
        where = "the embeddings" if depth == 0 else f"layer {depth} of {model.config.num_hidden_layers}"
        before = ", ".join(agreed) or "none"
        assert (gap <= 1e-4 + 1e-5 * np.abs(reference.numpy()[real])).all(), (
            f"{arch} {shape} ({implementation}): {where} is the first to diverge from transformers, max |Δ| "
            f"{gap.max():.3g} (earlier outputs' max |Δ|: {before})"
        )
        agreed.append(f"{gap.max():.1e}")


@pytest.mark.parametrize("arch, shape", [("distilbert", "tiny"), ("mpnet", "tiny")])
def test_token_ids_equal_sentence_transformers(make_dir, arch, shape):
    from sentence_transformers import SentenceTransformer as Reference

    model_dir = make_dir(arch, shape)
    texts = [*RAGGED, LONG, "Café ÜBER naïve", "<s> literal </s> tokens <pad> inside", "東京 \u200b test"]
    features = Reference(str(model_dir), device="cpu").preprocess(texts)
    batch = minibert.SentenceTransformer(model_dir).tokenize(texts).to_padded()
    np.testing.assert_array_equal(batch.input_ids, features["input_ids"].numpy())
    np.testing.assert_array_equal(batch.attention_mask, features["attention_mask"].numpy())


@pytest.mark.parametrize("arch, shape, mode, normalize", TABLE_CONFIGS)
def test_embeddings_match_sentence_transformers(make_dir, arch, shape, mode, normalize):
    from sentence_transformers import SentenceTransformer as Reference

    model_dir = make_dir(arch, shape, mode, normalize)
    texts = [*RAGGED, LONG]
    ours = minibert.SentenceTransformer(model_dir).encode(texts, batch_size=4)
    ref = Reference(str(model_dir), device="cpu").encode(texts, batch_size=4)
    atol, rtol = (1e-5, 0.0) if normalize else (1e-4, 1e-5)
    assert_close(ours, ref, atol=atol, rtol=rtol, what=f"{arch} {shape} {mode} normalize={normalize}")


def test_every_table_row_is_covered_by_a_tested_configuration():
    tested = {(arch, mode, norm) for arch, shape, mode, norm in TABLE_CONFIGS if shape != "tiny"}
    sizes = {(arch, hidden_width(ARCH_SHAPES[arch][shape])) for arch, shape, *_ in TABLE_CONFIGS}
    for row in KNOWN_MODELS.values():
        assert (row.architecture, row.pooling, row.normalized) in tested, row.name
        assert (row.architecture, row.hidden_size) in sizes, row.name


@pytest.mark.parametrize(
    "arch, activation, normalize",
    [
        ("bert", "torch.nn.modules.activation.Tanh", False),
        ("distilbert", "torch.nn.modules.linear.Identity", True),
        ("mpnet", "torch.nn.modules.activation.ReLU", False),
    ],
)
def test_dense_module_matches_sentence_transformers(make_dir, tmp_path, arch, activation, normalize):
    from sentence_transformers import SentenceTransformer as Reference

    model_dir = add_dense(make_dir(arch, "tiny", "mean", normalize), 24, activation, dest_dir=tmp_path)
    model = minibert.SentenceTransformer(model_dir)
    assert model.get_sentence_embedding_dimension() == 24 and len(model.config.dense_layers) == 1
    ours = model.encode(RAGGED, batch_size=4)
    ref = Reference(str(model_dir), device="cpu").encode(RAGGED, batch_size=4)
    assert_close(ours, ref, atol=1e-5 if normalize else 1e-4, rtol=0 if normalize else 1e-5, what=f"Dense {activation}")


def test_two_dense_modules_chain(make_dir, tmp_path):
    from sentence_transformers import SentenceTransformer as Reference

    model_dir = add_dense(
        add_dense(make_dir("bert", "tiny"), 48, dest_dir=tmp_path), 16, "torch.nn.modules.activation.Sigmoid",
        dest_dir=tmp_path,
    )
    ours = minibert.SentenceTransformer(model_dir).encode(RAGGED)
    assert ours.shape == (len(RAGGED), 16)
    assert_close(ours, Reference(str(model_dir), device="cpu").encode(RAGGED), atol=1e-4, rtol=1e-5, what="Dense×2")


def test_dense_with_an_unsupported_activation_is_named(make_dir, tmp_path):
    model_dir = add_dense(make_dir("bert", "tiny"), 8, dest_dir=tmp_path)
    dense_config = next(model_dir.glob("*_Dense")) / "config.json"
    config = json.loads(dense_config.read_text())
    config["activation_function"] = "mypackage.CustomActivation"
    dense_config.write_text(json.dumps(config))
    with pytest.raises(minibert.UnsupportedModelError, match=r"'mypackage\.CustomActivation' is not supported"):
        minibert.SentenceTransformer(model_dir)


def test_dense_whose_in_features_do_not_match_pooling(make_dir, tmp_path):
    model_dir = add_dense(make_dir("bert", "tiny"), 8, dest_dir=tmp_path)
    dense_config = next(model_dir.glob("*_Dense")) / "config.json"
    config = json.loads(dense_config.read_text())
    config["in_features"] = 99
    dense_config.write_text(json.dumps(config))
    with pytest.raises(minibert.ModelLoadError, match="in_features is 99, but the module before it outputs 32"):
        minibert.SentenceTransformer(model_dir)


def test_short_table_name_resolves_from_the_hf_cache_and_reports_its_score_function(make_dir, tmp_path, monkeypatch):
    snapshot = tmp_path / "hub" / "models--sentence-transformers--msmarco-distilbert-dot-v5" / "snapshots" / "abc123"
    shutil.copytree(make_dir("distilbert", "tiny"), snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("MINIBERT_HOME", str(tmp_path / "minibert"))
    model = minibert.load("msmarco-distilbert-dot-v5")
    assert model.model_dir == snapshot
    assert model.known_model == KNOWN_MODELS["msmarco-distilbert-dot-v5"]
    assert model.similarity_fn_name == "dot"


def test_declared_similarity_function_wins_over_the_table(make_dir, tmp_path):
    model_dir = tmp_path / "msmarco-distilbert-dot-v5"
    shutil.copytree(make_dir("distilbert", "tiny"), model_dir)
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps({"similarity_fn_name": "cosine"}))
    assert minibert.SentenceTransformer(model_dir).similarity_fn_name == "cosine"
    (model_dir / "config_sentence_transformers.json").unlink()
    assert minibert.SentenceTransformer(model_dir).similarity_fn_name == "dot"  # the table, by directory name


def test_mpnet_relative_position_buckets_match_transformers():
    import torch
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    from minibert.encoder.positions import relative_position_bucket

    relative = np.arange(-1100, 1100)[None, :] - np.arange(0, 600, 7)[:, None]
    expected = MPNetEncoder.relative_position_bucket(torch.from_numpy(relative)).numpy()
    np.testing.assert_array_equal(relative_position_bucket(relative, 32, 128), expected)
