"""The two HTTP APIs' request and response shapes: OpenAI's ``POST /v1/embeddings`` and TEI's ``POST /embed``.

Each request body is checked field by field into one :class:`EmbedRequest`; anything wrong is an
:class:`ApiError` carrying the HTTP status and a message that names the field (and the index, inside a list).
The statuses (README "Serving" has the table): 400 an empty input list or a body that is not JSON; 401 no or a
wrong API key; 404 an unknown model; 413 more inputs than ``--max-client-batch-size``, a body over
``--payload-limit``, or an input past the model's max length with ``truncate: false``; 422 a wrong type or value
anywhere; 429 too many requests in flight (with ``Retry-After``); 503 models still loading.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

OPENAI = "openai"
TEI = "tei"

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


def _type_name(value: object) -> str:
    return (
        "null"
        if value is None
        else {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _token_sequence(value: list, field: str) -> list[int]:
    for i, token in enumerate(value):
        if not _is_int(token) or token < 0:
            raise ApiError(422, f"{field}[{i}] must be a token id (an integer ≥ 0), got {token!r}", param=field)
    return value


def _inputs(value: object, field: str, max_inputs: int) -> tuple[list[str] | None, list[list[int]] | None]:
    """(texts, token-id sequences) from an input field: a string, a list of strings, a list of token ids or a list
    of lists of token ids."""
    if isinstance(value, str):
        return [value], None
    if not isinstance(value, list):
        raise ApiError(
            422, f"{field} must be a string, a list of strings or token ids, got {_type_name(value)}", param=field
        )
    if not value:
        raise ApiError(400, f"{field} is an empty list; send at least one input", param=field)
    if all(_is_int(item) for item in value):
        return None, [_token_sequence(value, field)]
    if len(value) > max_inputs:
        raise ApiError(
            413,
            f"{field} holds {len(value)} inputs, more than this server's --max-client-batch-size {max_inputs}; "
            "split the request",
            param=field,
        )
    if isinstance(value[0], str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ApiError(
                    422, f"{field}[{i}] must be a string like {field}[0], got {_type_name(item)}", param=field
                )
        return value, None
    sequences = []
    for i, item in enumerate(value):
        if not isinstance(item, list):
            raise ApiError(
                422, f"{field}[{i}] must be a string or a list of token ids, got {_type_name(item)}", param=field
            )
        sequences.append(_token_sequence(item, f"{field}[{i}]"))
    return None, sequences


def _optional(body: Mapping[str, Any], field: str, kind: type, default: Any) -> Any:
    value = body.get(field)
    if value is None:
        return default
    if not (_is_int(value) if kind is int else isinstance(value, kind)):
        raise ApiError(422, f"{field} must be {kind.__name__}, got {_type_name(value)} {value!r}", param=field)
    return value


def _dimensions(body: Mapping[str, Any], width: int | None) -> int | None:
    dimensions = _optional(body, "dimensions", int, None)
    if dimensions is not None and (dimensions < 1 or (width is not None and dimensions > width)):
        raise ApiError(
            422, f"dimensions must be between 1 and the model's {width}, got {dimensions}", param="dimensions"
        )
    return dimensions


def parse_openai(body: object, max_inputs: int) -> EmbedRequest:
    """An OpenAI ``/v1/embeddings`` body, checked (the model's existence and width are checked by the caller)."""
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object, got {_type_name(body)}")
    model = body.get("model")
    if not isinstance(model, str):
        raise ApiError(422, f"model is required: the name of a served model (a string), got {model!r}", param="model")
    if "input" not in body:
        raise ApiError(422, "input is required: a string, a list of strings or token ids", param="input")
    texts, token_ids = _inputs(body["input"], "input", max_inputs)
    encoding_format = _optional(body, "encoding_format", str, "float")
    if encoding_format not in ("float", "base64"):
        raise ApiError(
            422, f"encoding_format must be 'float' or 'base64', got {encoding_format!r}", param="encoding_format"
        )
    return EmbedRequest(model, texts, token_ids, None, None, True, _dimensions(body, None), encoding_format, "input")


def parse_tei(body: object, max_inputs: int) -> EmbedRequest:
    """A TEI ``/embed`` body, checked."""
    if not isinstance(body, dict):
        raise ApiError(422, f"the body must be a JSON object, got {_type_name(body)}")
    if "inputs" not in body:
        raise ApiError(422, "inputs is required: a string, a list of strings or token ids", param="inputs")
    texts, token_ids = _inputs(body["inputs"], "inputs", max_inputs)
    direction = _optional(body, "truncation_direction", str, "Right")
    if direction.lower() != "right":
        raise ApiError(
            422, f"truncation_direction {direction!r} is not supported; only 'Right'", param="truncation_direction"
        )
    prompt_name = _optional(body, "prompt_name", str, None)
    normalize = _optional(body, "normalize", bool, None)
    truncate = _optional(body, "truncate", bool, True)
    dimensions = _dimensions(body, None)
    return EmbedRequest(None, texts, token_ids, prompt_name, normalize, truncate, dimensions, "float", "inputs")


def check_dimensions(request: EmbedRequest, width: int) -> None:
    """The request's dimensions against the model's embedding width."""
    _dimensions({"dimensions": request.dimensions}, width)


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
