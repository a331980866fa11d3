"""``minibert serve``: an OpenAI- and TEI-compatible embedding server, and a Cohere-, Jina- and TEI-compatible
reranking server for cross-encoders, with dynamic batching (``pip install 'minibert[serve]'``: Starlette on uvicorn,
prometheus_client, pydantic).

- :mod:`.settings` — the limits and the command's options (imported by the CLI without the server's dependencies);
- :mod:`.schema` — the request and response bodies as pydantic models (they validate requests and make the contract);
- :mod:`.protocol` — the APIs' request checks, error bodies and responses;
- :mod:`.served` — the served models of both kinds, their names, and requests turned into token ids;
- :mod:`.batcher` — the queue and the one worker that packs inputs across requests into forward batches;
- :mod:`.metrics` — the Prometheus metrics;
- :mod:`.openapi` — the table of routes and the OpenAPI document;
- :mod:`.app` — the Starlette application: routes, limits, authentication, the request log, loading;
- :mod:`.run` — binding the socket and running uvicorn.

The server is stateless: run one per machine (each forward already uses every core) and put replicas behind any
HTTP load balancer (README "Serving").
"""
