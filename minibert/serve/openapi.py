"""The server's contract as an OpenAPI 3.1 document (``GET /openapi.json``) and the Swagger UI page that shows it
(``GET /docs``, as FastAPI-based servers have it; the page loads Swagger UI's script and style from a CDN, so it
needs a browser with internet access; the document does not).

:data:`ENDPOINTS` is the one table of routes: the application (:mod:`minibert.serve.app`) serves exactly these,
and the document is generated from them and from the pydantic models the server validates bodies with
(:mod:`minibert.serve.schema`). Each operation lists every status it can answer with (:data:`~minibert.serve.
protocol.STATUSES`), each with its API's JSON error body.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .protocol import OPENAI, STATUSES, TEI
from .schema import (
    CohereRerankRequest,
    CohereRerankResponse,
    Health,
    Info,
    ModelList,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    OpenAIError,
    TeiDecodeRequest,
    TeiDecodeResponse,
    TeiEmbedAllRequest,
    TeiEmbedAllResponse,
    TeiEmbedRequest,
    TeiEmbedResponse,
    TeiError,
    TeiRerankRequest,
    TeiRerankResponse,
    TeiTokenizeRequest,
    TeiTokenizeResponse,
)

REFS = "#/components/schemas/{model}"
PROMETHEUS = "text/plain; version=0.0.4"


@dataclass(frozen=True)
class Endpoint:
    """One route: its API (which error shape it answers in), its bodies, and the errors it can answer with."""

    path: str
    method: str
    api: str
    summary: str
    response: type[BaseModel] | None  # None: Prometheus' text format
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    authorized: bool = True  # needs the API key, when the server has one


ENDPOINTS = (
    Endpoint("/v1/embeddings", "POST", OPENAI, "Embeddings, as OpenAI's API", OpenAIEmbeddingResponse,
             OpenAIEmbeddingRequest, (400, 404, 413, 422, 429, 503)),
    Endpoint("/embeddings", "POST", OPENAI, "The same as /v1/embeddings (the path some clients call)",
             OpenAIEmbeddingResponse, OpenAIEmbeddingRequest, (400, 404, 413, 422, 429, 503)),
    Endpoint("/v1/rerank", "POST", OPENAI, "Reranking, as Cohere's (v1) and Jina's rerank API", CohereRerankResponse,
             CohereRerankRequest, (400, 404, 413, 422, 429, 503)),
    Endpoint("/v1/models", "GET", OPENAI, "The served models of both kinds, as OpenAI's list", ModelList,
             errors=(503,)),
    Endpoint("/embed", "POST", TEI, "Embeddings, as text-embeddings-inference's API", TeiEmbedResponse,
             TeiEmbedRequest, (400, 413, 422, 429, 503)),
    Endpoint("/rerank", "POST", TEI, "Reranking, as text-embeddings-inference's API", TeiRerankResponse,
             TeiRerankRequest, (400, 413, 422, 429, 503)),
    Endpoint("/", "POST", TEI, "The first model's task, as TEI's POST / (an embedding model: /embed's bodies; a "
             "reranker: /rerank's)", TeiEmbedResponse, TeiEmbedRequest, (400, 413, 422, 429, 503)),
    Endpoint("/embed_all", "POST", TEI, "Each input's token embeddings, as text-embeddings-inference's API",
             TeiEmbedAllResponse, TeiEmbedAllRequest, (400, 413, 422, 503)),
    Endpoint("/tokenize", "POST", TEI, "The first embedding model's tokens, as text-embeddings-inference's API",
             TeiTokenizeResponse, TeiTokenizeRequest, (400, 413, 422, 503)),
    Endpoint("/decode", "POST", TEI, "Token ids to text, as text-embeddings-inference's API", TeiDecodeResponse,
             TeiDecodeRequest, (400, 413, 422, 503)),
    Endpoint("/info", "GET", TEI, "The first model, every model's kind, and the server's limits", Info,
             errors=(503,)),
    Endpoint("/health", "GET", TEI, "200 once the models are loaded", Health, errors=(503,), authorized=False),
    Endpoint("/metrics", "GET", TEI, "Prometheus metrics", None),
)  # fmt: skip

_ERROR_MODELS = {OPENAI: OpenAIError, TEI: TeiError}


def _operation(endpoint: Endpoint, keyed: bool) -> dict[str, Any]:
    if endpoint.response is None:
        content = {PROMETHEUS: {"schema": {"type": "string"}}}
    else:
        content = {"application/json": {"schema": {"$ref": REFS.format(model=endpoint.response.__name__)}}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    errors = sorted({*endpoint.errors, *((401,) if keyed and endpoint.authorized else ())})
    error_body = {"application/json": {"schema": {"$ref": REFS.format(model=_ERROR_MODELS[endpoint.api].__name__)}}}
    for status in errors:
        responses[str(status)] = {"description": STATUSES[status], "content": error_body}
    operation: dict[str, Any] = {"summary": endpoint.summary, "responses": responses}
    if endpoint.request is not None:
        schema = {"$ref": REFS.format(model=endpoint.request.__name__)}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    if keyed and endpoint.authorized:
        operation["security"] = [{"bearer": []}]
    return operation


@dataclass(frozen=True)
class EmbeddingLimits:
    """What the served embedding models take."""

    model_names: list[str]  # every name a served embedding model answers to
    prompt_names: list[str]  # the first embedding model's (TEI's) prompts
    widths: tuple[int, int]  # the largest `dimensions`: the widest embedding model's (OpenAI), the first one's (TEI)
    vocabularies: tuple[int, int]  # token ids below: /v1/embeddings' (tiktoken's, or the largest model's), TEI's
    unassigned: list[int]  # ids below /v1/embeddings' vocabulary that it refuses (tiktoken's unassigned ones)


@dataclass(frozen=True)
class Limits:
    """What this server takes, beyond the request models' types: the request schemas are narrowed to these. A kind
    of model that is not served leaves its routes' schemas as they are (every request to them is refused: 400 / 404)."""

    max_inputs: int  # --max-client-batch-size
    max_documents: int  # --max-client-rerank-documents
    embedding: EmbeddingLimits | None  # None: no embedding model is served
    reranker_names: list[str]  # every name a served reranker answers to (none: no reranker is served)
    root_reranks: bool = False  # the first model is a reranker: POST / takes /rerank's bodies


def _narrow_inputs(inputs: dict[str, Any], max_inputs: int, vocabulary: int, unassigned: list[int]) -> None:
    texts, token_ids, token_id_lists = inputs["oneOf"][1:]  # the shapes in schema.Inputs' order
    texts["maxItems"] = token_id_lists["maxItems"] = max_inputs
    for token in (token_ids["items"], token_id_lists["items"]["items"]):
        token["maximum"] = vocabulary - 1
        if unassigned:
            token["not"] = {"enum": unassigned}


def _narrow_embedding(schemas: dict[str, Any], limits: EmbeddingLimits, max_inputs: int) -> None:
    """The embedding requests narrowed: OpenAI's ``model`` to the embedding models' names, TEI's ``prompt_name`` to the
    first model's prompts (none: only null), the input lists, token ids and ``dimensions`` to the server's limits."""
    openai_vocabulary, tei_vocabulary = limits.vocabularies
    openai, tei = (schemas[name]["properties"] for name in ("OpenAIEmbeddingRequest", "TeiEmbedRequest"))
    for properties, width in zip((openai, tei), limits.widths, strict=True):
        properties["dimensions"]["anyOf"][0]["maximum"] = width
    _narrow_inputs(openai["input"], max_inputs, openai_vocabulary, limits.unassigned)
    for name in ("TeiEmbedRequest", "TeiEmbedAllRequest"):
        _narrow_inputs(schemas[name]["properties"]["inputs"], max_inputs, tei_vocabulary, [])
    openai["model"]["enum"] = limits.model_names
    prompts = [{"type": "string", "enum": limits.prompt_names}] * bool(limits.prompt_names) + [{"type": "null"}]
    for name in ("TeiEmbedRequest", "TeiEmbedAllRequest", "TeiTokenizeRequest"):
        schemas[name]["properties"]["prompt_name"]["anyOf"] = prompts
    schemas["TeiTokenizeRequest"]["properties"]["inputs"]["oneOf"][1]["maxItems"] = max_inputs
    one_list, lists = schemas["TeiDecodeRequest"]["properties"]["ids"]["oneOf"]
    lists["maxItems"] = max_inputs
    one_list["items"]["maximum"] = lists["items"]["items"]["maximum"] = tei_vocabulary - 1


def _narrow(schemas: dict[str, Any], limits: Limits) -> None:
    """The request schemas narrowed to this server: the embedding requests (:func:`_narrow_embedding`), the rerank
    requests' document lists to --max-client-rerank-documents and Cohere's ``model`` to the rerankers' names."""
    if limits.embedding is not None:
        _narrow_embedding(schemas, limits.embedding, limits.max_inputs)
    schemas["TeiRerankRequest"]["properties"]["texts"]["maxItems"] = limits.max_documents
    cohere = schemas["CohereRerankRequest"]["properties"]
    cohere["documents"]["maxItems"] = limits.max_documents
    if limits.reranker_names:
        cohere["model"]["enum"] = limits.reranker_names


def openapi_document(version: str, keyed: bool, limits: Limits | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ENDPOINTS`; `keyed`: the server requires an API key; with `limits`, the
    request schemas say exactly which values this server takes."""
    requests = [(e.request, "validation") for e in ENDPOINTS if e.request is not None]
    bodies = {e.response for e in ENDPOINTS if e.response is not None} | set(_ERROR_MODELS.values())
    answers = [(model, "serialization") for model in sorted(bodies, key=lambda model: model.__name__)]
    _, schemas = models_json_schema(requests + answers, ref_template=REFS)
    if limits is not None:
        _narrow(schemas["$defs"], limits)
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        if endpoint.path == "/" and limits is not None and limits.root_reranks:
            endpoint = dataclasses.replace(endpoint, request=TeiRerankRequest, response=TeiRerankResponse)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, keyed)
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "minibert",
            "version": version,
            "description": "Sentence embeddings (OpenAI and TEI APIs) and reranking (Cohere / Jina and TEI APIs)",
        },
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
    if keyed:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document


def docs_page(document_url: str) -> str:
    """The Swagger UI page for the document at `document_url`."""
    cdn = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
    return f"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>minibert API</title><link rel="stylesheet" href="{cdn}/swagger-ui.css"></head>
<body>
<div id="swagger-ui"></div>
<script src="{cdn}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{document_url}", dom_id: "#swagger-ui"}});</script>
</body>
</html>
"""
