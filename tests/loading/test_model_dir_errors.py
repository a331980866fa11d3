"""Broken or unsupported model directories: each is a minibert exception naming the file and the problem.

Every case starts from a private copy of the tiny random-init BERT directory, breaks one thing, and checks
the exception's type (a :class:`minibert.MinibertError` subclass), that the message names the broken file
by its full path, and that it says what is wrong. Cases that could hang (symlink loops, FIFOs) run in a
thread with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import minibert
from minibert import InputError, MinibertError, ModelLoadError, ModelNotFoundError, UnsupportedModelError

DEADLINE_S = 30


@pytest.fixture
def tiny(make_bert_dir, tmp_path) -> Path:
    """A private copy of the tiny random-init model (BERT 2 × 32, intermediate 37), free to break."""
    target = tmp_path / "tiny"
    shutil.copytree(make_bert_dir("tiny"), target)
    return target


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _load_error(model_dir: Path | str, error: type[MinibertError], named: Path | str, problem: str) -> str:
    """Load `model_dir` (within DEADLINE_S), expect `error`, check the message names `named` and matches `problem`."""
    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            minibert.SentenceTransformer(model_dir).encode(["a sentence"])
        except BaseException as exc:  # handed to the test thread
            outcome["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), f"loading {model_dir} did not finish within {DEADLINE_S} s (a hang)"
    exc = outcome.get("exc")
    assert exc is not None, f"loading {model_dir} raised nothing; expected {error.__name__}"
    assert isinstance(exc, error), f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
    message = str(exc)
    assert str(named) in message, f"the message does not name {named}: {message}"
    assert re.search(problem, message), f"the message does not say {problem!r}: {message}"
    return message


# ----------------------------------------------------------------------------- missing or empty files


@pytest.mark.parametrize(
    ("remove", "named", "problem"),
    [
        (["config.json"], "config.json", r"file is missing"),
        (["model.safetensors"], "model.safetensors", r"file is missing"),
        (["1_Pooling/config.json"], "1_Pooling/config.json", r"file is missing"),
        (["tokenizer.json", "vocab.txt"], "", r"neither tokenizer\.json nor vocab\.txt is present"),
    ],
)
def test_missing_file(tiny, remove, named, problem):
    for name in remove:
        (tiny / name).unlink()
    _load_error(tiny, ModelLoadError, tiny / named if named else tiny, problem)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("config.json", r"file is empty \(0 bytes\), expected JSON"),
        ("tokenizer.json", r"file is empty \(0 bytes\), expected JSON"),
        ("modules.json", r"file is empty \(0 bytes\), expected JSON"),
        ("1_Pooling/config.json", r"file is empty \(0 bytes\), expected JSON"),
        ("model.safetensors", r"file is empty \(0 bytes\), expected a safetensors file"),
    ],
)
def test_empty_file(tiny, name, problem):
    (tiny / name).write_bytes(b"")
    _load_error(tiny, ModelLoadError, tiny / name, problem)


def test_empty_vocab_txt_without_tokenizer_json(tiny):
    (tiny / "tokenizer.json").unlink()
    (tiny / "vocab.txt").write_bytes(b"")
    _load_error(tiny, ModelLoadError, tiny / "vocab.txt", r"file is empty")


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("config.json", "{not json", r"not valid JSON"),
        ("config.json", "[1, 2]", r"expected a JSON object, found list"),
        ("tokenizer_config.json", "[1]", r"expected a JSON object, found list"),
        ("modules.json", '{"idx": 0}', r"expected a JSON list of module objects"),
    ],
)
def test_malformed_json(tiny, name, text, problem):
    (tiny / name).write_text(text)
    _load_error(tiny, ModelLoadError, tiny / name, problem)


# ------------------------------------------------------------------------ truncated or lying safetensors


def _split(path: Path) -> tuple[dict, bytes]:
    """(header, data section) of a safetensors file."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _join(path: Path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_garbage_safetensors(tiny):
    (tiny / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    _load_error(tiny, ModelLoadError, tiny / "model.safetensors", r"not a readable safetensors file")


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("in the length", r"3 bytes, fewer than the 8-byte header length \(truncated\)"),
        ("mid-header", r"header length is \d+ bytes, but \d+ bytes follow it \(the file is truncated"),
        ("mid-data", r"past the end of the data section .*truncated"),
        ("last byte", r"past the end of the data section .*truncated"),
    ],
)
def test_truncated_safetensors(tiny, where, problem):
    path = tiny / "model.safetensors"
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    cut = {"in the length": 3, "mid-header": 8 + n // 2, "mid-data": 8 + n + (len(data) - 8 - n) // 2}
    path.write_bytes(data[: cut.get(where, len(data) - 1)])
    _load_error(tiny, ModelLoadError, path, problem)


BIAS = "encoder.layer.0.output.dense.bias"  # [32] float32


def _lie_past_end(header: dict, data: bytes) -> bytes:
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    header[last]["data_offsets"][1] += 400
    return data


def _lie_overlap(header: dict, data: bytes) -> bytes:
    header[BIAS]["data_offsets"] = [o - 64 for o in header[BIAS]["data_offsets"]]
    return data


def _lie_gap(header: dict, data: bytes) -> bytes:
    del header[BIAS]
    return data


def _lie_trailing_bytes(header: dict, data: bytes) -> bytes:
    return data + b"\x00" * 16


def _lie_dtype_size(header: dict, data: bytes) -> bytes:
    header[BIAS]["dtype"] = "F16"
    return data


def _lie_shape(header: dict, data: bytes) -> bytes:
    header[BIAS]["shape"] = [33]
    return data


def _lie_begin_after_end(header: dict, data: bytes) -> bytes:
    header[BIAS]["data_offsets"].reverse()
    return data


def _lie_negative_dim(header: dict, data: bytes) -> bytes:
    header[BIAS]["shape"] = [-32]
    return data


@pytest.mark.parametrize(
    ("lie", "problem"),
    [
        (_lie_past_end, r"data_offsets \[\d+, \d+\], past the end of the data section"),
        (_lie_overlap, rf"'{BIAS}' overlap"),
        (_lie_gap, r"bytes \[\d+, \d+\) of the data section belong to no tensor"),
        (_lie_trailing_bytes, r"trailing bytes after the last tensor"),
        (_lie_dtype_size, rf"'{BIAS}': dtype F16 × shape \[32\] is 64 bytes, but .* span 128 bytes"),
        (_lie_shape, rf"'{BIAS}': dtype F32 × shape \[33\] is 132 bytes, but .* span 128 bytes"),
        (_lie_begin_after_end, rf"'{BIAS}' has data_offsets \[\d+, \d+\]: begin is after end"),
        (_lie_negative_dim, rf"'{BIAS}' has shape \[-32\], expected a list of non-negative integers"),
    ],
    ids=lambda v: v.__name__.removeprefix("_lie_") if callable(v) else None,
)
def test_lying_safetensors_header(tiny, lie, problem):
    path = tiny / "model.safetensors"
    header, data = _split(path)
    _join(path, header, lie(header, data))
    _load_error(tiny, ModelLoadError, path, problem)


def test_header_that_is_not_json(tiny):
    path = tiny / "model.safetensors"
    _, data = _split(path)
    path.write_bytes(struct.pack("<Q", 6) + b"{nope}" + data)
    _load_error(tiny, ModelLoadError, path, r"6-byte header is not valid JSON")


def test_non_float_tensor_is_refused_by_name(tiny):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tiny / "model.safetensors")
    tensors[BIAS] = np.arange(32, dtype=np.int64)
    save_file(tensors, tiny / "model.safetensors")
    _load_error(tiny, ModelLoadError, tiny / "model.safetensors", rf"'{BIAS}' has dtype I64; .*float weights only")


def test_unused_integer_buffer_is_fine(tiny):
    """Older BERT checkpoints carry an int64 ``embeddings.position_ids`` buffer: not a weight, not an error."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tiny / "model.safetensors")
    tensors["embeddings.position_ids"] = np.arange(512, dtype=np.int64)[None]
    save_file(tensors, tiny / "model.safetensors")
    assert minibert.SentenceTransformer(tiny).encode("fine").shape == (32,)


# ------------------------------------------------------------------------------------ NaN / Inf weights


@pytest.mark.parametrize(
    ("name", "index", "value", "dtype", "counts"),
    [
        ("encoder.layer.1.output.dense.bias", (3,), np.nan, np.float32, "1 NaN and 0 Inf"),
        ("encoder.layer.0.attention.self.key.weight", (5, 7), np.inf, np.float32, "0 NaN and 1 Inf"),
        ("embeddings.LayerNorm.weight", (0,), -np.inf, np.float16, "0 NaN and 1 Inf"),
        ("embeddings.word_embeddings.weight", (101, 2), np.nan, np.float16, "1 NaN and 0 Inf"),
    ],
)
def test_non_finite_weights_are_caught_at_load_with_the_tensor_name(tiny, name, index, value, dtype, counts):
    from safetensors.numpy import load_file, save_file

    tensors = {k: v.astype(dtype) for k, v in load_file(tiny / "model.safetensors").items()}
    tensors[name][index] = value
    save_file(tensors, tiny / "model.safetensors")
    first = re.escape(str(list(index)))
    _load_error(tiny, ModelLoadError, tiny / "model.safetensors", rf"'{re.escape(name)}' contains {counts}.*{first}")


def test_float64_weights_that_overflow_float32_are_caught(tiny):
    from safetensors.numpy import load_file, save_file

    tensors = {k: v.astype(np.float64) for k, v in load_file(tiny / "model.safetensors").items()}
    tensors[BIAS][0] = 1e300
    save_file(tensors, tiny / "model.safetensors")
    _load_error(
        tiny, ModelLoadError, tiny / "model.safetensors", rf"'{BIAS}' contains 0 NaN and 1 Inf values as float32"
    )


# ---------------------------------------------------------------------------------------- wrong shapes


def test_tensor_shape_that_does_not_match_config(tiny):
    _edit_json(tiny / "config.json", intermediate_size=40)
    _load_error(
        tiny,
        ModelLoadError,
        tiny / "model.safetensors",
        r"intermediate\.dense\.weight' has shape \[37, 32\].*\[40, 32\]",
    )


def test_transposed_tensor_in_the_checkpoint(tiny):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(tiny / "model.safetensors")
    name = "encoder.layer.1.intermediate.dense.weight"
    tensors[name] = np.ascontiguousarray(tensors[name].T)
    save_file(tensors, tiny / "model.safetensors")
    _load_error(
        tiny,
        ModelLoadError,
        tiny / "model.safetensors",
        rf"'{name}' has shape \[32, 37\], but the config implies \[37, 32\]",
    )


def test_missing_tensor(tiny):
    _edit_json(tiny / "config.json", num_hidden_layers=3)
    _load_error(
        tiny,
        ModelLoadError,
        tiny / "model.safetensors",
        r"'encoder\.layer\.2\.attention\.self\.query\.weight' is missing",
    )


# ------------------------------------------------------------------------- config.json: impossible numbers


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"num_attention_heads": 5}, r"hidden_size 32 is not divisible by num_attention_heads 5"),
        ({"num_hidden_layers": 0}, r"'num_hidden_layers' must be a positive integer, found 0"),
        ({"hidden_size": -32}, r"'hidden_size' must be a positive integer, found -32"),
        ({"intermediate_size": 0}, r"'intermediate_size' must be a positive integer, found 0"),
        ({"hidden_size": 32.5}, r"'hidden_size' must be a positive integer, found 32\.5"),
        ({"num_attention_heads": "4"}, r"'num_attention_heads' must be a positive integer, found '4'"),
        ({"vocab_size": True}, r"'vocab_size' must be a positive integer, found True"),
        ({"vocab_size": None}, r"'vocab_size' must be a positive integer, found None"),
        ({"layer_norm_eps": -1e-12}, r"'layer_norm_eps' must be a positive number"),
        ({"pad_token_id": 99999}, r"'pad_token_id' must be an integer id below vocab_size 30522, found 99999"),
        ({"max_position_embeddings": 1}, r"'max_position_embeddings' 1 leaves room for fewer than 2 tokens"),
        ({"hidden_act": "swish"}, r"hidden_act 'swish' is not supported"),
        ({"model_type": "gpt2"}, r"'gpt2' is not supported; minibert supports bert, distilbert, electra, mpnet"),
    ],
    ids=lambda v: "-".join(f"{k}={v}" for k, v in v.items()) if isinstance(v, dict) else None,
)
def test_impossible_config(tiny, changes, problem):
    _edit_json(tiny / "config.json", **changes)
    error = UnsupportedModelError if "not supported" in problem else ModelLoadError
    _load_error(tiny, error, tiny / "config.json", problem)


@pytest.mark.parametrize("key", ["vocab_size", "hidden_size", "num_hidden_layers", "model_type"])
def test_config_missing_a_required_key(tiny, key):
    config = json.loads((tiny / "config.json").read_text())
    del config[key]
    (tiny / "config.json").write_text(json.dumps(config))
    error = UnsupportedModelError if key == "model_type" else ModelLoadError
    problem = r"has no 'model_type'" if key == "model_type" else rf"required key '{key}' is missing"
    _load_error(tiny, error, tiny / "config.json", problem)


@pytest.mark.parametrize(
    ("pooling", "problem"),
    [
        ({"pooling_mode": 5}, r"'pooling_mode' must be a mode name or a non-empty list"),
        ({"pooling_mode": []}, r"'pooling_mode' must be a mode name or a non-empty list"),
        ({"pooling_mode": "attention"}, r"pooling mode 'attention' is not supported"),
    ],
)
def test_bad_pooling_config(tiny, pooling, problem):
    (tiny / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    error = UnsupportedModelError if "not supported" in problem else ModelLoadError
    _load_error(tiny, error, tiny / "1_Pooling" / "config.json", problem)


def test_bad_model_max_length(tiny):
    (tiny / "sentence_bert_config.json").unlink()  # so max_seq_length comes from tokenizer_config.json
    _edit_json(tiny / "tokenizer_config.json", model_max_length="long")
    _load_error(tiny, ModelLoadError, tiny / "tokenizer_config.json", r"'model_max_length' must be a number")


# ---------------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("kind", ["Unigram", "BPE", "WordLevel", "MadeUpModel", None])
def test_unknown_tokenizer_type(tiny, kind):
    tokenizer = json.loads((tiny / "tokenizer.json").read_text())
    tokenizer["model"]["type"] = kind
    (tiny / "tokenizer.json").write_text(json.dumps(tokenizer))
    _load_error(
        tiny,
        UnsupportedModelError,
        tiny / "tokenizer.json",
        rf"tokenizer model type {kind!r} is not supported; .*WordPiece",
    )


def test_tokenizer_without_a_model(tiny):
    (tiny / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    _load_error(tiny, ModelLoadError, tiny / "tokenizer.json", r"has no 'model' object")


def test_tokenizer_larger_than_the_embedding_table(tiny):
    """Ids past the word-embedding table would be an IndexError inside the forward pass at encode time."""
    _edit_json(tiny / "config.json", vocab_size=1000)
    _load_error(tiny, ModelLoadError, tiny / "tokenizer.json", r"has id 30521, but config\.json's vocab_size is 1000")


def test_vocab_txt_larger_than_the_embedding_table(tiny):
    (tiny / "tokenizer.json").unlink()
    _edit_json(tiny / "config.json", vocab_size=1000)
    _load_error(tiny, ModelLoadError, tiny / "vocab.txt", r"has id 30521, but config\.json's vocab_size is 1000")


# ------------------------------------------------------------------------------------------ modules.json


@pytest.mark.parametrize(
    ("index", "module_type"),
    [
        (2, "sentence_transformers.models.LSTM"),
        (1, "sentence_transformers.models.CNN"),
        (0, "sentence_transformers.models.WordEmbeddings"),
        (2, "my_package.CustomHead"),
    ],
)
def test_unsupported_module_is_named(tiny, index, module_type):
    modules = json.loads((tiny / "modules.json").read_text())
    module = {"idx": index, "name": str(index), "path": f"{index}_X", "type": module_type}
    modules[index : index + 1] = [module]
    (tiny / "modules.json").write_text(json.dumps(modules))
    _load_error(
        tiny, UnsupportedModelError, tiny / "modules.json", rf"module {index} of type '{re.escape(module_type)}'"
    )


def test_modules_without_pooling(tiny):
    modules = json.loads((tiny / "modules.json").read_text())
    (tiny / "modules.json").write_text(json.dumps(modules[:1]))
    _load_error(tiny, UnsupportedModelError, tiny / "modules.json", r"no Pooling module")


@pytest.mark.parametrize("module_path", ["../1_Pooling", "/etc", "1_Pooling/../../x"])
def test_module_path_outside_the_model_directory(tiny, module_path):
    modules = json.loads((tiny / "modules.json").read_text())
    modules[1]["path"] = module_path
    (tiny / "modules.json").write_text(json.dumps(modules))
    _load_error(tiny, ModelLoadError, tiny / "modules.json", rf"module 1 has path '{re.escape(module_path)}'.*inside")


# ---------------------------------------------------------------------------- pytorch_model.bin only


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
    pickle.loads(pickle.dumps(_Trap(tiny / "TRAP_WORKS")))  # the trap is armed: unpickling does create the file
    assert (tiny / "TRAP_WORKS").exists()
    _load_error(tiny, ModelLoadError, tiny / "model.safetensors", r"has only pytorch_model\.bin; .*safetensors only")
    assert not marker.exists()


def test_dense_module_with_pytorch_model_bin_only(tiny):
    modules = json.loads((tiny / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tiny / "modules.json").write_text(json.dumps(modules))
    dense = tiny / "2_Dense"
    dense.mkdir()
    (dense / "config.json").write_text(json.dumps({"in_features": 32, "out_features": 8, "bias": True}))
    marker = tiny / "UNPICKLED"
    (dense / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    _load_error(tiny, ModelLoadError, dense / "model.safetensors", r"has only pytorch_model\.bin")
    assert not marker.exists()


# ------------------------------------------------- names with '..' or an absolute path where a hub id is expected


@pytest.fixture
def caches(tmp_path, monkeypatch, make_bert_dir) -> Path:
    """MINIBERT_HOME with a complete tiny model as sentence-transformers/all-MiniLM-L6-v2, plus decoys at the
    places a name with '..' would reach if it were joined onto a cache directory; cwd = tmp_path/cwd."""
    home = tmp_path / "home"
    shutil.copytree(make_bert_dir("tiny"), home / "models" / "sentence-transformers--all-MiniLM-L6-v2")
    for decoy in (home / "escape", home / "models" / "escape", tmp_path / "hf" / "escape", tmp_path / "escape"):
        shutil.copytree(make_bert_dir("tiny"), decoy)
    (tmp_path / "cwd" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd" / "sub")
    monkeypatch.setenv("MINIBERT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.mark.parametrize(
    ("name", "error", "problem"),
    [
        ("../escape", ModelNotFoundError, r"does not exist"),
        ("org/../../escape", ModelNotFoundError, r"does not exist"),
        ("../all-MiniLM-L6-v2", ModelNotFoundError, r"does not exist"),
        ("/all-MiniLM-L6-v2", ModelNotFoundError, r"does not exist"),
        ("/no/such/escape", ModelNotFoundError, r"does not exist"),
        ("sentence-transformers/..", InputError, r"is not a model id"),
        ("models/..", InputError, r"is not a model id"),
        ("..escape/x", InputError, r"is not a model id"),
    ],
)
def test_dotdot_or_absolute_name_is_never_resolved_into_a_cache(caches, name, error, problem):
    with pytest.raises(error, match=problem) as info:
        minibert.load(name)
    assert name in str(info.value) or str(Path(name).expanduser()) in str(info.value)
    assert isinstance(info.value, MinibertError)


def test_the_cache_still_works_by_name(caches):
    """Control for the test above: the same caches do resolve a proper name."""
    model = minibert.load("all-MiniLM-L6-v2")
    assert model.model_dir == caches / "models" / "sentence-transformers--all-MiniLM-L6-v2"


# ------------------------------------------------------------------------- symlink loops, FIFOs, dangling links


@pytest.mark.parametrize("shape", ["self", "two-cycle", "through"])
def test_model_directory_symlink_loop(tmp_path, shape):
    a, b = tmp_path / "loop-a", tmp_path / "loop-b"
    os.symlink(a if shape == "self" else b, a)
    if shape != "self":
        os.symlink(a, b)
    target = a / "model" if shape == "through" else a
    _load_error(target, ModelNotFoundError, target, r"symbolic link loop")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "modules.json", "tokenizer.json", "1_Pooling"])
def test_file_symlink_loop(tiny, name):
    path = tiny / name
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    os.symlink(path.name, path)  # points at itself
    named = path / "config.json" if name == "1_Pooling" else path
    problem = r"Too many levels of symbolic links|symbolic link loop"
    _load_error(tiny, ModelLoadError, named, problem)


def test_dangling_symlink(tiny):
    path = tiny / "model.safetensors"
    path.unlink()
    os.symlink("blobs/0123abcd", path)
    _load_error(tiny, ModelLoadError, path, r"symbolic link to 'blobs/0123abcd', which does not exist")


def test_dangling_model_directory_symlink(tmp_path):
    link = tmp_path / "model"
    os.symlink(tmp_path / "gone", link)
    _load_error(link, ModelNotFoundError, link, r"symbolic link to .*gone.*, which does not exist")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json"])
def test_fifo_instead_of_a_file_does_not_hang(tiny, name):
    path = tiny / name
    path.unlink()
    os.mkfifo(path)
    try:
        _load_error(tiny, ModelLoadError, path, r"is not a regular file \(a FIFO")
    finally:  # release a reader stuck in open() if the handling is broken
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_directory_instead_of_a_file(tiny):
    (tiny / "config.json").unlink()
    (tiny / "config.json").mkdir()
    _load_error(tiny, ModelLoadError, tiny / "config.json", r"is a directory, expected a file")


# --------------------------------------------------------------------------------------- what still loads


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


def test_tensors_at_unaligned_offsets_are_copied_aligned(tiny, tmp_path):
    """A header padded to an odd length puts every tensor at an offset that is not a multiple of 4: those are
    read into fresh, aligned arrays (BLAS wants aligned floats), not mapped in place, with the same values."""
    aligned = minibert.SentenceTransformer(tiny)
    header, data = _split(tiny / "model.safetensors")
    raw = json.dumps(header).encode()
    raw += b" " * ((2 - 8 - len(raw)) % 4)  # data section starts at 2 (mod 4); JSON allows trailing spaces
    (tmp_path / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    shifted_dir = tmp_path / "shifted"
    shutil.copytree(tiny, shifted_dir)
    shutil.copy(tmp_path / "model.safetensors", shifted_dir / "model.safetensors")
    shifted = minibert.SentenceTransformer(shifted_dir)
    layer = shifted.weights.layers[0]
    for array in (shifted.weights.word_embeddings, layer.intermediate_weight, layer.output_bias):
        assert array.flags.aligned
    np.testing.assert_array_equal(shifted.weights.word_embeddings, aligned.weights.word_embeddings)
    np.testing.assert_array_equal(shifted.encode(["odd offsets"]), aligned.encode(["odd offsets"]))


def test_symlinked_files_load(tiny, tmp_path):
    """The Hugging Face cache keeps files as symlinks into blobs/: following a good link is fine."""
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        os.replace(tiny / name, blobs / name)
        os.symlink(blobs / name, tiny / name)
    assert minibert.SentenceTransformer(tiny).encode("via symlinks").shape == (32,)


def test_every_error_is_a_minibert_error():
    for name in minibert.__all__:
        value = getattr(minibert, name)
        if isinstance(value, type) and name.endswith("Error"):
            assert issubclass(value, MinibertError), name
    assert issubclass(UnsupportedModelError, ModelLoadError)
    assert issubclass(InputError, ValueError) and issubclass(minibert.InputTypeError, TypeError)
