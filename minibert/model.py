"""``SentenceTransformer``: the drop-in encoder for the common sentence-transformers subset.

Follows ``sentence_transformers.SentenceTransformer.encode``: inputs sorted by length (characters,
longest first) and cut into batches, each batch tokenized, run through the encoder, pooled, passed
through the directory's Dense modules and — when it has a Normalize module — normalized; then
``truncate_dim`` cuts the embedding, ``normalize_embeddings`` normalizes it, and the original order
is restored.

Differs where sentence-transformers is loose: ``encode([])`` returns a ``[0, d]`` array (not a
shapeless one); generators are accepted; a non-string item is a ``TypeError`` and a lone surrogate a
``ValueError``, both naming the index and what to do (:func:`_as_text_list`); and only ``device="cpu"``
is the NumPy backend; ``device="cuda"`` selects the Triton backend (:mod:`minibert.gpu`).

Thread-safety: one model object may be shared by threads calling :meth:`SentenceTransformer.encode` at
once. Nothing is mutated after ``__init__``: the weights are read-only arrays, the tokenizer's truncation
and padding are set once, and each call allocates its own buffers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import ModelConfig, load_config
from .errors import InputError, InputTypeError, positive_int
from .fast import NumpyEncoder
from .hub import DEFAULT_MODEL, resolve_model_dir
from .models import find_known_model
from .packing import PackedBatch
from .pooling import after_pooling, normalize
from .progress import progress, should_show
from .tokenizer import BatchTokenizer
from .weights import load_weights

BACKENDS = ("numpy", "triton")


class Encoder(Protocol):
    """The backend contract (minibert.fast.NumpyEncoder, minibert.gpu.GpuEncoder): a packed batch in, the Pooling
    module's output out — L2-normalized already when ``normalizes`` (the backend fused it into its pooling kernel,
    see minibert.pooling.normalize_while_pooling). Dense and Normalize then run once, in after_pooling."""

    normalizes: bool

    def embed(self, batch: PackedBatch) -> np.ndarray:  # [N] tokens -> [B, C · modes] float32
        ...


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _where(index: int | None) -> str:
    return "sentences" if index is None else f"sentences[{index}]"


def _type_hint(value: object) -> str:
    """What to do about a non-str input, by its type."""
    if value is None:
        return "remove it or pass '' for an empty text"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "decode it first, e.g. data.decode('utf-8')"
    if isinstance(value, float) and value != value:
        return "a NaN is usually a missing value: drop it (dropna()) or fill it (fillna(''))"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "encode takes a flat list of str: flatten it, or call encode once per inner list"
    return "convert it to text (str(x)) or remove it"


def _check_text(text: object, index: int | None) -> str:
    """`text` when it is a str of valid Unicode; else InputTypeError / InputError naming where it is."""
    if not isinstance(text, str):
        expected = "a str or a list of str" if index is None else "str"
        what = "None" if text is None else type(text).__name__
        raise InputTypeError(f"{_where(index)} is {what}, expected {expected}; {_type_hint(text)}")
    if not text.isascii() and (match := _LONE_SURROGATE.search(text)) is not None:
        raise InputError(
            f"{_where(index)} contains a lone surrogate (U+{ord(match[0]):04X} at character {match.start()}), "
            "which is not valid Unicode and cannot be tokenized; clean the text first, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8') (or, for a surrogate pair split in two, "
            "text.encode('utf-16', 'surrogatepass').decode('utf-16'))"
        )
    return text


def _check_container(sentences: object) -> Iterable:
    """`sentences` as something to iterate over once, or InputTypeError / InputError saying what to pass."""
    if isinstance(sentences, np.ndarray):
        if sentences.ndim != 1:
            raise InputError(
                f"sentences is a {sentences.ndim}-D array of shape {sentences.shape}; pass a 1-D array of str "
                "(e.g. array.ravel()), a list of str, or for one text array.item()"
            )
        if sentences.dtype.kind not in "UO":
            raise InputTypeError(
                f"sentences is an array of dtype {sentences.dtype}, expected str (dtype '<U…' or object); "
                + ("decode it first, e.g. array.astype(str)" if sentences.dtype.kind == "S" else "pass text")
            )
        return sentences.tolist()
    if (
        sentences is None
        or isinstance(sentences, (bytes, bytearray, memoryview))
        or not isinstance(sentences, Iterable)
    ):
        _check_text(sentences, None)  # raises: the message names the type and what to do
    if isinstance(sentences, Mapping):
        raise InputTypeError(f"sentences is a {type(sentences).__name__}; pass a list of str, e.g. list(d.values())")
    if isinstance(sentences, (set, frozenset)):
        raise InputTypeError(
            f"sentences is a {type(sentences).__name__}, which has no order to return the rows in; "
            "pass a list, e.g. sorted(texts)"
        )
    ndim = getattr(sentences, "ndim", 1)
    if ndim != 1:
        raise InputError(
            f"sentences is a {ndim}-D {type(sentences).__name__}; pass one column or a flat list of str "
            "(for a DataFrame, df['text'])"
        )
    return sentences


def _as_text_list(sentences: str | Iterable[str]) -> tuple[list[str], bool]:
    """(the inputs as a list of str, whether a single string was given); anything else raises, saying what to do.

    Accepted: a str (one text); a list, tuple or any other iterable of str, iterated exactly once (a generator
    is read to its end before anything is encoded, since inputs are sorted by length: it must be finite, and
    a stream too large for memory should be encoded in chunks); a 1-D NumPy array of str (dtype ``<U…`` or
    object); a pandas Series of str.

    Refused with :class:`InputTypeError` (a ``TypeError``): None, bytes, numbers and other non-str values,
    at the top or as an item (the message names the index); nested lists; dicts; sets (no order); arrays of
    bytes or numbers. Refused with :class:`InputError` (a ``ValueError``): a text with a lone surrogate
    (``"\ud800"``; not valid Unicode, so the tokenizer cannot read it — minibert does not guess a replacement);
    arrays or frames that are not 1-D.
    """
    if isinstance(sentences, str):
        return [_check_text(sentences, None)], True
    return [_check_text(text, index) for index, text in enumerate(_check_container(sentences))], False


class SentenceTransformer:
    """A sentence-transformers BERT model run by minibert's NumPy forward pass.

    Args:
        model_name_or_path: a local directory, a hub id (``org/name``) or a short sentence-transformers
            name (``all-MiniLM-L6-v2``); resolved offline through minibert's and the HF cache first.
            Defaults to all-MiniLM-L6-v2.
        device: ``"cpu"`` (the NumPy forward) or a CUDA device such as ``"cuda"`` (the Triton backend); a
            ``torch.device`` is taken by its name. Anything else is an InputError / InputTypeError.
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
        if device is not None and not isinstance(device, str):
            if type(device).__module__.split(".")[0] != "torch":  # a torch.device is accepted by its name
                raise InputTypeError(
                    f"device is {type(device).__name__}, expected a str such as 'cpu', 'cuda' or 'cuda:0'"
                )
            device = str(device)
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
        if backend == "triton":
            from .gpu import GpuEncoder  # torch and triton are imported only on this path

            self.encoder: Encoder = GpuEncoder(self.config, self.weights, device or "cpu", dtype)
        else:
            self.encoder = NumpyEncoder(self.config, self.weights)

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

    def tokenize(self, texts: list[str]) -> PackedBatch:
        """The token ids the encoder sees for `texts`, packed (``.to_padded()`` for sentence-transformers' layout)."""
        return self.tokenizer(_as_text_list(texts)[0])

    def embed(self, batch: PackedBatch, normalize: bool | None = None) -> np.ndarray:
        """A packed batch's embeddings [B, d], float32: the backend's pooled vectors, then Dense and — when
        `normalize`, by default when the model directory has a Normalize module — L2 normalization."""
        pooled = self.encoder.embed(batch)  # [B, C · modes]
        return after_pooling(
            pooled, self.weights.dense, self.config, normalized=self.encoder.normalizes, normalize_output=normalize
        )  # [B, d]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """texts -> the model's embeddings [B, d] (tokenized, then :meth:`embed`)."""
        return self.embed(self.tokenizer(texts))

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
        What ``sentences`` may be, and the errors for what it may not, are in :func:`_as_text_list`.
        Each distinct text is embedded once, so equal inputs get bitwise-equal rows (the progress bar
        counts distinct texts). Safe to call from several threads on one model (module docstring).
        """
        texts, single = _as_text_list(sentences)
        batch_size = positive_int("batch_size", batch_size)
        dim = self.get_sentence_embedding_dimension()
        if truncate_dim is not None:
            dim = min(positive_int("truncate_dim", truncate_dim), dim)

        distinct, rows_of = _distinct(texts)
        order = np.argsort([-len(t) for t in distinct], kind="stable")  # longest first
        out = np.empty((len(distinct), dim), dtype=np.float32)  # [u, d]
        with progress(len(distinct), "Batches", should_show(show_progress_bar)) as advance:
            for start in range(0, len(distinct), batch_size):
                rows = order[start : start + batch_size]
                embeddings = self._embed_batch([distinct[i] for i in rows])[:, :dim]  # [B, d]
                out[rows] = normalize(embeddings) if normalize_embeddings else embeddings
                advance(len(rows))
        if rows_of is not None:
            out = out[rows_of]  # [u, d] -> [n, d]

        if single:
            return out[0]
        return out if convert_to_numpy else list(out)


def _distinct(texts: list[str]) -> tuple[list[str], np.ndarray | None]:
    """(the distinct texts in first-seen order, each input's row among them — None when all are distinct)."""
    first_row: dict[str, int] = {}
    rows_of = np.fromiter((first_row.setdefault(t, len(first_row)) for t in texts), dtype=np.intp, count=len(texts))
    if len(first_row) == len(texts):
        return texts, None
    return list(first_row), rows_of


def load(model_name_or_path: str | os.PathLike | None = None, device: str | None = "cpu") -> SentenceTransformer:
    """Load a model by directory, hub id or short name (default all-MiniLM-L6-v2)."""
    return SentenceTransformer(model_name_or_path, device=device)
