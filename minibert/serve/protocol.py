"""The HTTP APIs' request and response shapes: OpenAI's ``POST /v1/embeddings`` and TEI's ``POST /embed``,
``/embed_all``, ``/tokenize`` and ``/decode``; Cohere's and Jina's ``POST /v1/rerank`` and TEI's ``POST /rerank``.

Each request body is validated by its model in :mod:`minibert.serve.schema` into one :class:`EmbedRequest` or
:class:`RerankRequest`; anything wrong is an :class:`ApiError` carrying the HTTP status and a message that names the
field (and the element, inside a list). The statuses are :data:`STATUSES` (README "Serving" has the table).

Follows OpenAI's embeddings API (``input`` as a string, a list of strings, a list of token ids or a list of lists
of token ids; ``encoding_format`` float or base64 — little-endian float32, as OpenAI's clients decode it;
``dimensions``; ``user`` ignored; errors as ``{"error": {"message", "type", "param", "code"}}``) and TEI's
``/embed`` (``inputs``, ``normalize``, ``truncate``, ``dimensions``, ``prompt_name``; errors as
``{"error", "error_type"}``). Texts get the model's prompt as ``encode`` gives it: the one ``prompt_name`` names,
else the model's default prompt, if any (``config_sentence_transformers.json``).
Differs: an empty string is embedded (sentence-transformers does; OpenAI refuses it); inputs past the max length
are truncated by default in both APIs (``truncate: false`` refuses them, TEI's default is to refuse); TEI's
``normalize`` defaults to what the model directory says, not to true, so the ``*-dot-*`` models are not normalized
behind the user's back; on TEI's routes token ids are the model's own word-piece ids without special tokens (the
server adds ``[CLS] … [SEP]`` as for text), on OpenAI's they are OpenAI's tiktoken ids unless the server is told
otherwise (:mod:`minibert.serve.tiktoken_ids`).

Reranking follows TEI's ``/rerank`` (``query``, ``texts``, ``truncate``, ``raw_scores``, ``return_text``; a list of
``{"index", "score", "text"?}``) and Cohere's v1 / Jina's ``/v1/rerank`` (``model``, ``query``, ``documents`` as
strings or ``{"text"}`` objects, ``top_n``, ``return_documents``; ``{"id", "results": [{"index",
"relevance_score", "document"?}], "model", "usage", "meta"}``; errors in OpenAI's shape, as every ``/v1/`` route).
Results are sorted by score, best first, ties in input order (``CrossEncoder.rank``'s order). The scores: TEI's
rule on ``/rerank`` — the sigmoid of the logit, or with ``raw_scores`` the logit itself, whatever activation the
model declares (so an ms-marco model, whose own activation is the identity, gives sigmoids there by default);
``/v1/rerank``'s ``relevance_score`` is the model's own score, ``CrossEncoder.predict``'s (its declared activation).
Differs: ``truncate`` defaults to true, as on the embedding routes (TEI's default is to refuse); an empty
``texts`` / ``documents`` list is a 400, as an empty input list is (TEI answers 422); ``return_documents`` defaults
to false, as Cohere's (Jina's defaults to true); a document object's fields but ``text`` are ignored and not
returned.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .schema import (
    TEXT,
    TEXTS,
    TOKEN_IDS,
    UNION_TAGS,
    CohereRerankRequest,
    OpenAIEmbeddingRequest,
    TeiDecodeRequest,
    TeiEmbedAllRequest,
    TeiEmbedRequest,
    TeiRerankRequest,
    TeiTokenizeRequest,
    id_kind,
    input_kind,
)

Body = TypeVar("Body", bound=BaseModel)

OPENAI = "openai"
TEI = "tei"

STATUSES = {
    400: "the body is not JSON (RFC 8259: no NaN or Infinity), or an input or document list is empty, or (TEI's "
    "routes, which name no model) no model of the route's kind is served: no embedding model, or no reranker",
    401: "no API key, or a wrong one (the server was started with --api-key)",
    404: "the model named is not served here, or is of the other kind (a reranker on /v1/embeddings, an embedding "
    "model on /v1/rerank)",
    405: "the route takes another method (the Allow header says which)",
    413: "more inputs than --max-client-batch-size or documents than --max-client-rerank-documents, a body over "
    "--payload-limit, or an input (a query-document pair) past the model's max length with truncate: false",
    422: "a field of the wrong type or value (the message names it)",
    429: "too many requests in flight (--max-concurrent-requests); retry after Retry-After seconds",
    503: "the models are still loading, or the server is stopping and its --graceful-timeout ran out",
}  # and 499 in the log and /metrics: the client went away before its answer

_OPENAI_TYPES = {
    401: "authentication_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}
_TEI_TYPES = {401: "Unauthorized", 413: "Validation", 422: "Validation", 429: "Overloaded", 503: "Unhealthy"}


class ApiError(Exception):
    """A request the server refuses: an HTTP status, a message, and the field it is about."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None, retry_after: int = 0
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.retry_after = status, message, param, code, retry_after

    def body(self, api: str) -> dict[str, Any]:
        """The error in the API's own shape."""
        if api == OPENAI:
            kind = _OPENAI_TYPES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error")
            return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return {"error": self.message, "error_type": _TEI_TYPES.get(self.status, "Validation")}


@dataclass(frozen=True)
class EmbedRequest:
    """One request, checked: what to embed and how to return it."""

    model: str | None  # the name the client asked for (TEI: None, the first model served)
    texts: list[str] | None  # either texts …
    token_ids: list[list[int]] | None  # … or token-id sequences (without special tokens)
    prompt_name: str | None  # TEI's prompt_name; None: the model's default prompt, if it has one
    normalize: bool | None  # None: as the model directory says
    truncate: bool
    dimensions: int | None
    encoding_format: str  # "float" or "base64"
    field: str  # what the API calls the inputs: "input" (OpenAI) or "inputs" (TEI), for errors

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.token_ids)


@dataclass(frozen=True)
class RerankRequest:
    """One rerank request, checked: a query, its documents, and what to return."""

    model: str | None  # the name the client asked for (TEI: None, the first reranker served)
    query: str
    documents: list[str]
    truncate: bool
    activation: str | None  # a key of ACTIVATION_FUNCTIONS applied to the logits; None: the model's own
    top_n: int | None  # the best N (None: all)
    return_documents: bool
    field: str  # what the API calls the documents: "texts" (TEI) or "documents" (Cohere), for errors

    @property
    def count(self) -> int:
        return len(self.documents)


def _describe(value: object) -> str:
    """A JSON value, briefly, for an error message."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("…" if len(value) > 40 else "")
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "an object"


def _path(loc: tuple[str | int, ...]) -> str:
    """A pydantic error location as the field it names: ("input", "token ids", 2) -> "input[2]",
    ("documents", 2, "document object", "text") -> "documents[2].text"."""
    parts = [part for part in loc if part not in UNION_TAGS]  # union tags: not fields
    return str(parts[0]) + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts[1:])


# what one element of a list field is, for errors
_ITEMS = {"texts": "document", "documents": "document", "ids": "token id"}


def _refusal(error: ErrorDetails, model: type[BaseModel]) -> ApiError:
    """The first validation error of a body, as the API error naming the field (and element) it is about."""
    field, path = str(error["loc"][0]), _path(error["loc"])
    if error["type"] == "missing":
        help_text = f": {model.model_fields[field].description}" if path == field else ""
        return ApiError(422, f"{path} is required{help_text}", param=field)
    if error["type"] == "too_short" and path == field:
        return ApiError(400, f"{field} is an empty list; send at least one {_ITEMS.get(field, 'input')}", param=field)
    expected = error["msg"].removeprefix("Input should be ")
    return ApiError(422, f"{path} must be {expected}, got {_describe(error['input'])}", param=field)


def _validated(model: type[Body], body: object) -> Body:
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object, got {_describe(body)}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _refusal(exc.errors()[0], model) from None


def _check_count(items: list, field: str, limit: int, option: str, noun: str) -> None:
    """A 413 when the list `field` holds more than `limit` (the server's `option`) items."""
    if len(items) > limit:
        raise ApiError(
            413,
            f"{field} holds {len(items)} {noun}, more than this server's {option} {limit}; split the request",
            param=field,
        )


def _inputs(value: str | list, field: str, max_inputs: int) -> tuple[list[str] | None, list[list[int]] | None]:
    """(texts, token-id sequences) from a validated input field; more inputs than `max_inputs`: 413."""
    kind = input_kind(value)
    if kind == TEXT:
        return [value], None
    if kind == TOKEN_IDS:
        return None, [value]
    _check_count(value, field, max_inputs, "--max-client-batch-size", "inputs")
    return (value, None) if kind == TEXTS else (None, value)


def parse_openai(body: object, max_inputs: int) -> EmbedRequest:
    """An OpenAI ``/v1/embeddings`` body, checked (the model's existence and width are checked by the caller)."""
    req = _validated(OpenAIEmbeddingRequest, body)
    texts, token_ids = _inputs(req.input, "input", max_inputs)
    encoding_format = req.encoding_format or "float"
    return EmbedRequest(req.model, texts, token_ids, None, None, True, req.dimensions, encoding_format, "input")


def parse_tei(body: object, max_inputs: int) -> EmbedRequest:
    """A TEI ``/embed`` body, checked."""
    req = _validated(TeiEmbedRequest, body)
    texts, token_ids = _inputs(req.inputs, "inputs", max_inputs)
    truncate = True if req.truncate is None else req.truncate
    return EmbedRequest(None, texts, token_ids, req.prompt_name, req.normalize, truncate, req.dimensions, "float",
                        "inputs")  # fmt: skip


def parse_tei_embed_all(body: object, max_inputs: int) -> EmbedRequest:
    """A TEI ``/embed_all`` body, checked."""
    req = _validated(TeiEmbedAllRequest, body)
    texts, token_ids = _inputs(req.inputs, "inputs", max_inputs)
    truncate = True if req.truncate is None else req.truncate
    return EmbedRequest(None, texts, token_ids, req.prompt_name, None, truncate, None, "float", "inputs")


def parse_tei_tokenize(body: object, max_inputs: int) -> TeiTokenizeRequest:
    """A TEI ``/tokenize`` body, checked; its inputs as a list."""
    req = _validated(TeiTokenizeRequest, body)
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    _check_count(texts, "inputs", max_inputs, "--max-client-batch-size", "inputs")
    return req.model_copy(update={"inputs": texts})


def parse_tei_decode(body: object, max_inputs: int) -> TeiDecodeRequest:
    """A TEI ``/decode`` body, checked; its ids as a list of lists."""
    req = _validated(TeiDecodeRequest, body)
    ids = [req.ids] if id_kind(req.ids) == TOKEN_IDS else req.ids
    _check_count(ids, "ids", max_inputs, "--max-client-batch-size", "id lists")
    return req.model_copy(update={"ids": ids})


def parse_tei_rerank(body: object, max_documents: int) -> RerankRequest:
    """A TEI ``/rerank`` body, checked; more texts than `max_documents`: 413."""
    req = _validated(TeiRerankRequest, body)
    _check_count(req.texts, "texts", max_documents, "--max-client-rerank-documents", "documents")
    activation = "identity" if req.raw_scores else "sigmoid"  # TEI's rule, whatever the model's own activation
    truncate = True if req.truncate is None else req.truncate
    return RerankRequest(None, req.query, req.texts, truncate, activation, None, bool(req.return_text), "texts")


def parse_cohere_rerank(body: object, max_documents: int) -> RerankRequest:
    """A Cohere / Jina ``/v1/rerank`` body, checked (the model's existence and kind are checked by the caller)."""
    req = _validated(CohereRerankRequest, body)
    _check_count(req.documents, "documents", max_documents, "--max-client-rerank-documents", "documents")
    texts = [document if isinstance(document, str) else document.text for document in req.documents]
    return RerankRequest(req.model, req.query, texts, True, None, req.top_n, bool(req.return_documents), "documents")


def ranking(scores: np.ndarray, top_n: int | None) -> list[int]:
    """The documents' indices by score, best first, ties in input order (``CrossEncoder.rank``'s order); the first
    `top_n` (None: all)."""
    return np.argsort(-scores, kind="stable")[:top_n].tolist()


def tei_rerank_response(scores: np.ndarray, request: RerankRequest) -> list[dict[str, Any]]:
    """TEI's ``/rerank`` answer: ``{"index", "score", "text"?}`` best first."""
    return [
        {"index": i, "score": float(scores[i]), **({"text": request.documents[i]} if request.return_documents else {})}
        for i in ranking(scores, request.top_n)
    ]


def cohere_rerank_response(scores: np.ndarray, request: RerankRequest, model: str, tokens: int) -> dict[str, Any]:
    """Cohere's and Jina's ``/v1/rerank`` answer (module docstring)."""
    results = [
        {
            "index": i,
            "relevance_score": float(scores[i]),
            **({"document": {"text": request.documents[i]}} if request.return_documents else {}),
        }
        for i in ranking(scores, request.top_n)
    ]
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "results": results,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "meta": {"tokens": {"input_tokens": tokens, "output_tokens": 0}},
    }


def check_dimensions(request: EmbedRequest, width: int) -> None:
    """The request's dimensions against the model's embedding width."""
    if request.dimensions is not None and request.dimensions > width:
        raise ApiError(
            422, f"dimensions must be between 1 and the model's {width}, got {request.dimensions}", param="dimensions"
        )


def encode_row(row: np.ndarray, encoding_format: str) -> list[float] | str:
    """One embedding as JSON: floats, or base64 of its little-endian float32 bytes."""
    if encoding_format == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row.tolist()


def openai_response(rows: np.ndarray, encoding_format: str, model: str, tokens: int) -> dict[str, Any]:
    data = [
        {"object": "embedding", "embedding": encode_row(row, encoding_format), "index": i} for i, row in enumerate(rows)
    ]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
