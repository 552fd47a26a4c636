"""The relayer's HTTP edge: what bounds a request before the app trusts any of it.

Two guards, both cheap and both in front of anything that costs memory or a worker:

- :func:`parse_json_body` bounds a body's nesting depth *before* parsing it (one vectorised pass
  over the bytes, strings skipped) and turns every parser failure, a ``RecursionError`` included,
  into a 422. Python's ``json`` recurses once per level, so a 2 KB body nested 1,000 deep would
  otherwise hit the interpreter's recursion limit (a 500), or where that limit is raised, overflow
  the C stack (a crash).
- :class:`GuardedHttpToolsProtocol` gives uvicorn the read deadlines it lacks: a request's head
  (request line and headers) must arrive within ``header_timeout_s`` of its first byte (or of the
  connection opening) and within ``max_header_bytes``; its body within ``body_timeout_s`` of the
  app starting on it. A client that stops or trickles gets 408 (431 for an oversized head) and its
  socket is closed. uvicorn's own ``timeout_keep_alive`` covers only idle time *between* requests:
  it is cancelled by the first byte of the next one, after which nothing in uvicorn ends a slow
  request.

Invariant: a socket is never held open by the client alone for longer than ``header_timeout_s``
plus ``body_timeout_s`` (plus ``keep_alive_s`` of idle time between requests); only the app's own
work (bounded by ``inference_timeout_s`` and the RPC timeout) holds it longer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from daimm.errors import RequestRefusedError

__all__ = ["GuardedHttpToolsProtocol", "guarded_protocol", "json_depth", "parse_json_body"]

log = logging.getLogger("daimm.relayer")

# ---------------------------------------------------------------------------- JSON bodies
_OPEN, _CLOSE, _QUOTE = 1, 2, 3


@functools.cache
def _kinds() -> Any:
    """Byte value -> what it is to the depth scan (0 for everything else)."""
    import numpy as np

    table = np.zeros(256, dtype=np.uint8)
    table[[ord("["), ord("{")]] = _OPEN
    table[[ord("]"), ord("}")]] = _CLOSE
    table[ord('"')] = _QUOTE
    return table


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in the JSON text ``body`` (UTF-8).

    Brackets inside strings do not count. Escapes go first: every ``\\\\`` pair, then every
    ``\\"``, is removed, left to right as a parser reads them, so each quote left opens or closes
    a string. Then one vectorised pass (numpy) picks out brackets and quotes and the rest works on
    those alone: a few milliseconds for 1 MiB whatever its shape. For a body that is not valid
    JSON the answer is exact up to its first error, which is as far as a parser gets, and an
    overestimate at worst beyond it.
    """
    if b"[" not in body and b"{" not in body:
        return 0
    import numpy as np

    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kinds = _kinds()[np.frombuffer(body, dtype=np.uint8)]
    kind = kinds[np.flatnonzero(kinds)]  # brackets and quotes, in order
    inside = np.cumsum(kind == _QUOTE, dtype=np.int32) % 2 == 1  # an opening quote, its string
    steps = (kind == _OPEN).astype(np.int32) - (kind == _CLOSE)
    steps[inside] = 0
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def parse_json_body(body: bytes, max_depth: int) -> Any:
    """Parse a request body as JSON whose arrays and objects nest at most ``max_depth`` deep.

    Raises:
        RequestRefusedError: 422 ``json_too_deep`` past the depth, 422 ``invalid_json`` for
            anything the parser refuses (not UTF-8, not JSON, an integer of more than 4,300
            digits, a stack the parser exhausts anyway).
    """
    # Cheap first: fewer opening brackets than the limit cannot nest past it.
    if body.count(b"[") + body.count(b"{") > max_depth and json_depth(body) > max_depth:
        raise RequestRefusedError(
            422,
            "json_too_deep",
            f"body: arrays and objects nest more than {max_depth} levels deep; a tensor needs"
            " one level per dimension",
        )
    try:
        # NOTE: UTF-8 only (RFC 8259 section 8.1): the depth scan reads bytes as ASCII.
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise RequestRefusedError(422, "invalid_json", "body: not valid JSON") from None


# ---------------------------------------------------------------------------- read deadlines
def _refusal(status: int, reason: bytes, code: str, detail: str) -> bytes:
    body = json.dumps({"error": code, "detail": detail}, separators=(",", ":")).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head and body.

    Configure through :func:`guarded_protocol` (class attributes, as uvicorn builds one protocol
    object per connection from ``Config.http``). Timers exist only while a request is incomplete:

    - the *head* timer runs from the connection opening, or from the first byte of a request on a
      kept-alive connection, until its headers are complete; bytes of an incomplete head beyond
      ``max_header_bytes`` are refused at once with 431;
    - the *body* timer runs from the app starting on a request until its body is complete.

    NOTE: it hooks the parser callbacks of uvicorn's ``HttpToolsProtocol`` (``on_message_begin``,
    ``on_headers_complete``, ``on_message_complete``, ``_start_asgi_task``), which uvicorn has kept
    stable since 0.29; ``tests/trust/test_relayer_edge.py`` fails if they stop being called.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_header_bytes: int = 65536

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        super().connection_made(transport)
        self._arm_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # NOTE: counted per read, before parsing: a head still incomplete after this read is
        # refused once its reads pass the limit (so the bound is exact to within one read).
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._head_timer is not None and self._head_bytes > self.max_header_bytes:
            self._refuse(
                431,
                b"Request Header Fields Too Large",
                "headers_too_large",
                f"the request line and headers exceed {self.max_header_bytes} bytes",
            )
            return
        # Bytes between requests (say, a lone CRLF) cancel uvicorn's keep-alive timer without
        # starting a message: start the head deadline so they cannot hold the socket either.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self._head_timer is None and self._body_timer is None:
            self._arm_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm_head()

    def on_headers_complete(self) -> None:
        self._cancel_head()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        super()._start_asgi_task(cycle, app)
        # Here and not in on_headers_complete: a pipelined request waits (reading paused) until
        # the one before it is answered, and that wait is the server's, not the client's.
        if cycle.more_body and self._body_timer is None:
            self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_expired)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_body()

    # ------------------------------------------------------------------ timers
    def _arm_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_expired)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        self._refuse(
            408,
            b"Request Timeout",
            "request_timeout",
            f"the request line and headers did not arrive within {self.header_timeout_s} s",
        )

    def _body_expired(self) -> None:
        self._body_timer = None
        if self.cycle is not None and self.cycle.response_started:
            self._close("body")  # the app has answered already; only the socket is left
            return
        self._refuse(
            408,
            b"Request Timeout",
            "request_timeout",
            f"the request body did not arrive within {self.body_timeout_s} s",
        )

    def _refuse(self, status: int, reason: bytes, code: str, detail: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, code, detail))
        self._close(code)

    def _close(self, why: str) -> None:
        self._cancel_head()
        self._cancel_body()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
        if not self.transport.is_closing():
            log.info("slow client closed", extra={"reason": why})
            self.transport.close()


def guarded_protocol(
    header_timeout_s: float, body_timeout_s: float, max_header_bytes: int
) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` subclass with these limits (for ``uvicorn.Config``)."""
    return type(
        "RelayerHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "max_header_bytes": max_header_bytes,
        },
    )
