"""The `minibert` console script end to end, through a subprocess, on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, assert_close

MINIBERT = Path(sys.executable).parent / "minibert"
CORPUS = ROOT / "examples" / "corpus.txt"


def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MINIBERT), *args], input=stdin, capture_output=True, text=True, timeout=300, env=env or os.environ.copy()
    )


@pytest.fixture(scope="module")
def reference(real_model_dir):
    from sentence_transformers import SentenceTransformer as Reference

    return Reference(str(real_model_dir), device="cpu")


def test_info_describes_the_default_model(real_model_dir):
    result = run("info")
    assert result.returncode == 0, result.stderr
    fields = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines())
    assert fields["architecture"] == "bert"
    assert (fields["layers"], fields["hidden size"], fields["attention heads"]) == ("6", "384", "12")
    assert fields["max_seq_length"] == "256" and fields["pooling"] == "mean" and fields["normalized"] == "yes"
    assert fields["score function"].startswith("cosine")
    from safetensors.numpy import load_file

    stored = load_file(real_model_dir / "model.safetensors")
    # everything but the unused pooler and the position_ids buffer
    expected = sum(v.size for k, v in stored.items() if not k.startswith("pooler.") and "position_ids" not in k)
    assert fields["parameters"] == f"{expected:,}"


def test_encode_to_npy_matches_sentence_transformers(tmp_path, reference):
    texts = ["first line", "", "Ünïcödé and 中文", "a much longer line " * 50]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    result = run("encode", "--input", str(source), "--output", str(out), "--batch-size", "3")
    assert result.returncode == 0, result.stderr
    assert_close(np.load(out), reference.encode(texts), atol=1e-5, what="minibert encode → .npy")


def test_encode_stdin_to_jsonl_on_stdout(reference):
    result = run("encode", "--normalize", stdin="alpha\nbeta gamma\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["index"], r["text"]) for r in rows] == [(0, "alpha"), (1, "beta gamma")]
    assert_close([r["embedding"] for r in rows], reference.encode(["alpha", "beta gamma"]), atol=1e-5, what="jsonl")


def _printed_hits(stdout: str) -> dict[str, list[tuple[float, str]]]:
    hits: dict[str, list[tuple[float, str]]] = {}
    for line in stdout.splitlines():
        if line.startswith("query: "):
            query = line[len("query: ") :]
            hits[query] = []
        elif m := re.match(r"\s*\d+\. (-?[\d.]+)  \[(.+?)\] ", line):
            hits[query].append((float(m.group(1)), m.group(2)))
    return hits


def test_search_ranks_like_sentence_transformers_and_caches_the_corpus(tmp_path, reference, real_model_dir):
    from sentence_transformers import util as st_util

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(CORPUS.read_bytes())
    env = {**os.environ, "MINIBERT_HOME": str(tmp_path / "home")}
    queries = ["how do I bake bread at home", "what causes the seasons on earth"]
    search = ("search", "--model", str(real_model_dir), "--corpus", str(corpus), "--top-k", "3", *queries)
    first = run(*search, env=env)
    assert first.returncode == 0, first.stderr
    assert "encoding" in first.stderr
    passages = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    ref_hits = st_util.semantic_search(reference.encode(queries), reference.encode(passages), top_k=3)
    printed = _printed_hits(first.stdout)
    for query, expected in zip(queries, ref_hits, strict=True):
        assert [pid for _, pid in printed[query]] == [str(h["corpus_id"]) for h in expected]
        assert_close([s for s, _ in printed[query]], [h["score"] for h in expected], atol=1e-4, what=query)
    assert "bread" in passages[int(printed[queries[0]][0][1])]
    second = run(*search, env=env)
    assert second.returncode == 0 and "encoding" not in second.stderr  # served from the cache
    assert second.stdout == first.stdout
    assert len(list((tmp_path / "home" / "embeddings").glob("*.npy"))) == 1


def test_download_prints_the_cached_directory(real_model_dir):
    result = run("download")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == real_model_dir


@pytest.mark.parametrize(
    "args, message",
    [
        (("search", "--corpus", "/nonexistent/corpus.txt", "query"), "corpus.txt"),
        (("encode", "--input", "/nonexistent/in.txt"), "in.txt"),
        (("encode", "--output", "out.csv"), "use a .npy or .jsonl"),
        (("info", "--model", "/nonexistent/model"), "/nonexistent/model"),
        (("encode", "--batch-size", "0"), "batch_size"),
    ],
)
def test_errors_are_one_clear_line(args, message):
    result = run(*args, stdin="some text\n")
    assert result.returncode == 1
    assert result.stderr.startswith("minibert: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
