"""Property tests (hypothesis) on the real all-MiniLM-L6-v2: arbitrary Unicode never crashes, and an embedding is a
function of its own text only — not of its batch companions, the batch size or its place in the list.

Bound: 1e-6 between the same text encoded in different company (the fast forward packs each batch's tokens and
splits them over threads, so GEMM row blocks differ from call to call; the result must not).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minibert
from minibert import InputError
from minibert.testing import assert_close

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

valid_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)  # any code point but surrogates
# Sometimes a lone surrogate somewhere: such a text must be refused by name, every other one embedded.
with_surrogate = st.tuples(valid_text, st.characters(categories=("Cs",)), valid_text).map("".join)
any_text = valid_text | with_surrogate
words = st.text(st.sampled_from("abcdefgh ijklmn opqrs tuvwxyz.,!?é東"), min_size=0, max_size=80)


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


@SETTINGS
@given(texts=st.lists(any_text, max_size=6))
def test_arbitrary_unicode_is_embedded_or_refused_by_name(model, texts):
    surrogate_at = next((i for i, t in enumerate(texts) if any("\ud800" <= c <= "\udfff" for c in t)), None)
    if surrogate_at is not None:
        with pytest.raises(InputError, match=rf"sentences\[{surrogate_at}\] contains a lone surrogate"):
            model.encode(texts)
        return
    out = model.encode(texts)
    assert out.shape == (len(texts), 384) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)  # the Normalize module (vacuous for [])


@SETTINGS
@given(
    texts=st.lists(valid_text | words, min_size=1, max_size=12),
    batch_size=st.integers(1, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_an_embedding_depends_only_on_its_text(model, texts, batch_size, seed):
    """Alone vs in a batch of any size, in any order: the same vector, rows in input order."""
    alone = np.stack([model.encode(t) for t in texts])
    together = model.encode(texts, batch_size=batch_size)
    assert_close(together, alone, atol=1e-6, what=f"batch_size={batch_size} vs one at a time")
    order = np.random.default_rng(seed).permutation(len(texts))
    shuffled = model.encode([texts[i] for i in order], batch_size=batch_size)
    assert_close(shuffled, alone[order], atol=1e-6, what="shuffled order")


@SETTINGS
@given(texts=st.lists(words, min_size=1, max_size=8), repeats=st.lists(st.integers(0, 7), min_size=1, max_size=12))
def test_duplicate_inputs_give_identical_rows(model, texts, repeats):
    sentences = [texts[i % len(texts)] for i in repeats] + texts
    out = model.encode(sentences, batch_size=3)
    for i, text in enumerate(sentences):
        first = sentences.index(text)
        assert np.array_equal(out[i], out[first]), f"rows {first} and {i} hold the same text but differ"
