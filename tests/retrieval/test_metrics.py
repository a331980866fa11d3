"""minibert.retrieval.metrics against the real pytrec_eval (trec_eval 9) and mteb's MRR definition: synthetic runs with
ties, graded judgements, queries with nothing relevant retrieved or nothing relevant at all, duplicate scores."""

from __future__ import annotations

import random

import numpy as np
import pytest
import pytrec_eval

from minibert.retrieval.metrics import K_VALUES, evaluate, ranked

MEASURES = {f"{name}.{','.join(map(str, K_VALUES))}" for name in ("ndcg_cut", "map_cut", "recall", "P")}
TREC_NAMES = {"NDCG": "ndcg_cut", "MAP": "map_cut", "Recall": "recall", "P": "P"}


def _synthetic(seed: int, n_queries: int = 30, n_docs: int = 1500):
    """Qrels with grades 0–3 and runs whose scores repeat (ties), float32-rounded like the search path's."""
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        query = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 40))
        qrels[query] = {doc: rng.choice([0, 0, 1, 2, 3]) for doc in judged}
        retrieved = rng.sample(docs, rng.randint(0 if q % 10 == 9 else 5, 1200))
        levels = rng.choice([5, 50, 10_000])  # few distinct scores: many ties
        run[query] = {doc: float(np.float32(rng.randrange(levels) / levels)) for doc in retrieved}
    qrels["q0"] = {doc: 0 for doc in qrels["q0"]}  # judged, but nothing relevant
    qrels["q1"] = {"d_never_retrieved": 2}  # relevant, never retrieved
    run["only-in-run"] = {"d1": 1.0}  # retrieved, not judged: not counted
    qrels["only-in-qrels"] = {"d1": 1}  # judged, not retrieved: not counted (pytrec_eval's rule)
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_metric_of_every_query_equals_pytrec_eval(seed):
    qrels, run = _synthetic(seed)
    reference = pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)
    means, per_query = evaluate(qrels, run)
    assert set(per_query) == set(reference)
    for query, theirs in reference.items():
        for name, trec in TREC_NAMES.items():
            for k in K_VALUES:
                ours = per_query[query][f"{name}@{k}"]
                assert abs(ours - theirs[f"{trec}_{k}"]) <= 1e-9, (query, name, k, ours, theirs[f"{trec}_{k}"])
    for name, trec in TREC_NAMES.items():
        for k in K_VALUES:
            expected = sum(scores[f"{trec}_{k}"] for scores in reference.values()) / len(reference)
            assert abs(means[f"{name}@{k}"] - expected) <= 1e-9, (name, k)


@pytest.mark.parametrize("seed", [0, 3])
def test_mrr_at_10_equals_trec_eval_reciprocal_rank_of_the_top_10(seed):
    """mteb's MRR@10 (first document judged > 0 in the top 10) is trec_eval's recip_rank on the run cut at 10."""
    qrels, run = _synthetic(seed)
    top10 = {query: {doc: scores[doc] for doc in ranked(scores)[:10]} for query, scores in run.items()}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    _, per_query = evaluate(qrels, run)
    for query, theirs in reference.items():
        assert abs(per_query[query]["MRR@10"] - theirs["recip_rank"]) <= 1e-9, query


def test_ties_are_broken_by_document_id_descending():
    assert ranked({"a": 0.5, "c": 0.5, "b": 0.5, "z": 0.25, "x": 1.0}) == ["x", "c", "b", "a", "z"]
    qrels = {"q": {"b": 1}}
    run = {"q": {"a": 0.5, "b": 0.5, "c": 0.5}}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"P.1,2", "recip_rank"}).evaluate(run)["q"]
    _, per_query = evaluate(qrels, run, k_values=(1, 2))
    assert (per_query["q"]["P@1"], per_query["q"]["P@2"]) == (reference["P_1"], reference["P_2"]) == (0.0, 0.5)
    assert per_query["q"]["MRR@10"] == reference["recip_rank"] == 0.5
