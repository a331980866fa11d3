"""`minibert eval` against MTEB's own pipeline on the MS MARCO sample: do the published numbers match?

MTEB's pipeline is rebuilt from its parts: sentence-transformers embeds the corpus and the queries, its
`similarity` scores them, `torch.topk` keeps the top 1000 per query (as MTEB's search does), and the live
`pytrec_eval` computes NDCG / MAP / Recall / P at 1, 3, 5, 10, 100, 1000, with MRR@10 as trec_eval's recip_rank of
the top 10 (mteb's definition). The script prints both sets of numbers and the largest difference. It needs torch,
sentence-transformers and pytrec-eval-terrier (the test extra).

    python benchmarks/eval_parity.py [--model all-MiniLM-L6-v2]       # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
FILES = [DATA / "msmarco-passages.tsv", DATA / "msmarco-queries.tsv", DATA / "msmarco-qrels.txt"]
TREC_NAMES = {"NDCG": "ndcg_cut", "MAP": "map_cut", "Recall": "recall", "P": "P"}


def reference_metrics(model_name: str, k_values: list[int]) -> dict[str, float]:
    import torch
    from sentence_transformers import SentenceTransformer

    from minibert.loading.resolve import resolve_model_dir
    from minibert.retrieval.corpus import read_corpus
    from minibert.retrieval.judgements import read_qrels

    corpus, qrels = read_corpus(FILES[0]), read_qrels(FILES[2])
    queries = [q for q in read_corpus(FILES[1]) if q.id in qrels]
    model = SentenceTransformer(str(resolve_model_dir(model_name)), device="cpu")
    documents = model.encode([p.embed_text for p in corpus], convert_to_tensor=True, batch_size=32)
    scores = model.similarity(model.encode([q.text for q in queries], convert_to_tensor=True), documents)
    values, indices = torch.topk(scores, min(1000, len(corpus)), dim=1)
    run = {
        query.id: {corpus[i].id: float(v) for v, i in zip(row_values.tolist(), row_indices.tolist(), strict=True)}
        for query, row_values, row_indices in zip(queries, values, indices, strict=True)
    }
    return trec_metrics(run, qrels, k_values)


def trec_metrics(run: dict[str, dict[str, float]], qrels: dict, k_values: list[int]) -> dict[str, float]:
    """pytrec_eval's NDCG / MAP / Recall / P at each k, averaged over the run's queries, and MRR@10 as mteb defines
    it (trec_eval's recip_rank of each query's top 10)."""
    import pytrec_eval

    measures = {f"{trec}.{','.join(map(str, k_values))}" for trec in TREC_NAMES.values()}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    metrics = {
        f"{name}@{k}": sum(s[f"{trec}_{k}"] for s in per_query.values()) / len(per_query)
        for name, trec in TREC_NAMES.items()
        for k in k_values
    }
    top10 = {q: dict(sorted(s.items(), key=lambda item: (item[1], item[0]), reverse=True)[:10]) for q, s in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    metrics["MRR@10"] = sum(s["recip_rank"] for s in reciprocal.values()) / len(reciprocal)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from minibert.retrieval.metrics import K_VALUES

    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "metrics.json"
        minibert = Path(sys.executable).parent / "minibert"
        command = [str(minibert), "eval", "--model", args.model, *map(str, FILES), "--output", str(output)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        ours = json.loads(output.read_text())["metrics"]
    theirs = reference_metrics(args.model, list(K_VALUES))
    print_comparison(ours, theirs, "minibert eval", "sentence-transformers + torch.topk + pytrec_eval")


def print_comparison(ours: dict[str, float], theirs: dict[str, float], our_name: str, their_name: str) -> None:
    """Both sets of metrics as a markdown table, then their largest difference."""
    print(f"| metric | {our_name} | {their_name} |\n|---|---|---|")
    for name, value in theirs.items():
        print(f"| {name} | {ours[name]:.5f} | {value:.5f} |")
    print(f"\nlargest |difference|: {max(abs(ours[name] - value) for name, value in theirs.items()):.3g}")


if __name__ == "__main__":
    main()
