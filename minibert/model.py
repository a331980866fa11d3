"""``SentenceTransformer``: the facade every front end uses — sentence-transformers' ``encode`` as public stages.

Follows ``sentence_transformers.SentenceTransformer.encode`` (sentence-transformers 6.2): the prompt, if any, is
put before every text; inputs are sorted by length (characters, longest first) and cut into batches, each batch
tokenized, run through the encoder, pooled, passed through the directory's Dense modules and — when it has a
Normalize module — normalized; then ``truncate_dim`` cuts the embedding, ``normalize_embeddings`` normalizes it,
the original order is restored and ``precision`` quantizes the result (:mod:`minibert.quantization`).
``output_value="token_embeddings"`` gives each text's last hidden states instead. Prompts follow its rules too:
``prompt`` beats ``prompt_name``, which beats ``default_prompt_name``; ``encode_query`` / ``encode_document`` ask
for the "query" / "document" prompt, which every model has ("" unless set). ``similarity`` and
``similarity_pairwise`` follow ``similarity_fn_name`` (:data:`minibert.util.SIMILARITY_FUNCTIONS`).

The stages, public so that the server, the corpus job, the benchmark and the profiler run exactly this code:

1. :meth:`~SentenceTransformer.prepare` — inputs checked (:mod:`minibert.arguments`), the prompt put before each,
   tokenized: a :class:`Prepared` of token ids and which inputs were cut (:meth:`~SentenceTransformer.prepare_token_ids`
   for inputs given as token ids); :meth:`~SentenceTransformer.pack` lays any of their sequences end to end;
2. :meth:`~SentenceTransformer.embed` — a packed batch through the backend (:class:`~minibert.encoder.contract.Encoder`)
   and the modules after Pooling: the model's embeddings, normalized or not as the call says (the backend fuses it
   into its pooling when nothing comes between);
3. :meth:`~SentenceTransformer.finish` — ``truncate_dim`` / ``dimensions``, then ``normalize_embeddings``.

:meth:`~SentenceTransformer.encode` is the loop over them; the order of the inputs, equal texts embedded once, the
progress bar and ``precision`` (whose int8 ranges come from all of the call's rows) stay in it.

Differs where sentence-transformers is loose: ``encode([])`` returns a ``[0, d]`` array (not a
shapeless one); generators are accepted; a non-string item is a ``TypeError`` and a lone surrogate a
``ValueError``, both naming the index and what to do; so is a bad value of any other argument; results are NumPy
arrays, never tensors; ``similarity_fn_name`` falls back on minibert's model table
(:mod:`minibert.loading.known_models`) before cosine; ``output_value=None`` (every feature as a dict) is not offered;
``device="cpu"`` is the NumPy backend and ``device="cuda"`` the Triton one (:mod:`minibert.encoder.gpu`); the
backend can be replaced (``encoder=``).

Thread-safety: one model object may be shared by threads calling :meth:`SentenceTransformer.encode` at
once. Nothing is mutated after ``__init__`` (except by assigning ``similarity_fn_name``): the weights are
read-only arrays, the tokenizer's truncation and padding are set once, and each call allocates its own buffers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .arguments import as_text_list, check_output_value, check_similarity_fn_name, check_token_ids, merged_prompts
from .encoder.contract import Encoder, EncoderFactory
from .encoder.cpu import NumpyEncoder
from .encoder.pooling import after_pooling, normalize_while_pooling
from .encoder.pooling import normalize as normalize_rows
from .errors import InputError, InputTypeError, ModelLoadError, UnsupportedModelError, positive_int
from .loading.config import ModelConfig, load_config
from .loading.known_models import find_known_model
from .loading.resolve import DEFAULT_MODEL, resolve_model_dir
from .loading.tokenizer import BatchTokenizer
from .loading.weights import Weights, load_weights
from .packing import PackedBatch, first_seen
from .progress import progress, should_show
from .quantization import check_precision, quantize_embeddings
from .util import PAIRWISE_SIMILARITY_FUNCTIONS, SIMILARITY_FUNCTIONS

BACKENDS = ("numpy", "triton")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """Inputs ready for the encoder (what :meth:`SentenceTransformer.prepare` returns): each input's token ids, special
    tokens included and cut to the model's max_seq_length, and whether it was cut."""

    token_ids: list[list[int]]
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def tokens(self) -> int:
        """Tokens of all the inputs, special tokens included."""
        return sum(map(len, self.token_ids))


class SentenceTransformer:
    """A sentence-transformers BERT model run by minibert's own forward pass.

    Args:
        model_name_or_path: a local directory, a hub id (``org/name``) or a short sentence-transformers
            name (``all-MiniLM-L6-v2``); resolved offline through minibert's and the HF cache first.
            Defaults to all-MiniLM-L6-v2.
        device: ``"cpu"`` (the NumPy forward) or a CUDA device such as ``"cuda"`` (the Triton backend); a
            ``torch.device`` is taken by its name. Anything else is an InputError / InputTypeError.
        dtype: ``"float32"``, or for the Triton backend ``"float16"`` / ``"bfloat16"``.
        backend: ``"numpy"`` or ``"triton"``; default numpy on CPU, triton on CUDA. ``backend="triton"`` with
            ``device="cpu"`` runs the kernels in Triton's interpreter (needs ``TRITON_INTERPRET=1``).
        prompts: prompt name -> text put before every input when that prompt applies; these win over the
            directory's ``config_sentence_transformers.json`` prompts. "query" and "document" always exist.
        default_prompt_name: the prompt :meth:`encode` applies when none is asked for (default: the directory's).
        similarity_fn_name: "cosine", "dot", "euclidean" or "manhattan" for :meth:`similarity` (default: the
            directory's, else minibert's model table, else "cosine").
        threads: the NumPy backend's forward threads (default: the usable cores, at most 8).
        encoder: another backend: a callable ``(config, weights) -> Encoder``
            (:data:`~minibert.encoder.contract.EncoderFactory`), called once; instead of `backend` and `threads`.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        device: str | None = "cpu",
        *,
        dtype: str = "float32",
        backend: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        threads: int | None = None,
        encoder: EncoderFactory | None = None,
    ) -> None:
        backend_options = BackendOptions.checked(device, dtype, backend, threads, encoder)
        if similarity_fn_name is not None:
            similarity_fn_name = check_similarity_fn_name(similarity_fn_name)
        if default_prompt_name is not None and not isinstance(default_prompt_name, str):
            raise InputTypeError(f"default_prompt_name must be a str, got {type(default_prompt_name).__name__}")
        name = model_name_or_path or DEFAULT_MODEL
        self.model_dir: Path = resolve_model_dir(name)
        self.known_model = find_known_model(name if isinstance(name, str) else None, self.model_dir)
        self.config: ModelConfig = load_config(self.model_dir)
        if self.config.head is not None:
            raise UnsupportedModelError(
                f"{self.model_dir} is a cross-encoder ({self.config.head.architecture}): it scores (query, passage) "
                "pairs and has no sentence embeddings; load it with minibert.CrossEncoder"
            )
        self.prompts: dict[str, str] = merged_prompts(self.config.prompts, prompts)
        self.default_prompt_name: str | None = (
            self.config.default_prompt_name if default_prompt_name is None else default_prompt_name
        )
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            names = ", ".join(repr(n) for n in self.prompts)
            if default_prompt_name is not None:
                raise InputError(
                    f"default_prompt_name {default_prompt_name!r} is not one of the prompts ({names}); pass one of "
                    "those, or add it to prompts="
                )
            raise ModelLoadError(
                f"{self.model_dir / 'config_sentence_transformers.json'}: default_prompt_name "
                f"{self.default_prompt_name!r} is not one of the prompts ({names})"
            )
        known_score = self.known_model.score if self.known_model else "cosine"
        self._similarity_fn_name = similarity_fn_name or self.config.similarity_fn_name or known_score
        self.tokenizer = BatchTokenizer(self.config)
        self.weights = load_weights(self.config)
        self.backend, self.dtype = backend_options.name, dtype  # which backend, and what it computes in
        self.encoder: Encoder = backend_options.encoder(self.config, self.weights)

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
        """The score function's name, "cosine", "dot", "euclidean" or "manhattan": the constructor's argument, else
        what the directory declares, else minibert's model table, else cosine (sentence-transformers' default).
        Assignable, as there."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, name: str) -> None:
        self._similarity_fn_name = check_similarity_fn_name(name)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Scores of every row of `embeddings1` ([n, d] or [d]) against every row of `embeddings2` ([m, d] or [d]) by
        :attr:`similarity_fn_name`: float32 [n, m] (euclidean and manhattan as negative distances)."""
        return SIMILARITY_FUNCTIONS[self.similarity_fn_name](embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Scores of matching rows, ``embeddings1[i]`` with ``embeddings2[i]``, by :attr:`similarity_fn_name`:
        float32 [n] (a 0-d array for two [d] inputs)."""
        return PAIRWISE_SIMILARITY_FUNCTIONS[self.similarity_fn_name](embeddings1, embeddings2)

    def get_embedding_dimension(self) -> int:
        """Width of :meth:`encode`'s embeddings (without ``truncate_dim``)."""
        return self.config.embedding_dim

    def get_sentence_embedding_dimension(self) -> int:
        """The older name of :meth:`get_embedding_dimension`."""
        return self.get_embedding_dimension()

    def resolve_prompt(self, prompt: object = None, prompt_name: object = None) -> str:
        """The text to put before every input: `prompt`, else the prompt named `prompt_name`, else the default
        prompt, else "" (sentence-transformers' order; `prompt_name` beside `prompt` is ignored with a warning)."""
        if prompt is not None:
            if not isinstance(prompt, str):
                raise InputTypeError(
                    f"prompt must be a str (the text put before every input), got {type(prompt).__name__}"
                )
            if prompt_name is not None:
                logger.warning("both prompt and prompt_name were given; using prompt, ignoring prompt_name")
            return prompt
        if prompt_name is None:
            return "" if self.default_prompt_name is None else self.prompts[self.default_prompt_name]
        names = ", ".join(repr(n) for n in self.prompts)
        if not isinstance(prompt_name, str):
            raise InputTypeError(f"prompt_name must be a str, one of {names}; got {type(prompt_name).__name__}")
        if prompt_name not in self.prompts:
            raise InputError(
                f"prompt_name {prompt_name!r} is not one of this model's prompts ({names}); pass one of those, or "
                "the text itself as prompt="
            )
        return self.prompts[prompt_name]

    # ------------------------------------------------------------------------------------------ the stages

    def prepare(
        self,
        sentences: str | Iterable[str],
        *,
        prompt: str | None = None,
        prompt_name: str | None = None,
        field: str = "sentences",
    ) -> Prepared:
        """Stage 1: the inputs checked as :meth:`encode` checks them (errors name ``field[i]``), the prompt resolved as
        :meth:`encode` resolves it and put before each text, each tokenized and cut to max_seq_length."""
        texts, _ = as_text_list(sentences, field)
        prompt_text = self.resolve_prompt(prompt, prompt_name)
        return self._tokenized([prompt_text + text for text in texts] if prompt_text else texts)

    def prepare_token_ids(self, sequences: Sequence[Sequence[int]], *, field: str = "input") -> Prepared:
        """Stage 1 for inputs given as token ids: each sequence the word-piece ids of a text without special tokens,
        checked to be ids of this model's vocabulary (InputError naming ``field[i]``), then wrapped in the model's
        special tokens (``[CLS] … [SEP]``) and cut to max_seq_length as a text would be."""
        check_token_ids(sequences, self.config.vocab_size, field)
        keep = self.tokenizer.max_content_tokens
        return Prepared(
            [self.tokenizer.with_special_tokens(list(ids)) for ids in sequences], [len(ids) > keep for ids in sequences]
        )

    def pack(self, token_ids: Sequence[Sequence[int]]) -> PackedBatch:
        """Sequences of token ids (special tokens included, e.g. from several :class:`Prepared`) laid end to end."""
        return PackedBatch.from_ids(token_ids, self.tokenizer.pad_token_id)

    def embed(self, batch: PackedBatch, normalize: bool | None = None) -> np.ndarray:
        """Stage 2: a packed batch's embeddings [B, d], float32 — the backend's pooled vectors, then Dense and — when
        `normalize`, by default when the model directory has a Normalize module — L2 normalization, which the
        backend does while pooling when nothing comes between (one pooling mode, no Dense)."""
        unit = self.config.normalize if normalize is None else bool(normalize)
        fused = unit and normalize_while_pooling(self.config)
        pooled = self.encoder.embed(batch, fused)  # [B, C · modes]
        return after_pooling(pooled, self.weights.dense, self.config, normalize_output=unit and not fused)  # [B, d]

    def token_states(self, batch: PackedBatch) -> list[np.ndarray]:
        """Stage 2 for token embeddings: each sequence's last hidden states, special tokens included: B × [L, C]."""
        hidden = self.encoder.token_embeddings(batch)  # [N, C]
        return np.split(hidden, batch.cu_seqlens[1:-1])

    def finish(self, embeddings: np.ndarray, *, dimensions: int | None = None, normalize: bool = False) -> np.ndarray:
        """Stage 3: the first `dimensions` of each row (``truncate_dim``; all when None or wider), then — when
        `normalize` (``normalize_embeddings``) — L2-normalized: [B, d] -> [B, min(d, dimensions)] float32."""
        rows = embeddings if dimensions is None else embeddings[:, : positive_int("dimensions", dimensions)]
        return normalize_rows(rows) if normalize else rows

    def tokenize(self, texts: list[str]) -> PackedBatch:
        """The token ids the encoder sees for `texts` (no prompt), packed (``.to_padded()`` for
        sentence-transformers' layout)."""
        return self.pack(self._tokenized(as_text_list(texts)[0]).token_ids)

    def _tokenized(self, texts: list[str]) -> Prepared:
        """Checked texts -> their :class:`Prepared` token ids."""
        encodings = self.tokenizer.encode(texts)
        return Prepared([e.ids for e in encodings], [bool(e.overflowing) for e in encodings])

    # ------------------------------------------------------------------------------------------ encode

    def _batches(
        self, texts: list[str], batch_size: int, show_progress_bar: bool | None
    ) -> Iterator[tuple[np.ndarray, PackedBatch]]:
        """Rows of `texts` batch by batch, longest texts first (sentence-transformers' order), with the progress bar;
        each batch packed."""
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first
        with progress(len(texts), "Batches", should_show(show_progress_bar)) as advance:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                yield rows, self.pack(self._tokenized([texts[i] for i in rows]).token_ids)
                advance(len(rows))

    def _sentence_embeddings(
        self, texts: list[str], batch_size: int, show_progress_bar: bool | None, dim: int, normalize_embeddings: bool
    ) -> np.ndarray:
        """texts -> their embeddings cut to `dim`, normalized when asked: [n, dim] float32."""
        out = np.empty((len(texts), dim), dtype=np.float32)  # [n, d]
        for rows, batch in self._batches(texts, batch_size, show_progress_bar):
            out[rows] = self.finish(self.embed(batch), dimensions=dim, normalize=normalize_embeddings)  # [B, d]
        return out

    def _token_embeddings(self, texts: list[str], batch_size: int, show_progress_bar: bool | None) -> list[np.ndarray]:
        """texts -> each text's last hidden states, special tokens included: n × [L, C] float32."""
        out: list[np.ndarray] = [np.empty((0, self.config.hidden_size), np.float32)] * len(texts)  # each replaced
        for rows, batch in self._batches(texts, batch_size, show_progress_bar):
            for row, tokens in zip(rows, self.token_states(batch), strict=True):  # B × [L, C]
                out[row] = tokens
        return out

    def encode(
        self,
        sentences: str | Iterable[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        output_value: str = "sentence_embedding",
        precision: str = "float32",
    ) -> np.ndarray | list[np.ndarray]:
        """Embed sentences: a str -> [d]; a list of n str -> [n, d] float32, in input order.

        ``convert_to_numpy=False`` returns a list of n ``[d]`` arrays instead of one matrix.
        ``truncate_dim`` keeps the first that many dimensions, before ``normalize_embeddings``.
        ``prompt`` (a str) is put before every text; else ``prompt_name`` names one of :attr:`prompts`; else the
        :attr:`default_prompt_name` prompt applies, if set. ``output_value="token_embeddings"`` gives a list of
        n ``[L, C]`` float32 arrays (a str: one array), each text's last hidden states including the special tokens,
        where ``truncate_dim`` and ``normalize_embeddings`` do not apply (as in sentence-transformers).
        ``precision`` ("float32", "int8", "uint8", "binary", "ubinary") quantizes the result with
        :func:`minibert.quantize_embeddings`, int8 / uint8 with ranges from this call's embeddings (so at least
        two of them; token embeddings: all tokens' rows).
        What ``sentences`` may be, and the errors for what it may not, are in :func:`minibert.arguments.as_text_list`;
        every other argument is checked before any text is encoded. Each distinct text is embedded once, so equal
        inputs get bitwise-equal rows (the progress bar counts distinct texts). Safe to call from several threads on
        one model (module docstring).
        """
        texts, single = as_text_list(sentences)
        batch_size = positive_int("batch_size", batch_size)
        dim = self.get_embedding_dimension()
        if truncate_dim is not None:
            dim = min(positive_int("truncate_dim", truncate_dim), dim)
        output_value = check_output_value(output_value)
        precision = check_precision(precision)
        prompt_text = self.resolve_prompt(prompt, prompt_name)

        distinct, rows_of = first_seen(texts)
        prompted = [prompt_text + text for text in distinct] if prompt_text else distinct
        embeddings: np.ndarray | list[np.ndarray]
        if output_value == "token_embeddings":
            per_text = self._token_embeddings(prompted, batch_size, show_progress_bar)  # u × [L, C]
            embeddings = per_text if rows_of is None else [per_text[i] for i in rows_of]  # n × [L, C]
        else:
            embeddings = self._sentence_embeddings(prompted, batch_size, show_progress_bar, dim, normalize_embeddings)
            if rows_of is not None:
                embeddings = embeddings[rows_of]  # [u, d] -> [n, d]
        if precision != "float32":
            embeddings = quantize_embeddings(embeddings, precision)

        if single:
            return embeddings[0]
        return embeddings if convert_to_numpy or output_value == "token_embeddings" else list(embeddings)

    def encode_query(
        self,
        sentences: str | Iterable[str],
        *args: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray | list[np.ndarray]:
        """:meth:`encode` for search queries: without ``prompt`` or ``prompt_name``, the "query" prompt applies
        ("" unless the model or the constructor sets it — which also keeps the default prompt from applying), as
        sentence-transformers' ``encode_query``. Other arguments as :meth:`encode`."""
        if prompt is None and prompt_name is None:
            prompt_name = "query"
        return self.encode(sentences, *args, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(
        self,
        sentences: str | Iterable[str],
        *args: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray | list[np.ndarray]:
        """:meth:`encode` for passages: without ``prompt`` or ``prompt_name``, the "document" prompt applies ("" unless
        set), as sentence-transformers' ``encode_document`` — whose candidates "document", "passage", "corpus"
        stop at "document", which every model's prompts hold. Other arguments as :meth:`encode`."""
        if prompt is None and prompt_name is None:
            prompt_name = "document"
        return self.encode(sentences, *args, prompt_name=prompt_name, prompt=prompt, **kwargs)


def backend_for(device: str | None, backend: str | None) -> str:
    """The backend a model runs on: `backend` when given, else numpy on the CPU and triton on any other device."""
    return backend or ("numpy" if device in (None, "cpu") else "triton")


@dataclass(frozen=True)
class BackendOptions:
    """A model's device, dtype, backend, threads and encoder factory, checked together: what every facade (the
    bi-encoder's, the cross-encoder's) is built with."""

    device: str | None
    dtype: str
    name: str  # "numpy", "triton", or "custom" for encoder=
    threads: int | None
    factory: EncoderFactory | None

    @classmethod
    def checked(
        cls,
        device: object,
        dtype: str,
        backend: str | None,
        threads: int | None,
        encoder: EncoderFactory | None,
    ) -> BackendOptions:
        """The options as the constructors take them; InputError / InputTypeError naming a bad one."""
        if device is not None and not isinstance(device, str):
            if type(device).__module__.split(".")[0] != "torch":  # a torch.device is accepted by its name
                raise InputTypeError(
                    f"device is {type(device).__name__}, expected a str such as 'cpu', 'cuda' or 'cuda:0'"
                )
            device = str(device)
        if encoder is not None and (backend is not None or threads is not None):
            raise InputError("encoder= replaces the backend: pass backend= and threads= to neither, or drop encoder=")
        name = backend_for(device, backend)
        if name not in BACKENDS:
            raise InputError(f"backend={name!r} is not one of {', '.join(BACKENDS)}")
        if name == "numpy" and (device not in (None, "cpu") or dtype != "float32"):
            raise InputError(
                f"the NumPy backend runs on device='cpu' in float32 (got device={device!r}, dtype={dtype!r}); "
                "pass backend='triton' (or a CUDA device) for the Triton kernels"
            )
        if threads is not None:
            threads = positive_int("threads", threads)
            if name != "numpy":
                raise InputError("threads= sets the NumPy backend's forward threads; the Triton backend takes none")
        return cls(device, dtype, name if encoder is None else "custom", threads, encoder)

    def encoder(self, config: ModelConfig, weights: Weights) -> Encoder:
        """The backend for a loaded model."""
        if self.factory is not None:
            return self.factory(config, weights)
        if self.name == "triton":
            from .encoder.gpu import GpuEncoder  # torch and triton are imported only on this path

            return GpuEncoder(config, weights, device=self.device or "cpu", dtype=self.dtype)
        return NumpyEncoder(config, weights, threads=self.threads)


def load(
    model_name_or_path: str | os.PathLike | None = None, device: str | None = "cpu", **options: Any
) -> SentenceTransformer:
    """Load a model by directory, hub id or short name (default all-MiniLM-L6-v2); `options` as
    :class:`SentenceTransformer` takes them."""
    return SentenceTransformer(model_name_or_path, device=device, **options)
