"""``SentenceTransformer``: the drop-in encoder for the common sentence-transformers subset.

Follows ``sentence_transformers.SentenceTransformer.encode``: inputs sorted by length (characters,
longest first) and cut into batches, each batch tokenized, run through the encoder, pooled, passed
through the directory's Dense modules and — when it has a Normalize module — normalized; then
``truncate_dim`` cuts the embedding, ``normalize_embeddings`` normalizes it, and the original order
is restored.

Differs where sentence-transformers is loose: ``encode([])`` returns a ``[0, d]`` array (not a
shapeless one), a non-string item is a ``TypeError`` that names its index, and only ``device="cpu"``
is the NumPy backend; ``device="cuda"`` selects the Triton backend (:mod:`minibert.gpu`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .config import ModelConfig, load_config
from .errors import InputError, InputTypeError
from .fast import forward
from .hub import DEFAULT_MODEL, resolve_model_dir
from .models import find_known_model
from .pooling import dense, normalize, pool
from .progress import progress, should_show
from .tokenizer import Batch, BatchTokenizer
from .weights import load_weights

BACKENDS = ("numpy", "triton")


def _as_text_list(sentences: str | Iterable[str]) -> tuple[list[str], bool]:
    """(the inputs as a list of str, whether a single string was given)."""
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    if sentences is None or isinstance(sentences, (bytes, bytearray, dict)) or not isinstance(sentences, Iterable):
        raise InputTypeError(
            f"sentences must be a str or a list of str, got {type(sentences).__name__}; "
            "decode bytes first and pass text"
        )
    texts = list(sentences)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(
                f"sentences[{index}] is {type(text).__name__}, expected str; "
                "remove it or convert it to text before encoding"
            )
    return texts, False


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class SentenceTransformer:
    """A sentence-transformers BERT model run by minibert's NumPy forward pass.

    Args:
        model_name_or_path: a local directory, a hub id (``org/name``) or a short sentence-transformers
            name (``all-MiniLM-L6-v2``); resolved offline through minibert's and the HF cache first.
            Defaults to all-MiniLM-L6-v2.
        device: ``"cpu"`` (the NumPy forward) or a CUDA device such as ``"cuda"`` (the Triton backend).
        dtype: ``"float32"``, or for the Triton backend ``"float16"`` / ``"bfloat16"``.
        backend: ``"numpy"`` or ``"triton"``; default numpy on CPU, triton on CUDA. ``backend="triton"`` with
            ``device="cpu"`` runs the kernels in Triton's interpreter (needs ``TRITON_INTERPRET=1``).
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        device: str | None = "cpu",
        *,
        dtype: str = "float32",
        backend: str | None = None,
    ) -> None:
        backend = backend or ("numpy" if device in (None, "cpu") else "triton")
        if backend not in BACKENDS:
            raise InputError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}")
        if backend == "numpy" and (device not in (None, "cpu") or dtype != "float32"):
            raise InputError(
                f"the NumPy backend runs on device='cpu' in float32 (got device={device!r}, dtype={dtype!r}); "
                "pass backend='triton' (or a CUDA device) for the Triton kernels"
            )
        name = model_name_or_path or DEFAULT_MODEL
        self.model_dir: Path = resolve_model_dir(name)
        self.known_model = find_known_model(name if isinstance(name, str) else None, self.model_dir)
        self.config: ModelConfig = load_config(self.model_dir)
        self.tokenizer = BatchTokenizer(self.config)
        self.weights = load_weights(self.config)
        self.backend = backend
        self._gpu = None
        if backend == "triton":
            from .gpu import GpuEncoder  # torch and triton are imported only on this path

            self._gpu = GpuEncoder(self.config, self.weights, device or "cpu", dtype)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SentenceTransformer({str(self.model_dir)!r}: {c.model_type}, {c.num_hidden_layers} layers, "
            f"hidden {c.hidden_size}, pooling {'+'.join(c.pooling_modes)}, normalize={c.normalize})"
        )

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens (special tokens included) are truncated."""
        return self.tokenizer.max_seq_length

    @property
    def similarity_fn_name(self) -> str:
        """``"cosine"`` or ``"dot"``: what the directory declares, else minibert's model table, else cosine
        (sentence-transformers' default)."""
        if self.config.similarity_fn_name:
            return self.config.similarity_fn_name
        return self.known_model.score if self.known_model else "cosine"

    def get_sentence_embedding_dimension(self) -> int:
        return self.config.embedding_dim

    def tokenize(self, texts: list[str]) -> Batch:
        """The padded token ids, attention mask and token types the encoder sees for `texts`."""
        return self.tokenizer(_as_text_list(texts)[0])

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """texts -> pooled, Dense, (per the model directory) normalized embeddings [B, d]; both backends."""
        batch = self.tokenizer(texts)
        # the GPU kernels can normalize while pooling when nothing comes between the two
        fused_normalize = self._gpu is not None and self.config.normalize and not self.config.dense_layers
        if self._gpu is not None:
            embeddings = self._gpu.pool(batch, normalize=fused_normalize)  # [B, C · modes]
        else:
            last_hidden_state = forward(
                batch.input_ids, batch.attention_mask, batch.token_type_ids, self.weights, self.config
            )  # [B, T, C]
            embeddings = pool(last_hidden_state, batch.attention_mask, self.config.pooling_modes)  # [B, C · modes]
        for layer, layer_config in zip(self.weights.dense, self.config.dense_layers, strict=True):
            embeddings = dense(embeddings, layer, layer_config)  # [B, I] -> [B, O]
        return normalize(embeddings) if self.config.normalize and not fused_normalize else embeddings  # [B, d]

    def encode(
        self,
        sentences: str | Iterable[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Embed sentences: a str -> [d]; a list of n str -> [n, d] float32, in input order.

        ``convert_to_numpy=False`` returns a list of n ``[d]`` arrays instead of one matrix.
        ``truncate_dim`` keeps the first that many dimensions, before ``normalize_embeddings``.
        """
        texts, single = _as_text_list(sentences)
        batch_size = _positive_int("batch_size", batch_size)
        dim = self.get_sentence_embedding_dimension()
        if truncate_dim is not None:
            dim = min(_positive_int("truncate_dim", truncate_dim), dim)

        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first
        out = np.empty((len(texts), dim), dtype=np.float32)  # [n, d]
        with progress(len(texts), "Batches", should_show(show_progress_bar)) as advance:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                embeddings = self._embed_batch([texts[i] for i in rows])[:, :dim]  # [B, d]
                out[rows] = normalize(embeddings) if normalize_embeddings else embeddings
                advance(len(rows))

        if single:
            return out[0]
        return out if convert_to_numpy else list(out)


def load(model_name_or_path: str | os.PathLike | None = None, device: str | None = "cpu") -> SentenceTransformer:
    """Load a model by directory, hub id or short name (default all-MiniLM-L6-v2)."""
    return SentenceTransformer(model_name_or_path, device=device)
