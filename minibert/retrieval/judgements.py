"""Retrieval evaluation sets for ``minibert eval``: a BEIR folder, or TREC-style files.

- **BEIR** (the layout MTEB and the BEIR benchmark ship): ``corpus.jsonl`` (``_id``, ``title``, ``text``),
  ``queries.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv`` (a ``query-id corpus-id score`` header, then
  tab-separated rows).
- **TREC**: three files — passages (``.tsv`` ``id<TAB>text``, or ``.jsonl``), queries (the same formats) and qrels in
  trec_eval's ``qid 0 docid rel`` form (whitespace-separated; the second column is ignored, as trec_eval does).

Corpus and queries are read by :func:`minibert.retrieval.corpus.read_corpus` (so documents are embedded as
``(title + " " + text).strip()``, MTEB's rule). The qrels follow the same text rules (UTF-8, ``\\n`` lines), and
every problem is an :class:`~minibert.errors.InputError` naming the file and the line. Only the queries judged in
the qrels are evaluated; a judged query missing from the queries file is an error (its score would silently be
lost), a judged document missing from the corpus is not (it counts as relevant and never retrieved, as in
trec_eval).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .corpus import Passage, decode_utf8, read_corpus, split_lines


@dataclass(frozen=True)
class EvalSet:
    """A corpus, the judged queries (in qrels order) and their judgements."""

    corpus: list[Passage]
    queries: list[Passage]
    qrels: dict[str, dict[str, int]]  # query id -> document id -> judgement
    source: str
    corpus_path: Path  # the file the corpus was read from


def _judgement(path: Path, lineno: int, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InputError(f"qrels {path}, line {lineno}: the judgement {value!r} is not an integer") from None


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgements from a BEIR qrels TSV (``query-id<TAB>corpus-id<TAB>score``, header first) or a trec_eval qrels
    file (``qid 0 docid rel``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"qrels {path}: cannot be read ({exc.strerror or exc})") from None
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(split_lines(decode_utf8(data, f"qrels {path}")), start=1):
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if lineno == 1 and [f.strip().lower() for f in fields] == ["query-id", "corpus-id", "score"]:
            continue  # BEIR's header
        if len(fields) == 3:
            query, doc, judgement = (f.strip() for f in fields)
        elif len(fields) == 4:
            query, _, doc, judgement = (f.strip() for f in fields)
        else:
            raise InputError(
                f"qrels {path}, line {lineno}: expected 'query-id<TAB>corpus-id<TAB>score' or 'qid 0 docid rel', "
                f"found {len(fields)} fields"
            )
        judged = qrels.setdefault(query, {})
        if doc in judged:
            raise InputError(f"qrels {path}, line {lineno}: query {query!r} judges document {doc!r} twice")
        judged[doc] = _judgement(path, lineno, judgement)
    if not qrels:
        raise InputError(f"qrels {path} holds no judgements")
    return qrels


def load_eval_set(paths: list[str], split: str = "test") -> EvalSet:
    """A BEIR folder (one path) or corpus, queries and qrels files (three paths)."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
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
    qrels = read_qrels(qrels_path)
    queries = {query.id: query for query in read_corpus(queries_path)}
    missing = [query for query in qrels if query not in queries]
    if missing:
        raise InputError(
            f"qrels {qrels_path} judges {len(missing)} quer{'y' if len(missing) == 1 else 'ies'} that {queries_path} "
            f"does not hold (first: {missing[0]!r}); every judged query must have a text"
        )
    source = paths[0] if len(paths) == 1 else f"{corpus_path} + {queries_path} + {qrels_path}"
    return EvalSet(read_corpus(corpus_path), [queries[query] for query in qrels], qrels, source, corpus_path)
