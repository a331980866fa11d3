"""Text inputs of the command line: corpus files for ``minibert search``, and the one rule for reading text.

Every text input is read by the same two functions. :func:`decode_utf8`: UTF-8, a leading byte-order mark
tolerated, undecodable bytes reported by byte offset and line with a way to convert the file.
:func:`split_lines`: lines end at ``\\n`` (a ``\\r`` before it is dropped) and nowhere else — not at U+2028, U+0085,
form feed or a lone ``\\r``, which ``str.splitlines`` would also split on — so row *i* of ``minibert encode`` is
line *i* of its input, and a corpus line is one passage.

Corpus formats, chosen by extension (case-insensitive):

* ``.tsv`` — ``id<TAB>text`` per line. The id is everything before the first tab; further tabs
  stay in the text.
* ``.jsonl`` — one JSON object per line with a required string ``text``, an optional string
  ``title`` and an optional ``_id`` (or ``id``), a string or an integer. Without one, the id is the
  passage's 0-based index among the non-blank lines (as for plain text).
* anything else — plain text, one passage per line; the id is the passage's 0-based index among
  the non-blank lines.

Blank lines are skipped in every format, and surrounding whitespace is stripped from ids and texts. Every
problem with a corpus file is an :class:`~minibert.errors.InputError` whose message names the file and, where
there is one, the line (1-based, counting every physical line): malformed lines, duplicate ids, JSON nested
too deeply to parse or holding a number of more digits than Python converts (``sys.get_int_max_str_digits()``,
4300 by default), and strings that are not valid Unicode (a JSON ``\\ud800`` escape decodes to a lone surrogate,
which no tokenizer can read).

A corpus is read once: a pipe or a process substitution (``--corpus <(...)``) works, and what the embedding
cache keys on is the parsed passages (:mod:`minibert.retrieval.cache`), not a second read of the file.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..errors import InputError

__all__ = [
    "JsonFields",
    "Passage",
    "corpus_format",
    "decode_utf8",
    "parse_line",
    "parse_lines",
    "passage_from_fields",
    "read_corpus",
    "split_lines",
    "stream_lines",
]

_BOM = b"\xef\xbb\xbf"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Passage:
    """One passage of a corpus: its id, its text and an optional title."""

    id: str
    text: str
    title: str = ""

    @property
    def embed_text(self) -> str:
        """The string to embed: ``title + " " + text`` when there is a title, else the text (BEIR's rule)."""
        if self.title:
            return f"{self.title} {self.text}".strip()
        return self.text


# --------------------------------------------------------------------------------------------------
# Reading


def read_corpus(path: str | os.PathLike[str]) -> list[Passage]:
    """Read a corpus file into passages, in file order; the format is chosen by the extension.

    Raises :class:`InputError` for a missing file, a directory, undecodable bytes, a malformed line,
    a duplicate id, or a file with no passages.
    """
    p = Path(path)
    seen: dict[str, int] = {}
    passages = []
    for lineno, passage in parse_lines(p, _lines(_read_text(p))):
        _check_unique(p, lineno, passage.id, seen)
        passages.append(passage)
    if not passages:
        raise InputError(f"corpus {p} has no passages")
    return passages


def corpus_format(path: str | os.PathLike[str]) -> str:
    """The format of a corpus file by its extension: "tsv", "jsonl" or "txt" (anything else is plain text)."""
    suffix = Path(path).suffix.lower()
    return {".tsv": "tsv", ".jsonl": "jsonl"}.get(suffix, "txt")


def parse_lines(
    p: Path, lines: Iterable[tuple[int, str]], fields: JsonFields | None = None
) -> Iterator[tuple[int, Passage]]:
    """(line number, passage) for each numbered non-blank line of corpus file `p`, in the format of its extension.
    Ids are not checked for uniqueness here (:func:`read_corpus` does, holding every id)."""
    fields = fields or JsonFields()
    for index, (lineno, line) in enumerate(lines):
        yield lineno, parse_line(p, f"corpus {p}, line {lineno}", line, index, fields)


def parse_line(p: Path, where: str, line: str, index: int | None, fields: JsonFields | None = None) -> Passage:
    """The passage of one non-blank line of corpus file `p` (format by its extension); `where` names the line in
    errors. `index` is the passage's position among the corpus's passages — what a passage without an id is named
    by; None when it is not known (a line read out of order), and then a line without an id is an InputError."""
    parse = {"tsv": _parse_tsv_line, "jsonl": _parse_jsonl_line, "txt": _parse_plain_line}[corpus_format(p)]
    return parse(where, line, index, fields or JsonFields())


def stream_lines(p: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line of file `p`, read a line at a time (memory bounded by
    the longest line), with :func:`split_lines`' rule and :func:`decode_utf8`'s errors (offset and line named)."""
    try:
        f = open(p, "rb")  # noqa: SIM115 (closed below; the errors of opening are reported as read_corpus's)
    except OSError as exc:
        _read_error(p, exc)
    with f:
        offset = 0
        for lineno, raw in enumerate(f, start=1):
            start = len(_BOM) if lineno == 1 and raw.startswith(_BOM) else 0
            try:
                line = raw[start:].decode("utf-8")
            except UnicodeDecodeError as e:
                raise _not_utf8(f"corpus file {p}", raw[start + e.start], offset + start + e.start, lineno) from None
            offset += len(raw)
            line = line[:-1] if line.endswith("\n") else line
            line = line[:-1] if line.endswith("\r") else line
            if line.strip():
                yield lineno, line


def decode_utf8(data: bytes, source: str) -> str:
    """`data` as text: UTF-8 with an optional BOM. Undecodable bytes are an InputError naming `source`, the byte
    offset and the line, and how to convert the input."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = start + e.start
        raise _not_utf8(source, data[offset], offset, data.count(b"\n", 0, offset) + 1) from None


def _not_utf8(source: str, byte: int, offset: int, line: int) -> InputError:
    return InputError(
        f"{source} is not valid UTF-8: undecodable byte 0x{byte:02x} at byte offset {offset} (line {line}); convert "
        "it to UTF-8 first, e.g. iconv -f latin1 -t utf-8 (naming its encoding)"
    )


def split_lines(text: str) -> list[str]:
    """The lines of `text`: split at ``\\n`` only, a ``\\r`` before it dropped, no empty last line for a final
    newline. U+2028, U+0085, form feed and a lone ``\\r`` stay inside their line."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line (or an empty text)
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_error(p: Path, exc: OSError) -> NoReturn:
    """The InputError for a corpus file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        raise InputError(f"corpus file {p} does not exist") from None
    if isinstance(exc, IsADirectoryError) or p.is_dir():  # Windows reports a directory as PermissionError
        raise InputError(f"corpus path {p} is a directory, not a file") from None
    raise InputError(f"cannot read corpus file {p}: {exc.strerror or exc}") from None


def _read_text(p: Path) -> str:
    """The file's contents as text (read once, so a pipe works too)."""
    try:
        data = p.read_bytes()
    except OSError as exc:
        _read_error(p, exc)
    return decode_utf8(data, f"corpus file {p}")


def _lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line (:func:`split_lines`' rule)."""
    return [(i, line) for i, line in enumerate(split_lines(text), start=1) if line.strip()]


def _valid_unicode(where: str, field: str, value: str) -> str:
    """`value`, or an InputError when it holds a lone surrogate (from a JSON \\ud800-style escape)."""
    if (match := _LONE_SURROGATE.search(value)) is not None:
        raise InputError(
            f"{where}: field {field!r} holds a lone surrogate (U+{ord(match[0]):04X} at character {match.start()}, "
            "from a \\u escape that is half of a pair), which is not valid Unicode; fix that escape in the file"
        )
    return value


@dataclass(frozen=True)
class JsonFields:
    """The field (or column) names of a passage's parts: the id (None: ``_id``, else ``id``, else the passage's index),
    the text and the title (optional)."""

    id: str | None = None
    text: str = "text"
    title: str = "title"

    def id_candidates(self) -> tuple[str, ...]:
        return (self.id,) if self.id else ("_id", "id")


def _parse_plain_line(where: str, line: str, index: int | None, fields: JsonFields) -> Passage:
    if index is None:
        raise InputError(f"{where}: a plain-text passage is named by its line's position, which is not known here")
    return Passage(id=str(index), text=line.strip())


def _parse_tsv_line(where: str, line: str, index: int | None, fields: JsonFields) -> Passage:
    pid, tab, rest = line.partition("\t")
    if not tab:
        raise InputError(f"{where}: expected 'id<TAB>text', found no tab")
    pid, rest = pid.strip(), rest.strip()
    if not pid:
        raise InputError(f"{where}: empty id before the tab")
    if not rest:
        raise InputError(f"{where}: passage {pid!r} has empty text")
    return Passage(id=pid, text=rest)


def _parse_jsonl_line(where: str, line: str, index: int | None, fields: JsonFields) -> Passage:
    try:
        obj: Any = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    except ValueError:  # Python reads integers of at most sys.get_int_max_str_digits() digits
        raise InputError(
            f"{where}: a JSON number has more than {sys.get_int_max_str_digits()} digits, more than Python reads"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply to parse; a passage is a flat object") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {_json_type(obj)}")
    return passage_from_fields(where, obj, index, fields)


def passage_from_fields(where: str, obj: Mapping[str, Any], index: int | None, fields: JsonFields) -> Passage:
    """The passage of one record (a JSON object, a Parquet row as a dict): its text, optional title and id checked
    as for a JSONL corpus line; `where` names the record in errors, `index` as for :func:`parse_line`."""
    if fields.text not in obj:
        raise InputError(f"{where}: missing required field {fields.text!r}")
    body = obj[fields.text]
    if not isinstance(body, str):
        raise InputError(f"{where}: field {fields.text!r} must be a string, got {_json_type(body)}")
    title = obj.get(fields.title)
    if title is None:
        title = ""
    elif not isinstance(title, str):
        raise InputError(f"{where}: field {fields.title!r} must be a string, got {_json_type(title)}")
    body = _valid_unicode(where, fields.text, body).strip()
    title = _valid_unicode(where, fields.title, title).strip()
    if not body and not title:
        raise InputError(f"{where}: passage has empty text and no title")
    return Passage(id=_record_id(where, obj, index, fields), text=body, title=title)


def _record_id(where: str, obj: Mapping[str, Any], index: int | None, fields: JsonFields) -> str:
    for field in fields.id_candidates():
        if field in obj:
            raw = obj[field]
            if isinstance(raw, bool) or not isinstance(raw, (str, int)):
                raise InputError(f"{where}: field {field!r} must be a string or an integer, got {_json_type(raw)}")
            pid = _valid_unicode(where, field, str(raw)).strip()
            if not pid:
                raise InputError(f"{where}: field {field!r} is empty")
            return pid
    if fields.id or index is None:
        raise InputError(f"{where}: missing id field {' or '.join(repr(f) for f in fields.id_candidates())}")
    return str(index)


def _check_unique(p: Path, lineno: int, pid: str, seen: dict[str, int]) -> None:
    if pid in seen:
        raise InputError(f"corpus {p}, line {lineno}: duplicate id {pid!r} (first used on line {seen[pid]})")
    seen[pid] = lineno


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"  # a Parquet value JSON has no name for: bytes, a datetime
