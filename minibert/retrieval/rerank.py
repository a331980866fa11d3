"""Retrieve & rerank: a bi-encoder's hits for a query, reordered by a cross-encoder's scores.

Follows sentence-transformers' retrieve & rerank (``util.semantic_search`` for the candidates, then
``CrossEncoder.rank`` on ``(query, passage)`` pairs) and BEIR's ``Rerank``: only the first ``top`` hits are
reranked, and only they are returned, best first by the cross-encoder's score, ties in retrieval order. The text a
cross-encoder reads is the passage's :attr:`~minibert.retrieval.corpus.Passage.embed_text`, what the bi-encoder
embedded.
"""

from __future__ import annotations

from typing import Any

from .corpus import Passage


def rerank(
    cross_encoder: Any, query: str, passages: list[Passage], hits: list[dict[str, Any]], top: int, batch_size: int = 32
) -> list[dict[str, Any]]:
    """The first `top` of `hits` (``corpus_id``, ``score`` dicts, as semantic_search gives them) rescored by
    `cross_encoder` (a :class:`~minibert.cross_encoder.CrossEncoder`) for `query` and sorted by that score."""
    candidates = hits[:top]
    texts = [passages[hit["corpus_id"]].embed_text for hit in candidates]
    ranked = cross_encoder.rank(query, texts, batch_size=batch_size)
    return [{"corpus_id": candidates[r["corpus_id"]]["corpus_id"], "score": float(r["score"])} for r in ranked]
