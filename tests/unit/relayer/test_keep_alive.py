"""Idle connections: the daemon keeps them open for ``keep_alive_s``, longer than clients do.

uvicorn's default (5 s) equals httpx's idle expiry, so a client could send a request on a
connection in the very instant the server closed it; the 60 s load run lost two requests that way.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from tests.utils.relayer import free_port

from daimm.relayer.app import create_app
from daimm.relayer.runner import uvicorn_config
from daimm.relayer.settings import RelayerSettings

HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: relayer\r\n\r\n"


@pytest.fixture
def serve(create_services: Any) -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(keep_alive_s: float) -> int:
        port = free_port()
        settings = RelayerSettings(port=port, keep_alive_s=keep_alive_s)
        server = uvicorn.Server(uvicorn_config(create_app(create_services()), settings))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _response(sock: socket.socket) -> bytes:
    """One HTTP response from ``sock`` (headers and a Content-Length body); b"" if it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _idle_then_reuse(port: int, idle_s: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(HEALTH)
        assert _response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(idle_s)
        try:
            sock.sendall(HEALTH)
            return _response(sock)
        except OSError:
            return b""


def test_an_idle_connection_is_kept_for_keep_alive_s(serve: Any) -> None:
    assert _idle_then_reuse(serve(keep_alive_s=3.0), idle_s=1.0).startswith(b"HTTP/1.1 200")


def test_an_idle_connection_is_closed_after_keep_alive_s(serve: Any) -> None:
    assert _idle_then_reuse(serve(keep_alive_s=0.3), idle_s=1.0) == b""


def test_the_default_outlasts_a_default_httpx_client() -> None:
    assert RelayerSettings().keep_alive_s > httpx.Limits().keepalive_expiry + 5
