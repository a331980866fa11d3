"""Retrieval quality of quantized embeddings: float32 vs int8 vs binary (with and without rescoring).

Embeds a corpus and its judged queries once (``encode_document`` / ``encode_query``), then searches the same
embeddings at each precision and scores the runs with minibert.retrieval.metrics (trec_eval's NDCG@10 and Recall@100):

- **float32**: ``util.semantic_search`` with the model's score function.
- **int8**: corpus and queries quantized with the corpus' per-dimension ranges (``calibration_embeddings``), ranked
  by the dot product of the int8 codes (what sentence-transformers' int8 usearch index ranks by, without rescoring).
- **binary**: ``quantize_embeddings(..., "ubinary")``, ranked by Hamming distance (``rescore=False``).
- **binary + rescore ×m**: ``util.semantic_search_binary``: the top_k · m nearest by Hamming distance, rescored with
  the float32 query against the candidates' bits.

Defaults to all-MiniLM-L6-v2 on the MS MARCO sample in ``../shared/data`` beside a checkout; any corpus, queries and
qrels that ``minibert eval`` reads can be given instead. ``--embeddings FILE.npz`` keeps the embeddings between runs.

    python benchmarks/quantization_quality.py [--model M] [--data CORPUS QUERIES QRELS] [--embeddings FILE.npz]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))

DATA = ROOT.parent / "shared" / "data"
DEFAULT_DATA = [str(DATA / name) for name in ("msmarco-passages.tsv", "msmarco-queries.tsv", "msmarco-qrels.txt")]
TOP_K = 100  # hits kept per query: Recall@100 needs them all
MULTIPLIERS = (1, 2, 4, 10)


def embeddings(model, corpus_texts: list[str], query_texts: list[str], cache: Path | None, batch_size: int):
    """(corpus [n, d], queries [q, d]) float32, from `cache` when it holds this many rows, else encoded (and saved)."""
    import numpy as np

    if cache is not None and cache.is_file():
        saved = np.load(cache)
        if saved["corpus"].shape[0] == len(corpus_texts) and saved["queries"].shape[0] == len(query_texts):
            print(f"embeddings from {cache}", file=sys.stderr)
            return saved["corpus"], saved["queries"]
    start = time.perf_counter()
    corpus = model.encode_document(corpus_texts, batch_size=batch_size, show_progress_bar=True)
    queries = model.encode_query(query_texts, batch_size=batch_size)
    print(f"encoded {len(corpus_texts)} passages and {len(query_texts)} queries in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr)  # fmt: skip
    if cache is not None:
        np.savez(cache, corpus=corpus, queries=queries)
    return corpus, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--data", nargs=3, metavar=("CORPUS", "QUERIES", "QRELS"), default=DEFAULT_DATA)
    parser.add_argument("--embeddings", type=Path, help="an .npz file to load the embeddings from, or save them to")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import numpy as np

    import minibert
    from minibert import util
    from minibert.retrieval.judgements import load_eval_set
    from minibert.retrieval.metrics import evaluate

    data = load_eval_set(args.data)
    model = minibert.SentenceTransformer(args.model)
    corpus, queries = embeddings(
        model, [p.embed_text for p in data.corpus], [q.text for q in data.queries], args.embeddings, args.batch_size
    )
    dim = corpus.shape[1]
    top_k = min(TOP_K, len(data.corpus))
    score_function = util.SIMILARITY_FUNCTIONS[model.similarity_fn_name]
    int8_corpus = minibert.quantize_embeddings(corpus, "int8")  # ranges from the corpus itself
    int8_queries = minibert.quantize_embeddings(queries, "int8", calibration_embeddings=corpus)
    binary_corpus = minibert.quantize_embeddings(corpus, "ubinary")

    searches = {  # name -> (bytes per corpus embedding, hits per query)
        "float32": (4 * dim, util.semantic_search(queries, corpus, top_k=top_k, score_function=score_function)),
        # the int8 codes' dot products are whole numbers below 2^24 for d ≤ 1024: exact in float32
        "int8": (dim, util.semantic_search(int8_queries, int8_corpus, top_k=top_k, score_function=util.dot_score)),
        "binary (Hamming)": (
            binary_corpus.shape[1],
            [
                [{**hit, "score": -hit["score"]} for hit in hits]  # a distance: lower is better
                for hits in util.semantic_search_binary(queries, binary_corpus, top_k=top_k, rescore=False)
            ],
        ),
    }
    for multiplier in MULTIPLIERS:
        hits = util.semantic_search_binary(queries, binary_corpus, top_k=top_k, rescore_multiplier=multiplier)
        searches[f"binary + rescore ×{multiplier}"] = (binary_corpus.shape[1], hits)

    print(f"# Retrieval quality by precision: {model.model_dir.name}, {len(data.corpus)} passages, "
          f"{len(data.queries)} queries ({data.source})")  # fmt: skip
    print(f"minibert {minibert.__version__}, numpy {np.__version__}, {datetime.date.today()}, "
          f"command: python benchmarks/quantization_quality.py {' '.join(sys.argv[1:])}\n")  # fmt: skip
    print("| precision | bytes / passage | NDCG@10 | Recall@100 | NDCG@10 vs float32 | Recall@100 vs float32 |")
    print("|---|---|---|---|---|---|")
    baseline: dict[str, float] = {}
    for name, (size, hits) in searches.items():
        run = {
            query.id: {data.corpus[hit["corpus_id"]].id: hit["score"] for hit in query_hits}
            for query, query_hits in zip(data.queries, hits, strict=True)
        }
        means, _ = evaluate(data.qrels, run, k_values=(10, 100), mrr_k_values=())
        baseline = baseline or means
        ndcg, recall = means["NDCG@10"], means["Recall@100"]
        print(f"| {name} | {size} | {ndcg:.4f} | {recall:.4f} | {ndcg / baseline['NDCG@10']:.1%} | "
              f"{recall / baseline['Recall@100']:.1%} |")  # fmt: skip


if __name__ == "__main__":
    main()
