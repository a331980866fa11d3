"""The server's Prometheus metrics (prometheus_client), in a registry of their own, served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)


class Metrics:
    """Counters and histograms of one server process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "minibert_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "minibert_request_duration_seconds", "Request latency", ["route"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "minibert_batch_size", "Inputs per forward batch", buckets=_SIZE_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "minibert_batch_tokens", "Tokens per forward batch", buckets=_TOKEN_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("minibert_queue_depth", "Inputs waiting for a batch", registry=r)
        self.in_flight = Gauge("minibert_requests_in_flight", "Embedding and rerank requests being served", registry=r)
        self.tokens = Counter(
            "minibert_tokens_embedded", "Tokens run through each model (embedded or reranked)", ["model"], registry=r
        )
        self.dropped = Counter(
            "minibert_requests_dropped", "Requests whose client went away before they were computed", registry=r
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)
