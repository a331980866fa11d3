"""The ASGI application (Starlette): routes, limits, authentication, metrics and the request log.

Routes: those of :data:`minibert.serve.openapi.ENDPOINTS` — ``POST /v1/embeddings`` (OpenAI; ``/embeddings`` too),
``POST /v1/rerank`` (Cohere's and Jina's), ``GET /v1/models`` (OpenAI's list, both kinds of model), ``POST /embed``,
``/embed_all``, ``/tokenize``, ``/decode`` and ``/rerank`` (TEI), ``POST /`` (TEI's and huggingface_hub's: the first
model's task, ``/embed`` or ``/rerank``), ``GET /info``, ``GET /health`` (503 until the models are loaded), ``GET
/metrics`` (Prometheus text format) — and ``GET /openapi.json`` and ``GET /docs``, the contract. The embedding
routes answer with embedding models, the rerank routes with rerankers (cross-encoders); a route asked of the other
kind is a 404 (``/v1/``, naming the model's kind) or a 400 (TEI's routes, which take the first model of their kind,
when none is served). Every route but ``/health`` and the contract needs ``Authorization: Bearer KEY`` when the
server has an API key (compared in constant time).

Every response to a bad request is a JSON error in the route's API shape (:mod:`minibert.serve.protocol`) with the
status that says what went wrong, with the headers the status calls for (``Allow`` on a 405, ``Retry-After`` on a
429 or a 503 while loading); a failure inside the server is a 500 whose body says only that (the traceback goes to
the server's log, never to the client). A client that goes away before its answer (even while sending its body) is
counted as 499 and logged in one line. Requests still running when the ``--graceful-timeout`` after SIGTERM runs out
are answered 503 in their API's shape. Each request is logged once at INFO: method, path, status, inputs, tokens,
milliseconds.

The models load in a worker thread after the server starts listening, so ``/health`` answers 503 meanwhile;
embedding and rerank requests get 503 too. If a model cannot be loaded the server stops with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..errors import InputError
from ..version import __version__
from .batcher import Batcher, ClientGone, Job
from .metrics import CONTENT_TYPE, Metrics
from .openapi import ENDPOINTS, EmbeddingLimits, Limits, docs_page, openapi_document
from .protocol import (
    OPENAI,
    TEI,
    ApiError,
    EmbedRequest,
    RerankRequest,
    check_dimensions,
    cohere_rerank_response,
    openai_response,
    parse_cohere_rerank,
    parse_openai,
    parse_tei,
    parse_tei_decode,
    parse_tei_embed_all,
    parse_tei_rerank,
    parse_tei_tokenize,
    tei_rerank_response,
)
from .served import ModelRequest, ServedEmbedder, ServedModel, ServedModels, ServedReranker
from .settings import Settings
from .tiktoken_ids import TiktokenIds

logger = logging.getLogger("minibert.serve")


def _not_json(literal: str) -> None:
    raise ValueError(f"{literal} is not a JSON value (RFC 8259)")


@dataclass
class Outcome:
    """What a route handler produced, for the log and the metrics."""

    response: Response
    inputs: int = 0
    tokens: int = 0


class Server:
    """The state the routes share: models, batcher, metrics, limits."""

    def __init__(self, models: ServedModels, settings: Settings, on_fatal: Callable[[str], None]) -> None:
        self.models, self.settings, self.on_fatal = models, settings, on_fatal
        self.metrics = Metrics()
        self.batcher = Batcher(settings.max_batch_tokens, self.metrics)
        self.in_flight = 0
        self._contract: dict[str, Any] | None = None
        # /v1/embeddings' token ids: OpenAI's (tiktoken), decoded to text; None: the model's own word-piece ids
        self.tiktoken = TiktokenIds(settings.tiktoken_encoding) if settings.openai_token_ids == "tiktoken" else None

    # ------------------------------------------------------------------------------------------ plumbing

    def _authorize(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    async def _json_body(self, request: Request) -> Any:
        limit = self.settings.payload_limit
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the body is {int(declared)} bytes, over this server's --payload-limit of {limit}")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"the body is over this server's --payload-limit of {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone() from None
        try:
            text = b"".join(chunks).decode("utf-8")  # strictly: json.loads(bytes) would let surrogates' bytes pass
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"the body is not UTF-8 (byte {exc.start}), as JSON must be (RFC 8259)") from None
        try:
            return json.loads(text, parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, f"the body is not valid JSON ({exc})") from None

    async def _handle(
        self, request: Request, api: str, route: str, handler: Callable[[Request], Awaitable[Outcome]]
    ) -> Response:
        start = time.perf_counter()
        outcome = Outcome(Response(status_code=500))
        try:
            if route != "/health":
                self._authorize(request)
            outcome = await handler(request)
        except ApiError as err:
            headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
            if err.status == 401:
                headers = {"WWW-Authenticate": "Bearer"}
            outcome.response = JSONResponse(err.body(api), status_code=err.status, headers=headers)
        except ClientGone:
            outcome.response = Response(status_code=499)  # nginx's "client closed request": nobody reads it
        except asyncio.CancelledError:  # uvicorn's --graceful-timeout ran out: answer, then the server exits
            message = "the server is stopping and its --graceful-timeout ran out before this request was done; retry"
            outcome.response = JSONResponse(ApiError(503, message).body(api), status_code=503)
        except Exception:
            logger.exception("internal error on %s %s", request.method, request.url.path)
            outcome.response = JSONResponse(
                ApiError(500, "internal server error (details are in the server's log)").body(api), status_code=500
            )
        seconds = time.perf_counter() - start
        status = outcome.response.status_code
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(seconds)
        logger.info(
            "%s %s %d inputs=%d tokens=%d %.1fms",
            request.method, request.url.path, status, outcome.inputs, outcome.tokens, 1000 * seconds,
        )  # fmt: skip
        return outcome.response

    def _ready(self) -> None:
        if not self.models.ready:
            raise ApiError(503, "the models are still loading; retry in a moment", retry_after=1)

    @contextlib.contextmanager
    def _computing(self):
        """A request that computes, counted in flight while it does; 429 past --max-concurrent-requests."""
        if self.in_flight >= self.settings.max_concurrent_requests:
            raise ApiError(
                429,
                f"the server has {self.in_flight} requests in flight (--max-concurrent-requests); retry shortly",
                retry_after=1,
            )
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _forward(
        self, request: Request, served: ServedModel[ModelRequest], req: ModelRequest
    ) -> tuple[np.ndarray, int]:
        """The request's rows [n, w] from the batcher — embeddings before Normalize, or a reranker's logits — and its
        token count; 429 past --max-concurrent-requests."""
        with self._computing():
            inputs = await asyncio.to_thread(served.prepare, req)  # tokenizing a large request: off the loop
            rows = await self.batcher.submit(Job(served, inputs, request.is_disconnected))  # [n, w]
        return rows, inputs.tokens

    async def _embed(self, request: Request, served: ServedEmbedder, req: EmbedRequest) -> tuple[np.ndarray, int]:
        """The request's embeddings [n, d'] as it asked for them, and its token count."""
        check_dimensions(req, served.dimension)
        rows, tokens = await self._forward(request, served, req)
        unit = served.normalized if req.normalize is None else req.normalize
        return served.model.finish(rows, dimensions=req.dimensions, normalize=unit), tokens

    async def _rerank(self, request: Request, served: ServedReranker, req: RerankRequest) -> tuple[np.ndarray, int]:
        """The documents' scores [n] as the request asked for them, and its token count."""
        logits, tokens = await self._forward(request, served, req)
        return served.scores(logits, req.activation), tokens

    # ------------------------------------------------------------------------------------------ routes

    async def openai_embeddings(self, request: Request) -> Outcome:
        self._ready()
        req = parse_openai(await self._json_body(request), self.settings.max_client_batch_size)
        served = self.models.find(req.model, ServedEmbedder)
        if req.token_ids is not None and self.tiktoken is not None:
            req = dataclasses.replace(req, texts=self.tiktoken.texts(req.token_ids, req.field), token_ids=None)
        rows, tokens = await self._embed(request, served, req)
        body = openai_response(rows, req.encoding_format, req.model, tokens)
        return Outcome(JSONResponse(body), req.count, tokens)

    async def openai_rerank(self, request: Request) -> Outcome:
        self._ready()
        req = parse_cohere_rerank(await self._json_body(request), self.settings.max_client_rerank_documents)
        served = self.models.find(req.model, ServedReranker)
        scores, tokens = await self._rerank(request, served, req)
        return Outcome(JSONResponse(cohere_rerank_response(scores, req, req.model, tokens)), req.count, tokens)

    async def openai_models(self, request: Request) -> Outcome:
        self._ready()
        data = [{"id": m.name, "object": "model", "owned_by": "minibert", "kind": m.kind} for m in self.models.models]
        return Outcome(JSONResponse({"object": "list", "data": data}))

    async def tei_embed(self, request: Request) -> Outcome:
        self._ready()
        req = parse_tei(await self._json_body(request), self.settings.max_client_batch_size)
        served = self.models.find(None, ServedEmbedder)
        rows, tokens = await self._embed(request, served, req)
        return Outcome(JSONResponse(rows.tolist()), req.count, tokens)

    async def tei_embed_all(self, request: Request) -> Outcome:
        """Each input's token embeddings (the last hidden states, special tokens included), off the batcher: in
        forward batches of --max-batch-tokens on a worker thread, counted in flight as the batched routes are."""
        self._ready()
        req = parse_tei_embed_all(await self._json_body(request), self.settings.max_client_batch_size)
        served = self.models.find(None, ServedEmbedder)
        with self._computing():
            sequences = await asyncio.to_thread(served.prepare, req)
            states = await asyncio.to_thread(served.token_states, sequences, self.settings.max_batch_tokens)
        return Outcome(JSONResponse([state.tolist() for state in states]), req.count, sequences.tokens)

    async def tei_tokenize(self, request: Request) -> Outcome:
        self._ready()
        req = parse_tei_tokenize(await self._json_body(request), self.settings.max_client_batch_size)
        served = self.models.find(None, ServedEmbedder)
        tokens = await asyncio.to_thread(served.tokenize, req.inputs, req.add_special_tokens, req.prompt_name)
        return Outcome(JSONResponse(tokens), len(req.inputs))

    async def tei_decode(self, request: Request) -> Outcome:
        self._ready()
        req = parse_tei_decode(await self._json_body(request), self.settings.max_client_batch_size)
        served = self.models.find(None, ServedEmbedder)
        return Outcome(JSONResponse(served.decode(req.ids, req.skip_special_tokens)), len(req.ids))

    async def root(self, request: Request) -> Outcome:
        """TEI's ``POST /`` (what huggingface_hub's InferenceClient posts to a URL): the first model's task."""
        self._ready()
        first = self.models.models[0]
        return await (self.tei_rerank(request) if isinstance(first, ServedReranker) else self.tei_embed(request))

    async def tei_rerank(self, request: Request) -> Outcome:
        self._ready()
        req = parse_tei_rerank(await self._json_body(request), self.settings.max_client_rerank_documents)
        served = self.models.find(None, ServedReranker)
        scores, tokens = await self._rerank(request, served, req)
        return Outcome(JSONResponse(tei_rerank_response(scores, req)), req.count, tokens)

    async def info(self, request: Request) -> Outcome:
        """TEI's /info, of the first model served (TEI serves one); ``models`` has every model and its kind."""
        self._ready()
        first = self.models.models[0]
        settings = self.settings
        body = {
            "model_id": first.name,
            "model_dtype": first.model.dtype,
            "model_type": first.model_type,
            "dimensions": first.dimension,
            "normalized": first.normalized,
            "max_input_length": first.max_input_length,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_client_batch_size": settings.max_client_batch_size,
            "max_client_rerank_documents": settings.max_client_rerank_documents,
            "max_concurrent_requests": settings.max_concurrent_requests,
            "payload_limit": settings.payload_limit,
            "auto_truncate": True,
            "models": [m.describe() for m in self.models.models],
            "version": __version__,
        }
        return Outcome(JSONResponse(body))

    async def health(self, request: Request) -> Outcome:
        self._ready()
        return Outcome(JSONResponse({"status": "ok"}))

    async def prometheus(self, request: Request) -> Outcome:
        return Outcome(Response(self.metrics.exposition(), media_type=CONTENT_TYPE))

    def contract(self) -> dict[str, Any]:
        """The OpenAPI document; once the models are loaded, narrowed to what they and the limits take."""
        keyed = self.settings.api_key is not None
        if not self.models.ready:
            return openapi_document(__version__, keyed)
        if self._contract is None:
            embedders, embedding = self.models.embedders, None
            if embedders:
                first = embedders[0]
                openai_vocabulary, unassigned = max(m.model.config.vocab_size for m in embedders), []
                if self.tiktoken is not None and self.tiktoken.vocabulary is not None:  # OpenAI's ids
                    openai_vocabulary, unassigned = self.tiktoken.vocabulary, self.tiktoken.unassigned()
                embedding = EmbeddingLimits(
                    model_names=[name for model in embedders for name in model.names],
                    prompt_names=list(first.model.prompts),
                    widths=(max(model.dimension for model in embedders), first.dimension),
                    vocabularies=(openai_vocabulary, first.model.config.vocab_size),
                    unassigned=unassigned,
                )
            limits = Limits(
                max_inputs=self.settings.max_client_batch_size,
                max_documents=self.settings.max_client_rerank_documents,
                embedding=embedding,
                reranker_names=[name for model in self.models.rerankers for name in model.names],
                root_reranks=isinstance(self.models.models[0], ServedReranker),
            )
            self._contract = openapi_document(__version__, keyed, limits)
        return self._contract

    def handlers(self) -> dict[str, Callable[[Request], Awaitable[Outcome]]]:
        """The handler of each path of ENDPOINTS."""
        return {
            "/v1/embeddings": self.openai_embeddings,
            "/embeddings": self.openai_embeddings,
            "/": self.root,
            "/embed_all": self.tei_embed_all,
            "/tokenize": self.tei_tokenize,
            "/decode": self.tei_decode,
            "/v1/rerank": self.openai_rerank,
            "/v1/models": self.openai_models,
            "/embed": self.tei_embed,
            "/rerank": self.tei_rerank,
            "/info": self.info,
            "/health": self.health,
            "/metrics": self.prometheus,
        }

    # ------------------------------------------------------------------------------------------ lifecycle

    async def _load(self) -> None:
        try:
            if self.tiktoken is not None:  # first: /health says ready once both are loaded
                await asyncio.to_thread(self.tiktoken.load)
            await asyncio.to_thread(self.models.load)
        except InputError as exc:  # e.g. two models that turn out to answer to one name
            self.on_fatal(str(exc))
            return
        except Exception as exc:  # a model that cannot be loaded: this server can never be healthy
            self.on_fatal(f"cannot load a model: {type(exc).__name__}: {exc}")
            return
        names = ", ".join(m.name for m in self.models.models)
        logger.info("models loaded: %s", names)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        tasks = [asyncio.create_task(self.batcher.run()), asyncio.create_task(self._load())]
        yield
        for task in tasks:
            task.cancel()


def create_app(models: ServedModels, settings: Settings, on_fatal: Callable[[str], None]) -> Starlette:
    """The Starlette application serving `models` under `settings`; `on_fatal` is called when loading fails."""
    server = Server(models, settings, on_fatal)

    handlers = server.handlers()

    def route(path: str, api: str, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return await server._handle(request, api, path, handlers[path])

        return Route(path, endpoint, methods=[method])

    async def http_error(request: Request, exc: HTTPException) -> Response:
        api = OPENAI if request.url.path.startswith("/v1/") else TEI
        body = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}").body(api)
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)  # e.g. 405's Allow

    contract = [
        Route("/openapi.json", lambda request: JSONResponse(server.contract()), methods=["GET"]),
        Route("/docs", lambda request: HTMLResponse(docs_page("/openapi.json")), methods=["GET"]),
    ]
    routes = [route(e.path, e.api, e.method) for e in ENDPOINTS] + contract
    return Starlette(routes=routes, lifespan=server.lifespan, exception_handlers={HTTPException: http_error})
