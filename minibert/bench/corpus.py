"""The benchmarks' default corpus: $MINIBERT_BENCH_CORPUS, the MS MARCO sample beside a checkout, or prose
every Python has — the paragraphs of the standard library's docstrings, written once under the bench folder; and
their default queries: $MINIBERT_BENCH_QUERIES, or the TREC DL 2019 queries of the MS MARCO sample."""

from __future__ import annotations

import ast
import os
import re
import sys
import sysconfig
import warnings
from pathlib import Path

from ..errors import InputError
from .paths import REPO_ROOT, bench_home

CORPUS_ENV = "MINIBERT_BENCH_CORPUS"
QUERIES_ENV = "MINIBERT_BENCH_QUERIES"


def stdlib_corpus(dest_dir: Path, max_passages: int = 4000) -> Path:
    """A plain-text corpus (one passage per line) of the paragraphs of the docstrings in the Python standard
    library's source: modules, classes and functions, files in sorted order, paragraphs of at least 20 words
    without code (no '>>>', no indented lines). Written once to `dest_dir` and reused."""
    path = dest_dir / f"python{sys.version_info[0]}.{sys.version_info[1]}-stdlib-docstrings.txt"
    if path.exists():
        return path
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "site-packages", "dist-packages", "__pycache__"}
    files = sorted(p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts))
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    passages: list[str] = []
    for source in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escape sequences in old sources
                tree = ast.parse(source.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, kinds) else None
            for paragraph in re.split(r"\n\s*\n", doc or ""):
                words = paragraph.split()
                if len(words) >= 20 and ">>>" not in paragraph and not re.search(r"^\s", paragraph, re.M):
                    passages.append(" ".join(words))
        if len(passages) >= max_passages:
            break
    if not passages:
        raise InputError(f"no docstrings found under {root}; pass --corpus FILE")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(passages[:max_passages]) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def default_corpus() -> Path:
    """$MINIBERT_BENCH_CORPUS; else the MS MARCO sample beside a checkout; else the stdlib docstring corpus."""
    if os.environ.get(CORPUS_ENV, "").strip():
        return Path(os.environ[CORPUS_ENV].strip()).expanduser()
    msmarco = REPO_ROOT.parent / "shared" / "data" / "msmarco-passages.tsv"
    if msmarco.is_file():
        return msmarco
    return stdlib_corpus(bench_home())


def default_queries() -> Path | None:
    """$MINIBERT_BENCH_QUERIES; else the MS MARCO sample's queries beside a checkout; else None (the bench then cuts
    short texts from the corpus)."""
    if os.environ.get(QUERIES_ENV, "").strip():
        return Path(os.environ[QUERIES_ENV].strip()).expanduser()
    msmarco = REPO_ROOT.parent / "shared" / "data" / "msmarco-queries.tsv"
    return msmarco if msmarco.is_file() else None
