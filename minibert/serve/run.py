"""``minibert serve``: the options, the listening socket, and uvicorn running the application.

The socket is bound here, before uvicorn starts, so a port in use or a bad host is one ``minibert: error:`` line
and ``--port 0`` can say which port it got (``minibert: serving … at http://HOST:PORT`` on stderr). uvicorn runs
the app with its own signal handling: on SIGTERM or SIGINT it stops accepting connections, lets the requests in
flight finish (at most ``--graceful-timeout`` seconds) and the process exits 0 (uvicorn re-raises the signal
after shutting down; the handler installed here ignores it).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..loading.resolve import SHORT_DEFAULT
from .app import create_app
from .served import ModelSpec, ServedModels
from .settings import settings_from


def _listen(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be 0 … 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace, model_options: Mapping[str, Any]) -> int:
    """Serve until SIGTERM / SIGINT; the exit status (1 when a model could not be loaded). `model_options`: the
    keyword arguments every served SentenceTransformer or CrossEncoder is made with (device, dtype, backend,
    threads)."""
    try:
        import uvicorn
    except ImportError as exc:
        raise InputError(f"minibert serve needs {exc.name}: pip install 'minibert[serve]'") from None
    settings = settings_from(args)
    specs = [ModelSpec.parse(value) for value in args.model or [SHORT_DEFAULT]]
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failures: list[str] = []

    def fatal(message: str) -> None:
        failures.append(message)
        server.should_exit = True

    app = create_app(ServedModels(specs, model_options), settings, fatal)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=args.graceful_timeout, lifespan="on"
    )
    server = uvicorn.Server(config)
    names = ", ".join(spec.names[0] for spec in specs)
    print(f"minibert: serving {names} at http://{host}:{port}", file=sys.stderr, flush=True)
    if settings.api_key is None and not ipaddress.ip_address(host).is_loopback:
        print(
            f"minibert: WARNING: listening on {host}, reachable from other machines, WITHOUT an API key: anyone who "
            f"can reach port {port} can use this server; pass --api-key KEY, or --host 127.0.0.1",
            file=sys.stderr,
            flush=True,
        )
    # uvicorn shuts down gracefully on SIGTERM / SIGINT, then raises the signal again for the handler it found:
    # a no-op one, so that a graceful shutdown exits 0 rather than dying of the signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    server.run(sockets=[sock])
    for message in failures:
        print(f"minibert: error: {message}", file=sys.stderr)
    return 1 if failures else 0
