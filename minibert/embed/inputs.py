"""The input of ``minibert embed``: a corpus file read as a stream of passages, and its identity.

Text formats (``.tsv``, ``.jsonl``, anything else as plain text) follow :mod:`minibert.retrieval.corpus` line by
line (:func:`~minibert.retrieval.corpus.stream_lines`, :func:`~minibert.retrieval.corpus.parse_lines`), so a passage
here is the passage ``minibert search`` reads from the same file. ``.parquet`` is read a row group's batch at a time
with pyarrow; each row is checked as a JSONL record is (:func:`~minibert.retrieval.corpus.passage_from_fields`).
Parquet's own problems are InputErrors too: two columns of the id, text or title's name (which one is meant is
ambiguous; pyarrow's ``read_table`` refuses any name twice), a string column holding bytes that are not UTF-8
(Parquet does not check them; the row is named), and data pyarrow cannot read, such as a corrupt page (the first row
not read is named). Memory is bounded by one line or one record batch, never by the corpus.

Where it differs from :func:`~minibert.retrieval.corpus.read_corpus`: ids are not checked for uniqueness (that would
hold every id of a corpus of any size in memory); a duplicate id gives two rows, one per input passage. The input
must be a regular file: a job is resumed by reading its input again.

The identity of an input (:func:`input_identity`) is its SHA-256, size, format and field names: what a resumed job
compares to refuse a changed input.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, InputError
from ..retrieval.corpus import JsonFields, Passage, corpus_format, parse_lines, passage_from_fields, stream_lines

FORMATS = ("tsv", "jsonl", "txt", "parquet")
_HASH_CHUNK = 1 << 20
_PARQUET_BATCH_ROWS = 1024


def import_pyarrow() -> Any:
    """pyarrow (and pyarrow.parquet), or BackendUnavailableError saying which extra installs it."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BackendUnavailableError(
            "minibert embed reads and writes Parquet with pyarrow; pip install 'minibert[embed]'"
        ) from None
    return pyarrow


@dataclass(frozen=True)
class CorpusInput:
    """A corpus file to embed: where it is, its format, and the names of its fields (JSONL / Parquet)."""

    path: Path
    format: str
    fields: JsonFields


def open_input(path: str | os.PathLike[str], fields: JsonFields | None = None) -> CorpusInput:
    """The corpus file `path`, checked to be a readable regular file; its format by extension (:data:`FORMATS`)."""
    p = Path(path)
    if str(path) == "-":
        raise InputError("minibert embed reads a file, not standard input: a job is resumed by reading it again")
    if not p.exists():
        raise InputError(f"--input {p}: no such file")
    if not p.is_file():
        raise InputError(f"--input {p}: not a regular file (a resumable job reads its input again; save it to a file)")
    fmt = "parquet" if p.suffix.lower() == ".parquet" else corpus_format(p)
    source = CorpusInput(path=p, format=fmt, fields=fields or JsonFields())
    if fmt == "parquet":
        _parquet_file(source)  # its columns checked before any output is made
    return source


def input_identity(source: CorpusInput) -> tuple[dict[str, Any], int | None]:
    """(identity, lines): the file's SHA-256, size, format and field names; and its number of lines for a text
    format (an upper bound on its passages, for the progress bar), None for Parquet."""
    digest = hashlib.sha256()
    lines = 0
    size = 0
    try:
        with open(source.path, "rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
                lines += chunk.count(b"\n")
                size += len(chunk)
                last = chunk[-1:]
    except OSError as exc:
        raise InputError(f"--input {source.path}: cannot be read ({exc.strerror or exc})") from None
    if size and last != b"\n":
        lines += 1
    identity = {
        "path": str(source.path.resolve()),
        "format": source.format,
        "bytes": size,
        "sha256": digest.hexdigest(),
        "fields": asdict(source.fields),
    }
    return identity, None if source.format == "parquet" else lines


def parquet_rows(source: CorpusInput) -> int:
    """The number of rows of a Parquet input (from its footer)."""
    return _parquet_file(source).metadata.num_rows


def iter_passages(source: CorpusInput) -> Iterator[Passage]:
    """The passages of `source`, in file order, a line or a record batch at a time."""
    if source.format != "parquet":
        for _, passage in parse_lines(source.path, stream_lines(source.path), source.fields):
            yield passage
        return
    yield from _parquet_passages(source)


def _parquet_file(source: CorpusInput) -> Any:
    """The input's pyarrow ParquetFile; InputError when it is not a Parquet file or lacks the text / id column."""
    pa = import_pyarrow()
    try:
        parquet = pa.parquet.ParquetFile(source.path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"--input {source.path}: not a readable Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    fields = source.fields
    if fields.text not in names:
        raise InputError(
            f"--input {source.path}: no column {fields.text!r} (columns: {', '.join(names)}); name the text column "
            "with --text-field"
        )
    if fields.id and fields.id not in names:
        raise InputError(f"--input {source.path}: no id column {fields.id!r} (columns: {', '.join(names)})")
    if twice := next((name for name in _read_columns(fields, names) if names.count(name) > 1), None):
        raise InputError(
            f"--input {source.path}: {names.count(twice)} columns are named {twice!r}; which one holds the passages' "
            f"{'text' if twice == fields.text else 'title' if twice == fields.title else 'ids'} is ambiguous"
        )
    return parquet


def _read_columns(fields: JsonFields, names: list[str]) -> list[str]:
    """The columns of a Parquet input that a passage is read from: its id, text and title, those present."""
    return [name for name in (*fields.id_candidates(), fields.text, fields.title) if name in names]


def _parquet_passages(source: CorpusInput) -> Iterator[Passage]:
    for start, batch in _record_batches(source.path, _parquet_file(source), source.fields):
        for index, row in enumerate(_batch_rows(source.path, start, batch), start=start):
            yield passage_from_fields(f"--input {source.path}, row {index}", row, index, source.fields)


def _record_batches(path: Path, parquet: Any, fields: JsonFields) -> Iterator[tuple[int, Any]]:
    """(index of its first row, batch) for each record batch of the passages' columns, a row group at a time; data
    pyarrow cannot read (a corrupt page) is an InputError naming the first row it could not read."""
    pa = import_pyarrow()
    columns = _read_columns(fields, parquet.schema_arrow.names)
    start = 0
    for group in range(parquet.num_row_groups):
        batches = parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, row_groups=[group], columns=columns)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except (pa.ArrowException, OSError) as exc:
                reason = " ".join(str(exc).split())  # pyarrow's message spans lines; an error is one
                raise InputError(f"--input {path}, row {start}: cannot read row group {group} ({reason})") from None
            yield start, batch
            start += batch.num_rows


def _batch_rows(path: Path, start: int, batch: Any) -> Iterable[dict[str, Any]]:
    """The rows of a record batch as dicts. A string that is not UTF-8 (Parquet does not check what a writer stored)
    is an InputError naming its row, met after the rows before it."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:  # converted a row at a time, to find that row
        return (_row(path, start + offset, batch.slice(offset, 1)) for offset in range(batch.num_rows))


def _row(path: Path, index: int, batch: Any) -> dict[str, Any]:
    """The one row of a record batch, as a dict."""
    try:
        [row] = batch.to_pylist()
    except UnicodeDecodeError as exc:
        raise InputError(
            f"--input {path}, row {index}: a string is not valid UTF-8 ({exc.reason}); the file was written with "
            "bytes that are not UTF-8 in a string column"
        ) from None
    return row
