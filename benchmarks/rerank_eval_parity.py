"""`minibert eval --rerank` against the same retrieve & rerank pipeline built from sentence-transformers + pytrec_eval.

The reference pipeline: sentence-transformers' bi-encoder embeds the corpus and the queries, ``util.semantic_search``
keeps each query's top --rerank-top passages, sentence-transformers' ``CrossEncoder.rank`` reorders them (the
reranked list is the run, as BEIR's ``Rerank`` returns it), and the live ``pytrec_eval`` computes NDCG / MAP /
Recall / P at 1, 3, 5, 10, 100, 1000 and MRR@10 (trec_eval's recip_rank of the top 10). minibert's side is one
``minibert eval … --rerank CE --rerank-top K`` process. The script prints both sets of metrics and the largest
difference.

No cross-encoder checkpoint is reachable offline, so the default cross-encoder is a seeded random-init one of
cross-encoder/ms-marco-MiniLM-L6-v2's shape, its classifier scaled by 1000
(:func:`minibert.testing.scale_classifier`: its logits spread apart, so the ranking does not hinge on near-ties);
``--cross-encoder DIR`` takes a real one. Needs torch, sentence-transformers and pytrec-eval-terrier (the test extra).

    python benchmarks/rerank_eval_parity.py [--model all-MiniLM-L6-v2] [--cross-encoder DIR] [--rerank-top 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MINIBERT_HOME", str(ROOT / ".cache" / "minibert"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.eval_parity import FILES, print_comparison, trec_metrics  # noqa: E402


def reference_run(model_name: str, cross_encoder_dir: Path, top: int) -> dict[str, dict[str, float]]:
    """{query id: {passage id: cross-encoder score}} for each judged query's reranked top `top`."""
    from sentence_transformers import CrossEncoder, SentenceTransformer, util

    from minibert.loading.resolve import resolve_model_dir
    from minibert.retrieval.corpus import read_corpus
    from minibert.retrieval.judgements import read_qrels

    corpus, qrels = read_corpus(FILES[0]), read_qrels(FILES[2])
    queries = [q for q in read_corpus(FILES[1]) if q.id in qrels]
    bi_encoder = SentenceTransformer(str(resolve_model_dir(model_name)), device="cpu")
    cross_encoder = CrossEncoder(str(cross_encoder_dir), device="cpu")
    documents = bi_encoder.encode([p.embed_text for p in corpus], batch_size=32, convert_to_tensor=True)
    hits = util.semantic_search(bi_encoder.encode([q.text for q in queries], convert_to_tensor=True), documents,
                                top_k=top)  # fmt: skip
    run = {}
    for query, found in zip(queries, hits, strict=True):
        ranked = cross_encoder.rank(query.text, [corpus[h["corpus_id"]].embed_text for h in found], batch_size=32)
        run[query.id] = {corpus[found[r["corpus_id"]]["corpus_id"]].id: float(r["score"]) for r in ranked}
    return run


def default_cross_encoder(dest: Path) -> Path:
    from minibert.bench.choice import random_cross_encoder
    from minibert.testing import scale_classifier

    return scale_classifier(random_cross_encoder("minilm-l6"), dest / "cross-encoder", 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--cross-encoder", type=Path, help="a cross-encoder directory (default: module docstring)")
    parser.add_argument("--rerank-top", type=int, default=100)
    args = parser.parse_args()
    from minibert.retrieval.metrics import K_VALUES

    with tempfile.TemporaryDirectory() as tmp:
        cross_encoder = args.cross_encoder or default_cross_encoder(Path(tmp))
        output = Path(tmp) / "metrics.json"
        minibert = Path(sys.executable).parent / "minibert"
        command = [str(minibert), "eval", "--model", args.model, *map(str, FILES), "--rerank", str(cross_encoder),
                   "--rerank-top", str(args.rerank_top), "--output", str(output)]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        ours = json.loads(output.read_text())["metrics"]
        reference = reference_run(args.model, cross_encoder, args.rerank_top)
    from minibert.retrieval.judgements import read_qrels

    theirs = trec_metrics(reference, read_qrels(FILES[2]), list(K_VALUES))
    print(f"rerank top {args.rerank_top} with {cross_encoder.name if args.cross_encoder else 'the default'} "
          f"cross-encoder; {len(reference)} queries")  # fmt: skip
    print_comparison(ours, theirs, "minibert eval --rerank", "sentence-transformers + CrossEncoder + pytrec_eval")


if __name__ == "__main__":
    main()
