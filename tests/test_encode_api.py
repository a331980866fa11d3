"""The sentence-transformers 5/6 encode API vs the live sentence-transformers: prompts (prompt, prompt_name,
default_prompt_name, encode_query / encode_document), similarity / similarity_pairwise by similarity_fn_name,
get_embedding_dimension and output_value="token_embeddings".

Prompts run on the real all-MiniLM-L6-v2 weights in a copy of its directory whose config_sentence_transformers.json
declares prompts and a default prompt; similarity functions on random-init BERT directories declaring each name.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers import SimilarityFunction

import minibert
from minibert.testing import EMBEDDING_ATOL, HIDDEN_ATOL, HIDDEN_RTOL, RAGGED, assert_close, legacy_pooling

pytestmark = pytest.mark.numeric  # also run with NumPy's AVX-512 / AVX2 kernels switched off (Makefile)

PROMPTS = {"query": "query: ", "passage": "passage: ", "classification": "Classify the topic: "}
TEXTS = ["how do I bake bread", "The seasons come from Earth's axial tilt.", "", "how do I bake bread", "Ünïcödé 中文"]


def with_st_config(source: Path, dest: Path, config: dict) -> Path:
    """A copy of a model directory (files linked, not copied) with its own config_sentence_transformers.json."""
    dest.mkdir()
    for path in source.iterdir():
        if path.name != "config_sentence_transformers.json":
            (dest / path.name).symlink_to(path.resolve())
    (dest / "config_sentence_transformers.json").write_text(json.dumps(config))
    return dest


@pytest.fixture(scope="module")
def prompted_dir(real_model_dir, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 declaring prompts and a default prompt ("classification")."""
    config = {"prompts": PROMPTS, "default_prompt_name": "classification"}
    return with_st_config(real_model_dir, tmp_path_factory.mktemp("prompted") / "model", config)


@pytest.fixture(scope="module")
def prompted(prompted_dir):
    return minibert.SentenceTransformer(prompted_dir), Reference(str(prompted_dir), device="cpu")


@pytest.fixture(scope="module")
def plain(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir), Reference(str(real_model_dir), device="cpu")


def assert_same_embeddings(ours, ref, what: str) -> None:
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32, what
    assert_close(ours, np.asarray(ref), atol=EMBEDDING_ATOL, what=what)


# ----------------------------------------------------------------------------------------------------- prompts

# (what, method, keyword arguments)
PROMPT_CALLS = [
    ("the default prompt", "encode", {}),
    ("an explicit prompt", "encode", {"prompt": "Represent this sentence: "}),
    ("an empty prompt beats the default", "encode", {"prompt": ""}),
    ("a prompt name", "encode", {"prompt_name": "passage"}),
    ("the query prompt by name", "encode", {"prompt_name": "query"}),
    ("document, which is '' here", "encode", {"prompt_name": "document"}),
    ("encode_query", "encode_query", {}),
    ("encode_document: 'document', not 'passage'", "encode_document", {}),
    ("encode_query with a prompt name", "encode_query", {"prompt_name": "passage"}),
    ("encode_document with a prompt", "encode_document", {"prompt": "doc: "}),
    ("a single str", "encode_query", {"normalize_embeddings": True}),
]


@pytest.mark.parametrize(("what", "method", "kwargs"), PROMPT_CALLS, ids=[c[0] for c in PROMPT_CALLS])
def test_prompts_apply_as_in_sentence_transformers(prompted, what, method, kwargs):
    ours_model, reference = prompted
    texts = TEXTS[0] if what == "a single str" else TEXTS
    ours = getattr(ours_model, method)(texts, **kwargs)
    ref = getattr(reference, method)(texts, **kwargs)
    assert ours.shape == np.shape(ref)
    assert_same_embeddings(ours, ref, f"{method}({kwargs})")


def test_prompts_and_default_are_read_as_sentence_transformers_reads_them(prompted, plain):
    for ours, reference in (prompted, plain):
        assert ours.prompts == reference.prompts
        assert list(ours.prompts) == list(reference.prompts)  # the order error messages list them in
        assert ours.default_prompt_name == reference.default_prompt_name
    assert plain[0].prompts == {"query": "", "document": ""}


def test_a_prompt_changes_the_embedding_and_is_the_text_prefix(prompted, plain):
    """The default prompt really is applied (the test above could not tell a prompt ignored by both sides)."""
    ours, _ = prompted
    plain_model, _ = plain
    with_default = ours.encode(TEXTS)
    assert np.abs(with_default - ours.encode(TEXTS, prompt="")).max() > 0.05
    prefixed = plain_model.encode([PROMPTS["classification"] + text for text in TEXTS])
    np.testing.assert_array_equal(with_default, prefixed)


def test_prompt_beats_prompt_name_with_a_warning(prompted, caplog):
    ours, reference = prompted
    with caplog.at_level(logging.WARNING, logger="minibert"):
        got = ours.encode(TEXTS, prompt="x: ", prompt_name="query")
    assert "ignoring prompt_name" in caplog.text
    np.testing.assert_array_equal(got, ours.encode(TEXTS, prompt="x: "))
    assert_same_embeddings(got, reference.encode(TEXTS, prompt="x: ", prompt_name="query"), "prompt + prompt_name")


def test_without_prompts_encode_query_and_document_equal_encode(plain):
    ours, reference = plain
    encoded = ours.encode(TEXTS)
    np.testing.assert_array_equal(ours.encode_query(TEXTS), encoded)
    np.testing.assert_array_equal(ours.encode_document(TEXTS), encoded)
    assert_same_embeddings(ours.encode_query(TEXTS), reference.encode_query(TEXTS), "encode_query, no prompts")
    assert_same_embeddings(ours.encode_document(TEXTS), reference.encode_document(TEXTS), "encode_document")


def test_constructor_prompts_win_over_the_directory_s(prompted_dir):
    kwargs = dict(prompts={"query": "Q: ", "extra": "E: "}, default_prompt_name="extra")
    ours = minibert.SentenceTransformer(prompted_dir, **kwargs)
    reference = Reference(str(prompted_dir), device="cpu", **kwargs)
    assert ours.prompts == reference.prompts and ours.default_prompt_name == reference.default_prompt_name == "extra"
    for method in ("encode", "encode_query", "encode_document"):
        ours_out, ref_out = getattr(ours, method)(TEXTS), getattr(reference, method)(TEXTS)
        assert_same_embeddings(ours_out, ref_out, f"{method} with constructor prompts")


def test_the_other_arguments_pass_through_encode_query(prompted):
    ours, reference = prompted
    kwargs = dict(batch_size=2, truncate_dim=64, normalize_embeddings=True)
    got = ours.encode_query(TEXTS, **kwargs)
    assert got.shape == (len(TEXTS), 64)
    assert_same_embeddings(got, reference.encode_query(TEXTS, **kwargs), "encode_query(truncate_dim=64, ...)")
    listed = ours.encode_document(TEXTS, 2, None, False)  # positional: batch_size, show_progress_bar, convert_to_numpy
    assert isinstance(listed, list) and len(listed) == len(TEXTS)


# ----------------------------------------------------------------------------------------- similarity functions


@pytest.fixture(scope="module")
def tiny_dir(make_bert_dir) -> Path:
    return make_bert_dir("tiny")


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_follows_the_declared_function(tiny_dir, tmp_path, name):
    model_dir = with_st_config(tiny_dir, tmp_path / "model", {"similarity_fn_name": name})
    ours, reference = minibert.SentenceTransformer(model_dir), Reference(str(model_dir), device="cpu")
    assert ours.similarity_fn_name == reference.similarity_fn_name == name
    a, b = ours.encode(TEXTS), ours.encode(RAGGED)  # ≤ 25 rows: torch.cdist computes exact differences
    scores = ours.similarity(a, b)
    assert scores.shape == (len(TEXTS), len(RAGGED)) and scores.dtype == np.float32
    assert_close(scores, reference.similarity(a, b).numpy(), atol=1e-6, rtol=1e-6, what=f"similarity ({name})")
    np.testing.assert_array_equal(scores, minibert.util.SIMILARITY_FUNCTIONS[name](a, b))
    pairs = ours.similarity_pairwise(a, b[: len(a)])
    ref_pairs = reference.similarity_pairwise(a, b[: len(a)]).numpy()
    assert_close(pairs, ref_pairs, atol=1e-6, rtol=1e-6, what=f"similarity_pairwise ({name})")


def test_similarity_fn_name_precedence_and_assignment(tiny_dir, tmp_path):
    model_dir = with_st_config(tiny_dir, tmp_path / "model", {"similarity_fn_name": "manhattan"})
    assert minibert.SentenceTransformer(tiny_dir).similarity_fn_name == "cosine"  # nothing declared: the default
    ours = minibert.SentenceTransformer(model_dir, similarity_fn_name=SimilarityFunction.EUCLIDEAN)
    reference = Reference(str(model_dir), device="cpu", similarity_fn_name=SimilarityFunction.EUCLIDEAN)
    assert ours.similarity_fn_name == reference.similarity_fn_name == "euclidean"  # the argument beats the file
    ours.similarity_fn_name = reference.similarity_fn_name = "dot"
    a = ours.encode(TEXTS)
    assert_close(ours.similarity(a, a), reference.similarity(a, a).numpy(), atol=1e-6, rtol=1e-6, what="after dot")
    with pytest.raises(minibert.InputError, match=r"similarity_fn_name 'maxsim' is not supported; pass one of"):
        ours.similarity_fn_name = "maxsim"
    assert ours.similarity_fn_name == "dot"


def test_embedding_dimension_as_sentence_transformers(plain, make_distilbert_dir):
    ours, reference = plain
    assert ours.get_embedding_dimension() == ours.get_sentence_embedding_dimension() == 384
    assert ours.get_embedding_dimension() == reference.get_embedding_dimension()
    model_dir = make_distilbert_dir("tiny", pooling=legacy_pooling("cls", 32))
    assert (
        minibert.SentenceTransformer(model_dir).get_embedding_dimension()
        == Reference(str(model_dir), device="cpu").get_embedding_dimension()
    )


# ------------------------------------------------------------------------------------------- token embeddings

LONG = "Dense retrieval ranks passages by the similarity of their embeddings to the query. " * 40


def assert_same_token_embeddings(ours: list, ref: list, what: str) -> None:
    assert isinstance(ours, list) and len(ours) == len(ref), what
    for i, (o, r) in enumerate(zip(ours, ref, strict=True)):
        assert isinstance(o, np.ndarray) and o.dtype == np.float32, f"{what}[{i}]"
        assert_close(o, r.numpy(), atol=HIDDEN_ATOL, rtol=HIDDEN_RTOL, what=f"{what}[{i}]")


@pytest.mark.parametrize("prompt", [None, "query: "])
def test_token_embeddings_match_sentence_transformers(plain, prompt):
    ours_model, reference = plain
    texts = [*RAGGED, LONG, *TEXTS]  # empty, truncated at max_seq_length, duplicates
    ours = ours_model.encode(texts, output_value="token_embeddings", prompt=prompt, batch_size=4)
    ref = reference.encode(texts, output_value="token_embeddings", prompt=prompt, batch_size=4)
    assert_same_token_embeddings(ours, ref, "token_embeddings")
    lengths = [len(o) for o in ours]
    assert lengths[2] == (2 if prompt is None else 4)  # "": [CLS] [SEP] (+ the prompt's tokens)
    assert max(lengths) == ours_model.max_seq_length  # special tokens included, truncated as the model truncates
    one = ours_model.encode(TEXTS[1], output_value="token_embeddings", prompt=prompt)
    assert isinstance(one, np.ndarray) and one.shape == ours[len(RAGGED) + 2].shape


@pytest.mark.parametrize("arch", ["distilbert", "mpnet"])
def test_token_embeddings_of_other_architectures(arch, make_distilbert_dir, make_mpnet_dir):
    make = make_distilbert_dir if arch == "distilbert" else make_mpnet_dir
    model_dir = make("tiny", pooling=legacy_pooling("mean", 32), normalize=True)
    ours = minibert.SentenceTransformer(model_dir).encode(RAGGED, output_value="token_embeddings")
    ref = Reference(str(model_dir), device="cpu").encode(RAGGED, output_value="token_embeddings")
    assert_same_token_embeddings(ours, ref, f"{arch} token_embeddings")


def test_token_embeddings_ignore_truncate_dim_and_normalize_and_take_precision(plain):
    """As in sentence-transformers: truncate_dim and normalize_embeddings apply to sentence embeddings only, and
    precision quantizes all tokens with one set of ranges."""
    ours_model, reference = plain
    kwargs = dict(output_value="token_embeddings", truncate_dim=8, normalize_embeddings=True, convert_to_numpy=True)
    ours = ours_model.encode(TEXTS, **kwargs)
    assert_same_token_embeddings(ours, reference.encode(TEXTS, **kwargs), "token_embeddings, extra arguments")
    assert ours[0].shape[1] == 384
    floats = ours_model.encode(TEXTS, output_value="token_embeddings")
    for precision in ("int8", "ubinary"):
        quantized = ours_model.encode(TEXTS, output_value="token_embeddings", precision=precision)
        expected = minibert.quantize_embeddings(floats, precision)
        assert all(np.array_equal(q, e) and q.dtype == e.dtype for q, e in zip(quantized, expected, strict=True))


def test_token_embeddings_on_the_triton_backend_equal_the_numpy_ones(real_model_dir):
    """Token embeddings are part of the backend contract: the Triton forward (in the interpreter) gives each text's
    hidden states as the NumPy one does, within the hidden-state bound."""
    pytest.importorskip("triton")
    texts = TEXTS[:3]
    ours = minibert.SentenceTransformer(real_model_dir, backend="triton").encode(texts, output_value="token_embeddings")
    numpy = minibert.SentenceTransformer(real_model_dir).encode(texts, output_value="token_embeddings")
    assert [t.shape for t in ours] == [t.shape for t in numpy] and all(t.dtype == np.float32 for t in ours)
    for i, (a, b) in enumerate(zip(ours, numpy, strict=True)):
        assert_close(a, b, atol=HIDDEN_ATOL, rtol=HIDDEN_RTOL, what=f"token embeddings of text {i}")


def test_prompts_are_part_of_the_cache_identity(prompted_dir, real_model_dir):
    """A default prompt changes what encode() returns, so the embeddings cache key (config values) must differ."""
    from minibert.loading.identity import model_identity

    with_prompts = minibert.SentenceTransformer(prompted_dir).config
    without = minibert.SentenceTransformer(real_model_dir).config
    assert model_identity(with_prompts) != model_identity(without)


# ------------------------------------------------------------------ config_sentence_transformers.json problems


@pytest.mark.parametrize(
    ("config", "error", "pattern"),
    [
        ({"prompts": ["query: "]}, minibert.ModelLoadError, r"'prompts' must map prompt names to prompt texts"),
        ({"prompts": {"query": 3}}, minibert.ModelLoadError, r"'prompts' must map prompt names to prompt texts"),
        ({"default_prompt_name": 3}, minibert.ModelLoadError, r"'default_prompt_name' must be a str or null"),
        (
            {"prompts": {"a": "a: "}, "default_prompt_name": "b"},
            minibert.ModelLoadError,
            r"config_sentence_transformers.json: default_prompt_name 'b' is not one of the prompts \('query', "
            r"'document', 'a'\)",
        ),
        ({"similarity_fn_name": "maxsim"}, minibert.UnsupportedModelError, r"'maxsim' is not supported \(cosine, dot"),
    ],
)
def test_a_bad_config_sentence_transformers_json_is_named(tiny_dir, tmp_path, config, error, pattern):
    model_dir = with_st_config(tiny_dir, tmp_path / "model", config)
    with pytest.raises(error, match=pattern) as info:
        minibert.SentenceTransformer(model_dir)
    assert "\n" not in str(info.value)


def test_a_default_prompt_may_name_a_task_prompt_and_null_prompts_are_empty(tiny_dir, tmp_path):
    config = {"prompts": {"passage": None, "query": "q: "}, "default_prompt_name": "document"}
    model_dir = with_st_config(tiny_dir, tmp_path / "model", config)
    ours, reference = minibert.SentenceTransformer(model_dir), Reference(str(model_dir), device="cpu")
    assert ours.prompts == reference.prompts == {"query": "q: ", "document": "", "passage": ""}
    assert ours.default_prompt_name == reference.default_prompt_name == "document"
    assert_close(ours.encode(TEXTS), reference.encode(TEXTS), atol=1e-6, rtol=1e-5, what="default prompt ''")


def test_pooling_without_the_prompt_tokens_is_refused_clearly(tiny_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_dir, model_dir)
    pooling_config = model_dir / "1_Pooling" / "config.json"
    pooling_config.write_text(json.dumps({**json.loads(pooling_config.read_text()), "include_prompt": False}))
    with pytest.raises(minibert.UnsupportedModelError, match=r"include_prompt=false .* is not supported; minibert "):
        minibert.SentenceTransformer(model_dir)
