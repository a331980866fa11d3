"""Broken or unsupported model directories: each is a minibert exception naming the file and the problem."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert import ModelLoadError, ModelNotFoundError, UnsupportedModelError


@pytest.fixture
def tiny(make_bert_dir, tmp_path) -> Path:
    """A private copy of the tiny random-init model, free to break."""
    target = tmp_path / "tiny"
    shutil.copytree(make_bert_dir("tiny"), target)
    return target


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does-not-exist"):
        minibert.SentenceTransformer(tmp_path / "does-not-exist")


def test_missing_config_json(tiny):
    (tiny / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json: file is missing"):
        minibert.SentenceTransformer(tiny)


def test_config_json_that_is_not_json(tiny):
    (tiny / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json: not valid JSON"):
        minibert.SentenceTransformer(tiny)


def test_corrupt_safetensors(tiny):
    (tiny / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a readable safetensors file"):
        minibert.SentenceTransformer(tiny)


def test_truncated_safetensors(tiny):
    path = tiny / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        minibert.SentenceTransformer(tiny)


def test_tensor_shape_that_does_not_match_config(tiny):
    _edit_json(tiny / "config.json", intermediate_size=40)
    with pytest.raises(ModelLoadError, match=r"intermediate\.dense\.weight' has shape \[37, 32\].*\[40, 32\]"):
        minibert.SentenceTransformer(tiny)


def test_missing_tensor(tiny):
    _edit_json(tiny / "config.json", num_hidden_layers=3)
    with pytest.raises(ModelLoadError, match=r"'encoder\.layer\.2\.attention\.self\.query\.weight' is missing"):
        minibert.SentenceTransformer(tiny)


def test_nan_weights_are_caught_at_load_with_the_tensor_name(tiny):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tiny / "model.safetensors")
    tensors["encoder.layer.1.output.dense.bias"][3] = np.nan
    save_file(tensors, tiny / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"encoder\.layer\.1\.output\.dense\.bias' contains NaN"):
        minibert.SentenceTransformer(tiny)


def test_heads_that_do_not_divide_hidden_size(tiny):
    _edit_json(tiny / "config.json", num_attention_heads=5)
    with pytest.raises(ModelLoadError, match="not divisible by num_attention_heads 5"):
        minibert.SentenceTransformer(tiny)


def test_zero_layers(tiny):
    _edit_json(tiny / "config.json", num_hidden_layers=0)
    with pytest.raises(ModelLoadError, match="num_hidden_layers"):
        minibert.SentenceTransformer(tiny)


def test_unknown_architecture_lists_what_is_supported(tiny):
    (tiny / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 32, "n_layer": 2}))
    with pytest.raises(
        UnsupportedModelError, match=r"'gpt2' is not supported; minibert supports bert, distilbert, mpnet"
    ):
        minibert.SentenceTransformer(tiny)


def test_unsupported_module_is_named(tiny):
    modules = json.loads((tiny / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_LSTM", "type": "sentence_transformers.models.LSTM"})
    (tiny / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match=r"sentence_transformers\.models\.LSTM"):
        minibert.SentenceTransformer(tiny)


class _Trap:
    """Unpickling this would create a marker file next to the checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pytorch_model_bin_only_is_refused_and_never_unpickled(tiny):
    marker = tiny / "UNPICKLED"
    (tiny / "model.safetensors").unlink()
    (tiny / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(ModelLoadError, match="safetensors only"):
        minibert.SentenceTransformer(tiny)
    assert not marker.exists()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoints_are_upcast_exactly(tiny, dtype):
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(getattr(torch, dtype)) for k, v in load_file(tiny / "model.safetensors").items()}
    save_file(tensors, tiny / "model.safetensors")
    model = minibert.SentenceTransformer(tiny)
    expected = tensors["encoder.layer.0.attention.self.key.weight"].float().numpy().T
    np.testing.assert_array_equal(model.weights.layers[0].qkv_weight[:, 32:64], expected)
    np.testing.assert_array_equal(
        model.weights.word_embeddings, tensors["embeddings.word_embeddings.weight"].float().numpy()
    )
    assert model.weights.word_embeddings.dtype == np.float32
    assert np.isfinite(model.encode(["half precision weights"])).all()
