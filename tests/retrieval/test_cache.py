"""The embedding cache (minibert.retrieval.cache): a key that changes with everything that shapes the cached rows, and
entries that are served only when they hold exactly what was asked for."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from minibert.errors import InputError
from minibert.loading.config import load_config
from minibert.loading.identity import model_identity
from minibert.retrieval.cache import cache_key, load_embeddings, save_embeddings
from minibert.testing import add_dense

TEXTS = ["one passage", "another passage", ""]
KEY = "a" * 64


@pytest.fixture(scope="module")
def dense_model_dir(make_bert_dir, tmp_path_factory):
    """A tiny BERT with Normalize and a Dense module: every kind of file the identity must cover."""
    return add_dense(make_bert_dir("tiny", normalize=True), 16, dest_dir=tmp_path_factory.mktemp("dense"))


def _edit_json(path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _nudge_tensor(path, name):
    tensors = load_file(path)
    tensors[name] = tensors[name] + np.float32(1e-3)
    save_file(tensors, path)


def _pooling_to_cls(model_dir):
    _edit_json(model_dir / "1_Pooling" / "config.json", pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)


def _drop_normalize(model_dir):
    modules = json.loads((model_dir / "modules.json").read_text())
    (model_dir / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))


EDITS = {
    "model.safetensors": lambda d: _nudge_tensor(d / "model.safetensors", "embeddings.LayerNorm.bias"),
    "config.json": lambda d: _edit_json(d / "config.json", layer_norm_eps=1e-5),
    "pooling": _pooling_to_cls,
    "Normalize": _drop_normalize,
    "max_seq_length": lambda d: _edit_json(d / "sentence_bert_config.json", max_seq_length=64),
    "do_lower_case": lambda d: _edit_json(d / "sentence_bert_config.json", do_lower_case=True),
    "Dense weights": lambda d: _nudge_tensor(d / "2_Dense" / "model.safetensors", "linear.bias"),
    "Dense activation": lambda d: _edit_json(
        d / "2_Dense" / "config.json", activation_function="torch.nn.modules.linear.Identity"
    ),
    "tokenizer.json": lambda d: _edit_json(d / "tokenizer.json", truncation=None, padding=None),
    "tokenizer_config.json": lambda d: _edit_json(d / "tokenizer_config.json", pad_token="[UNK]"),
    "similarity function": lambda d: (d / "config_sentence_transformers.json").write_text(
        json.dumps({"similarity_fn_name": "dot"})
    ),
}


def test_the_key_changes_with_every_file_and_value_that_shapes_the_rows(dense_model_dir, tmp_path):
    base = cache_key(load_config(dense_model_dir), TEXTS)
    copy = shutil.copytree(dense_model_dir, tmp_path / "copy")
    assert cache_key(load_config(copy), TEXTS) == base  # the same files at another path: the same entries
    keys = {}
    for name, edit in EDITS.items():
        edited = shutil.copytree(dense_model_dir, tmp_path / name.replace(" ", "-"))
        edit(edited)
        keys[name] = cache_key(load_config(edited), TEXTS)
    same = [name for name, key in keys.items() if key == base]
    assert not same, f"the cache key ignores: {same}"
    assert len(set(keys.values())) == len(keys)


@pytest.mark.parametrize(
    "other",
    [TEXTS[::-1], ["one passageanother passage", ""], [*TEXTS, ""], ["0\tone passage", "1\tanother passage", ""], []],
    ids=["reordered", "run together", "one more", "parsed as plain text", "none"],
)
def test_different_texts_give_different_keys(dense_model_dir, other):
    config = load_config(dense_model_dir)
    assert cache_key(config, other) != cache_key(config, TEXTS)
    assert cache_key(config, list(TEXTS)) == cache_key(config, TEXTS)


def test_the_identity_reads_the_dense_weights(dense_model_dir, tmp_path):
    """A Dense module's weights are part of the identity even when its config is unchanged."""
    edited = shutil.copytree(dense_model_dir, tmp_path / "m")
    assert model_identity(load_config(edited)) == model_identity(load_config(dense_model_dir))
    EDITS["Dense weights"](edited)
    assert model_identity(load_config(edited)) != model_identity(load_config(dense_model_dir))


# ------------------------------------------------------------------------------------------------ entries


def test_an_entry_round_trips_atomically(tmp_path):
    rows = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    cache_dir = tmp_path / "deep" / "cache"
    path = save_embeddings(cache_dir, KEY, rows)
    assert path == cache_dir / f"{KEY}.npy" and sorted(p.name for p in cache_dir.iterdir()) == [path.name]
    np.testing.assert_array_equal(load_embeddings(cache_dir, KEY, (5, 8)), rows)
    save_embeddings(cache_dir, KEY, rows[:2])  # overwritten in place
    assert load_embeddings(cache_dir, KEY, (5, 8)) is None and sorted(p.name for p in cache_dir.iterdir()) == [
        path.name
    ]


def _entry_with(tmp_path, rows=None, raw: bytes | None = None):
    path = tmp_path / f"{KEY}.npy"
    if raw is not None:
        path.write_bytes(raw)
    else:
        np.save(path, rows, allow_pickle=True)
    return path


BAD_ENTRIES = {
    "missing": None,
    "empty file": b"",
    "not npy": b"garbage that is not an npy file",
    "truncated header": b"\x93NUMPY\x01\x00",
    "NaN row": np.where(np.eye(3, 4, dtype=bool), np.nan, 1).astype(np.float32),
    "inf value": np.full((3, 4), np.inf, np.float32),
    "fewer rows": np.zeros((2, 4), np.float32),
    "other dimension": np.zeros((3, 5), np.float32),
    "float64": np.zeros((3, 4), np.float64),
    "float16": np.zeros((3, 4), np.float16),
    "ints": np.zeros((3, 4), np.int64),
    "1-D": np.zeros(12, np.float32),
    "objects": np.array([[{"a": 1}] * 4] * 3, dtype=object),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_an_entry_that_is_not_exactly_the_asked_rows_is_a_miss(tmp_path, case):
    value = BAD_ENTRIES[case]
    if isinstance(value, bytes):
        _entry_with(tmp_path, raw=value)
    elif value is not None:
        _entry_with(tmp_path, rows=value)
    assert load_embeddings(tmp_path, KEY, (3, 4)) is None


def test_a_truncated_entry_and_an_npz_are_misses(tmp_path):
    path = save_embeddings(tmp_path, KEY, np.ones((3, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-5])
    assert load_embeddings(tmp_path, KEY, (3, 4)) is None
    with open(path, "wb") as f:
        np.savez(f, a=np.ones((3, 4), np.float32))
    assert load_embeddings(tmp_path, KEY, (3, 4)) is None


def test_save_refuses_what_could_not_be_served_and_keeps_the_old_entry(tmp_path):
    save_embeddings(tmp_path, KEY, np.zeros((2, 2), np.float32))
    for bad in (np.zeros(3, np.float32), np.zeros((2, 2), np.float64)):
        with pytest.raises(InputError, match=r"float32 \[rows, dim\]"):
            save_embeddings(tmp_path, KEY, bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{KEY}.npy"]
    np.testing.assert_array_equal(load_embeddings(tmp_path, KEY, (2, 2)), np.zeros((2, 2), np.float32))


def test_a_cache_directory_that_cannot_be_made_raises_oserror(tmp_path):
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    assert load_embeddings(home / "embeddings", KEY, (1, 1)) is None
    with pytest.raises(OSError):
        save_embeddings(home / "embeddings", KEY, np.zeros((1, 1), np.float32))


@pytest.mark.parametrize("key", ["", "../escape", "a/b", "A" * 64, "a" * 63, KEY + ".npy"])
def test_invalid_keys_are_refused(tmp_path, key):
    with pytest.raises(InputError, match="invalid cache key"):
        save_embeddings(tmp_path, key, np.zeros((1, 1), np.float32))
    with pytest.raises(InputError, match="invalid cache key"):
        load_embeddings(tmp_path, key, (1, 1))
