"""``CrossEncoder``: a reranker — a (query, passage) pair in, a relevance score out — on the same forwards.

Follows ``sentence_transformers.CrossEncoder`` (sentence-transformers 5.x): each pair is tokenized together,
``[CLS] query [SEP] passage [SEP]`` with token types 0 then 1, truncated ``longest_first`` to ``max_length`` (default:
the model's); the encoder runs on the pairs packed end to end; the model's head
(:mod:`minibert.encoder.head`) turns each [CLS] row into logits; then the activation — the one passed, else the
model's (config.json's ``sentence_transformers.activation_fn``, the legacy ``sbert_ce_default_activation_function``,
else Sigmoid for one label and Identity for more: :class:`~minibert.loading.config.HeadConfig`), then a softmax
over the labels when asked. :meth:`CrossEncoder.predict` returns the scores in input order; :meth:`CrossEncoder.rank`
sorts one query's documents by them.

Differs where sentence-transformers is loose: ``predict([])`` returns an empty array; a pair that is not two str, or
a text with a lone surrogate, is an error naming its index; ``activation_fn`` is a function on NumPy arrays (not a
torch module); results are NumPy arrays, never tensors; ``rank``'s ``top_k`` must be a positive integer; a
``max_length`` is capped at the model's position table and must leave room for the pair's special tokens.
Thread-safety as :class:`~minibert.model.SentenceTransformer`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arguments import as_pair_list, as_text_list
from .encoder.activations import ACTIVATION_FUNCTIONS
from .encoder.contract import Encoder, EncoderFactory
from .errors import InputError, InputTypeError, UnsupportedModelError, positive_int
from .loading.config import HeadConfig, ModelConfig, load_config
from .loading.resolve import resolve_model_dir
from .loading.tokenizer import BatchTokenizer
from .loading.weights import load_weights
from .model import BackendOptions
from .packing import PackedBatch
from .progress import progress, should_show

Activation = Callable[[np.ndarray], np.ndarray]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: [B, L] -> [B, L]."""
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


class CrossEncoder:
    """A cross-encoder from a model directory, a hub id or a short name (module docstring).

    Args:
        model_name_or_path: a directory of a ``BertForSequenceClassification`` or ``ElectraForSequenceClassification``
            (config.json's ``architectures``), or a name resolved as :class:`~minibert.model.SentenceTransformer`
            resolves it.
        device, dtype, backend, threads, encoder: as :class:`~minibert.model.SentenceTransformer` takes them.
        max_length: tokens per pair at most (default: the model's max length).
        activation_fn: a function applied to the logits (default: the model's, module docstring).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike,
        device: str | None = "cpu",
        *,
        dtype: str = "float32",
        backend: str | None = None,
        max_length: int | None = None,
        activation_fn: Activation | None = None,
        threads: int | None = None,
        encoder: EncoderFactory | None = None,
    ) -> None:
        backend_options = BackendOptions.checked(device, dtype, backend, threads, encoder)
        self.activation_fn = _checked_activation(activation_fn)
        self.model_dir: Path = resolve_model_dir(model_name_or_path)
        self.config: ModelConfig = load_config(self.model_dir)
        if self.config.head is None:
            raise UnsupportedModelError(
                f"{self.model_dir} has no sequence-classification head (config.json's architectures name none): it "
                "is an embedding model; load it with minibert.SentenceTransformer"
            )
        self.head: HeadConfig = self.config.head
        self.tokenizer = BatchTokenizer(self.config)
        limit, least = self.config.max_seq_length, self.tokenizer.pair_special_tokens
        self.max_length = limit if max_length is None else min(positive_int("max_length", max_length), limit)
        if self.max_length < least:  # transformers would then cut nothing and overrun max_length
            raise InputError(f"max_length must be at least {least}, the pair's special tokens; got {self.max_length}")
        self.weights = load_weights(self.config)
        self.backend, self.dtype = backend_options.name, dtype
        self.encoder: Encoder = backend_options.encoder(self.config, self.weights)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"CrossEncoder({str(self.model_dir)!r}: {self.head.architecture}, {c.num_hidden_layers} layers, "
            f"hidden {c.hidden_size}, {self.head.num_labels} label(s), max_length {self.max_length}, {self.backend})"
        )

    @property
    def num_labels(self) -> int:
        return self.head.num_labels

    # ------------------------------------------------------------------------------------------ stages

    def pack(self, pairs: Sequence[tuple[str, str]]) -> PackedBatch:
        """Pairs tokenized together and packed end to end (module docstring)."""
        queries, passages = [q for q, _ in pairs], [p for _, p in pairs]
        return self.tokenizer.pairs(queries, passages, self.max_length)

    def logits(self, batch: PackedBatch) -> np.ndarray:
        """A packed batch of pairs -> the head's logits [B, labels] float32. Identical pairs (equal token ids) are
        scored once, so they score exactly alike wherever they sit in a batch (a GEMM's last bits can depend on a
        row's place in it) and ties keep their input order, as in sentence-transformers."""
        distinct, index = batch.distinct()
        raw = self.encoder.logits(distinct)
        return raw if index is None else raw[index]

    def scores(
        self, raw: np.ndarray, activation_fn: Activation | None = None, apply_softmax: bool = False
    ) -> np.ndarray:
        """Logits [B, labels] -> scores: the activation (`activation_fn`, else the model's), then a softmax over the
        labels when asked and there are several."""
        activation = activation_fn or self.activation_fn or ACTIVATION_FUNCTIONS[self.head.activation_fn]
        scores = np.asarray(activation(raw), dtype=np.float32)
        return softmax(scores) if apply_softmax and scores.shape[-1] > 1 else scores

    # ------------------------------------------------------------------------------------------ the API

    def predict(
        self,
        sentences: Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Activation | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
    ) -> np.ndarray | np.float32:
        """Scores of (query, passage) pairs in input order: [n] for one label, [n, labels] for more; one pair (two
        str) gives one score (or [labels])."""
        pairs, single = as_pair_list(sentences)
        batch_size = positive_int("batch_size", batch_size)
        activation_fn = _checked_activation(activation_fn)
        if not isinstance(convert_to_numpy, bool):
            raise InputTypeError(f"convert_to_numpy must be a bool, got {type(convert_to_numpy).__name__}")
        order = np.argsort([-(len(q) + len(p)) for q, p in pairs], kind="stable")  # longest first
        out = np.empty((len(pairs), self.num_labels), dtype=np.float32)
        with progress(len(pairs), "Batches", should_show(show_progress_bar)) as advance:
            for start in range(0, len(pairs), batch_size):
                rows = order[start : start + batch_size]
                raw = self.logits(self.pack([pairs[i] for i in rows]))
                out[rows] = self.scores(raw, activation_fn, apply_softmax)
                advance(len(rows))
        scores = out[:, 0] if self.num_labels == 1 else out
        return scores[0] if single else scores

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Activation | None = None,
    ) -> list[dict[str, Any]]:
        """`documents` sorted by their score for `query`, best first (ties in input order): dicts of ``corpus_id``
        (the index in `documents`), ``score`` and, with `return_documents`, ``text``; the first `top_k` of them."""
        if self.num_labels != 1:
            raise InputError(f"rank needs a model with one label; this one has {self.num_labels} (use predict)")
        queries, single = as_text_list(query, "query")
        if not single:
            raise InputTypeError(f"query must be one str, got {type(query).__name__}; rank one query at a time")
        texts, _ = as_text_list(documents, "documents")
        if top_k is not None:
            top_k = positive_int("top_k", top_k)
        pairs = [(queries[0], text) for text in texts]
        scores = self.predict(pairs, batch_size, show_progress_bar, activation_fn)
        ranked = sorted(range(len(texts)), key=lambda i: -scores[i])  # stable: ties keep input order
        results = [{"corpus_id": i, "score": scores[i], **({"text": texts[i]} if return_documents else {})}
                   for i in ranked]  # fmt: skip
        return results[:top_k]


def _checked_activation(activation_fn: object) -> Activation | None:
    if activation_fn is not None and not callable(activation_fn):
        raise InputTypeError(
            f"activation_fn must be a function on NumPy arrays (e.g. scipy.special.expit) or None, "
            f"got {type(activation_fn).__name__}"
        )
    return activation_fn
