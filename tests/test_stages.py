"""The facade's public stages — prepare, pack, embed, finish — are encode's own code, so every front end that calls
them gets exactly encode's rows and every check encode makes; and the backend is pluggable."""

from __future__ import annotations

import numpy as np
import pytest

import minibert
from minibert.encoder.cpu import NumpyEncoder
from minibert.encoder.pooling import normalize
from minibert.testing import EMBEDDING_ATOL, HIDDEN_ATOL, HIDDEN_RTOL, assert_close

TEXTS = ["how do I bake bread", "", "The seasons come from Earth's axial tilt. " * 3, "Ünïcödé 中文", "x " * 400]


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir, prompts={"query": "query: "})


def test_encode_is_the_loop_over_the_stages(model):
    """encode's order (longest first), batches and prompt, rebuilt from the public stages: bitwise its rows."""
    batch_size = 2
    order = np.argsort([-len("query: " + t) for t in TEXTS], kind="stable")
    rows = np.empty((len(TEXTS), 100), dtype=np.float32)
    for start in range(0, len(TEXTS), batch_size):
        chosen = order[start : start + batch_size]
        prepared = model.prepare([TEXTS[i] for i in chosen], prompt_name="query")
        rows[chosen] = model.finish(model.embed(model.pack(prepared.token_ids)), dimensions=100, normalize=True)
    expected = model.encode(TEXTS, batch_size=batch_size, prompt_name="query", truncate_dim=100,
                            normalize_embeddings=True)  # fmt: skip
    np.testing.assert_array_equal(rows, expected)


def test_prepare_makes_the_checks_encode_makes_naming_the_callers_field(model):
    for bad, error, message in (
        ("\ud800", minibert.InputError, r"input\[1\] contains a lone surrogate \(U\+D800 at character 0\)"),
        (None, minibert.InputTypeError, r"input\[1\] is None, expected str"),
        (b"bytes", minibert.InputTypeError, r"input\[1\] is bytes, expected str; decode it first"),
    ):
        with pytest.raises(error, match=message):
            model.prepare(["fine", bad], field="input")
        with pytest.raises(error, match=message.replace("input", "sentences")):
            model.encode(["fine", bad])
    with pytest.raises(minibert.InputError, match="prompt_name 'nope' is not one of this model's prompts"):
        model.prepare(["fine"], prompt_name="nope")


def test_prepare_says_which_inputs_were_cut(model):
    limit = model.max_seq_length
    words = "word " * (limit - 2)  # exactly max_seq_length tokens with [CLS] and [SEP]
    long_path = "word " * (20 * limit)  # past 16 · max_seq_length characters: tokenized from a prefix
    prepared = model.prepare(["short", words, words + "word", long_path])
    assert [len(ids) for ids in prepared.token_ids] == [3, limit, limit, limit]
    assert prepared.truncated == [False, False, True, True]
    assert prepared.tokens == 3 + 3 * limit and len(prepared) == 4


def test_prepare_token_ids_wraps_checks_and_cuts_them(model):
    ids = model.prepare(["hello world"]).token_ids[0][1:-1]  # the word pieces, without [CLS] and [SEP]
    prepared = model.prepare_token_ids([ids, [1037] * 600])
    assert prepared.token_ids[0] == model.prepare(["hello world"]).token_ids[0]
    assert len(prepared.token_ids[1]) == model.max_seq_length and prepared.truncated == [False, True]
    with pytest.raises(minibert.InputError, match=r"input\[1\] holds token id 30522, outside this model's vocab"):
        model.prepare_token_ids([ids, [5, 30522]])
    with pytest.raises(minibert.InputTypeError, match=r"inputs\[0\] holds True; token ids are integers"):
        model.prepare_token_ids([[5, True]], field="inputs")


def test_embed_gives_rows_before_normalize_on_request(model):
    batch = model.tokenize(TEXTS)
    raw = model.embed(batch, normalize=False)
    np.testing.assert_array_equal(normalize(raw), model.embed(batch))  # the model's Normalize, the same function
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.1  # really before Normalize
    np.testing.assert_array_equal(model.finish(raw, dimensions=1000), raw)  # wider than the rows: all of them
    for dimensions, error in ((0, minibert.InputError), (1.5, minibert.InputTypeError)):
        with pytest.raises(error, match="dimensions must be a positive integer"):
            model.finish(raw, dimensions=dimensions)


def test_the_triton_backend_gives_rows_before_normalize_too(real_model_dir, model):
    """The Triton backend fuses Normalize into its pooling kernel only when asked: its pre-Normalize rows are the
    NumPy backend's (fp32 bound), so the server can run it."""
    pytest.importorskip("triton")
    triton = minibert.SentenceTransformer(real_model_dir, backend="triton")
    batch = triton.tokenize(TEXTS[:3])
    assert_close(triton.embed(batch, normalize=False), model.embed(batch, normalize=False), atol=HIDDEN_ATOL,
                 rtol=HIDDEN_RTOL, what="Triton rows before Normalize")  # fmt: skip
    assert_close(triton.embed(batch), model.embed(batch), atol=EMBEDDING_ATOL, what="Triton normalized rows")


class CountingEncoder:
    """A backend that wraps the NumPy one and counts its batches (what the profiler's wrapper does)."""

    def __init__(self, config, weights) -> None:
        self.inner = NumpyEncoder(config, weights, threads=1)
        self.batches = 0

    def embed(self, batch, normalize_rows):
        self.batches += 1
        return self.inner.embed(batch, normalize_rows)

    def token_embeddings(self, batch):
        self.batches += 1
        return self.inner.token_embeddings(batch)


def test_the_backend_is_pluggable(real_model_dir, model):
    custom = minibert.SentenceTransformer(real_model_dir, encoder=CountingEncoder)
    assert custom.backend == "custom"
    assert_close(custom.encode(TEXTS, batch_size=2), model.encode(TEXTS, batch_size=2), atol=1e-6, what="custom")
    assert custom.encoder.batches == 3
    assert minibert.SentenceTransformer(real_model_dir, threads=1).encoder.threads == 1
    for kwargs, message in (
        ({"encoder": CountingEncoder, "threads": 2}, "encoder= replaces the backend"),
        ({"encoder": CountingEncoder, "backend": "numpy"}, "encoder= replaces the backend"),
        ({"backend": "triton", "threads": 2}, "threads= sets the NumPy backend's forward threads"),
    ):
        with pytest.raises(minibert.InputError, match=message):
            minibert.SentenceTransformer(real_model_dir, **kwargs)
    with pytest.raises(minibert.InputError, match="threads must be a positive integer"):
        minibert.SentenceTransformer(real_model_dir, threads=0)
