"""Real weights: all-MiniLM-L6-v2 through minibert vs the live sentence-transformers, on varied text."""

from __future__ import annotations

import numpy as np
import pytest

import minibert
from minibert.testing import VARIED_TEXTS, assert_close
from minibert.testing.tables import LONG_PROSE

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)

@pytest.fixture(scope="module")
def models(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    return minibert.SentenceTransformer(real_model_dir), Reference(str(real_model_dir), device="cpu")


def test_inputs_are_varied_enough():
    assert len(VARIED_TEXTS) >= 60 and len(set(VARIED_TEXTS)) == len(VARIED_TEXTS)


def test_token_ids_equal_sentence_transformers(models):
    ours, ref = models
    for start in range(0, len(VARIED_TEXTS), 16):
        chunk = VARIED_TEXTS[start : start + 16]
        features = ref.preprocess(chunk)
        batch = ours.tokenize(chunk).to_padded()
        np.testing.assert_array_equal(batch.input_ids, features["input_ids"].numpy())
        np.testing.assert_array_equal(batch.attention_mask, features["attention_mask"].numpy())
        np.testing.assert_array_equal(batch.token_type_ids, features["token_type_ids"].numpy())
    assert ours.tokenize([LONG_PROSE]).max_seqlen == ours.max_seq_length == ref.max_seq_length == 256


@pytest.mark.parametrize("batch_size", [1, 7, 32, 64])
def test_normalized_embeddings_equal_sentence_transformers(models, batch_size):
    ours, ref = models
    expected = ref.encode(VARIED_TEXTS, batch_size=batch_size)
    got = ours.encode(VARIED_TEXTS, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (len(VARIED_TEXTS), 384)
    assert_close(got, expected, atol=1e-5, what=f"all-MiniLM-L6-v2 embeddings, batch_size={batch_size}")


def test_truncate_dim_and_normalize_embeddings_follow_sentence_transformers(models):
    ours, ref = models
    texts = VARIED_TEXTS[:20]
    for kwargs in ({"truncate_dim": 128}, {"truncate_dim": 64, "normalize_embeddings": True}):
        got = ours.encode(texts, **kwargs)
        assert_close(got, ref.encode(texts, **kwargs), atol=1e-5, what=f"encode(**{kwargs})")
    # truncation comes before normalization: the cut rows have unit norm only when asked
    assert not np.allclose(np.linalg.norm(ours.encode(texts, truncate_dim=64), axis=1), 1.0)


def test_single_string_and_list_output(models):
    ours, ref = models
    one = ours.encode("What is the capital of France?")
    assert one.shape == (384,)
    assert_close(one, ref.encode("What is the capital of France?"), atol=1e-5, what="single string")
    as_list = ours.encode(VARIED_TEXTS[:3], convert_to_numpy=False)
    assert isinstance(as_list, list) and [v.shape for v in as_list] == [(384,)] * 3
    assert_close(np.stack(as_list), ours.encode(VARIED_TEXTS[:3]), atol=0, what="list output vs matrix output")


def test_embedding_does_not_depend_on_batch_companions_or_batch_size(models):
    ours, _ = models
    alone = np.stack([ours.encode(t) for t in VARIED_TEXTS[:24]])
    for batch_size in (3, 8, 24):
        together = ours.encode(VARIED_TEXTS[:24], batch_size=batch_size)
        assert_close(together, alone, atol=1e-6, what=f"batch_size={batch_size} vs one at a time")
    shuffled = np.random.default_rng(0).permutation(24)
    shuffled_texts = [VARIED_TEXTS[i] for i in shuffled]
    assert_close(ours.encode(shuffled_texts), alone[shuffled], atol=1e-6, what="shuffled input order")


def test_model_metadata(models):
    ours, ref = models
    assert ours.get_sentence_embedding_dimension() == ref.get_embedding_dimension() == 384
    assert ours.config.normalize and ours.config.pooling_modes == ("mean",)
