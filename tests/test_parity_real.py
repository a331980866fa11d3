"""Real weights: all-MiniLM-L6-v2 through minibert vs the live sentence-transformers, on varied text."""

from __future__ import annotations

import numpy as np
import pytest

import minibert
from tests.conftest import assert_close

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)

LONG_PROSE = (
    "The history of the printing press begins with movable type in East Asia and continues with "
    "Gutenberg's press in Mainz, which made books cheaper and spread literacy across Europe. "
) * 12  # ≈ 400 tokens: longer than max_seq_length (256)

TEXTS = [
    # short and ordinary
    "Hello world",
    "What is the capital of France?",
    "how do i bake sourdough bread at home",
    "Symptoms of dehydration include thirst, headache and dark urine.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "weather tomorrow",
    "I",
    "OK",
    "?",
    # empty, whitespace, invisible
    "",
    " ",
    "   \t  ",
    "\n\n",
    "\u200b",
    "zero\u200bwidth\u200cjoiner\u200dtest",
    "\ufeffbyte order mark at the start",
    "soft\u00adhyphen",
    " leading and trailing spaces ",
    "tabs\tand\nnewlines\r\ninside",
    # accents and European scripts
    "Café naïve résumé façade",
    "Über die Brücke gehen wir morgen früh.",
    "¿Dónde está la biblioteca? ¡Aquí!",
    "Ærø og Ålborg ligger i Danmark.",
    "Straße, Maß und Fuß",
    "Łódź jest dużym miastem w Polsce.",
    "İstanbul ve Ankara; ǅemal; ﬁnance",
    "Ελληνικά: Η Αθήνα είναι η πρωτεύουσα.",
    "Привет, мир! Москва — столица России.",
    "Київ є столицею України.",
    # CJK, RTL, Indic, Thai
    "東京は日本の首都です。",
    "北京是中国的首都，人口众多。",
    "서울은 한국의 수도입니다.",
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก",
    "mixed English and 中文 and العربية in one line",
    # emoji
    "I love pizza 🍕🍕🍕",
    "👨‍👩‍👧‍👦 family emoji with zero-width joiners",
    "🏳️‍🌈 flag sequence and 👍🏽 skin tone",
    "🙂",
    # code, numbers, symbols
    "def f(x):\n    return [i ** 2 for i in range(x)]",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    '<div class="main">Hello &amp; welcome</div>',
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "https://example.com/path?query=1&other=two#anchor",
    "user@example.com wrote: see C:\\Users\\me\\file.txt",
    "3.14159 2.71828 1e-10 -42 1,000,000 0x1F",
    "2024-01-15T10:30:00Z",
    "$100 €85 £70 ¥10000",
    "a + b = c; x² + y² = z²; ∑ ∫ √ ∞ ≠ ≤",
    "!!!???...,,,;;;",
    "#hashtag @mention",
    # repetition and length
    "word " * 40,
    "a" * 150,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    LONG_PROSE,
    "x " * 600,
    "Passage: " + LONG_PROSE + " The end.",
    # control characters
    "nul\x00byte",
    "bell\x07and\x1bescape",
    "UPPER CASE TEXT SHOULD BE LOWERED",
    "MiXeD cAsE tExT",
]


@pytest.fixture(scope="module")
def models(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    return minibert.SentenceTransformer(real_model_dir), Reference(str(real_model_dir), device="cpu")


def test_inputs_are_varied_enough():
    assert len(TEXTS) >= 60 and len(set(TEXTS)) == len(TEXTS)


def test_token_ids_equal_sentence_transformers(models):
    ours, ref = models
    for start in range(0, len(TEXTS), 16):
        chunk = TEXTS[start : start + 16]
        features = ref.preprocess(chunk)
        batch = ours.tokenize(chunk).to_padded()
        np.testing.assert_array_equal(batch.input_ids, features["input_ids"].numpy())
        np.testing.assert_array_equal(batch.attention_mask, features["attention_mask"].numpy())
        np.testing.assert_array_equal(batch.token_type_ids, features["token_type_ids"].numpy())
    assert ours.tokenize([LONG_PROSE]).max_seqlen == ours.max_seq_length == ref.max_seq_length == 256


@pytest.mark.parametrize("batch_size", [1, 7, 32, 64])
def test_normalized_embeddings_equal_sentence_transformers(models, batch_size):
    ours, ref = models
    expected = ref.encode(TEXTS, batch_size=batch_size)
    got = ours.encode(TEXTS, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    assert_close(got, expected, atol=1e-5, what=f"all-MiniLM-L6-v2 embeddings, batch_size={batch_size}")


def test_truncate_dim_and_normalize_embeddings_follow_sentence_transformers(models):
    ours, ref = models
    texts = TEXTS[:20]
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
    as_list = ours.encode(TEXTS[:3], convert_to_numpy=False)
    assert isinstance(as_list, list) and [v.shape for v in as_list] == [(384,)] * 3
    assert_close(np.stack(as_list), ours.encode(TEXTS[:3]), atol=0, what="list output vs matrix output")


def test_embedding_does_not_depend_on_batch_companions_or_batch_size(models):
    ours, _ = models
    alone = np.stack([ours.encode(t) for t in TEXTS[:24]])
    for batch_size in (3, 8, 24):
        together = ours.encode(TEXTS[:24], batch_size=batch_size)
        assert_close(together, alone, atol=1e-6, what=f"batch_size={batch_size} vs one at a time")
    shuffled = np.random.default_rng(0).permutation(24)
    assert_close(ours.encode([TEXTS[i] for i in shuffled]), alone[shuffled], atol=1e-6, what="shuffled input order")


def test_model_metadata(models):
    ours, ref = models
    assert ours.get_sentence_embedding_dimension() == ref.get_embedding_dimension() == 384
    assert ours.config.normalize and ours.config.pooling_modes == ("mean",)
