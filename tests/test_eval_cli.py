"""`minibert eval` end to end: its metrics equal pytrec_eval's (and mteb's MRR) on the run that minibert's own search
path produces, on the MS MARCO sample (a slice, to keep CI short) and on a BEIR folder with titles and graded
judgements; malformed inputs are one error line naming the file and the line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import pytrec_eval

import minibert
from minibert import util
from minibert.retrieval.corpus import read_corpus
from minibert.retrieval.judgements import read_qrels
from minibert.retrieval.metrics import K_VALUES, ranked
from tests.helpers import MINIBERT, ROOT

# The MS MARCO sample: beside the checkout (../shared/data), else at the workplace's fixed path (/work/shared/data,
# where a clone elsewhere on the same machine finds it).
DATA = next(
    (d for d in (ROOT.parent / "shared" / "data", Path("/work/shared/data")) if (d / "msmarco-qrels.txt").is_file()),
    None,
)
MEASURES = {f"{name}.{','.join(map(str, K_VALUES))}" for name in ("ndcg_cut", "map_cut", "recall", "P")}
TREC_NAMES = {"NDCG": "ndcg_cut", "MAP": "map_cut", "Recall": "recall", "P": "P"}


def _eval(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIBERT_HOME": str(home)}
    return subprocess.run([str(MINIBERT), "eval", *args], capture_output=True, text=True, timeout=600, env=env)


def _reference_metrics(model_dir, corpus, queries, qrels) -> dict[str, float]:
    """The same retrieval done in this process (minibert's encode and semantic_search, top 1000, the model's score
    function), scored by pytrec_eval; MRR@10 as trec_eval's recip_rank of the top 10."""
    model = minibert.SentenceTransformer(model_dir)
    documents = model.encode([p.embed_text for p in corpus])
    score_function = util.cos_sim if model.similarity_fn_name == "cosine" else util.dot_score
    hits = util.semantic_search(
        model.encode([q.text for q in queries]), documents, top_k=min(1000, len(corpus)), score_function=score_function
    )
    run = {q.id: {corpus[h["corpus_id"]].id: h["score"] for h in found} for q, found in zip(queries, hits, strict=True)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    metrics = {
        f"{name}@{k}": sum(s[f"{trec}_{k}"] for s in per_query.values()) / len(per_query)
        for name, trec in TREC_NAMES.items()
        for k in K_VALUES
    }
    top10 = {q: {d: s[d] for d in ranked(s)[:10]} for q, s in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    metrics["MRR@10"] = sum(s["recip_rank"] for s in reciprocal.values()) / len(reciprocal)
    return metrics


def _assert_metrics_equal(report: dict, expected: dict[str, float]) -> None:
    assert set(report["metrics"]) == set(expected)
    for name, value in expected.items():
        assert abs(report["metrics"][name] - value) <= 1e-9, (name, report["metrics"][name], value)


@pytest.mark.skipif(DATA is None, reason="the MS MARCO sample (../shared/data) is not on this machine")
def test_msmarco_sample_metrics_equal_pytrec_eval(tmp_path, real_model_dir):
    """The first 600 MS MARCO passages and the queries judged on them, as TREC-style files."""
    passages = (DATA / "msmarco-passages.tsv").read_text(encoding="utf-8").splitlines()[:600]
    kept = {line.split("\t", 1)[0] for line in passages}
    qrels_lines = [line for line in (DATA / "msmarco-qrels.txt").read_text().splitlines() if line.split()[2] in kept]
    (tmp_path / "passages.tsv").write_text("\n".join(passages) + "\n", encoding="utf-8")
    (tmp_path / "qrels.txt").write_text("\n".join(qrels_lines) + "\n")
    files = [str(tmp_path / "passages.tsv"), str(DATA / "msmarco-queries.tsv"), str(tmp_path / "qrels.txt")]
    home = tmp_path / "home"
    result = _eval("--model", str(real_model_dir), *files, "--output", str(tmp_path / "m.json"), home=home)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    qrels = read_qrels(tmp_path / "qrels.txt")
    queries = [q for q in read_corpus(DATA / "msmarco-queries.tsv") if q.id in qrels]
    assert report["queries"] == len(queries) == len(qrels) and report["documents"] == 600
    _assert_metrics_equal(report, _reference_metrics(real_model_dir, read_corpus(files[0]), queries, qrels))
    assert "| NDCG | " in result.stdout and "MRR@10: " in result.stdout
    again = _eval("--model", str(real_model_dir), *files, home=home)  # the corpus comes from search's cache
    assert again.returncode == 0 and "encoding 600 passages" not in again.stderr and "encoding 600" in result.stderr


@pytest.fixture
def beir_folder(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        ("d1", "Bread", "Knead the dough and let it rise before baking."),
        ("d2", "", "The seasons come from the tilt of Earth's axis."),
        ("d3", "Python", "A list comprehension builds a list from an iterable."),
        ("d4", "Baking", "Sourdough needs a starter and a long, slow rise."),
        ("d5", "Astronomy", "Earth's orbit is nearly circular; tilt, not distance, makes summer."),
    ]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in docs), encoding="utf-8"
    )
    queries = [("q1", "how do I bake bread"), ("q2", "why are there seasons"), ("q3", "python lists"), ("q9", "x")]
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    judgements = [("q1", "d1", 2), ("q1", "d4", 1), ("q1", "d3", 0), ("q2", "d5", 3), ("q2", "d2", 1), ("q3", "d2", 0)]
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in judgements)
    )
    return folder


def test_beir_folder_with_titles_and_graded_judgements(tmp_path, beir_folder, make_bert_dir):
    model_dir = make_bert_dir("tiny")
    result = _eval("--model", str(model_dir), str(beir_folder), "--output", str(tmp_path / "m.json"), home=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "m.json").read_text())
    qrels = read_qrels(beir_folder / "qrels" / "test.tsv")
    queries = [q for q in read_corpus(beir_folder / "queries.jsonl") if q.id in qrels]  # q9 is not judged
    assert report["queries"] == 3
    _assert_metrics_equal(
        report, _reference_metrics(model_dir, read_corpus(beir_folder / "corpus.jsonl"), queries, qrels)
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: (f / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n"), "line 2: expected"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("q1\td1\thigh\n"), "line 1: the judgement 'high'"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("q1\td1\t1\nq1\td1\t2\n"), "judges document 'd1' twice"),
        (lambda f: (f / "qrels" / "test.tsv").write_text("q7\td1\t1\n"), "first: 'q7'"),
        (lambda f: (f / "qrels" / "test.tsv").write_bytes(b"q1\td1\t1\n\xff\n"), "not valid UTF-8"),
        (lambda f: (f / "qrels" / "test.tsv").rename(f / "qrels" / "dev.tsv"), "no qrels/test.tsv (splits there: dev)"),
        (lambda f: (f / "corpus.jsonl").write_text('{"_id": "d1", "text": 5}\n'), "corpus.jsonl, line 1"),
    ],
    ids=["short line", "judgement", "twice", "unknown query", "utf-8", "split", "corpus"],
)
def test_malformed_eval_data_is_one_error_line(tmp_path, beir_folder, make_bert_dir, edit, message):
    edit(beir_folder)
    result = _eval("--model", str(make_bert_dir("tiny")), str(beir_folder), home=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("minibert: error: ") and message in line, line


def test_eval_takes_a_folder_or_three_files(tmp_path, make_bert_dir):
    result = _eval("--model", str(make_bert_dir("tiny")), "a", "b", home=tmp_path)
    assert result.returncode == 1 and "a BEIR folder, or three files" in result.stderr
