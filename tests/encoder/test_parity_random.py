"""Random-init BERT models (tiny, MiniLM-L12 shape, BERT-base shape) vs transformers and sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

import minibert
from minibert.testing import RAGGED, assert_close, legacy_pooling, reference_hidden_states
from minibert.testing.tables import BERT_SHAPES
from tests.helpers import FORWARD_IMPLEMENTATIONS, packed_hidden_states

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)

@pytest.mark.parametrize("implementation", FORWARD_IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", list(BERT_SHAPES))
def test_last_hidden_state_matches_transformers(make_bert_dir, shape, implementation):
    model = minibert.SentenceTransformer(make_bert_dir(shape))
    batch = model.tokenize(RAGGED)
    assert batch.max_seqlen == 128 and batch.lengths.min() == 2
    ours = packed_hidden_states(implementation, model, batch)  # [N, C]
    ref = reference_hidden_states(model.model_dir, batch)  # [N, C]
    assert_close(ours, ref, atol=1e-4, rtol=1e-5, what=f"{shape} last_hidden_state ({implementation})")


@pytest.mark.parametrize(
    "shape, mode, normalize",
    [
        ("tiny", "mean", False),
        ("tiny", "mean", True),
        ("tiny", "cls", False),
        ("minilm-l12", "mean", True),
        ("bert-base", "mean", False),
    ],
)
def test_embeddings_match_sentence_transformers(make_bert_dir, shape, mode, normalize):
    from sentence_transformers import SentenceTransformer as Reference

    width = BERT_SHAPES[shape]["hidden_size"]
    model_dir = make_bert_dir(shape, pooling=legacy_pooling(mode, width), normalize=normalize)
    ours = minibert.SentenceTransformer(model_dir).encode(RAGGED, batch_size=4)
    ref = Reference(str(model_dir), device="cpu").encode(RAGGED, batch_size=4)
    atol, rtol = (1e-5, 0.0) if normalize else (1e-4, 1e-5)
    assert_close(ours, ref, atol=atol, rtol=rtol, what=f"{shape} {mode} normalize={normalize} embeddings")


@pytest.mark.parametrize(
    "pooling_mode",
    ["max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ["cls", "mean", "max"]],
)
def test_pooling_modes_match_sentence_transformers(make_bert_dir, pooling_mode):
    from sentence_transformers import SentenceTransformer as Reference

    pooling = {"embedding_dimension": 32, "pooling_mode": pooling_mode}
    model_dir = make_bert_dir("tiny", pooling=pooling)
    model = minibert.SentenceTransformer(model_dir)
    ours = model.encode(RAGGED, batch_size=3)
    ref = Reference(str(model_dir), device="cpu").encode(RAGGED, batch_size=3)
    n_modes = len(pooling_mode) if isinstance(pooling_mode, list) else 1
    assert ours.shape == (len(RAGGED), 32 * n_modes) == (len(RAGGED), model.get_sentence_embedding_dimension())
    assert_close(ours, ref, atol=1e-4, rtol=1e-5, what=f"pooling {pooling_mode}")


def test_vocab_txt_fallback_tokenizes_like_sentence_transformers(make_bert_dir, tmp_path):
    """Without tokenizer.json, minibert builds BERT WordPiece from vocab.txt + tokenizer_config.json."""
    import shutil

    from sentence_transformers import SentenceTransformer as Reference

    model_dir = tmp_path / "no-tokenizer-json"
    shutil.copytree(make_bert_dir("tiny"), model_dir)
    (model_dir / "tokenizer.json").unlink()
    texts = [*RAGGED, "Café ÜBER naïve", "東京 test", "tabs\tand\u200bzero width"]
    ours = minibert.SentenceTransformer(model_dir)
    features = Reference(str(model_dir), device="cpu").preprocess(texts)
    np.testing.assert_array_equal(ours.tokenize(texts).to_padded().input_ids, features["input_ids"].numpy())
