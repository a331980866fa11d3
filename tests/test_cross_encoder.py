"""minibert.CrossEncoder against the live sentence-transformers CrossEncoder (and transformers under it) on seeded
random-init BertForSequenceClassification and ElectraForSequenceClassification directories: scores ≤ 1e-5 and the
same ranking, for one and three labels, each place the activation is kept, truncation to a small max_length, ELECTRA
with and without its embeddings projection, the Triton backend in its interpreter; and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import minibert
from minibert.testing import ACTIVATION_IDENTITY, ACTIVATION_SIGMOID, assert_close

QUERY = "how do the seasons come about"
DOCUMENTS = [
    "The seasons come from the tilt of Earth's axis relative to its orbit. " * 3,
    "Bread rises because yeast ferments sugars into carbon dioxide.",
    "",
    "Ünïcödé, 中文 and emoji 🌍 in one passage about the axial tilt",
    "seasons " * 200,  # past any max_length: truncated, longest_first
    "   ",
]
PAIRS = [(QUERY, d) for d in DOCUMENTS] + [("q " * 300, "a short passage"), ("", ""), ("x", "seasons and tilt")]
SCORE_ATOL = 1e-5


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def reference(model_dir, **options):
    from sentence_transformers import CrossEncoder as Reference

    return Reference(str(model_dir), device="cpu", **options)


MODELS = [  # (arch, shape, num_labels, where the activation is kept)
    ("bert", "tiny", 1, {}),
    ("bert", "minilm-l6", 1, {}),
    ("bert", "tiny", 3, {}),
    ("bert", "tiny", 1, {"activation": ACTIVATION_IDENTITY}),  # ms-marco models: raw logits
    ("bert", "tiny", 1, {"legacy_activation": ACTIVATION_IDENTITY}),
    ("bert", "tiny", 3, {"st_activation": ACTIVATION_SIGMOID}),  # sentence-transformers 6's saved layout
    ("electra", "tiny", 1, {}),  # embedding_size ≠ hidden_size: embeddings_project
    ("electra", "tiny-unprojected", 3, {}),
    ("electra", "tiny", 1, {"activation": ACTIVATION_IDENTITY}),
]


@pytest.mark.parametrize("arch, shape, labels, activation", MODELS, ids=lambda v: str(v) if v != {} else "default")
def test_predict_and_rank_equal_sentence_transformers(make_cross_encoder_dir, arch, shape, labels, activation):
    model_dir = make_cross_encoder_dir(arch, shape, num_labels=labels, **activation)
    ours, theirs = minibert.CrossEncoder(model_dir), reference(model_dir)
    expected = theirs.predict(PAIRS, batch_size=4)
    got = ours.predict(PAIRS, batch_size=4)
    assert got.shape == expected.shape == ((len(PAIRS),) if labels == 1 else (len(PAIRS), labels))
    assert got.dtype == np.float32
    assert_close(got, expected, atol=SCORE_ATOL, what=f"{arch} {shape} {labels} {activation}")
    assert_close(ours.predict(PAIRS[1]), theirs.predict(PAIRS[1]), atol=SCORE_ATOL, what="one pair")
    if labels == 1:
        ranked, expected_ranked = ours.rank(QUERY, DOCUMENTS), theirs.rank(QUERY, DOCUMENTS)
        assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected_ranked]
    else:
        softmax = ours.predict(PAIRS, apply_softmax=True)
        assert_close(softmax, theirs.predict(PAIRS, apply_softmax=True), atol=SCORE_ATOL, what="apply_softmax")


@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_truncation_to_max_length_equals_sentence_transformers(make_cross_encoder_dir, max_length):
    model_dir = make_cross_encoder_dir("bert", "tiny")
    got = minibert.CrossEncoder(model_dir, max_length=max_length).predict(PAIRS)
    expected = reference(model_dir, max_length=max_length).predict(PAIRS)
    assert_close(got, expected, atol=SCORE_ATOL, what=f"max_length {max_length}")


@pytest.mark.parametrize("shape", ["tiny", "minilm-l6"])
def test_identical_pairs_score_exactly_alike_wherever_they_sit_in_a_batch(make_cross_encoder_dir, shape):
    """Equal token ids ("" and "   " tokenize alike) in batches of mixed lengths, on two threads: one score, bit for
    bit — so their tie keeps its input order in rank, as sentence-transformers' equal scores do."""
    ours = minibert.CrossEncoder(make_cross_encoder_dir("bert", shape), threads=2)
    repeated = [(QUERY, ""), (QUERY, "   "), (QUERY, DOCUMENTS[1])]
    pairs = [p for i in range(40) for p in (repeated[i % 3], PAIRS[i % len(PAIRS)])]
    for batch in (pairs, [(QUERY, d) for d in DOCUMENTS]):
        logits = ours.logits(ours.pack(batch))[:, 0]  # the stage, in this order (predict sorts by length)
        for text in ("", DOCUMENTS[1]):
            same = logits[[i for i, (q, d) in enumerate(batch) if q == QUERY and d.strip() == text]]
            assert (same == same[0]).all(), f"{text!r}: {np.unique(same).tolist()}"
    ranked = ours.rank(QUERY, DOCUMENTS)
    ids = [r["corpus_id"] for r in ranked]
    assert ranked[ids.index(2)]["score"] == ranked[ids.index(5)]["score"]  # "" ties "   " …
    assert ids.index(5) == ids.index(2) + 1  # … and stays before it


def test_rank_options_follow_sentence_transformers(make_cross_encoder_dir):
    model_dir = make_cross_encoder_dir("bert", "tiny", activation=ACTIVATION_IDENTITY)
    ours, theirs = minibert.CrossEncoder(model_dir), reference(model_dir)
    got = ours.rank(QUERY, DOCUMENTS, top_k=3, return_documents=True)
    expected = theirs.rank(QUERY, DOCUMENTS, top_k=3, return_documents=True)
    assert [(r["corpus_id"], r["text"]) for r in got] == [(r["corpus_id"], r["text"]) for r in expected]
    assert_close([r["score"] for r in got], [r["score"] for r in expected], atol=SCORE_ATOL, what="rank scores")
    assert ours.rank(QUERY, []) == []


@pytest.mark.parametrize("arch, shape, num_labels", [("bert", "tiny-d32", 3), ("electra", "tiny-d16", 1)])
def test_the_triton_backend_scores_as_numpy(make_cross_encoder_dir, monkeypatch, arch, shape, num_labels):
    """The head on the device: BERT's tanh pooler, ELECTRA's exact GELU (the Triton kernel). Here in Triton's
    interpreter (head sizes 32 and 16: the kernels take 16 … 128); on a GPU with --device cuda."""
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    model_dir = make_cross_encoder_dir(arch, shape, num_labels=num_labels)
    numpy_scores = minibert.CrossEncoder(model_dir).predict(PAIRS[:4])
    triton_scores = minibert.CrossEncoder(model_dir, backend="triton", device="cpu").predict(PAIRS[:4])
    assert_close(triton_scores, numpy_scores, atol=SCORE_ATOL, what="Triton vs NumPy cross-encoder")


# ------------------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def tiny(make_cross_encoder_dir):
    return minibert.CrossEncoder(make_cross_encoder_dir("bert", "tiny"))


@pytest.mark.parametrize(
    "sentences, error, message",
    [
        ([("q", "d"), ("q", 3)], minibert.InputTypeError, r"sentences\[1\]\[1\] is int"),
        ([("q", "d"), ("q",)], minibert.InputTypeError, r"sentences\[1\] is a tuple of 1, expected a pair"),
        ([("q", "d"), "qd"], minibert.InputTypeError, r"sentences\[1\] is str, expected a pair"),
        ([("q", "d\ud800")], minibert.InputError, r"sentences\[0\]\[1\] contains a lone surrogate"),
        (None, minibert.InputTypeError, r"sentences is None"),
    ],
)
def test_bad_pairs_are_refused_naming_the_element(tiny, sentences, error, message):
    with pytest.raises(error, match=message):
        tiny.predict(sentences)


def test_empty_inputs_and_bad_options(tiny):
    assert tiny.predict([]).shape == (0,)
    with pytest.raises(minibert.InputError, match="top_k must be a positive integer"):
        tiny.rank("q", ["d"], top_k=0)
    with pytest.raises(minibert.InputTypeError, match="query must be one str"):
        tiny.rank(["q"], ["d"])
    with pytest.raises(minibert.InputError, match="batch_size must be a positive integer"):
        tiny.predict([("q", "d")], batch_size=0)
    with pytest.raises(minibert.InputTypeError, match="activation_fn must be a function"):
        tiny.predict([("q", "d")], activation_fn="sigmoid")
    with pytest.raises(minibert.InputError, match="max_length must be at least 3, the pair's special tokens; got 2"):
        minibert.CrossEncoder(tiny.model_dir, max_length=2)


def test_rank_needs_one_label(make_cross_encoder_dir):
    with pytest.raises(minibert.InputError, match="rank needs a model with one label; this one has 3"):
        minibert.CrossEncoder(make_cross_encoder_dir("bert", "tiny", num_labels=3)).rank("q", ["d"])


def test_a_bi_encoder_and_a_cross_encoder_are_not_mistaken(make_cross_encoder_dir, real_model_dir):
    with pytest.raises(minibert.UnsupportedModelError, match=r"is a cross-encoder .*minibert\.CrossEncoder"):
        minibert.SentenceTransformer(make_cross_encoder_dir("electra", "tiny"))
    with pytest.raises(minibert.UnsupportedModelError, match=r"no sequence-classification head.*SentenceTransformer"):
        minibert.CrossEncoder(real_model_dir)
