"""The server's limits and the options of ``minibert serve`` (light: the CLI builds these without importing the
server's dependencies, which are the ``serve`` extra)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..errors import InputError, positive_int
from ..loading.resolve import SHORT_DEFAULT


@dataclass(frozen=True)
class Settings:
    """The server's limits and readings (``minibert serve`` options; defaults as text-embeddings-inference's, but for
    the inputs and documents one request may send: a request is split into forward batches of --max-batch-tokens, so
    it need not be small — LangChain sends 1000 inputs at once, rerankers are given 100 – 1000 candidates)."""

    max_batch_tokens: int = 16384
    max_client_batch_size: int = 2048  # OpenAI's limit per request; TEI's 32 refuses LangChain's chunks of 1000
    max_client_rerank_documents: int = 1000
    max_concurrent_requests: int = 512
    payload_limit: int = 2_000_000
    api_key: str | None = None
    openai_token_ids: str = "tiktoken"  # how /v1/embeddings reads token ids: a value of tiktoken_ids.READINGS
    tiktoken_encoding: str = "cl100k_base"


# The limits as options: (Settings field, what it bounds); each is --field-with-dashes, a positive integer.
LIMITS = {
    "max_batch_tokens": "tokens per forward batch, across requests",
    "max_client_batch_size": "inputs one embedding request may send (run in batches of --max-batch-tokens); more: 413",
    "max_client_rerank_documents": "documents one rerank request may send; more: 413",
    "max_concurrent_requests": "requests in flight before new ones get 429",
    "payload_limit": "largest request body in bytes; more: 413",
}


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `minibert serve`."""
    defaults = Settings()
    parser.add_argument(
        "--model",
        action="append",
        metavar="[ALIAS=]MODEL",
        help="a model to serve: an embedding model or a cross-encoder (reranker); repeat for several; TEI's routes "
        f"use the first of each kind; default {SHORT_DEFAULT}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' on every route but /health, /openapi.json and /docs"
    )
    for field, bounds in LIMITS.items():
        default = getattr(defaults, field)
        parser.add_argument(_option(field), type=int, default=default, help=f"{bounds} (default {default})")
    parser.add_argument(
        "--graceful-timeout", type=int, default=30, help="seconds in-flight requests get after SIGTERM (default 30)"
    )
    parser.add_argument(
        "--openai-token-ids",
        choices=("tiktoken", "model"),
        default=defaults.openai_token_ids,
        help="how /v1/embeddings reads token-id inputs: as OpenAI's tiktoken ids, decoded to text (default; what "
        "LangChain's OpenAIEmbeddings sends), or as the model's own word-piece ids (TEI's /embed always does)",
    )
    parser.add_argument(
        "--tiktoken-encoding",
        default=defaults.tiktoken_encoding,
        help=f"the tiktoken encoding of those ids (default {defaults.tiktoken_encoding}, OpenAI's embedding models')",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """The Settings the parsed options describe (InputError, one line, for a value the server cannot run with)."""
    limits = {field: positive_int(_option(field), getattr(args, field)) for field in LIMITS}
    if args.graceful_timeout < 0:
        raise InputError(f"--graceful-timeout must be 0 or more seconds, got {args.graceful_timeout}")
    if args.api_key is not None and not args.api_key.strip():
        raise InputError("--api-key is empty (an unset variable?); give a key, or leave --api-key out to serve without")
    if args.api_key is not None and args.api_key != args.api_key.strip():
        raise InputError("--api-key starts or ends with whitespace, which no Authorization header can carry")
    return Settings(
        **limits, api_key=args.api_key, openai_token_ids=args.openai_token_ids, tiktoken_encoding=args.tiktoken_encoding
    )
