"""``minibert serve``: an OpenAI- and TEI-compatible embedding server with dynamic batching (``pip install
'minibert[serve]'``: Starlette on uvicorn, prometheus_client).

- :mod:`.settings` — the limits and the command's options (imported by the CLI without the server's dependencies);
- :mod:`.protocol` — the two APIs' request checks, error bodies and responses;
- :mod:`.models` — the served models, their names, and requests turned into token ids;
- :mod:`.batcher` — the queue and the one worker that packs inputs across requests into forward batches;
- :mod:`.metrics` — the Prometheus metrics;
- :mod:`.app` — the Starlette application: routes, limits, authentication, the request log, loading;
- :mod:`.run` — binding the socket and running uvicorn.

The server is stateless: run one per machine (each forward already uses every core) and put replicas behind any
HTTP load balancer (README "Serving").
"""
