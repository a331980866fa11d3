"""Corpus reading (plain text, TSV, JSONL), and the one rule for text inputs: UTF-8 decoding and line splitting.

The embedding cache is tested in tests/retrieval/test_cache.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minibert.errors import InputError, MinibertError
from minibert.retrieval.corpus import Passage, decode_utf8, read_corpus, split_lines
from tests.helpers import ROOT


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
    path = write(tmp_path, "c.txt", "one\u2028still one\x0cand more\x85and\x1cthe\rsame\r\ntwo\n")
    assert [p.text for p in read_corpus(path)] == ["one\u2028still one\x0cand more\x85and\x1cthe\rsame", "two"]


@pytest.mark.parametrize(
    "text, lines",
    [
        ("", []),
        ("\n", [""]),
        ("a", ["a"]),
        ("a\n", ["a"]),
        ("a\n\nb\n", ["a", "", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\rb\n", ["a\rb"]),
        ("a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei\n", ["a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei"]),
        ("last\n\n", ["last", ""]),
    ],
)
def test_only_newline_ends_a_line(text, lines):
    assert split_lines(text) == lines
    assert len(split_lines(text)) == text.count("\n") + (not text.endswith("\n") and text != "")


def test_undecodable_text_names_the_source_and_says_how_to_convert():
    with pytest.raises(InputError, match=r"^standard input is not valid UTF-8: undecodable byte 0xe9 at byte offset 6 "
                       r"\(line 2\); convert it to UTF-8 first, e\.g\. iconv -f latin1 -t utf-8"):
        decode_utf8("ok\ncaf\xe9\n".encode("latin-1"), "standard input")
    assert decode_utf8(b"\xef\xbb\xbfcaf\xc3\xa9", "x") == "café"


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
        ('{"text": "bad \\ud800 escape"}', r"field 'text' holds a lone surrogate \(U\+D800 at character 4"),
        ('{"text": "ok", "title": "\\udfff"}', r"field 'title' holds a lone surrogate \(U\+DFFF at character 0"),
        ('{"text": "ok", "_id": "x\\udc80"}', r"field '_id' holds a lone surrogate"),
        ("[" * 100_000 + "]" * 100_000, r"JSON nested too deeply to parse"),
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", r"JSON nested too deeply to parse"),
        ('{"_id": ' + "1" * 5000 + ', "text": "ok"}', r"a JSON number has more than \d+ digits"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else v,
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
