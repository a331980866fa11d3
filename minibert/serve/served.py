"""The models a server serves: each loaded once, found by any of its names, and turning checked requests into token
ids through the facades' own stages and checks (so a request's texts get exactly the checks ``encode`` /
``CrossEncoder.rank`` apply).

A directory is served as what it is: a cross-encoder (config.json names a sequence-classification head:
``minibert.loading.config``'s ``head``) as a reranker, by :class:`~minibert.CrossEncoder`; anything else as an
embedding model, by :class:`~minibert.SentenceTransformer`. Only its config is read to tell, so each model's weights
are loaded once. A cross-encoder with more than one label (a classifier) is refused at load: no route here serves
its scores.

``--model M`` serves M under the name given, its short name and its hub id (``all-MiniLM-L6-v2``,
``sentence-transformers/all-MiniLM-L6-v2``, or a directory's own name); ``--model ALIAS=M`` adds ALIAS. TEI's
routes, which name no model, use the first model of their kind: ``/embed`` the first embedding model, ``/rerank``
the first reranker.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ..arguments import as_text_list, check_token_ids
from ..cross_encoder import CrossEncoder
from ..encoder.activations import ACTIVATION_FUNCTIONS
from ..errors import InputError, InputTypeError, UnsupportedModelError
from ..loading.config import load_config
from ..loading.resolve import canonical_model_id, looks_like_path, resolve_model_dir
from ..model import SentenceTransformer
from ..packing import PackedBatch
from .protocol import ApiError, EmbedRequest, RerankRequest

EMBEDDING, RERANKER = "embedding", "reranker"


@dataclass(frozen=True)
class ModelSpec:
    """A --model value: what to load, and the names to serve it under."""

    source: str
    names: tuple[str, ...]

    @classmethod
    def parse(cls, value: str) -> ModelSpec:
        alias, sep, source = value.partition("=")
        if not sep or looks_like_path(alias):  # no alias (a directory's path may hold '=')
            alias, source = "", value
        if not source.strip() or (sep and not alias.strip() and source != value):
            raise InputError(f"--model {value!r}: expected a model name or directory, or ALIAS=MODEL")
        names = [alias.strip()] if alias.strip() else []
        names.append(source)
        if looks_like_path(source):
            names.append(Path(source).name)
        else:
            model_id = canonical_model_id(source)
            names += [model_id, model_id.split("/", 1)[1]]
        return cls(source, tuple(dict.fromkeys(n for n in names if n)))


@dataclass(frozen=True)
class Sequences:
    """A request's inputs as the batcher takes them: token ids with special tokens, cut to the model's max length."""

    token_ids: list[list[int]]
    token_types: list[list[int]] | None  # a reranker's pairs: 0 for the query's part, 1 for the document's

    @property
    def tokens(self) -> int:
        return sum(map(len, self.token_ids))


ModelRequest = TypeVar("ModelRequest", EmbedRequest, RerankRequest)


@dataclass
class ServedModel(ABC, Generic[ModelRequest]):
    """A loaded model and the names it answers to; ``name`` is the one responses report. The batcher runs any kind
    through :meth:`pack` and :meth:`forward`."""

    kind: ClassVar[str]
    name: str
    names: tuple[str, ...]

    @abstractmethod
    def prepare(self, request: ModelRequest) -> Sequences:
        """The request's inputs checked and tokenized (422 naming the input; 413 for one past the max length with
        ``truncate: false``)."""
        ...

    @abstractmethod
    def pack(self, token_ids: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None) -> PackedBatch:
        """Sequences of several requests laid end to end."""
        ...

    @abstractmethod
    def forward(self, batch: PackedBatch) -> np.ndarray:
        """A packed batch's rows [B, w] (run off the event loop)."""
        ...

    @property
    @abstractmethod
    def max_input_length(self) -> int: ...

    @property
    def dimension(self) -> int | None:
        """The embeddings' width (None: a reranker)."""
        return None

    @property
    def normalized(self) -> bool | None:
        """Whether the model directory normalizes its embeddings (None: a reranker)."""
        return None

    def describe(self) -> dict[str, Any]:
        """This model's entry in /info's ``models``."""
        return {"name": self.name, "aliases": list(self.names), "kind": self.kind, "dimensions": self.dimension,
                "max_input_length": self.max_input_length}  # fmt: skip


def _too_long(truncated: list[bool], truncate: bool, max_length: int, first: str, noun: str) -> None:
    """With ``truncate: false``, a 413 naming the first input that is longer than the model's max length (`first`:
    how to name input i, as a format string)."""
    too_long = [i for i, cut in enumerate(truncated) if cut]
    if too_long and not truncate:
        raise ApiError(
            413,
            f"{first.format(i=too_long[0])} is longer than the model's max length of {max_length} tokens "
            f"({len(too_long)} {noun}(s) are); send truncate: true, or shorten it",
        )


@dataclass
class ServedEmbedder(ServedModel[EmbedRequest]):
    """An embedding model."""

    kind: ClassVar[str] = EMBEDDING
    model: SentenceTransformer

    @property
    def dimension(self) -> int:
        return self.model.get_sentence_embedding_dimension()

    @property
    def normalized(self) -> bool:
        return self.model.config.normalize

    @property
    def max_input_length(self) -> int:
        return self.model.max_seq_length

    @property
    def model_type(self) -> dict[str, dict[str, str]]:
        return {"embedding": {"pooling": "+".join(self.model.config.pooling_modes)}}

    def prepare(self, request: EmbedRequest) -> Sequences:
        """The request's inputs through the facade's prepare stage — the checks, prompt and tokenizer ``encode``
        uses — as 422s naming the input; with ``truncate: false``, a 413 naming the first input that is longer than
        the model's max length."""
        try:
            if request.texts is not None:
                prepared = self.model.prepare(request.texts, prompt_name=request.prompt_name, field=request.field)
            else:
                prepared = self.model.prepare_token_ids(request.token_ids, field=request.field)
        except (InputError, InputTypeError) as exc:
            raise ApiError(422, str(exc), param=request.field) from None
        _too_long(prepared.truncated, request.truncate, self.model.max_seq_length, "input {i}", "input")
        return Sequences(prepared.token_ids, None)

    def pack(self, token_ids: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None) -> PackedBatch:
        return self.model.pack(token_ids)

    def forward(self, batch: PackedBatch) -> np.ndarray:
        """The facade's embed stage without Normalize: [B, d] (each request then runs its own finish stage)."""
        return self.model.embed(batch, False)

    def token_states(self, sequences: Sequences, max_batch_tokens: int) -> list[np.ndarray]:
        """TEI's ``/embed_all``: each prepared input's last hidden states [L, C], special tokens included, in
        forward batches of at most `max_batch_tokens` tokens (one input longer than that goes alone)."""
        ids = sequences.token_ids
        out: list[np.ndarray] = []
        start = 0
        while start < len(ids):
            stop, tokens = start + 1, len(ids[start])
            while stop < len(ids) and tokens + len(ids[stop]) <= max_batch_tokens:
                tokens += len(ids[stop])
                stop += 1
            out += self.model.token_states(self.model.pack(ids[start:stop]))  # [L, C] each
            start = stop
        return out

    def tokenize(self, texts: list[str], add_special_tokens: bool, prompt_name: str | None) -> list[list[dict]]:
        """TEI's ``/tokenize``: each text's every token (not cut to the max length), with the prompt `prompt_name`
        names put before it: id, the characters it covers, whether it is special, its UTF-8 byte offsets."""
        try:
            as_text_list(texts, "inputs")  # a lone surrogate: 422 naming inputs[i]
        except (InputError, InputTypeError) as exc:
            raise ApiError(422, str(exc), param="inputs") from None
        try:
            prompt = self.model.resolve_prompt(None, prompt_name)
        except (InputError, InputTypeError) as exc:
            raise ApiError(422, str(exc), param="prompt_name") from None
        prompted = [prompt + text for text in texts] if prompt else texts
        encodings = self.model.tokenizer.whole_encodings(prompted, add_special_tokens)
        return [_tokens(text, encoding) for text, encoding in zip(prompted, encodings, strict=True)]

    def decode(self, sequences: list[list[int]], skip_special_tokens: bool) -> list[str]:
        """TEI's ``/decode``: each id list as text; an id outside the model's vocabulary is a 422 naming it."""
        try:
            check_token_ids(sequences, self.model.config.vocab_size, "ids")
        except (InputError, InputTypeError) as exc:
            raise ApiError(422, str(exc), param="ids") from None
        return self.model.tokenizer.decode(sequences, skip_special_tokens)


def _tokens(text: str, encoding: Any) -> list[dict[str, Any]]:
    """One encoding's tokens as TEI's /tokenize lists them: offsets in UTF-8 bytes, a special token's own string."""
    byte_at = list(itertools.accumulate((len(ch.encode("utf-8")) for ch in text), initial=0))  # char -> byte
    tokens = []
    for token_id, token, special, (start, stop) in zip(
        encoding.ids, encoding.tokens, encoding.special_tokens_mask, encoding.offsets, strict=True
    ):
        if special:
            tokens.append({"id": token_id, "text": token, "special": True, "start": None, "stop": None})
        else:
            tokens.append({"id": token_id, "text": text[start:stop], "special": False, "start": byte_at[start],
                           "stop": byte_at[stop]})  # fmt: skip
    return tokens


@dataclass
class ServedReranker(ServedModel[RerankRequest]):
    """A cross-encoder with one label: a (query, document) pair's score."""

    kind: ClassVar[str] = RERANKER
    model: CrossEncoder

    @property
    def max_input_length(self) -> int:
        return self.model.max_length

    @property
    def model_type(self) -> dict[str, dict[str, str]]:
        head = self.model.config.head
        return {RERANKER: {"architecture": head.architecture, "activation_fn": head.activation_fn}}

    def prepare(self, request: RerankRequest) -> Sequences:
        """The query and the documents checked as ``CrossEncoder.rank`` checks them (lone surrogates: 422 naming the
        field and index), each pair tokenized together as ``CrossEncoder.pack`` does; with ``truncate: false``, a 413
        naming the first pair longer than the model's max length."""
        texts = []
        for field, value in (("query", request.query), (request.field, request.documents)):
            try:
                texts.append(as_text_list(value, field)[0])
            except (InputError, InputTypeError) as exc:
                raise ApiError(422, str(exc), param=field) from None
        query, documents = texts
        pairs = self.model.tokenizer.pair_tokens(query * len(documents), documents, self.model.max_length)
        first = f"the query with {request.field}[{{i}}]"
        _too_long(pairs.truncated, request.truncate, self.model.max_length, first, "pair")
        return Sequences(pairs.input_ids, pairs.token_type_ids)

    def pack(self, token_ids: Sequence[Sequence[int]], token_types: Sequence[Sequence[int]] | None) -> PackedBatch:
        return PackedBatch.from_ids(token_ids, self.model.tokenizer.pad_token_id, token_types)

    def forward(self, batch: PackedBatch) -> np.ndarray:
        """The head's logits [B, 1]."""
        return self.model.logits(batch)

    def scores(self, logits: np.ndarray, activation: str | None) -> np.ndarray:
        """Logits [n, 1] -> scores [n]: through `activation` (a key of ACTIVATION_FUNCTIONS; None: the model's own),
        as ``CrossEncoder.scores`` computes them."""
        function = None if activation is None else ACTIVATION_FUNCTIONS[activation]
        return self.model.scores(logits, function)[:, 0]


def load_model(source: str, options: Mapping[str, Any]) -> SentenceTransformer | CrossEncoder:
    """The model at `source`, loaded as what its directory is (module docstring); a classifier is refused before its
    weights are read."""
    model_dir = resolve_model_dir(source)
    head = load_config(model_dir).head
    if head is None:
        return SentenceTransformer(source, **options)
    if head.num_labels != 1:
        raise UnsupportedModelError(
            f"{model_dir} is a cross-encoder with {head.num_labels} labels (a classifier); minibert serve reranks "
            "with one-label cross-encoders"
        )
    return CrossEncoder(source, **options)


def check_unique(entries: list[tuple[str, tuple[str, ...]]]) -> None:
    """InputError naming the first name that two (source, names) entries both answer to: one would be unreachable."""
    owner: dict[str, str] = {}
    for source, names in entries:
        for name in names:
            if owner.setdefault(name, source) != source:
                raise InputError(
                    f"--model {owner[name]} and --model {source} both answer to {name!r}; serve each model once, "
                    "under its own ALIAS="
                )


Served = TypeVar("Served", ServedEmbedder, ServedReranker)

# What a model of each kind is, and its routes (OpenAI-style, TEI), for the errors of a route asked of the other kind.
_KINDS = {
    ServedEmbedder: ("an embedding model", "POST /v1/embeddings", "POST /embed"),
    ServedReranker: ("a reranker (a cross-encoder: it scores query-document pairs)", "POST /v1/rerank", "POST /rerank"),
}


class ServedModels:
    """Every model the server serves, by name; two models answering to one name are refused (InputError)."""

    def __init__(self, specs: list[ModelSpec], options: Mapping[str, Any] | None = None) -> None:
        check_unique([(spec.source, spec.names) for spec in specs])
        self.specs = specs
        self.options = dict(options or {})  # the facades' keyword arguments: device, dtype, backend, threads
        self.models: list[ServedEmbedder | ServedReranker] = []

    def load(self) -> None:
        """Load every model (slow: run off the event loop). A model of minibert's table (loading/known_models.py) also
        answers to its table names, e.g. a cache directory of all-MiniLM-L6-v2 to ``all-MiniLM-L6-v2``."""
        models: list[ServedEmbedder | ServedReranker] = []
        for spec in self.specs:
            model = load_model(spec.source, self.options)
            if isinstance(model, CrossEncoder):
                models.append(ServedReranker(spec.names[0], spec.names, model))
                continue
            known = model.known_model
            table_names = (known.name, f"sentence-transformers/{known.name}") if known else ()
            models.append(ServedEmbedder(spec.names[0], tuple(dict.fromkeys((*spec.names, *table_names))), model))
        check_unique([(spec.source, served.names) for spec, served in zip(self.specs, models, strict=True)])
        self.models = models

    @property
    def ready(self) -> bool:
        return bool(self.models)

    @property
    def embedders(self) -> list[ServedEmbedder]:
        return [served for served in self.models if isinstance(served, ServedEmbedder)]

    @property
    def rerankers(self) -> list[ServedReranker]:
        return [served for served in self.models if isinstance(served, ServedReranker)]

    def find(self, name: str | None, kind: type[Served]) -> Served:
        """The model of `kind` answering to `name`. None (TEI's routes): the first model of `kind`, else a 400 saying
        what is served. A name no model answers to, or one of the other kind: a 404 saying so."""
        what = _KINDS[kind][0]
        listing = ", ".join(f"{served.name} ({served.kind})" for served in self.models)
        if name is None:
            for served in self.models:
                if isinstance(served, kind):
                    return served
            other_route = _KINDS[ServedReranker if kind is ServedEmbedder else ServedEmbedder][2]
            raise ApiError(400, f"this server serves no {what.split(' ', 1)[1]}; its models ({listing}) answer "
                                f"{other_route}")  # fmt: skip
        for served in self.models:
            if name in served.names:
                if isinstance(served, kind):
                    return served
                other, other_route, _ = _KINDS[type(served)]
                raise ApiError(
                    404,
                    f"model {name!r} is {other}, not {what}: ask it at {other_route}; served: {listing}",
                    param="model",
                    code="model_not_found",
                )
        raise ApiError(
            404, f"model {name!r} is not served here; served: {listing}", param="model", code="model_not_found"
        )
