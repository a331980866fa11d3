"""``SentenceTransformer``: the drop-in encoder for the common sentence-transformers subset.

Follows ``sentence_transformers.SentenceTransformer.encode`` (sentence-transformers 6.2): the prompt, if any, is
put before every text; inputs are sorted by length (characters, longest first) and cut into batches, each batch
tokenized, run through the encoder, pooled, passed through the directory's Dense modules and — when it has a
Normalize module — normalized; then ``truncate_dim`` cuts the embedding, ``normalize_embeddings`` normalizes it,
the original order is restored and ``precision`` quantizes the result (:mod:`minibert.quantization`).
``output_value="token_embeddings"`` gives each text's last hidden states instead. Prompts follow its rules too:
``prompt`` beats ``prompt_name``, which beats ``default_prompt_name``; ``encode_query`` / ``encode_document`` ask
for the "query" / "document" prompt, which every model has ("" unless set). ``similarity`` and
``similarity_pairwise`` follow ``similarity_fn_name`` (:data:`minibert.util.SIMILARITY_FUNCTIONS`).

Differs where sentence-transformers is loose: ``encode([])`` returns a ``[0, d]`` array (not a
shapeless one); generators are accepted; a non-string item is a ``TypeError`` and a lone surrogate a
``ValueError``, both naming the index and what to do (:func:`_as_text_list`); so is a bad value of any other
argument; results are NumPy arrays, never tensors; ``similarity_fn_name`` falls back on minibert's model table
(:mod:`minibert.models`) before cosine; ``output_value=None`` (every feature as a dict) is not offered, nor
token embeddings on the Triton backend; and only ``device="cpu"`` is the NumPy backend; ``device="cuda"`` selects
the Triton backend (:mod:`minibert.gpu`).

Thread-safety: one model object may be shared by threads calling :meth:`SentenceTransformer.encode` at
once. Nothing is mutated after ``__init__`` (except by assigning ``similarity_fn_name``): the weights are
read-only arrays, the tokenizer's truncation and padding are set once, and each call allocates its own buffers.
"""

from __future__ import annotations

import enum
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .config import ModelConfig, load_config
from .errors import InputError, InputTypeError, ModelLoadError, positive_int
from .fast import NumpyEncoder, forward
from .hub import DEFAULT_MODEL, resolve_model_dir
from .models import find_known_model
from .packing import PackedBatch
from .pooling import after_pooling, normalize
from .progress import progress, should_show
from .quantization import check_precision, quantize_embeddings
from .tokenizer import BatchTokenizer
from .util import PAIRWISE_SIMILARITY_FUNCTIONS, SIMILARITY_FUNCTIONS
from .weights import load_weights

BACKENDS = ("numpy", "triton")
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")
# Prompts every model has (sentence-transformers' SentenceTransformer._default_prompts), "" unless set.
TASK_PROMPTS = {"query": "", "document": ""}

logger = logging.getLogger(__name__)


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


def _check_output_value(output_value: object) -> str:
    """`output_value` when it is one of :data:`OUTPUT_VALUES`; else InputTypeError / InputError saying what to pass."""
    choices = "'sentence_embedding' (the default) or 'token_embeddings'"
    if output_value is None:
        raise InputError(f"output_value=None (every feature, as dicts) is not supported; pass {choices}")
    if not isinstance(output_value, str):
        raise InputTypeError(f"output_value must be a str, {choices}; got {type(output_value).__name__}")
    if output_value not in OUTPUT_VALUES:
        raise InputError(f"output_value {output_value!r} is not supported; pass {choices}")
    return output_value


def _check_similarity_fn_name(name: object) -> str:
    """A similarity function's name (a str, or an enum such as sentence-transformers' SimilarityFunction, by its
    value) when minibert.util has it; else InputTypeError / InputError listing the names."""
    choices = ", ".join(repr(n) for n in SIMILARITY_FUNCTIONS)
    if isinstance(name, enum.Enum):
        name = name.value
    if not isinstance(name, str):
        raise InputTypeError(f"similarity_fn_name must be a str, one of {choices}; got {type(name).__name__}")
    if name not in SIMILARITY_FUNCTIONS:
        raise InputError(f"similarity_fn_name {name!r} is not supported; pass one of {choices}")
    return name


def _merged_prompts(declared: Mapping[str, str], given: object) -> dict[str, str]:
    """The model's prompts, by sentence-transformers' rule: "query" and "document" always ("" unless set), then the
    directory's prompts, then the caller's (`given`, a dict of str to str), which win."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in given.items()):
        raise InputTypeError(
            "prompts must be a dict of prompt names to prompt texts, both str, e.g. {'query': 'query: '}; "
            f"got {given!r}"
        )
    return {**TASK_PROMPTS, **declared, **given}


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
        prompts: prompt name -> text put before every input when that prompt applies; these win over the
            directory's ``config_sentence_transformers.json`` prompts. "query" and "document" always exist.
        default_prompt_name: the prompt :meth:`encode` applies when none is asked for (default: the directory's).
        similarity_fn_name: "cosine", "dot", "euclidean" or "manhattan" for :meth:`similarity` (default: the
            directory's, else minibert's model table, else "cosine").
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
        if similarity_fn_name is not None:
            similarity_fn_name = _check_similarity_fn_name(similarity_fn_name)
        if default_prompt_name is not None and not isinstance(default_prompt_name, str):
            raise InputTypeError(f"default_prompt_name must be a str, got {type(default_prompt_name).__name__}")
        name = model_name_or_path or DEFAULT_MODEL
        self.model_dir: Path = resolve_model_dir(name)
        self.known_model = find_known_model(name if isinstance(name, str) else None, self.model_dir)
        self.config: ModelConfig = load_config(self.model_dir)
        self.prompts: dict[str, str] = _merged_prompts(self.config.prompts, prompts)
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
        """The score function's name, "cosine", "dot", "euclidean" or "manhattan": the constructor's argument, else
        what the directory declares, else minibert's model table, else cosine (sentence-transformers' default).
        Assignable, as there."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, name: str) -> None:
        self._similarity_fn_name = _check_similarity_fn_name(name)

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

    def _batches(self, texts: list[str], batch_size: int, show_progress_bar: bool | None) -> Iterator[np.ndarray]:
        """Rows of `texts` batch by batch, longest texts first (sentence-transformers' order), with the progress bar."""
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first
        with progress(len(texts), "Batches", should_show(show_progress_bar)) as advance:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                yield rows
                advance(len(rows))

    def _sentence_embeddings(
        self, texts: list[str], batch_size: int, show_progress_bar: bool | None, dim: int, normalize_embeddings: bool
    ) -> np.ndarray:
        """texts -> their embeddings cut to `dim`, normalized when asked: [n, dim] float32."""
        out = np.empty((len(texts), dim), dtype=np.float32)  # [n, d]
        for rows in self._batches(texts, batch_size, show_progress_bar):
            embeddings = self._embed_batch([texts[i] for i in rows])[:, :dim]  # [B, d]
            out[rows] = normalize(embeddings) if normalize_embeddings else embeddings
        return out

    def _token_embeddings(self, texts: list[str], batch_size: int, show_progress_bar: bool | None) -> list[np.ndarray]:
        """texts -> each text's last hidden states, special tokens included: n × [L, C] float32 (NumPy backend)."""
        out: list[np.ndarray] = [np.empty((0, self.config.hidden_size), np.float32)] * len(texts)  # each replaced
        for rows in self._batches(texts, batch_size, show_progress_bar):
            batch = self.tokenizer([texts[i] for i in rows])
            hidden = forward(batch, self.weights, self.config)  # [N, C]
            for row, tokens in zip(rows, np.split(hidden, batch.cu_seqlens[1:-1]), strict=True):  # B × [L, C]
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
        where ``truncate_dim`` and ``normalize_embeddings`` do not apply (as in sentence-transformers); NumPy
        backend only. ``precision`` ("float32", "int8", "uint8", "binary", "ubinary") quantizes the result with
        :func:`minibert.quantize_embeddings`, int8 / uint8 with ranges from this call's embeddings (so at least
        two of them; token embeddings: all tokens' rows).
        What ``sentences`` may be, and the errors for what it may not, are in :func:`_as_text_list`; every other
        argument is checked before any text is encoded. Each distinct text is embedded once, so equal inputs get
        bitwise-equal rows (the progress bar counts distinct texts). Safe to call from several threads on one
        model (module docstring).
        """
        texts, single = _as_text_list(sentences)
        batch_size = positive_int("batch_size", batch_size)
        dim = self.get_embedding_dimension()
        if truncate_dim is not None:
            dim = min(positive_int("truncate_dim", truncate_dim), dim)
        output_value = _check_output_value(output_value)
        precision = check_precision(precision)
        prompt_text = self.resolve_prompt(prompt, prompt_name)
        if output_value == "token_embeddings" and self.backend != "numpy":
            raise InputError(
                "output_value='token_embeddings' runs on the NumPy backend; load the model on device='cpu'"
            )

        distinct, rows_of = _distinct(texts)
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
