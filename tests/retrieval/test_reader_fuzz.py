"""Fuzzing the readers of corpus, queries and judgements (hypothesis): every generated file is either read exactly as
an independent reference reader here reads it, or refused with an InputError naming the file and the line (for
Parquet the row) that the reference names. Never another exception, never a silent difference.

The references follow the rules the modules' docstrings state (minibert.retrieval.corpus, .judgements,
minibert.embed.inputs), computed another way than minibert does:

- lines: the bytes split at b"\\n" and each decoded on its own (minibert decodes the whole file, then splits the
  text; ``minibert embed`` decodes a line at a time). Blank means empty or str.isspace().
- TSV: a regular expression; JSONL: json.loads and a record rule written from the docstring (lone surrogates found
  by encoding to UTF-8); Parquet: the whole table read at once (ParquetFile.read, as read_table but taking a name
  used twice) and to_pylist(), where minibert reads record batches; strings that are not UTF-8 found by reading the
  column as binary.
- trec_eval qrels: its get_qrels.c splits fields at C's isspace (space, \\t, \\n, \\v, \\f, \\r): bytes.split() on
  the line's bytes. The judgement test is str.isdigit on ASCII.
- BEIR qrels: three tab-separated fields matched by a regular expression.

And two checks against the real readers, where those read the file: pytrec_eval.parse_qrel (``line.split()``, so
U+0085, U+00A0, U+2028 and friends separate fields there and not in trec_eval; where both parse a file they agree)
and BEIR's GenericDataLoader (the beir package: csv.reader with a tab delimiter, the first line dropped,
``row[0], row[1], int(row[2])``). Assumed, as the docstrings document: a lone \\r is not a line break (BEIR opens the
file with universal newlines, where it is), ids are stripped (BEIR keeps surrounding whitespace), blank lines are
skipped (BEIR's loader fails on them), and a BEIR file's line 1 is only dropped when it is the header.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import pytrec_eval
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from minibert.embed import inputs
from minibert.embed.inputs import iter_passages, open_input
from minibert.errors import InputError
from minibert.retrieval.corpus import Passage, read_corpus
from minibert.retrieval.judgements import EvalSet, load_eval_set, read_qrels

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BOM = b"\xef\xbb\xbf"
HEADER = "query-id\tcorpus-id\tscore"
ID_FIELDS = ("_id", "id")
READ_COLUMNS = (*ID_FIELDS, "text", "title")


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh directory per example (pytest's tmp_path is one per test, hypothesis runs many examples in it)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


# --------------------------------------------------------------------------------------------------
# Outcomes: what a reference expects, and checking a reader against it


@dataclass(frozen=True)
class Refused:
    """A file the reference refuses: the file, and the line (row) it is refused at, None for the file as a whole."""

    path: Path
    at: int | None


def place(message: str, path: Path, unit: str = "line") -> int | bool | None:
    """The line (or row) that an error message names right after `path`; None when it names the file alone, False
    when it does not name the file."""
    if str(path) not in message:
        return False
    rest = message.split(str(path), 1)[1]
    if m := re.match(rf", {unit} (\d+): ", rest):
        return int(m[1])
    if m := re.match(r" is not valid UTF-8: undecodable byte 0x[0-9a-f]{2} at byte offset \d+ \(line (\d+)\)", rest):
        return int(m[1])
    return None


def check(read: Callable[[], Any], expected: Any, refusals: list[Refused], unit: str = "line") -> None:
    """`read()` returns `expected` when `refusals` is empty; else raises an InputError naming one of them."""
    if not refusals:
        assert read() == expected
        return
    with pytest.raises(InputError) as error:
        read()
    message = str(error.value)
    named = [r for r in refusals if (found := place(message, r.path, unit)) is not False and found == r.at]
    assert named, f"{message!r} names none of {refusals}"


# --------------------------------------------------------------------------------------------------
# Reference readers


def reference_lines(data: bytes) -> list[tuple[int, str | None]]:
    """(line number, text) of each non-blank line; text None for a line that is not UTF-8."""
    physical = data.split(b"\n")
    if physical[-1] == b"":
        physical.pop()
    if physical:
        physical[0] = physical[0].removeprefix(BOM)
    numbered = []
    for lineno, raw in enumerate(physical, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or not (text == "" or text.isspace()):
            numbered.append((lineno, text))
    return numbered


def first_undecodable(lines: list[tuple[int, str | None]]) -> int | None:
    return next((lineno for lineno, text in lines if text is None), None)


def unicode(*values: str) -> bool:
    try:
        for value in values:
            value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def reference_record(obj: dict[str, Any], index: int) -> Passage | None:
    """A JSONL object or Parquet row as a passage (the docstring's rule), None when it must be refused."""
    text, title = obj.get("text"), obj.get("title")
    title = "" if title is None else title
    if type(text) is not str or type(title) is not str:
        return None
    present = [field for field in ID_FIELDS if field in obj]
    raw = obj[present[0]] if present else index
    if type(raw) not in (str, int) or not unicode(text, title, str(raw)):
        return None
    passage = Passage(id=str(raw).strip(), text=text.strip(), title=title.strip())
    if not passage.id or not (passage.text or passage.title):
        return None
    return passage


def reference_passage(fmt: str, line: str, index: int) -> Passage | None:
    if fmt == "tsv":
        m = re.fullmatch(r"([^\t]*)\t(.*)", line, flags=re.DOTALL)
        passage = m and Passage(id=m[1].strip(), text=m[2].strip())
        return passage if passage and passage.id and passage.text else None
    if fmt == "jsonl":
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return None
        return reference_record(obj, index) if type(obj) is dict else None
    return Passage(id=str(index), text=line.strip())


def reference_corpus(path: Path, data: bytes, fmt: str, streaming: bool) -> tuple[list[Passage], list[Refused]]:
    """The passages of a corpus file; `streaming`: as ``minibert embed`` reads it (a line at a time, so an
    undecodable line is met in order, and no duplicate check), else as read_corpus does (decoded whole first)."""
    lines = reference_lines(data)
    bad = None if streaming else first_undecodable(lines)
    if bad is not None:
        return [], [Refused(path, bad)]
    passages: list[Passage] = []
    for index, (lineno, line) in enumerate(lines):
        passage = None if line is None else reference_passage(fmt, line, index)
        if passage is None or (not streaming and passage.id in {p.id for p in passages}):
            return [], [Refused(path, lineno)]
        passages.append(passage)
    if not passages and not streaming:
        return [], [Refused(path, None)]
    return passages, []


def trec_fields(line: str) -> list[str] | None:
    """query, document, judgement of a trec_eval line: C isspace separates (bytes.split: ASCII whitespace only)."""
    fields = [field.decode("utf-8") for field in line.encode("utf-8").split()]
    return [fields[0], fields[2], fields[3]] if len(fields) == 4 else None


def beir_fields(line: str) -> list[str] | None:
    """query, document, judgement of a BEIR row: three tab-separated fields, then only whitespace columns."""
    m = re.fullmatch(r"([^\t]*)\t([^\t]*)\t([^\t]*)(?:\t\s*)?", line)
    return None if m is None or any(field.startswith('"') for field in m.groups()) else list(m.groups())


def integer(value: str) -> int | None:
    digits = value[1:] if value[:1] in ("+", "-") else value
    return int(value) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else None


def is_header(line: str) -> bool:
    fields = beir_fields(line)
    return fields is not None and [field.strip().lower() for field in fields] == ["query-id", "corpus-id", "score"]


def reference_qrels(path: Path, data: bytes, beir: bool) -> tuple[dict[str, dict[str, int]], list[Refused]]:
    lines = reference_lines(data)
    if (bad := first_undecodable(lines)) is not None:
        return {}, [Refused(path, bad)]
    header = bool(lines) and lines[0][0] == 1 and is_header(lines[0][1] or "")
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in lines[1:] if header else lines:
        fields = (beir_fields if beir or header else trec_fields)(line or "")
        query, doc, judgement = [field.strip() for field in fields] if fields else ("", "", "")
        grade = integer(judgement)
        if not query or not doc or grade is None or doc in qrels.get(query, {}):
            return {}, [Refused(path, lineno)]
        qrels.setdefault(query, {})[doc] = grade
    return qrels, [] if qrels else [Refused(path, None)]


def beir_load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """The qrels as BEIR's own GenericDataLoader reads qrels/<split>.tsv (the beir package, its qrels step alone:
    its public load() also needs the corpus and queries, and fails on a judged query they lack)."""
    from beir.datasets.data_loader import GenericDataLoader

    loader = GenericDataLoader(qrels_file=str(path))
    loader._load_qrels()
    return loader.qrels


def parses(read: Callable[[], Any]) -> Any:
    """What a third-party reader gives, None where it fails on the input (any exception: they are not ours)."""
    try:
        return read()
    except Exception:
        return None


def stripped(qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for query, judged in qrels.items():
        for doc, grade in judged.items():
            out.setdefault(query.strip(), {})[doc.strip()] = grade
    return out


# --------------------------------------------------------------------------------------------------
# Strategies: mostly well-formed lines with nasty content, now and then a malformed one


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 20) -> st.SearchStrategy[Any]:
    """`common`, and about one time in `odds` `rare` (hypothesis draws the bounds of a range more often)."""
    return st.integers(0, odds - 1).flatmap(lambda roll: rare if roll == odds // 2 else common)


def padded(core: st.SearchStrategy[str], pads: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(pads, core, pads).map("".join)


NASTY = [" ", "\t", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u2029", "\u3000"]
NASTY += ["\ufeff", '"', "\\", "{", "}", ":", ",", "é", "🙂"]
chars = st.one_of(st.sampled_from(NASTY), st.characters(codec="utf-8", exclude_characters="\n"))
words = st.text(chars, max_size=10)  # blank ones too
# Whitespace around ids and texts (str.strip removes it; str.splitlines would split at most of it), no tab
pads = mostly(st.just(""), st.sampled_from([" ", "\r", "\x0b\x0c", "\x85", "\xa0", "\u2028", "\u3000 ", "\x1c"]), 3)
nonblank = st.text(chars, min_size=1, max_size=10).filter(lambda s: not s.isspace())
texts = mostly(padded(nonblank, pads), st.sampled_from(["x" * 70_000, "word " * 20_000, "", " \t ", "\x85"]))
surrogates = st.sampled_from(["\ud800", "\udfff", "a\udc80b"])
blank_lines = st.sampled_from(["", " ", "\t", "\r", "\x0b", "\x0c", "\x85", "\u2028", "\u3000", " \t "])
odd_ids = st.one_of(st.sampled_from(["d1", "7", "007", " d1 ", "d1\r", "\ufeffd1", "", "-3", "1.5", "a\tb"]), words)
ids = mostly(padded(st.integers(0, 10**9).map("d{}".format), pads), odd_ids, 8)
undecodable = st.sampled_from([b"\xff", b"\xc3", b"\xe9", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])


@st.composite
def files_of(draw: st.DrawFn, lines: list[str]) -> bytes:
    """The lines, blank ones among them, each ended by \\n, \\r\\n or \\r\\r\\n (the last end maybe missing),
    maybe a BOM first, now and then an undecodable byte sequence anywhere."""
    ends = st.sampled_from(["\n", "\n", "\r\n", "\r\r\n"])
    blanks = mostly(st.just([]), st.lists(blank_lines, min_size=1, max_size=2), 4)
    body = "".join(blank + draw(ends) for blank in draw(blanks))  # before line 1 too: a header must be line 1
    body += "".join("".join(line + draw(ends) for line in [line, *draw(blanks)]) for line in lines)
    if draw(st.booleans()):
        body = body.removesuffix("\n")
    data = draw(st.sampled_from([b"", b"", BOM])) + body.encode("utf-8")
    if draw(mostly(st.just(False), st.just(True), 12)):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(undecodable) + data[at:]
    return data


def files(lines: st.SearchStrategy[str], max_lines: int = 8) -> st.SearchStrategy[bytes]:
    return st.lists(lines, max_size=max_lines).flatmap(files_of)


tsv_lines = mostly(
    st.tuples(ids, st.just("\t"), texts).map("".join),
    st.one_of(words, st.tuples(ids, st.sampled_from(["\t\t", " \t", "\t ", ""]), texts).map("".join)),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), words, surrogates)
json_values = st.one_of(
    json_scalars, st.lists(json_scalars, max_size=2), st.dictionaries(words, json_scalars, max_size=2)
)
wrong = st.one_of(json_values, surrogates.map("x{}".format))  # a value of the wrong type, or not Unicode
records = st.fixed_dictionaries(
    {"text": mostly(texts, wrong)},
    optional={
        "_id": mostly(st.one_of(ids, st.integers(-(2**70), 2**70)), wrong),
        "id": mostly(ids, wrong),
        "title": mostly(st.one_of(texts, st.just(""), st.none()), wrong),
        "extra": json_values,
    },
)
broken_json = st.sampled_from([  # not a JSON object, or not JSON at all
    "[1, 2]", '"text"', "null", "NaN", "3", "{not json", '{"text": "a"} {"text": "b"}', '{"text": "raw\ttab"}',
    '{"text": "a", "text": 3}', '{"text": "nul\\u0000"}', '\ufeff{"text": "bom"}', "[" * 5000 + "]" * 5000,
    '{"_id": ' + "1" * 5000 + ', "text": "an id of 5000 digits"}', '{"text": "x", "_id": 1e400}', "{}",
    '{"title": "no text"}', '\x0c{"text": "form feed first"}',
])


@st.composite
def json_objects(draw: st.DrawFn, objects: st.SearchStrategy[dict[str, Any]]) -> str:
    """An object as one JSON line (raw non-ASCII or \\u escapes), its start or end now and then cut off."""
    obj = draw(objects)
    line = json.dumps(obj, ensure_ascii=False)
    if draw(st.booleans()) or not unicode(line):  # a lone surrogate can only be written as a \u escape
        line = json.dumps(obj)
    cut = draw(mostly(st.none(), st.sampled_from([1, -1])))
    return draw(st.sampled_from(["", "", " ", "\t"])) + (line if cut is None else line[:cut])


json_lines = mostly(json_objects(records), broken_json, 6)


# --------------------------------------------------------------------------------------------------
# Corpus files: read_corpus and minibert embed's line reader


def _check_corpus(name: str, data: bytes) -> None:
    with scratch() as folder:
        path = folder / name
        path.write_bytes(data)
        fmt = {".tsv": "tsv", ".jsonl": "jsonl"}.get(path.suffix.lower(), "txt")
        expected, refusals = reference_corpus(path, data, fmt, streaming=False)
        check(lambda: read_corpus(path), expected, refusals)
        if not refusals:
            assert [p.embed_text for p in read_corpus(path)] == [(p.title + " " + p.text).strip() for p in expected]
        expected, refusals = reference_corpus(path, data, fmt, streaming=True)
        check(lambda: list(iter_passages(open_input(path))), expected, refusals)


@FUZZ
@given(data=files(tsv_lines))
def test_tsv_corpus_is_read_as_the_reference_reads_it(data):
    _check_corpus("corpus.tsv", data)


@FUZZ
@given(data=files(json_lines))
def test_jsonl_corpus_is_read_as_the_reference_reads_it(data):
    _check_corpus("corpus.jsonl", data)


@FUZZ
@given(data=files(words), name=st.sampled_from(["corpus.txt", "corpus.md", "CORPUS.TSV.txt"]))
def test_plain_text_corpus_is_read_as_the_reference_reads_it(data, name):
    _check_corpus(name, data)


# --------------------------------------------------------------------------------------------------
# Parquet (minibert embed's input)

COLUMN_KINDS = ["string", "string", "large_string", "dictionary", "not_utf8", "int64", "float64", "bool", "binary",
                "list", "null"]


def _column(kind: str, values: list[Any]) -> pa.Array:
    """An Arrow column of `kind` from drawn values (str, int, or None)."""
    strings = [None if v is None else str(v) for v in values]
    if kind in ("string", "large_string"):
        return pa.array(strings, type=getattr(pa, kind)())
    if kind == "dictionary":
        return pa.array(strings, type=pa.string()).dictionary_encode()
    if kind == "not_utf8":  # what a careless writer stores: Parquet does not check a string column's bytes
        raw = [b"" if s is None else s.encode("utf-8") + b"\xff" * (i % 2) for i, s in enumerate(strings)]
        offsets = pa.array([sum(map(len, raw[:i])) for i in range(len(raw) + 1)], type=pa.int32())
        valid = pa.array([s is not None for s in strings], type=pa.bool_()).buffers()[1]
        return pa.Array.from_buffers(pa.string(), len(raw), [valid, offsets.buffers()[1], pa.py_buffer(b"".join(raw))])
    if kind == "int64":
        return pa.array([None if v is None else sum(map(ord, str(v))) % 1000 - 500 for v in values], type=pa.int64())
    if kind == "float64":
        return pa.array([None if v is None else float(len(str(v))) for v in values], type=pa.float64())
    if kind == "bool":
        return pa.array([None if v is None else bool(len(str(v)) % 2) for v in values])
    if kind == "binary":
        return pa.array([None if s is None else s.encode("utf-8") for s in strings], type=pa.binary())
    if kind == "list":
        return pa.array([None if s is None else [s] for s in strings], type=pa.list_(pa.string()))
    return pa.nulls(len(values))


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 6))
    cells = st.lists(mostly(st.one_of(nonblank, ids), st.one_of(words, st.none()), 4), min_size=rows, max_size=rows)
    names = draw(st.lists(st.sampled_from([*READ_COLUMNS, "extra"]), max_size=4))
    if draw(st.integers(0, 4)) > 0:
        names.insert(draw(st.integers(0, len(names))), "text")
    kinds = {"text": st.sampled_from(["string", "string", *COLUMN_KINDS])}  # text: a string column more often
    columns = [_column(draw(kinds.get(name, st.sampled_from(COLUMN_KINDS))), draw(cells)) for name in names]
    return pa.Table.from_arrays(columns, names=names) if names else pa.table({"other": pa.nulls(rows)})


def describe(table: pa.Table) -> str:
    """The table for hypothesis' report (pyarrow's repr decodes strings, which fails on bytes that are not UTF-8)."""
    binary = [c.cast(pa.binary()) if pa.types.is_string(c.type) else c for c in table.columns]
    return f"{table.schema}\n{[c.to_pylist() for c in binary]}"


def first_not_utf8(table: pa.Table) -> int | None:
    """The first row holding a string whose bytes are not UTF-8 (read as binary, decoded here)."""
    bad = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            target = pa.binary() if pa.types.is_string(column.type) else pa.large_binary()
            for row, value in enumerate(column.cast(target).to_pylist()):
                if value is not None and parses(lambda v=value: v.decode("utf-8")) is None:
                    bad.append(row)
                    break
    return min(bad, default=None)


def reference_parquet(path: Path) -> tuple[list[Passage], list[Refused]]:
    names = pq.read_schema(path).names
    wanted = [name for name in READ_COLUMNS if name in names]
    if "text" not in names or any(names.count(name) > 1 for name in wanted):
        return [], [Refused(path, None)]
    table = pq.ParquetFile(path).read(columns=wanted)  # read_table refuses a file with any name twice
    bad = first_not_utf8(table)
    passages = []
    for index, row in enumerate(table.slice(0, bad).to_pylist() if bad is not None else table.to_pylist()):
        if (passage := reference_record(row, index)) is None:
            return [], [Refused(path, index)]
        passages.append(passage)
    return passages, [] if bad is None else [Refused(path, bad)]


def _read_parquet(path: Path) -> list[Passage]:
    with mock.patch.object(inputs, "_PARQUET_BATCH_ROWS", 2):  # several batches: row numbers carry across them
        return list(iter_passages(open_input(path)))


@FUZZ
@given(table=parquet_tables(), row_group=st.integers(1, 4))
def test_parquet_input_is_read_as_pyarrow_reads_it(table, row_group):
    with scratch() as folder:
        path = folder / "corpus.parquet"
        pq.write_table(table, path, row_group_size=row_group)
        note(describe(table))
        expected, refusals = reference_parquet(path)
        check(lambda: _read_parquet(path), expected, refusals, unit="row")


@settings(FUZZ, max_examples=60)
@given(table=parquet_tables(), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                                              min_size=1, max_size=3))
def test_corrupt_parquet_is_refused_or_read_as_pyarrow_reads_it(table, flips):
    """Bytes of a Parquet file overwritten: its footer, a page header, compressed data. minibert reads what pyarrow
    reads or refuses the file (the row where it stopped named when it stopped reading rows)."""
    with scratch() as folder:
        path = folder / "corpus.parquet"
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=2)
        data = bytearray(buffer.getvalue())
        for at, byte in flips:
            data[int(at * len(data))] = byte
        path.write_bytes(bytes(data))
        reference = parses(lambda: reference_parquet(path))
        try:
            got = _read_parquet(path)
        except InputError as error:
            event("refused: " + ("the file" if place(str(error), path, "row") is None else "a row"))
            assert place(str(error), path, "row") is not False, str(error)
            assert reference is None or reference[1], f"pyarrow reads {path}, minibert refuses it: {error}"
            return
        event("read")
        assert reference == (got, [])


def _parquet(path: Path, table: pa.Table, row_group: int = 3) -> Path:
    pq.write_table(table, path, row_group_size=row_group)
    return path


def test_parquet_string_that_is_not_utf8_names_its_row(tmp_path):
    """Found by the fuzzer: pyarrow's to_pylist raised UnicodeDecodeError out of minibert embed."""
    table = pa.table({"_id": [f"d{i}" for i in range(5)], "text": _column("not_utf8", ["a", "b", "c", "d", "e"])})
    path = _parquet(tmp_path / "c.parquet", table.slice(2))  # rows c, d\xff, e: row 1 is not UTF-8
    passages = iter_passages(open_input(path))
    assert next(passages) == Passage("d2", "c")
    with pytest.raises(InputError, match=rf"^--input {re.escape(str(path))}, row 1: a string is not valid UTF-8"):
        next(passages)


def test_parquet_column_named_twice_is_refused(tmp_path):
    """Found by the fuzzer: of two `_id` columns, one was silently used."""
    table = pa.Table.from_arrays([pa.array(["a"]), pa.array(["x"]), pa.array(["b"])], names=["_id", "text", "_id"])
    path = _parquet(tmp_path / "c.parquet", table)
    with pytest.raises(InputError, match=r"c\.parquet: 2 columns are named '_id'; which one holds the passages' ids"):
        open_input(path)
    extra = pa.Table.from_arrays([pa.array(["a"]), pa.array(["x"]), pa.array(["b"])], names=["n", "text", "n"])
    assert list(iter_passages(open_input(_parquet(tmp_path / "d.parquet", extra)))) == [Passage("0", "x")]


def test_corrupt_parquet_page_names_the_first_row_not_read(tmp_path):
    """Found by the fuzzer: a corrupt page raised pyarrow's OSError out of minibert embed."""
    path = _parquet(tmp_path / "c.parquet", pa.table({"text": [f"t{i}" for i in range(6)]}))
    page = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[page : page + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"^--input {re.escape(str(path))}, row 3: cannot read row group 1 \("):
        list(iter_passages(open_input(path)))


def test_parquet_type_without_a_json_name_is_named(tmp_path):
    path = _parquet(tmp_path / "c.parquet", pa.table({"text": pa.array([b"raw"], type=pa.binary())}))
    with pytest.raises(InputError, match=r"row 0: field 'text' must be a string, got a Python bytes$"):
        list(iter_passages(open_input(path)))


# --------------------------------------------------------------------------------------------------
# Judgements: trec_eval's and BEIR's qrels

query_ids = mostly(
    padded(st.sampled_from(["q1", "q2", "q3", "19335"]), pads),
    st.one_of(st.sampled_from(["q\x851", "q\xa01", '"q1"', "q 1", "", "\xa0"]), words),
)
doc_ids = mostly(
    padded(st.integers(0, 10**6).map("d{}".format), pads),
    st.one_of(st.sampled_from(["d1", "d1\u2028x", "d\xa01", "1720389", '"d1"', "0", ""]), words),
)
grades = mostly(
    st.integers(-1, 3).map(str),
    st.sampled_from(["1.0", "+1", "-0", " 2", "1_0", "١", "٣", "²", "high", "", "9" * 19, "1e3", "0x1"]),
    5,
)
trec_separators = mostly(
    st.sampled_from([" ", " ", "\t", "\t ", " \t", "  ", "\x0b", "\x0c", "\r", "\t\t"]),
    st.sampled_from(["\xa0", "\x85"]),  # not separators: C's isspace is ASCII's
)
headers = st.sampled_from([HEADER, HEADER, "Query-ID\t corpus-id \tscore\t", "query-id corpus-id score", "qid\tpid\tr"])


@st.composite
def trec_lines(draw: st.DrawFn) -> str:
    fields = [draw(query_ids), draw(st.sampled_from(["0", "Q0", "1"])), draw(doc_ids), draw(grades)]
    fields = draw(mostly(st.just(fields), st.sampled_from([fields[:3], [*fields, "x"]])))
    ends = mostly(st.just(""), st.sampled_from([" ", "\t", "\r", "\x0c"]), 4)
    return draw(ends) + fields[0] + "".join(draw(trec_separators) + field for field in fields[1:]) + draw(ends)


@st.composite
def beir_lines(draw: st.DrawFn) -> str:
    quotes = mostly(st.just("{}"), st.sampled_from(['"{}"', '"{}', ' "{}"']), 8)  # a CSV reader unquotes '"q1"'
    fields = [draw(quotes).format(draw(query_ids)), draw(quotes).format(draw(doc_ids)), draw(grades)]
    tail = draw(mostly(st.just(""), st.sampled_from(["\t", "\t ", "\t\t"]), 4))  # BEIR ignores these columns
    malformed = st.sampled_from([fields[:2], [*fields, "x"], [*fields, "0"], ['"' + fields[0] + '"', *fields[1:]]])
    return draw(mostly(st.just("\t"), st.just(" "), 20)).join(draw(mostly(st.just(fields), malformed))) + tail


def qrels_files(lines: st.SearchStrategy[str], header_odds: int) -> st.SearchStrategy[bytes]:
    """A qrels file, a header (BEIR's, or not quite) first about one time in `header_odds`."""
    head = mostly(st.just([]), st.just([headers]), header_odds).flatmap(lambda head: st.tuples(*head))
    return st.tuples(head, st.lists(lines, max_size=8)).flatmap(lambda parts: files_of([*parts[0], *parts[1]]))


@FUZZ
@given(data=qrels_files(trec_lines(), header_odds=10))
def test_trec_qrels_are_read_as_trec_eval_reads_them(data):
    with scratch() as folder:
        path = folder / "qrels.txt"
        path.write_bytes(data)
        expected, refusals = reference_qrels(path, data, beir=False)
        check(lambda: read_qrels(path), expected, refusals)
        lines = [line for _, line in reference_lines(data) if line]
        theirs = parses(lambda: pytrec_eval.parse_qrel(lines))
        mine = parses(lambda: read_qrels(path))
        if theirs is not None and mine is not None:
            assert mine == theirs


@FUZZ
@given(data=qrels_files(beir_lines(), header_odds=2), in_folder=st.booleans())
def test_beir_qrels_are_read_as_beir_reads_them(data, in_folder):
    with scratch() as folder:
        path = folder / "test.tsv"
        path.write_bytes(data)
        expected, refusals = reference_qrels(path, data, beir=in_folder)
        check(lambda: read_qrels(path, beir=in_folder), expected, refusals)
        theirs = parses(lambda: beir_load_qrels(path))
        mine = parses(lambda: read_qrels(path, beir=in_folder))
        text = data.removeprefix(BOM).decode("utf-8", "replace")
        if theirs is not None and mine is not None and is_header(text.split("\n", 1)[0].removesuffix("\r")) and (
            "\r" not in text.replace("\r\n", "")
        ):
            assert mine == stripped(theirs)


# --------------------------------------------------------------------------------------------------
# A BEIR folder, end to end (minibert eval's loader)

DOCS, QUERIES = ["d1", "d2", "d3", "d4"], ["q1", "q2", "q3"]


@st.composite
def jsonl_for(draw: st.DrawFn, names: list[str]) -> bytes:
    """A JSONL file of one record per id (with a title now and then), now and then another line instead."""
    named = [st.fixed_dictionaries({"_id": st.just(n), "text": texts}, optional={"title": texts}) for n in names]
    return draw(files_of([draw(mostly(json_objects(record), json_lines)) for record in named]))


@st.composite
def beir_folders(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """corpus.jsonl, queries.jsonl and qrels/test.tsv: judgements of some of the queries on some documents."""
    corpus = draw(jsonl_for(draw(st.lists(st.sampled_from(DOCS), unique=True, min_size=1))))
    queries = draw(jsonl_for(draw(mostly(st.just(QUERIES), st.lists(st.sampled_from(QUERIES), unique=True)))))
    pairs = st.tuples(st.sampled_from(QUERIES), st.sampled_from([*DOCS, "d9"]))
    pairs = draw(st.lists(pairs, unique=True, min_size=1, max_size=6))
    judged = [draw(mostly(st.just(f"{q}\t{d}\t{draw(grades)}"), beir_lines())) for q, d in pairs]
    header = draw(mostly(st.just([HEADER]), st.just([])))
    return corpus, queries, draw(files_of(header + judged))


@settings(FUZZ, max_examples=100)
@given(folder=beir_folders())
def test_beir_folder_is_read_as_the_reference_reads_it(folder):
    corpus, queries, qrels = folder
    with scratch() as root:
        paths = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / "test.tsv"]
        paths[2].parent.mkdir()
        for path, data in zip(paths, folder, strict=True):
            path.write_bytes(data)
        passages, refusals = reference_corpus(paths[0], corpus, "jsonl", streaming=False)
        questions, refused = reference_corpus(paths[1], queries, "jsonl", streaming=False)
        judgements, unjudged = reference_qrels(paths[2], qrels, beir=True)
        by_id = {q.id: q for q in questions}
        if not refused and not unjudged and any(query not in by_id for query in judgements):
            refused.append(Refused(paths[2], None))  # a judged query without a text
        refusals += refused + unjudged
        questions = [by_id[q] for q in judgements] if not refusals else []
        expected = None if refusals else EvalSet(passages, questions, judgements, str(root), paths[0])
        check(lambda: load_eval_set([str(root)]), expected, refusals)
