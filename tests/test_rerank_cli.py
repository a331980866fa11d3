"""Retrieve & rerank from the command line — `minibert rerank`, `search --rerank`, `eval --rerank` — against the same
pipeline built from sentence-transformers' SentenceTransformer + CrossEncoder (+ pytrec_eval for eval).

A random-init cross-encoder's scores hardly differ between passages (its logits sit within ~1e-3 of each other), so
rankings would hinge on ties: the cross-encoder used here has its classifier weights scaled by 1000, which spreads
its logits over units while the two implementations still agree to ~1e-4, far below the gaps between passages."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import pytrec_eval

from minibert.retrieval.corpus import read_corpus
from minibert.retrieval.judgements import read_qrels
from minibert.retrieval.metrics import K_VALUES
from minibert.testing import ACTIVATION_IDENTITY, scale_classifier
from tests.helpers import MINIBERT, ROOT
from tests.test_eval_cli import DATA, MEASURES, TREC_NAMES

CORPUS = ROOT / "examples" / "corpus.txt"


@pytest.fixture(scope="module")
def cross_encoder_dir(make_cross_encoder_dir, tmp_path_factory) -> Path:
    source = make_cross_encoder_dir("bert", "tiny", activation=ACTIVATION_IDENTITY)
    return scale_classifier(source, tmp_path_factory.mktemp("spread") / "cross-encoder", 1000)


def run(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIBERT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(MINIBERT), *args], capture_output=True, text=True, timeout=600, env=env)


def printed_ids(stdout: str) -> list[str]:
    return re.findall(r"^\s*\d+\. -?[\d.]+  \[([^\]]+)\]", stdout, flags=re.MULTILINE)


def reference_cross_encoder(model_dir: Path):
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(model_dir), device="cpu")


def test_rerank_prints_the_passages_as_sentence_transformers_ranks_them(tmp_path, cross_encoder_dir):
    query = "how do the seasons come about"
    result = run("rerank", "--model", str(cross_encoder_dir), "--query", query, "--input", str(CORPUS), home=tmp_path)
    assert result.returncode == 0, result.stderr
    passages = read_corpus(CORPUS)
    expected = reference_cross_encoder(cross_encoder_dir).rank(query, [p.embed_text for p in passages])
    assert printed_ids(result.stdout) == [passages[r["corpus_id"]].id for r in expected]
    top = run("rerank", "--model", str(cross_encoder_dir), "--query", query, "--input", str(CORPUS), "--top-k", "3",
              home=tmp_path)  # fmt: skip
    assert printed_ids(top.stdout) == printed_ids(result.stdout)[:3]


def test_search_rerank_equals_retrieve_and_rerank(tmp_path, real_model_dir, cross_encoder_dir):
    from sentence_transformers import SentenceTransformer, util

    queries = ["how do the seasons come about", "baking bread at home"]
    result = run("search", "--model", str(real_model_dir), "--corpus", str(CORPUS), "--rerank", str(cross_encoder_dir),
                 "--rerank-top", "8", "--top-k", "4", *queries, home=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    passages = read_corpus(CORPUS)
    bi_encoder, cross_encoder = SentenceTransformer(str(real_model_dir), device="cpu"), reference_cross_encoder(
        cross_encoder_dir
    )
    documents = bi_encoder.encode([p.embed_text for p in passages])
    hits = util.semantic_search(bi_encoder.encode(queries), documents, top_k=8)
    expected = []
    for query, found in zip(queries, hits, strict=True):
        ranked = cross_encoder.rank(query, [passages[h["corpus_id"]].embed_text for h in found])
        expected += [passages[found[r["corpus_id"]]["corpus_id"]].id for r in ranked[:4]]
    assert printed_ids(result.stdout) == expected


@pytest.mark.skipif(DATA is None, reason="the MS MARCO sample (../shared/data) is not on this machine")
def test_eval_rerank_equals_sentence_transformers_and_pytrec_eval(tmp_path, real_model_dir, cross_encoder_dir):
    """The first 300 MS MARCO passages and the queries judged on them; the top 20 of each query reranked."""
    from sentence_transformers import SentenceTransformer, util

    passages = (DATA / "msmarco-passages.tsv").read_text(encoding="utf-8").splitlines()[:300]
    kept = {line.split("\t", 1)[0] for line in passages}
    qrels_lines = [line for line in (DATA / "msmarco-qrels.txt").read_text().splitlines() if line.split()[2] in kept]
    (tmp_path / "passages.tsv").write_text("\n".join(passages) + "\n", encoding="utf-8")
    (tmp_path / "qrels.txt").write_text("\n".join(qrels_lines) + "\n")
    files = [str(tmp_path / "passages.tsv"), str(DATA / "msmarco-queries.tsv"), str(tmp_path / "qrels.txt")]
    result = run("eval", "--model", str(real_model_dir), *files, "--rerank", str(cross_encoder_dir), "--rerank-top",
                 "20", "--output", str(tmp_path / "m.json"), home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["rerank"] == {"model": str(cross_encoder_dir), "top": 20}

    qrels = read_qrels(tmp_path / "qrels.txt")
    corpus = read_corpus(files[0])
    queries = [q for q in read_corpus(DATA / "msmarco-queries.tsv") if q.id in qrels]
    bi_encoder, cross_encoder = SentenceTransformer(str(real_model_dir), device="cpu"), reference_cross_encoder(
        cross_encoder_dir
    )
    hits = util.semantic_search(bi_encoder.encode([q.text for q in queries]),
                                bi_encoder.encode([p.embed_text for p in corpus]), top_k=20)  # fmt: skip
    rerun = {}
    for query, found in zip(queries, hits, strict=True):
        ranked = cross_encoder.rank(query.text, [corpus[h["corpus_id"]].embed_text for h in found])
        rerun[query.id] = {corpus[found[r["corpus_id"]]["corpus_id"]].id: float(r["score"]) for r in ranked}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(rerun)
    for name, trec in TREC_NAMES.items():
        for k in K_VALUES:
            expected = sum(s[f"{trec}_{k}"] for s in per_query.values()) / len(per_query)
            assert abs(report["metrics"][f"{name}@{k}"] - expected) <= 1e-9, (name, k)


@pytest.mark.parametrize(
    "args, message",
    [
        (("rerank", "--query", "q", "--input", str(CORPUS), "--top-k", "0"), "--top-k must be a positive integer"),
        (("search", "--corpus", str(CORPUS), "--rerank", "x", "--rerank-top", "0", "q"), "--rerank-top must be a"),
    ],
)
def test_bad_rerank_options_are_one_line(tmp_path, args, message):
    result = run(*args, home=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith("minibert: error: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bi_encoder_given_to_rerank_is_one_line(tmp_path, real_model_dir):
    result = run("rerank", "--model", str(real_model_dir), "--query", "q", "--input", str(CORPUS), home=tmp_path)
    assert result.returncode == 1 and "no sequence-classification head" in result.stderr
    assert result.stderr.count("\n") == 1
