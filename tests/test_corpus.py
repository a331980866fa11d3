"""Corpus reading (plain text, TSV, JSONL) and the corpus-embedding cache."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from minibert.corpus import (
    Passage,
    corpus_cache_key,
    load_cached_embeddings,
    read_corpus,
    save_cached_embeddings,
)
from minibert.errors import InputError, MinibertError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# --------------------------------------------------------------------------------------------------
# Passage


def test_passage_embed_text_uses_title_when_present():
    assert Passage(id="a", text="body").embed_text == "body"
    assert Passage(id="a", text="body", title="Head").embed_text == "Head body"
    assert Passage(id="a", text="", title="Head").embed_text == "Head"


def test_passage_is_frozen():
    p = Passage(id="a", text="body")
    with pytest.raises(AttributeError):
        p.text = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Plain text


def test_plain_text_one_passage_per_nonblank_line(tmp_path):
    path = write(tmp_path, "c.txt", "first passage\n\n   \nsecond passage  \r\n\n  third\n")
    assert read_corpus(path) == [
        Passage(id="0", text="first passage"),
        Passage(id="1", text="second passage"),
        Passage(id="2", text="third"),
    ]


def test_plain_text_unknown_extension_and_no_trailing_newline(tmp_path):
    path = write(tmp_path, "corpus.md", "alpha\nbeta")
    assert [p.text for p in read_corpus(path)] == ["alpha", "beta"]
    assert [p.id for p in read_corpus(str(path))] == ["0", "1"]


def test_bom_is_tolerated(tmp_path):
    path = write(tmp_path, "c.txt", b"\xef\xbb\xbfcaf\xc3\xa9 au lait\nna\xc3\xafve\n")
    assert [p.text for p in read_corpus(path)] == ["café au lait", "naïve"]


def test_unicode_line_separators_do_not_split_passages(tmp_path):
    path = write(tmp_path, "c.txt", "one\u2028still one\x0cand more\ntwo\n")
    assert [p.text for p in read_corpus(path)] == ["one\u2028still one\x0cand more", "two"]


# --------------------------------------------------------------------------------------------------
# TSV


def test_tsv_ids_and_extra_tabs(tmp_path):
    path = write(tmp_path, "c.tsv", "d1\tfirst text\n\nd2\tsecond\twith\ttabs\r\n  \n42\tthird\n")
    assert read_corpus(path) == [
        Passage(id="d1", text="first text"),
        Passage(id="d2", text="second\twith\ttabs"),
        Passage(id="42", text="third"),
    ]


def test_tsv_extension_is_case_insensitive(tmp_path):
    path = write(tmp_path, "C.TSV", "x\ty\n")
    assert read_corpus(path) == [Passage(id="x", text="y")]


def test_tsv_with_bom(tmp_path):
    path = write(tmp_path, "c.tsv", b"\xef\xbb\xbfd1\thello\n")
    assert read_corpus(path) == [Passage(id="d1", text="hello")]


def test_tsv_line_without_tab(tmp_path):
    path = write(tmp_path, "bad.tsv", "d1\tok\n\nno tab here\n")
    with pytest.raises(InputError, match=r"bad\.tsv.*line 3.*no tab"):
        read_corpus(path)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("d1\tok\n\t text\n", r"bad\.tsv, line 2: empty id"),
        ("d1\tok\nd2\t  \n", r"bad\.tsv, line 2: passage 'd2' has empty text"),
        ("d1\tok\nd2\tx\nd1\tagain\n", r"bad\.tsv, line 3: duplicate id 'd1' \(first used on line 1\)"),
    ],
)
def test_tsv_bad_lines(tmp_path, content, pattern):
    path = write(tmp_path, "bad.tsv", content)
    with pytest.raises(InputError, match=pattern):
        read_corpus(path)


# --------------------------------------------------------------------------------------------------
# JSONL


def test_jsonl_ids_titles_and_defaults(tmp_path):
    rows = [
        {"_id": "doc-a", "title": "Bread", "text": "Knead the dough."},
        {"id": 7, "text": "Integer id."},
        {"text": "No id, no title."},
        {"_id": "doc-b", "id": "ignored", "title": None, "text": " padded ", "extra": [1, 2]},
    ]
    lines = [json.dumps(rows[0]), "", json.dumps(rows[1]), "   ", json.dumps(rows[2]), json.dumps(rows[3])]
    path = write(tmp_path, "c.jsonl", "\n".join(lines) + "\n")
    passages = read_corpus(path)
    assert passages == [
        Passage(id="doc-a", text="Knead the dough.", title="Bread"),
        Passage(id="7", text="Integer id."),
        Passage(id="2", text="No id, no title."),  # index among non-blank lines
        Passage(id="doc-b", text="padded"),
    ]
    assert passages[0].embed_text == "Bread Knead the dough."
    assert passages[2].embed_text == "No id, no title."


def test_jsonl_title_only_passage(tmp_path):
    path = write(tmp_path, "c.jsonl", '{"_id": "t", "title": "Only a title", "text": ""}\n')
    [p] = read_corpus(path)
    assert p.embed_text == "Only a title"


def test_jsonl_with_bom_and_non_ascii(tmp_path):
    content = '\ufeff{"text": "caf\u00e9", "title": "\u00fcber"}\n'.encode()
    path = write(tmp_path, "c.jsonl", content)
    assert read_corpus(path) == [Passage(id="0", text="café", title="über")]


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("{not json", r"invalid JSON"),
        ('{"title": "t"}', r"missing required field 'text'"),
        ('{"text": 3}', r"field 'text' must be a string, got a number"),
        ('{"text": null}', r"field 'text' must be a string, got null"),
        ('{"text": ["a"]}', r"field 'text' must be a string, got an array"),
        ('["text"]', r"expected a JSON object, got an array"),
        ('"text"', r"expected a JSON object, got a string"),
        ('{"text": "ok", "title": 5}', r"field 'title' must be a string"),
        ('{"text": "ok", "_id": true}', r"field '_id' must be a string or an integer, got a boolean"),
        ('{"text": "ok", "id": 1.5}', r"field 'id' must be a string or an integer"),
        ('{"text": "ok", "_id": " "}', r"field '_id' is empty"),
        ('{"text": "  "}', r"passage has empty text and no title"),
        ('{"_id": "a", "text": "dup"}', r"duplicate id 'a' \(first used on line 1\)"),
    ],
)
def test_jsonl_bad_lines_name_file_and_line(tmp_path, line, pattern):
    path = write(tmp_path, "bad.jsonl", '{"_id": "a", "text": "fine"}\n\n' + line + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl, line 3: " + pattern):
        read_corpus(path)


# --------------------------------------------------------------------------------------------------
# File-level errors


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt does not exist"):
        read_corpus(tmp_path / "nope.txt")


def test_directory(tmp_path):
    d = tmp_path / "dir.tsv"
    d.mkdir()
    with pytest.raises(InputError, match=r"dir\.tsv is a directory"):
        read_corpus(d)


@pytest.mark.parametrize("name", ["empty.txt", "empty.tsv", "empty.jsonl"])
@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n\t\n", b"\xef\xbb\xbf"])
def test_empty_corpus(tmp_path, name, content):
    path = write(tmp_path, name, content)
    with pytest.raises(InputError, match=rf"corpus .*{re.escape(name)} has no passages"):
        read_corpus(path)


@pytest.mark.parametrize("name", ["bad.txt", "bad.tsv", "bad.jsonl"])
def test_undecodable_bytes_name_file_and_offset(tmp_path, name):
    good = b'{"text": "ok"}\n' if name.endswith(".jsonl") else b"a\tok\n"
    path = write(tmp_path, name, good + b"\xff\xfe broken\n")
    pattern = rf"{re.escape(name)} is not valid UTF-8.*byte offset {len(good)} \(line 2\)"
    with pytest.raises(InputError, match=pattern):
        read_corpus(path)


def test_undecodable_offset_counts_the_bom(tmp_path):
    path = write(tmp_path, "bom.txt", b"\xef\xbb\xbfab\xc3")
    with pytest.raises(InputError, match=r"byte offset 5 \(line 1\)"):
        read_corpus(path)


def test_input_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        read_corpus(tmp_path / "missing.tsv")
    with pytest.raises(MinibertError):
        read_corpus(tmp_path / "missing.tsv")


# --------------------------------------------------------------------------------------------------
# Cache key


def test_cache_key_depends_on_content_and_fingerprint_not_path(tmp_path):
    a = write(tmp_path, "a.txt", "one\ntwo\n")
    (tmp_path / "sub").mkdir()
    b = write(tmp_path / "sub", "b.tsv", "one\ntwo\n")
    c = write(tmp_path, "c.txt", "one\ntwo!\n")

    key = corpus_cache_key("model-1", a)
    assert len(key) == 64 and int(key, 16) >= 0
    assert corpus_cache_key("model-1", str(a)) == key
    assert corpus_cache_key("model-1", b) == key  # same bytes elsewhere
    assert corpus_cache_key("model-1", c) != key  # different bytes
    assert corpus_cache_key("model-2", a) != key  # different model


def test_cache_key_ignores_mtime(tmp_path):
    a = write(tmp_path, "a.txt", "one\n")
    key = corpus_cache_key("m", a)
    os.utime(a, (1_000_000, 1_000_000))
    assert corpus_cache_key("m", a) == key


def test_cache_key_fingerprint_and_content_do_not_run_together(tmp_path):
    a = write(tmp_path, "a.txt", "bc")
    b = write(tmp_path, "b.txt", "c")
    assert corpus_cache_key("a", a) != corpus_cache_key("ab", b)


def test_cache_key_streams_large_files(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    a = write(tmp_path, "big.bin", data)
    assert corpus_cache_key("m", a) != corpus_cache_key("m", write(tmp_path, "big2.bin", data[:-1]))
    assert corpus_cache_key("m", a) == corpus_cache_key("m", write(tmp_path, "big3.bin", data))


def test_cache_key_missing_corpus(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        corpus_cache_key("m", tmp_path / "nope.txt")


# --------------------------------------------------------------------------------------------------
# Cache files


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_save_load_round_trip(tmp_path, dtype):
    emb = np.random.default_rng(0).standard_normal((5, 8)).astype(dtype)
    cache_dir = tmp_path / "deep" / "cache"
    path = save_cached_embeddings(cache_dir, "k" * 64, emb)
    assert path == cache_dir / f"{'k' * 64}.npy"
    loaded = load_cached_embeddings(cache_dir, "k" * 64, 5)
    assert loaded is not None
    assert loaded.dtype == emb.dtype
    assert np.array_equal(loaded, emb)


def test_save_overwrites_existing_entry(tmp_path):
    save_cached_embeddings(tmp_path, "key", np.zeros((2, 3), np.float32))
    save_cached_embeddings(tmp_path, "key", np.ones((4, 3), np.float32))
    assert load_cached_embeddings(tmp_path, "key", 2) is None
    assert np.array_equal(load_cached_embeddings(tmp_path, "key", 4), np.ones((4, 3), np.float32))


def test_load_missing_returns_none(tmp_path):
    assert load_cached_embeddings(tmp_path, "absent", 3) is None
    assert load_cached_embeddings(tmp_path / "no-such-dir", "absent", 3) is None


def test_load_wrong_row_count_returns_none(tmp_path):
    save_cached_embeddings(tmp_path, "key", np.zeros((3, 4), np.float32))
    assert load_cached_embeddings(tmp_path, "key", 2) is None
    assert load_cached_embeddings(tmp_path, "key", 4) is None
    assert load_cached_embeddings(tmp_path, "key", 3) is not None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage that is not an npy file",
        b"\x93NUMPY\x01\x00",  # truncated header
    ],
)
def test_load_corrupt_returns_none(tmp_path, content):
    (tmp_path / "key.npy").write_bytes(content)
    assert load_cached_embeddings(tmp_path, "key", 3) is None


def test_load_truncated_data_returns_none(tmp_path):
    path = save_cached_embeddings(tmp_path, "key", np.ones((3, 4), np.float32))
    path.write_bytes(path.read_bytes()[:-5])
    assert load_cached_embeddings(tmp_path, "key", 3) is None


def test_load_rejects_pickled_and_non_float_arrays(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([[{"a": 1}]] * 3, dtype=object), allow_pickle=True)
    assert load_cached_embeddings(tmp_path, "obj", 3) is None
    np.save(tmp_path / "ints.npy", np.zeros((3, 2), np.int64))
    assert load_cached_embeddings(tmp_path, "ints", 3) is None
    np.save(tmp_path / "flat.npy", np.zeros(3, np.float32))
    assert load_cached_embeddings(tmp_path, "flat", 3) is None


def test_load_npz_under_npy_name_returns_none(tmp_path):
    with open(tmp_path / "zip.npy", "wb") as f:
        np.savez(f, a=np.zeros((3, 2)))
    assert load_cached_embeddings(tmp_path, "zip", 3) is None


def test_atomic_write_leaves_no_temp_files(tmp_path):
    save_cached_embeddings(tmp_path, "key", np.zeros((2, 2), np.float32))
    save_cached_embeddings(tmp_path, "key", np.ones((2, 2), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.npy"]


def test_failed_write_leaves_no_temp_file_and_keeps_old_entry(tmp_path):
    save_cached_embeddings(tmp_path, "key", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):  # object arrays need pickling, which is never allowed
        save_cached_embeddings(tmp_path, "key", np.array([[object(), object()]], dtype=object))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.npy"]
    assert np.array_equal(load_cached_embeddings(tmp_path, "key", 2), np.zeros((2, 2), np.float32))


def test_save_rejects_non_2d(tmp_path):
    with pytest.raises(InputError, match="2-D"):
        save_cached_embeddings(tmp_path, "key", np.zeros(3, np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["", "../escape", "a/b", "a.npy", "x y"])
def test_invalid_keys_rejected(tmp_path, key):
    with pytest.raises(InputError, match="invalid cache key"):
        save_cached_embeddings(tmp_path, key, np.zeros((1, 1), np.float32))
    with pytest.raises(InputError, match="invalid cache key"):
        load_cached_embeddings(tmp_path, key, 1)


def test_cache_end_to_end_with_real_key(tmp_path):
    corpus = write(tmp_path, "c.txt", "a\nb\nc\n")
    key = corpus_cache_key("fp", corpus)
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    save_cached_embeddings(tmp_path / "cache", key, emb)
    assert np.array_equal(load_cached_embeddings(tmp_path / "cache", key, len(read_corpus(corpus))), emb)
    corpus.write_text("a\nb\nc\nd\n")
    assert load_cached_embeddings(tmp_path / "cache", corpus_cache_key("fp", corpus), 4) is None


# --------------------------------------------------------------------------------------------------
# The shipped example corpus


def test_example_corpus_parses():
    passages = read_corpus(ROOT / "examples" / "corpus.txt")
    assert 30 <= len(passages) <= 60
    assert all(p.text.strip() and p.embed_text == p.text for p in passages)
    assert [p.id for p in passages] == [str(i) for i in range(len(passages))]
    assert len({p.text for p in passages}) == len(passages)


@pytest.mark.parametrize(
    "words",
    [
        ("bake", "bread"),
        ("seasons", "tilt"),
        ("python", "list comprehension"),
        ("dehydration",),
    ],
)
def test_example_corpus_covers_sample_queries(words):
    texts = [p.text.lower() for p in read_corpus(ROOT / "examples" / "corpus.txt")]
    assert any(all(w in t for w in words) for t in texts)
