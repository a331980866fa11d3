"""Retrieval evaluation sets for ``minibert eval``: a BEIR folder, or TREC-style files.

- **BEIR** (the layout MTEB and the BEIR benchmark ship): ``corpus.jsonl`` (``_id``, ``title``, ``text``),
  ``queries.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv``: rows of three tab-separated fields
  ``query-id corpus-id score``, after a ``query-id<TAB>corpus-id<TAB>score`` header on line 1 — skipped when it is
  there; BEIR's loader (``csv.reader`` with a tab delimiter) drops line 1 whatever it holds. Empty fields after the
  third (a trailing tab) are ignored, as BEIR ignores every column after the third; a non-empty fourth field is an
  error, not silently dropped (MS MARCO's tab-separated ``qid 0 pid rel`` read that way would judge document ``0``).
  A field starting with a double quote is an error: BEIR's CSV reader would unquote it.
- **TREC**: three files — passages (``.tsv`` ``id<TAB>text``, or ``.jsonl``), queries (the same formats) and qrels in
  trec_eval's ``qid iter docid rel`` form: exactly four fields separated by any run of ASCII whitespace (spaces, tabs,
  ``\\r``, ``\\v``, ``\\f``: C's ``isspace``, where trec_eval splits; U+00A0 or U+2028 stay inside a field, as
  there); ``iter`` is ignored, as trec_eval does. A third file whose line 1 is BEIR's header is read as BEIR's qrels.

In both forms ids are stripped of surrounding whitespace (as corpus ids are) and must not be empty; a judgement is an
integer of at most 18 ASCII digits with an optional sign, the numbers that trec_eval's ``atol`` and BEIR's ``int`` read
alike (``1.5``, ``1_0`` or ``\u0661`` are errors, not 1, 10 or 1); a document judged twice for one query is an error
(BEIR keeps the last judgement).

Corpus and queries are read by :func:`minibert.retrieval.corpus.read_corpus` (so documents are embedded as
``(title + " " + text).strip()``, MTEB's rule). The qrels follow the same text rules (UTF-8, ``\\n`` lines, blank
lines skipped), and every problem is an :class:`~minibert.errors.InputError` naming the file and the line. Only the
queries judged in the qrels are evaluated; a judged query missing from the queries file is an error (its score would
silently be lost), a judged document missing from the corpus is not (it counts as relevant and never retrieved, as in
trec_eval).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .corpus import Passage, decode_utf8, read_corpus, split_lines

_BEIR_HEADER = ["query-id", "corpus-id", "score"]
_TREC_SPACE = re.compile(r"[ \t\r\x0b\x0c]+")  # C's isspace but \n (which ends the line): trec_eval's separators
_JUDGEMENT = re.compile(r"[+-]?[0-9]{1,18}")


@dataclass(frozen=True)
class EvalSet:
    """A corpus, the judged queries (in qrels order) and their judgements."""

    corpus: list[Passage]
    queries: list[Passage]
    qrels: dict[str, dict[str, int]]  # query id -> document id -> judgement
    source: str
    corpus_path: Path  # the file the corpus was read from


def read_qrels(path: str | Path, *, beir: bool = False) -> dict[str, dict[str, int]]:
    """Judgements from a qrels file: BEIR's TSV (``query-id<TAB>corpus-id<TAB>score``, an optional header on line 1)
    when `beir` (a BEIR folder's ``qrels/<split>.tsv``) or when line 1 is BEIR's header, else trec_eval's
    ``qid iter docid rel``. The rules are the module's."""
    path = Path(path)
    lines = _numbered_lines(path)
    header = bool(lines) and lines[0][0] == 1 and _is_beir_header(lines[0][1])
    fields = _beir_fields if beir or header else _trec_fields
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in lines[1:] if header else lines:
        where = f"qrels {path}, line {lineno}"
        query, doc, judgement = fields(where, line)
        query, doc = _id(where, "query", query), _id(where, "document", doc)
        judged = qrels.setdefault(query, {})
        if doc in judged:
            raise InputError(f"{where}: query {query!r} judges document {doc!r} twice")
        judged[doc] = _judgement(where, judgement)
    if not qrels:
        raise InputError(f"qrels {path} holds no judgements")
    return qrels


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, line) for each non-blank line of qrels file `path` (corpus.py's text rules)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"qrels {path}: cannot be read ({exc.strerror or exc})") from None
    lines = enumerate(split_lines(decode_utf8(data, f"qrels {path}")), start=1)
    return [(lineno, line) for lineno, line in lines if line.strip()]


def _tab_fields(line: str) -> list[str]:
    """The tab-separated fields of a BEIR qrels line, empty fields after the third dropped (a trailing tab)."""
    fields = line.split("\t")
    while len(fields) > 3 and not fields[-1].strip():
        fields.pop()
    return fields


def _is_beir_header(line: str) -> bool:
    return [field.strip().lower() for field in _tab_fields(line)] == _BEIR_HEADER


def _beir_fields(where: str, line: str) -> list[str]:
    """The query id, document id and judgement of a BEIR qrels row, unstripped."""
    fields = _tab_fields(line)
    if len(fields) != 3:
        raise InputError(
            f"{where}: expected 'query-id<TAB>corpus-id<TAB>score' (BEIR's qrels), found {len(fields)} "
            "tab-separated fields"
        )
    if any(field.startswith('"') for field in fields):
        raise InputError(
            f"{where}: a field starts with a double quote, which BEIR's CSV reader would remove; write ids unquoted"
        )
    return fields


def _trec_fields(where: str, line: str) -> list[str]:
    """The query id, document id and judgement of a trec_eval qrels line (``qid iter docid rel``)."""
    fields = [field for field in _TREC_SPACE.split(line) if field]  # none before the first, after the last
    if len(fields) != 4:
        raise InputError(
            f"{where}: expected 'qid iter docid rel' (trec_eval's qrels: four whitespace-separated fields), found "
            f"{len(fields)} fields"
        )
    return [fields[0], fields[2], fields[3]]


def _id(where: str, kind: str, value: str) -> str:
    if not (value := value.strip()):
        raise InputError(f"{where}: empty {kind} id")
    return value


def _judgement(where: str, value: str) -> int:
    if not _JUDGEMENT.fullmatch(value := value.strip()):
        raise InputError(f"{where}: the judgement {value!r} is not an integer (up to 18 ASCII digits, optional sign)")
    return int(value)


def load_eval_set(paths: list[str], split: str = "test") -> EvalSet:
    """A BEIR folder (one path) or corpus, queries and qrels files (three paths)."""
    beir = len(paths) == 1 and Path(paths[0]).is_dir()
    if beir:
        folder = Path(paths[0])
        corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
        qrels_path = folder / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
            raise InputError(
                f"{folder}: no qrels/{split}.tsv (splits there: {', '.join(splits) or 'none'}); pass --split"
            )
    elif len(paths) == 3:
        corpus_path, queries_path, qrels_path = map(Path, paths)
    else:
        raise InputError(
            f"eval takes a BEIR folder, or three files (corpus, queries, qrels); got {len(paths)} path(s): "
            + ", ".join(paths)
        )
    qrels = read_qrels(qrels_path, beir=beir)
    queries = {query.id: query for query in read_corpus(queries_path)}
    missing = [query for query in qrels if query not in queries]
    if missing:
        raise InputError(
            f"qrels {qrels_path} judges {len(missing)} quer{'y' if len(missing) == 1 else 'ies'} that {queries_path} "
            f"does not hold (first: {missing[0]!r}); every judged query must have a text"
        )
    source = paths[0] if len(paths) == 1 else f"{corpus_path} + {queries_path} + {qrels_path}"
    return EvalSet(read_corpus(corpus_path), [queries[query] for query in qrels], qrels, source, corpus_path)
