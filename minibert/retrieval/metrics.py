"""Retrieval metrics as MTEB reports them: trec_eval's NDCG@k, MAP@k, Recall@k and P@k (what MTEB asks
pytrec_eval for), and MTEB's own MRR@k — computed here in plain Python, equal to pytrec_eval to 1e-9 (tested).

Follows trec_eval 9 (``form_res_rels.c`` and the ``m_*.c`` measures) as pytrec_eval runs it, and mteb's
``retrieval_metrics.py``:

- **Ranking**: a query's retrieved documents by score, highest first; equal scores by document id, highest first
  (trec_eval's ``strcmp`` on the ids, reversed; mteb sorts by ``(score, id)`` in reverse for MRR). Scores are
  compared as given: the search path hands over float32 scores (as MTEB's torch scores are), so ties are float32
  ties.
- **Relevance**: a judgement ≥ 1 is relevant (trec_eval's default relevance level); unjudged documents are not.
  ``num_rel`` counts the relevant judgements of the query, retrieved or not.
- **P@k** = relevant in the top k / k (k, even when fewer were retrieved). **Recall@k** = relevant in the top k /
  num_rel. **MAP@k** = Σ over relevant documents in the top k of (relevant up to that rank / rank), / num_rel.
  **NDCG@k** = DCG@k / ideal DCG@k with gain = the judgement itself (graded, linear) for judgements > 0 and
  discount log2(rank + 1); the ideal ranks all of the query's positive judgements, highest first. A query with no
  relevant judgement scores 0 on all of them.
- **MRR@k** (mteb's ``mrr``): 1 / the rank of the first document judged > 0 within the top k, else 0.
- **Which queries count**: those that are both judged and retrieved for (pytrec_eval's rule); the averages are
  plain means over them, at full precision. (mteb rounds its averages to 5 decimals; minibert rounds only for
  display.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

K_VALUES = (1, 3, 5, 10, 100, 1000)
MRR_K_VALUES = (10,)
Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> judgement
Run = Mapping[str, Mapping[str, float]]  # query id -> document id -> score


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval's order: score descending, then id descending."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def _dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def query_metrics(
    judgements: Mapping[str, int],
    scores: Mapping[str, float],
    k_values: Sequence[int] = K_VALUES,
    mrr_k_values: Sequence[int] = MRR_K_VALUES,
) -> dict[str, float]:
    """One query's NDCG@k, MAP@k, Recall@k, P@k (each k of `k_values`) and MRR@k (each of `mrr_k_values`)."""
    order = ranked(scores)
    relevant = [judgements.get(doc, 0) >= 1 for doc in order]  # by rank
    gains = [max(judgements.get(doc, 0), 0) for doc in order]
    num_rel = sum(1 for judgement in judgements.values() if judgement >= 1)
    ideal = sorted((j for j in judgements.values() if j > 0), reverse=True)
    metrics: dict[str, float] = {}
    for k in k_values:
        hits = sum(relevant[:k])
        precision_sum = 0.0
        so_far = 0
        for rank, is_relevant in enumerate(relevant[:k], start=1):
            if is_relevant:
                so_far += 1
                precision_sum += so_far / rank
        ideal_dcg = _dcg(ideal[:k])
        metrics[f"NDCG@{k}"] = _dcg(gains[:k]) / ideal_dcg if ideal_dcg > 0 else 0.0
        metrics[f"MAP@{k}"] = precision_sum / num_rel if num_rel else 0.0
        metrics[f"Recall@{k}"] = hits / num_rel if num_rel else 0.0
        metrics[f"P@{k}"] = hits / k
    for k in mrr_k_values:
        first = next((rank for rank, doc in enumerate(order[:k], start=1) if judgements.get(doc, 0) > 0), None)
        metrics[f"MRR@{k}"] = 1.0 / first if first else 0.0
    return metrics


def evaluate(
    qrels: Qrels, run: Run, k_values: Sequence[int] = K_VALUES, mrr_k_values: Sequence[int] = MRR_K_VALUES
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean metrics, per-query metrics) over the queries both judged in `qrels` and retrieved in `run`."""
    per_query = {
        query: query_metrics(qrels[query], scores, k_values, mrr_k_values)
        for query, scores in run.items()
        if query in qrels
    }
    names = [f"{name}@{k}" for name in ("NDCG", "MAP", "Recall", "P") for k in k_values]
    names += [f"MRR@{k}" for k in mrr_k_values]
    count = len(per_query)
    means = {name: (sum(m[name] for m in per_query.values()) / count if count else 0.0) for name in names}
    return means, per_query
