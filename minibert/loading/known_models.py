"""The models minibert exists for: sentence-transformers' MS MARCO v5 and multi-qa tables, plus the default.

This table is documentation and the source of the *score function* a model was trained for (most of
these directories do not record it). Loading never uses it: pooling, normalization and sizes always
come from the model directory's own files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KnownModel:
    name: str  # sentence-transformers/<name>
    architecture: str  # config.json model_type
    layers: int
    hidden_size: int
    pooling: str
    normalized: bool
    score: str  # "cosine" or "dot"


def _row(name: str, architecture: str, layers: int, hidden: int, pooling: str, normalized: bool) -> KnownModel:
    return KnownModel(name, architecture, layers, hidden, pooling, normalized, "cosine" if normalized else "dot")


KNOWN_MODELS = {
    m.name: m
    for m in (
        _row("all-MiniLM-L6-v2", "bert", 6, 384, "mean", True),
        _row("msmarco-MiniLM-L6-cos-v5", "bert", 6, 384, "mean", True),
        _row("msmarco-MiniLM-L12-cos-v5", "bert", 12, 384, "mean", True),
        _row("multi-qa-MiniLM-L6-cos-v1", "bert", 6, 384, "mean", True),
        _row("msmarco-bert-base-dot-v5", "bert", 12, 768, "mean", False),
        _row("multi-qa-MiniLM-L6-dot-v1", "bert", 6, 384, "cls", False),
        _row("msmarco-distilbert-cos-v5", "distilbert", 6, 768, "mean", True),
        _row("multi-qa-distilbert-cos-v1", "distilbert", 6, 768, "mean", True),
        _row("msmarco-distilbert-dot-v5", "distilbert", 6, 768, "mean", False),
        _row("msmarco-distilbert-base-tas-b", "distilbert", 6, 768, "cls", False),
        _row("multi-qa-distilbert-dot-v1", "distilbert", 6, 768, "cls", False),
        _row("multi-qa-mpnet-base-cos-v1", "mpnet", 12, 768, "mean", True),
        _row("multi-qa-mpnet-base-dot-v1", "mpnet", 12, 768, "cls", False),
    )
}


def find_known_model(name: str | None, model_dir: Path) -> KnownModel | None:
    """The table row for a model given by name (``x`` or ``sentence-transformers/x``) or found in a cache
    directory (minibert's ``sentence-transformers--x``, or the HF cache's ``models--sentence-transformers--x``)."""
    candidates = [name or ""]
    candidates += [part.removeprefix("models--").replace("--", "/") for part in model_dir.resolve().parts]
    for candidate in candidates:
        org, _, short = candidate.rpartition("/")
        if org in ("", "sentence-transformers") and short in KNOWN_MODELS:
            return KNOWN_MODELS[short]
    return None
