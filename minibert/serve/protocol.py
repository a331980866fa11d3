"""The two HTTP APIs' request and response shapes: OpenAI's ``POST /v1/embeddings`` and TEI's ``POST /embed``.

Each request body is validated by its model in :mod:`minibert.serve.schema` into one :class:`EmbedRequest`;
anything wrong is an :class:`ApiError` carrying the HTTP status and a message that names the field (and the
element, inside a list). The statuses are :data:`STATUSES` (README "Serving" has the table).

Follows OpenAI's embeddings API (``input`` as a string, a list of strings, a list of token ids or a list of lists
of token ids; ``encoding_format`` float or base64 — little-endian float32, as OpenAI's clients decode it;
``dimensions``; ``user`` ignored; errors as ``{"error": {"message", "type", "param", "code"}}``) and TEI's
``/embed`` (``inputs``, ``normalize``, ``truncate``, ``dimensions``, ``prompt_name``; errors as
``{"error", "error_type"}``). Texts get the model's prompt as ``encode`` gives it: the one ``prompt_name`` names,
else the model's default prompt, if any (``config_sentence_transformers.json``).
Differs: an empty string is embedded (sentence-transformers does; OpenAI refuses it); inputs past the max length
are truncated by default in both APIs (``truncate: false`` refuses them, TEI's default is to refuse); TEI's
``normalize`` defaults to what the model directory says, not to true, so the ``*-dot-*`` models are not normalized
behind the user's back; token ids are the model's own word-piece ids without special tokens (the server adds
``[CLS] … [SEP]`` as for text).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .schema import TEXT, TEXTS, TOKEN_ID_LISTS, TOKEN_IDS, OpenAIEmbeddingRequest, TeiEmbedRequest, input_kind

Body = TypeVar("Body", bound=BaseModel)

OPENAI = "openai"
TEI = "tei"

STATUSES = {
    400: "the body is not JSON (RFC 8259: no NaN or Infinity), or an input list is empty",
    401: "no API key, or a wrong one (the server was started with --api-key)",
    404: "the model named is not served here",
    405: "the route takes another method (the Allow header says which)",
    413: "more inputs than --max-client-batch-size, a body over --payload-limit, or an input past the model's max "
    "length with truncate: false",
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
    """A pydantic error location as the field it names: ("input", "token ids", 2) -> "input[2]"."""
    parts = [part for part in loc if part not in (TEXT, TEXTS, TOKEN_IDS, TOKEN_ID_LISTS)]  # union tags: not fields
    return str(parts[0]) + "".join(f"[{part}]" for part in parts[1:])


def _refusal(error: ErrorDetails, model: type[BaseModel]) -> ApiError:
    """The first validation error of a body, as the API error naming the field (and element) it is about."""
    field, path = str(error["loc"][0]), _path(error["loc"])
    if error["type"] == "missing":
        return ApiError(422, f"{path} is required: {model.model_fields[field].description}", param=field)
    if error["type"] == "too_short" and path == field:
        return ApiError(400, f"{field} is an empty list; send at least one input", param=field)
    expected = error["msg"].removeprefix("Input should be ")
    return ApiError(422, f"{path} must be {expected}, got {_describe(error['input'])}", param=field)


def _validated(model: type[Body], body: object) -> Body:
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object, got {_describe(body)}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _refusal(exc.errors()[0], model) from None


def _inputs(value: str | list, field: str, max_inputs: int) -> tuple[list[str] | None, list[list[int]] | None]:
    """(texts, token-id sequences) from a validated input field; more inputs than `max_inputs`: 413."""
    kind = input_kind(value)
    if kind == TEXT:
        return [value], None
    if kind == TOKEN_IDS:
        return None, [value]
    if len(value) > max_inputs:
        raise ApiError(
            413,
            f"{field} holds {len(value)} inputs, more than this server's --max-client-batch-size {max_inputs}; "
            "split the request",
            param=field,
        )
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
