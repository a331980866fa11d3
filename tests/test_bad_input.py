"""Bad arguments to encode(): each gets an empty result, a TypeError/ValueError that says what to do, or truncation."""

from __future__ import annotations

import time

import numpy as np
import pytest

import minibert


@pytest.fixture(scope="module")
def model(real_model_dir):
    return minibert.SentenceTransformer(real_model_dir)


def test_empty_list_gives_an_empty_matrix(model):
    out = model.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    assert model.encode([], truncate_dim=16).shape == (0, 16)


@pytest.mark.parametrize("bad", [None, 42, b"bytes are not text", {"text": "a dict"}])
def test_non_text_input_is_a_type_error(model, bad):
    with pytest.raises(TypeError, match="str") as info:
        model.encode(bad)
    assert isinstance(info.value, minibert.MinibertError)


@pytest.mark.parametrize("bad_item", [None, 3, b"x", ["nested"]])
def test_non_str_item_is_a_type_error_naming_its_index(model, bad_item):
    with pytest.raises(TypeError, match=r"sentences\[2\]"):
        model.encode(["fine", "also fine", bad_item, "never reached"])


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8", True])
def test_bad_batch_size_is_a_value_error(model, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(["a"], batch_size=batch_size)


@pytest.mark.parametrize("truncate_dim", [0, -3])
def test_bad_truncate_dim_is_a_value_error(model, truncate_dim):
    with pytest.raises(ValueError, match="truncate_dim"):
        model.encode(["a"], truncate_dim=truncate_dim)


def test_a_one_megabyte_string_is_truncated_finite_and_fast(model):
    text = "lorem ipsum dolor sit amet " * 40_000  # ≈ 1.08 MB
    assert len(text) > 1_000_000
    start = time.perf_counter()
    embedding = model.encode(text)
    elapsed = time.perf_counter() - start
    assert embedding.shape == (384,) and np.isfinite(embedding).all()
    assert model.tokenize([text]).input_ids.shape == (1, model.max_seq_length)
    # A correctness guard against quadratic work, not a benchmark: seconds, not minutes.
    assert elapsed < 20, f"encoding a 1 MB string took {elapsed:.1f} s"
    # truncation keeps the head: the embedding equals that of a shorter text with the same first 256 tokens
    np.testing.assert_allclose(embedding, model.encode("lorem ipsum dolor sit amet " * 100), atol=1e-6)


def test_numpy_array_and_tuple_of_strings_are_accepted(model):
    texts = ["first", "second", "third"]
    expected = model.encode(texts)
    np.testing.assert_allclose(model.encode(np.array(texts)), expected, atol=1e-6)
    np.testing.assert_allclose(model.encode(tuple(texts)), expected, atol=1e-6)


def test_cuda_without_a_gpu_is_refused_clearly(real_model_dir):
    with pytest.raises(minibert.BackendUnavailableError, match=r"no CUDA GPU.*use device='cpu'"):
        minibert.SentenceTransformer(real_model_dir, device="cuda")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "onnx"}, "backend='onnx' is not one of numpy, triton"),
        ({"backend": "numpy", "device": "cuda"}, "the NumPy backend runs on device='cpu'"),
        ({"dtype": "float16"}, "the NumPy backend runs on device='cpu' in float32"),
    ],
)
def test_bad_backend_arguments(real_model_dir, kwargs, message):
    with pytest.raises(minibert.InputError, match=message):
        minibert.SentenceTransformer(real_model_dir, **kwargs)


def test_progress_bar_follows_the_flag(model, capsys):
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=True)
    assert "3/3" in capsys.readouterr().err
    model.encode(["a", "b", "c"], batch_size=1, show_progress_bar=False)
    assert capsys.readouterr().err == ""
