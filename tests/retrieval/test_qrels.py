"""Judgements (minibert.retrieval.judgements.read_qrels): trec_eval's ``qid iter docid rel`` and BEIR's
qrels/<split>.tsv, and the three-file form of ``minibert eval`` end to end.

What the references do, as their sources read (and as this file assumes): trec_eval's get_qrels.c splits a line at
C's isspace (space, \\t, \\n, \\v, \\f, \\r) into exactly four fields and reads the judgement with atol; pytrec_eval's
parse_qrel is ``line.strip().split()`` and ``int``. BEIR's GenericDataLoader._load_qrels reads qrels/<split>.tsv
with ``csv.reader(delimiter="\\t", quoting=csv.QUOTE_MINIMAL)``, drops line 1 (the header) and takes
``row[0], row[1], int(row[2])``, ignoring any further column. The fuzzers in test_reader_fuzz.py hold the readers to
these rules on generated files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minibert.errors import InputError
from minibert.retrieval.corpus import Passage
from minibert.retrieval.judgements import load_eval_set, read_qrels


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --------------------------------------------------------------------------------------------------
# trec_eval's qrels: any run of whitespace separates the four fields


@pytest.mark.parametrize(
    "line",
    [
        "q1 0 d1 1",
        "q1\t0\td1\t1",
        "q1\t0 d1  1",  # a tab and spaces (issue 22)
        "q1 0 d1 1\t",  # a trailing tab (issue 22)
        "q1\t0\td1\t1\t",
        "q1\t 0 \td1\t \t1",
        "  q1 0 d1 1  ",
        "q1\x0b0\x0cd1\r1",  # C's isspace: \v, \f and a lone \r separate too
        "q1 Q0 d1 1",
        "q1 0 d1 +1",
    ],
    ids=repr,
)
def test_trec_fields_are_separated_by_any_whitespace(tmp_path, line):
    path = write(tmp_path, "qrels.txt", f"{line}\nq2 0 d2 0\r\n")
    assert read_qrels(path) == {"q1": {"d1": 1}, "q2": {"d2": 0}}


def test_trec_qrels_blank_lines_and_bom(tmp_path):
    path = write(tmp_path, "qrels.txt", b"\xef\xbb\xbf\n19335 0 1720389 1\n \t\n19335 0 1729 2\n\n")
    assert read_qrels(path) == {"19335": {"1720389": 1, "1729": 2}}


def test_non_ascii_whitespace_does_not_separate_trec_fields(tmp_path):
    """trec_eval splits at ASCII whitespace only; U+00A0 or U+2028 inside a field stay in the id (pytrec_eval's
    str.split would split there, and then find five fields and fail)."""
    path = write(tmp_path, "qrels.txt", "q1 0 d\xa01 1\nq1 0 d\u20282 1\n")
    assert read_qrels(path) == {"q1": {"d\xa01": 1, "d\u20282": 1}}


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("q1 0 d1 1\nq1 0 d2\n", r"line 2: expected 'qid iter docid rel' .*found 3 fields"),
        ("q1 0 d1 1 extra\n", r"line 1: expected 'qid iter docid rel' .*found 5 fields"),
        ("q1 0\td1\t1\n", None),  # not the BEIR row 'q1 0' 'd1' 1 it was once read as: four fields
        ("q1\td1\t1\n", r"line 1: expected 'qid iter docid rel' .*found 3 fields"),  # BEIR's row without the header
        ("q1 0 d1 1\nq1 0 d1 2\n", r"line 2: query 'q1' judges document 'd1' twice"),
        ("q1 0 \xa0 1\n", r"line 1: empty document id"),
        ("q1 0 d1 high\n", r"line 1: the judgement 'high' is not an integer"),
        ("q1 0 d1 1.5\n", r"line 1: the judgement '1.5' is not an integer"),  # atol would read 1
        ("q1 0 d1 1_0\n", r"line 1: the judgement '1_0' is not an integer"),  # int would read 10
        ("q1 0 d1 \u0661\n", r"line 1: the judgement '\u0661' is not an integer"),  # int would read 1, atol 0
        ("q1 0 d1 " + "9" * 19 + "\n", r"line 1: the judgement '9+' is not an integer"),
        ("\n \n", r"holds no judgements"),
        (b"q1 0 d1 1\nq2 0 d\xe9 1\n", r"is not valid UTF-8: undecodable byte 0xe9 at byte offset 16 \(line 2\)"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_malformed_trec_qrels_name_the_file_and_line(tmp_path, content, pattern):
    path = write(tmp_path, "qrels.txt", content)
    if pattern is None:
        assert read_qrels(path) == {"q1": {"d1": 1}}
        return
    with pytest.raises(InputError, match=rf"^qrels {re.escape(str(path))}(, | ).*{pattern}"):
        read_qrels(path)


# --------------------------------------------------------------------------------------------------
# BEIR's qrels/<split>.tsv


def test_beir_header_makes_a_file_beir(tmp_path):
    path = write(tmp_path, "test.tsv", "query-id\tcorpus-id\tscore\nq 1\td 1\t2\nq2\td2\t0\t\n")
    assert read_qrels(path) == {"q 1": {"d 1": 2}, "q2": {"d2": 0}}  # spaces inside BEIR ids, a trailing tab


def test_beir_folder_qrels_need_no_header(tmp_path):
    path = write(tmp_path, "test.tsv", "q1\td1\t1\n q2 \t d2 \t 3 \n")
    assert read_qrels(path, beir=True) == {"q1": {"d1": 1}, "q2": {"d2": 3}}
    assert read_qrels(write(tmp_path, "h.tsv", "Query-ID\tCorpus-ID\tScore\t\nq1\td1\t1\n"), beir=True) == {
        "q1": {"d1": 1}
    }


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("q1\td1\n", r"line 1: expected 'query-id<TAB>corpus-id<TAB>score' \(BEIR's qrels\), found 2"),
        ("q1 d1 1\n", r"line 1: expected 'query-id<TAB>corpus-id<TAB>score' \(BEIR's qrels\), found 1"),
        ("1102432\t0\t2026790\t1\n", r"line 1: expected .*found 4"),  # MS MARCO's qrels.dev.tsv is not BEIR's
        ("q1\td1\t1\tnote\n", r"line 1: expected .*found 4"),
        ('"q1"\td1\t1\n', r"line 1: a field starts with a double quote"),  # BEIR's csv.reader would unquote it
        ('q1\t"d1\t1\n', r"line 1: a field starts with a double quote"),
        ("\td1\t1\n", r"line 1: empty query id"),
        ("q1\td1\t\n", r"line 1: the judgement '' is not an integer"),
        ("\nquery-id\tcorpus-id\tscore\nq1\td1\t1\n", r"line 2: the judgement 'score' is not an integer"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_malformed_beir_qrels_name_the_file_and_line(tmp_path, content, pattern):
    path = write(tmp_path, "test.tsv", content)
    with pytest.raises(InputError, match=rf"^qrels {re.escape(str(path))}, {pattern}"):
        read_qrels(path, beir=True)


# --------------------------------------------------------------------------------------------------
# minibert eval's loader


def test_three_files_with_tab_and_space_separated_qrels(tmp_path):
    """The issue's report: `minibert eval passages.tsv queries.tsv qrels.txt` refused trec_eval's qrels written
    with a tab and spaces."""
    passages = write(tmp_path, "passages.tsv", "d1\tbread rises\nd2\tseasons turn\n")
    queries = write(tmp_path, "queries.tsv", "q1\thow does bread rise\nq2\twhy seasons\n")
    qrels = write(tmp_path, "qrels.txt", "q1\t0 d1 1\t\nq2 0\td2\t2 \n")
    data = load_eval_set([str(passages), str(queries), str(qrels)])
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert data.queries == [Passage("q1", "how does bread rise"), Passage("q2", "why seasons")]


def test_beir_folder_reads_qrels_as_beir(tmp_path):
    write(tmp_path, "corpus.jsonl", json.dumps({"_id": "d 1", "title": "T", "text": "x"}) + "\n")
    write(tmp_path, "queries.jsonl", json.dumps({"_id": "q 1", "text": "y"}) + "\n")
    write(tmp_path, "qrels/test.tsv", "q 1\td 1\t1\n")  # no header; ids with spaces; read as BEIR, not trec_eval
    data = load_eval_set([str(tmp_path)])
    assert data.qrels == {"q 1": {"d 1": 1}} and data.corpus == [Passage("d 1", "x", "T")]
