"""The random-init cross-encoders of minibert.testing (issue 23): they load offline in sentence-transformers'
CrossEncoder and in transformers' AutoModelForSequenceClassification, and CrossEncoder picks the activation and the
truncation length each directory was built with.

What sentence-transformers' CrossEncoder does with these directories, read from the installed source
(sentence-transformers 6.2.0: ``cross_encoder/model.py`` on ``base/model.py`` and ``base/modules/transformer.py``;
transformers 5.24.0, torch 2.13.0) and pinned by the tests below — minibert.CrossEncoder has to match it:

Loading. A directory without modules.json is a plain transformers directory, as the published cross-encoders
(cross-encoder/ms-marco-MiniLM-L6-v2, …) are: ``AutoConfig.from_pretrained``, then one ``Transformer`` module with
``transformer_task="sequence-classification"``: ``AutoModelForSequenceClassification.from_pretrained`` (config.json,
model.safetensors) and ``AutoProcessor.from_pretrained`` (tokenizer_config.json's ``tokenizer_class``, tokenizer.json,
vocab.txt, special_tokens_map.json). ``num_labels`` is config.json's (``len(id2label)``) when its ``architectures``
name a ``*ForSequenceClassification``, else it is forced to 1. A directory with modules.json (what
``CrossEncoder.save`` writes in 6.x) needs config_sentence_transformers.json with ``"model_type": "CrossEncoder"``
(without it the directory is read as a SentenceTransformer and converted) and a sentence_bert_config.json with
``"transformer_task": "sequence-classification"`` (without it the module loads as a feature extractor and predict
fails with KeyError 'scores'). Everything is read from the directory: ``CrossEncoder(str(dir), device="cpu")`` works
with HF_HUB_OFFLINE=1.

Activation, the first found wins:
  1. the ``activation_fn=`` argument;
  2. config_sentence_transformers.json's ``"activation_fn"`` (modules.json layout only; what 6.x's save writes);
  3. config.json's ``"sentence_transformers": {"activation_fn": ...}`` (written by sentence-transformers 4 and 5);
  4. config.json's ``"sbert_ce_default_activation_function"`` (< 4), only when 3's key is absent and it is not null;
  5. ``Sigmoid()`` when num_labels == 1, else ``Identity()``.
A name in 2–4 is instantiated as ``import_from_string(name)()`` only when it starts with ``"torch."`` (or
trust_remote_code=True); otherwise a warning, and the lookup goes on from the next step for 2 but straight to 5 for
3 (an untrusted 3 hides a legacy 4). Published names: ``torch.nn.modules.linear.Identity``,
``torch.nn.modules.activation.Sigmoid``.

predict(pairs, batch_size=32). The pairs are sorted by descending ``len(query) + len(document)`` (characters; long
and short interleaved only under flash-attention unpadding), cut into batches and the scores put back in input
order. Each batch is tokenized by ``tokenizer(batch, padding=True, truncation="longest_first", return_tensors="pt")``
with ``batch`` the list of (query, document) pairs as the one positional argument and no max_length:
``[CLS] query [SEP] document [SEP]``, token_type_ids 0 up to the first [SEP] and 1 after, padded to the batch's
longest with [PAD] (0). input_ids, token_type_ids and attention_mask go to the model;
``scores = activation_fn(logits)``, then ``squeeze(-1)`` when num_labels == 1: a float32 array [N] (num_labels == 1)
or [N, num_labels]; one pair (not in a list) gives a scalar or [num_labels]; ``apply_softmax=True`` softmaxes over
the labels after the activation (num_labels > 1 only).

max_length. ``CrossEncoder.max_seq_length`` = the tokenizer's ``model_max_length``: tokenizer_config.json's
``"model_max_length"`` (absent: transformers' 1e30) capped at config.json's ``max_position_embeddings``;
``CrossEncoder(dir, max_length=N)`` sets it to N without the cap. Truncation is the Rust tokenizers' LongestFirst
over the budget B = max_length − 3 (the three special tokens), from the right: when the two lengths sum past B, the
shorter side keeps all its tokens if it has at most B / 2 and the longer keeps B − shorter; otherwise they keep
⌊B/2⌋ (the shorter) and ⌈B/2⌉ (the longer), on a tie the query ⌊B/2⌋. The tokenizer.json copied from
all-MiniLM-L6-v2 carries a baked truncation (128, LongestFirst) and padding (Fixed 128), which transformers
overrides on every call: a reader using the tokenizers library directly must reset both.

The heads (transformers 5.24). BertForSequenceClassification: ``classifier(tanh(pooler.dense(h[:, 0])))`` —
``bert.pooler.dense.*``, ``classifier.weight`` [num_labels, H], ``classifier.bias``. ElectraForSequenceClassification:
``classifier.out_proj(gelu(classifier.dense(h[:, 0])))`` with the exact (erf) GELU, no pooler; when embedding_size !=
hidden_size, ``electra.embeddings_project`` (Linear E → H) follows the embeddings' LayerNorm. Dropout is off in eval.
ElectraTokenizer is BertTokenizer in transformers 5 (same WordPiece, same ids).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from minibert.testing import ACTIVATION_IDENTITY, ACTIVATION_SIGMOID, CROSS_ENCODER_SHAPES, LONG

PAIRS = [
    ("How many people live in Berlin?", "Berlin had a population of 3,520,031 in 2019."),
    ("How many people live in Berlin?", "Berlin is well known for its museums."),
    ("short", ""),
    ("what is dense retrieval", LONG),  # past max_length: the document is truncated
    (LONG, LONG),  # both truncated
    ("Café naïve résumé", "中文 and emoji 🍕 mixed in"),
]
HEADS = {"bert": "BertForSequenceClassification", "electra": "ElectraForSequenceClassification"}


def cross_encoder(model_dir, **kwargs):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(model_dir), device="cpu", **kwargs)


def test_runs_offline():
    from huggingface_hub import constants

    assert constants.HF_HUB_OFFLINE  # conftest sets HF_HUB_OFFLINE=1 before anything imports huggingface_hub


@pytest.mark.parametrize(
    "arch, shape, num_labels",
    [
        ("bert", "tiny", 1),
        ("bert", "tiny", 3),
        ("bert", "minilm-l6", 1),  # cross-encoder/ms-marco-MiniLM-L6-v2's shape
        ("electra", "tiny", 1),
        ("electra", "tiny-unprojected", 3),
    ],
)
def test_predicts_in_sentence_transformers_as_transformers_computes(make_cross_encoder_dir, arch, shape, num_labels):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = make_cross_encoder_dir(arch, shape, num_labels=num_labels)
    model = cross_encoder(model_dir)
    scores = model.predict(PAIRS)
    assert model.num_labels == num_labels and model.max_seq_length == 512
    assert scores.dtype == np.float32 and scores.shape == ((len(PAIRS),) if num_labels == 1 else (len(PAIRS), 3))
    assert np.isfinite(scores).all() and len(np.unique(scores)) > 1  # the noise makes the scores input-dependent

    reference = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert type(reference).__name__ == HEADS[arch] and reference.config.num_labels == num_labels
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = tokenizer([list(pair) for pair in PAIRS], padding=True, truncation="longest_first", return_tensors="pt")
    assert features["input_ids"].shape[1] == 512  # (LONG, LONG) fills max_length
    with torch.no_grad():
        expected = model.activation_fn(reference(**features).logits)
    expected = expected.squeeze(-1) if num_labels == 1 else expected
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape, projected", [("tiny", True), ("tiny-unprojected", False)])
def test_electra_has_embeddings_project_when_embedding_size_differs(make_cross_encoder_dir, shape, projected):
    from safetensors import safe_open

    sizes = CROSS_ENCODER_SHAPES["electra"][shape]
    assert (sizes["embedding_size"] != sizes["hidden_size"]) == projected
    model_dir = make_cross_encoder_dir("electra", shape)
    with safe_open(model_dir / "model.safetensors", framework="np") as weights:
        names = set(weights.keys())
        assert ("electra.embeddings_project.weight" in names) == projected
        assert ("electra.embeddings_project.bias" in names) == projected
        word = weights.get_tensor("electra.embeddings.word_embeddings.weight")
        assert word.shape == (30522, sizes["embedding_size"])
        if projected:
            assert weights.get_tensor("electra.embeddings_project.weight").shape == (
                sizes["hidden_size"],
                sizes["embedding_size"],
            )
    assert {"classifier.dense.weight", "classifier.out_proj.weight"} <= names and not any("pooler" in n for n in names)


def test_electra_tokenizer_gives_bert_ids(make_cross_encoder_dir, real_model_dir):
    from transformers import AutoTokenizer

    model_dir = make_cross_encoder_dir("electra", "tiny")
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["tokenizer_class"] == "ElectraTokenizer"
    pairs = [list(pair) for pair in PAIRS]
    ours = AutoTokenizer.from_pretrained(model_dir)(pairs, truncation="longest_first")
    bert = AutoTokenizer.from_pretrained(real_model_dir)(pairs, truncation="longest_first", max_length=512)
    assert ours["input_ids"] == bert["input_ids"] and ours["token_type_ids"] == bert["token_type_ids"]


UNTRUSTED = "mypackage.activations.Scaled"  # not under torch.: ignored without trust_remote_code


@pytest.mark.parametrize(
    "num_labels, activation, legacy_activation, st_activation, expected",
    [
        pytest.param(1, None, None, None, "Sigmoid", id="default-1-label"),
        pytest.param(3, None, None, None, "Identity", id="default-3-labels"),
        pytest.param(1, ACTIVATION_IDENTITY, None, None, "Identity", id="current"),
        pytest.param(3, ACTIVATION_SIGMOID, None, None, "Sigmoid", id="current-3-labels"),
        pytest.param(1, None, ACTIVATION_IDENTITY, None, "Identity", id="legacy"),
        pytest.param(3, None, ACTIVATION_SIGMOID, None, "Sigmoid", id="legacy-3-labels"),
        pytest.param(1, ACTIVATION_SIGMOID, ACTIVATION_IDENTITY, None, "Sigmoid", id="current-over-legacy"),
        pytest.param(1, None, None, ACTIVATION_IDENTITY, "Identity", id="st6-layout"),
        pytest.param(1, ACTIVATION_SIGMOID, ACTIVATION_SIGMOID, ACTIVATION_IDENTITY, "Identity", id="st6-over-config"),
        pytest.param(1, UNTRUSTED, ACTIVATION_IDENTITY, None, "Sigmoid", id="untrusted-current-hides-legacy"),
        pytest.param(1, ACTIVATION_IDENTITY, None, UNTRUSTED, "Identity", id="untrusted-st6-falls-through"),
    ],
)
def test_activation_sentence_transformers_picks(
    make_cross_encoder_dir, num_labels, activation, legacy_activation, st_activation, expected
):
    model_dir = make_cross_encoder_dir(
        "bert",
        "tiny",
        num_labels=num_labels,
        activation=activation,
        legacy_activation=legacy_activation,
        st_activation=st_activation,
    )
    config = json.loads((model_dir / "config.json").read_text())
    assert config.get("sentence_transformers", {}).get("activation_fn") == activation
    assert config.get("sbert_ce_default_activation_function") == legacy_activation
    assert (model_dir / "modules.json").is_file() == (st_activation is not None)
    model = cross_encoder(model_dir)
    assert type(model.activation_fn).__name__ == expected
    assert model.num_labels == num_labels and type(model.model).__name__ == "BertForSequenceClassification"
    scores = model.predict(PAIRS[:2])
    assert scores.shape == ((2,) if num_labels == 1 else (2, num_labels))
    if expected == "Sigmoid":
        assert ((scores > 0) & (scores < 1)).all()


def test_activation_variants_share_the_weights(make_cross_encoder_dir):
    sigmoid_dir = make_cross_encoder_dir("bert", "tiny")
    identity_dir = make_cross_encoder_dir("bert", "tiny", activation=ACTIVATION_IDENTITY, max_length=64)
    assert sigmoid_dir != identity_dir and sigmoid_dir.name.startswith("cross-bert-tiny-")
    assert make_cross_encoder_dir("bert", "tiny") == sigmoid_dir  # cached: found again under the same name
    assert (sigmoid_dir / "model.safetensors").read_bytes() == (identity_dir / "model.safetensors").read_bytes()
    pairs = PAIRS[:3]  # all within 64 tokens
    logits = cross_encoder(identity_dir).predict(pairs)
    np.testing.assert_allclose(cross_encoder(sigmoid_dir).predict(pairs), 1 / (1 + np.exp(-logits)), atol=1e-6)


@pytest.mark.parametrize("arch", ["bert", "electra"])
def test_max_length_is_model_max_length_and_truncation_is_longest_first(make_cross_encoder_dir, arch):
    model_dir = make_cross_encoder_dir(arch, "tiny", max_length=64)
    assert json.loads((model_dir / "tokenizer_config.json").read_text())["model_max_length"] == 64
    model = cross_encoder(model_dir)
    assert model.max_seq_length == 64
    pairs = [(LONG, LONG), ("what is dense retrieval", LONG), (LONG, "short answer"), ("short", "")]
    features = model.preprocess(pairs)
    direct = model.tokenizer([list(p) for p in pairs], padding=True, truncation="longest_first", return_tensors="pt")
    for name in ("input_ids", "token_type_ids", "attention_mask"):  # the tokenizer call predict makes
        assert features[name].tolist() == direct[name].tolist()
    tokens = features["attention_mask"].sum(1)
    document = (features["token_type_ids"] * features["attention_mask"]).sum(1) - 1  # less its [SEP]
    query = tokens - document - 3  # less [CLS] and the two [SEP]
    assert tokens.tolist() == [64, 64, 64, 4]
    # budget 64 - 3 = 61: a tie splits 30 (query) / 31; a short side is kept whole and the long one gets the rest
    assert query.tolist() == [30, 4, 59, 1] and document.tolist() == [31, 57, 2, 0]
    assert len(cross_encoder(model_dir, max_length=40).preprocess(pairs[:1])["input_ids"][0]) == 40
