"""Helpers the test modules share (import them: ``from tests.helpers import ...``); fixtures live in conftest.py.

The tables, the model builders, the reference outputs and ``assert_close`` are minibert's own
(:mod:`minibert.testing`), shared with the parity report and the GPU check; what is here only the tests need.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MINIBERT = Path(sys.executable).parent / "minibert"  # the console script of the environment the tests run in

# Both NumPy forwards: the readable reference (minibert.encoder.reference) and the fast one encode() uses
# (minibert.encoder.cpu).
FORWARD_IMPLEMENTATIONS = ["reference", "fast"]


def packed_hidden_states(implementation: str, model, batch, layers: int | None = None) -> np.ndarray:
    """The last hidden states of a PackedBatch's real tokens, [N, C], from one of the two NumPy forwards (the
    readable one runs on the padded layout; its padding rows are dropped). With `layers`, only the first that many
    encoder layers run (0: the embeddings' output), as transformers' ``hidden_states[layers]``."""
    from minibert.encoder import cpu, reference

    weights = model.weights
    if layers is not None:
        weights = dataclasses.replace(weights, layers=weights.layers[:layers])
    if implementation == "fast":
        return cpu.forward(batch, weights, model.config)
    padded = batch.to_padded()
    hidden = reference.forward(
        padded.input_ids, padded.attention_mask, padded.token_type_ids, weights, model.config
    )  # [B, T, C]
    return hidden[padded.attention_mask.astype(bool)]


# A synthetic corpus for the embed / Ray tests: seeded passages of 3 … 60 words.
WORDS = (
    "the", "a", "retrieval", "passage", "query", "embedding", "dense", "vector", "search", "index", "corpus",
    "model", "token", "layer", "attention", "bread", "oven", "season", "earth", "orbit", "python", "list",
    "comprehension", "river", "mountain", "music", "history", "science",
)  # fmt: skip


def passages(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (id, text) pairs of 3 … 60 words, seeded."""
    rng = np.random.default_rng(seed)
    return [(f"p{i}", " ".join(rng.choice(WORDS, size=int(rng.integers(3, 60))))) for i in range(n)]


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{pid}\t{text}\n" for pid, text in rows))
    return path
