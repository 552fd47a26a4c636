"""Worker processes: one per loaded model; a model that crashes ONNX Runtime kills only its worker.

Each worker is started with ``multiprocessing``'s *spawn* method (a fresh interpreter that
inherits no keys or sockets from the relayer), lowers its own resource limits
(``resource.setrlimit``: address space, no core dumps, no file writes), then receives the model's
ciphertext and content key, decrypts it in memory, validates it and builds an ONNX Runtime session.
Plaintext weights therefore exist only in the worker's memory.

The parent and the worker speak length-framed messages over a pipe with ``send_bytes`` and
``recv_bytes`` only: a JSON header plus raw tensor bytes. NOTE: ``Connection.recv`` is never used,
because it unpickles, and a worker running an untrusted model must not be able to make the relayer
unpickle anything.

The parent reads and writes its end of the pipe on its event loop (non-blocking, ``add_reader`` /
``add_writer``, ``multiprocessing``'s framing done here), not in a reader thread: a reply then wakes
the loop directly, one thread switch and one GIL hand-over fewer per prediction (measured in
bench/README.md, "Relayer"), and a large write (a model) never blocks the loop. The worker keeps
the plain blocking ``recv_bytes`` / ``send_bytes``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import resource
import struct
import threading
from dataclasses import dataclass
from typing import Any

from daimm.errors import DaimmError, ModelUnavailableError, RequestRefusedError
from daimm.modelformat.postprocess import answer_bytes, jsonable

__all__ = ["WorkerLimits", "WorkerProcess", "decode_frame", "encode_frame", "worker_main"]

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
#: ``multiprocessing.Connection``'s own framing: a signed 4-byte length, or -1 then an 8-byte one.
_PIPE_LEN = struct.Struct("!i")
_PIPE_LEN_LONG = struct.Struct("!Q")


def encode_frame(header: dict[str, Any], *payload: bytes | memoryview) -> bytes:
    """``len(header) || header JSON || payload...`` as one message."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([_LEN.pack(len(head)), head, *payload])


def decode_frame(message: bytes) -> tuple[dict[str, Any], memoryview]:
    """Split a message from :func:`encode_frame` into its header and payload."""
    (size,) = _LEN.unpack_from(message)
    header = json.loads(message[4 : 4 + size])
    if not isinstance(header, dict):
        raise ValueError("frame header is not an object")
    return header, memoryview(message)[4 + size :]


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits a worker sets on itself before touching a model.

    Attributes:
        address_space_mb: ``RLIMIT_AS`` in MiB (0 leaves it unlimited).
        max_open_files: ``RLIMIT_NOFILE``.
        threads: ONNX Runtime intra-op threads.
    """

    address_space_mb: int = 0
    max_open_files: int = 256
    threads: int = 1


def _apply_limits(limits: WorkerLimits) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The worker never writes files: a model cannot make it fill the disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = (
        limits.max_open_files
        if hard == resource.RLIM_INFINITY
        else min(hard, limits.max_open_files)
    )
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, cap), cap))
    if limits.address_space_mb > 0:
        size = limits.address_space_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _tensors(specs: Any, payload: memoryview) -> tuple[dict[str, Any], int]:
    """Numpy views of the tensors framed in ``payload``; and how many bytes they took."""
    import numpy as np

    feeds: dict[str, Any] = {}
    offset = 0
    for spec in specs:
        dtype = np.dtype(spec["dtype"])
        size = math.prod(spec["shape"]) * dtype.itemsize
        feeds[spec["name"]] = np.frombuffer(payload[offset : offset + size], dtype=dtype).reshape(
            spec["shape"]
        )
        offset += size
    return feeds, offset


def _load_card(header: dict[str, Any], payload: memoryview, schema: Any) -> tuple[Any, Any]:
    """The card the parent sent, if it parses and matches the model; and its tokenizers."""
    from daimm.modelformat import parse_card
    from daimm.modelformat.model import check_tensors

    if header.get("card") is None:
        return None, {}
    try:
        card = parse_card(header["card"], stored=True)
        check_tensors(card, schema)
    except DaimmError as exc:
        log.warning("card does not fit the model; raw tensors only: %s", exc)
        return None, {}
    tokenizers = {}
    offset = 0
    for item in header.get("tokenizers", []):
        from tokenizers import Tokenizer

        raw = bytes(payload[offset : offset + item["size"]])
        offset += item["size"]
        tokenizers[item["name"]] = Tokenizer.from_str(raw.decode())
    return card, tokenizers


class NonFiniteOutputError(ValueError):
    """A model answered NaN or an infinity: no JSON can carry it, so no receipt signs it."""


def encode_outputs(outputs: dict[str, Any], labels: Any = None) -> bytes:
    """The answer's canonical JSON (:func:`daimm.modelformat.answer_bytes`): outputs, and the
    predictions when there are any.

    Raises:
        NonFiniteOutputError: An output holds NaN or an infinity (its name is in the message).
    """
    try:
        return answer_bytes(outputs, labels)
    except ValueError:
        bad = sorted(name for name, value in outputs.items() if not _finite(value))
        raise NonFiniteOutputError(", ".join(bad) or "an output") from None


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def worker_main(conn: Any, limits: WorkerLimits) -> None:
    """The worker's loop: ``load`` once, then ``run`` until the pipe closes."""
    _apply_limits(limits)
    import onnxruntime as ort

    from daimm.modelformat.graph import build_session, decrypt_model
    from daimm.modelformat.model import feeds_of
    from daimm.modelformat.postprocess import predictions
    from daimm.modelformat.preprocess import PreparedRequest
    from daimm.modelformat.tensors import schema_of

    session = None
    schema = None
    card = None
    tokenizers: dict[str, Any] = {}
    names: list[str] = []
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        header, payload = decode_frame(message)
        reply: dict[str, Any] = {"id": header.get("id"), "ok": True}
        out: bytes = b""
        try:
            if header["op"] == "load":
                model_size = len(payload) - sum(t["size"] for t in header.get("tokenizers", []))
                data = bytes(payload[:model_size])
                if header.get("content_key"):
                    data = decrypt_model(
                        data,
                        bytes.fromhex(header["content_key"]),
                        bytes.fromhex(header["associated_data"]),
                    )
                session = build_session(data, threads=limits.threads)
                names = [o.name for o in session.get_outputs()]
                del data
                schema = schema_of(session)
                card, tokenizers = _load_card(header, payload[model_size:], schema)
                reply["schema"] = schema.to_json()
                reply["card"] = card is not None
                reply["rss_bytes"] = _rss_bytes()
            elif header["op"] == "run":
                if session is None:
                    raise RuntimeError("no model loaded")
                feeds, _ = _tensors(header["inputs"], payload)
                values = session.run(names, feeds)
                out = encode_outputs({n: jsonable(v) for n, v in zip(names, values, strict=True)})
            elif header["op"] == "answer":
                if session is None or schema is None:
                    raise RuntimeError("no model loaded")
                tensors, offset = _tensors(header["inputs"], payload)
                images = {}
                for item in header["images"]:
                    images[item["name"]] = bytes(payload[offset : offset + item["size"]])
                    offset += item["size"]
                request = PreparedRequest(
                    tensors, images, dict(header["texts"]), int(header["top_k"])
                )
                feeds = feeds_of(card, schema, request, tokenizers)
                values = dict(zip(names, session.run(names, feeds), strict=True))
                labels = predictions(card, values, request.top_k)
                out = encode_outputs({n: jsonable(v) for n, v in values.items()}, labels)
                reply["labelled"] = labels is not None
            elif header["op"] == "ping":
                reply["rss_bytes"] = _rss_bytes()
            else:
                raise ValueError(f"unknown op {header['op']!r}")
        except RequestRefusedError as exc:  # an image that does not decode: this request only
            reply = {"id": header.get("id"), "ok": False, "kind": "input", "code": exc.code,
                     "error": exc.detail}  # fmt: skip
        except (ort.capi.onnxruntime_pybind11_state.Fail,
                ort.capi.onnxruntime_pybind11_state.InvalidArgument) as exc:  # fmt: skip
            reply = {"id": header.get("id"), "ok": False, "kind": "input", "error": str(exc)}
        except NonFiniteOutputError as exc:
            reply = {"id": header.get("id"), "ok": False, "kind": "non_finite", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
            reply = {
                "id": header.get("id"),
                "ok": False,
                "kind": type(exc).__name__,
                "error": str(exc),
            }
        try:
            conn.send_bytes(encode_frame(reply, out))
        except (EOFError, OSError):
            return


class WorkerProcess:
    """The parent's handle on one worker: send a frame, await the reply.

    Replies are read by the event loop of the latest :meth:`call` (one loop at a time; the relayer
    has one). NOTE: a worker that exits while no loop watches its pipe (between two event loops,
    as in tests) is noticed by :attr:`alive`, which asks the operating system.

    Args:
        label: A name for logs (e.g. ``model-3``).
        limits: Resource limits the worker applies to itself.
    """

    def __init__(self, label: str, limits: WorkerLimits) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.label = label
        self._conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=worker_main, args=(child, limits), name=f"daimm-{label}", daemon=True
        )
        self.process.start()
        child.close()
        self._fd = self._conn.fileno()
        os.set_blocking(self._fd, False)
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}
        self._state_lock = threading.Lock()
        self._alive = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox = bytearray()
        self._outbox: collections.deque[memoryview] = collections.deque()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid

    @property
    def in_flight(self) -> int:
        """How many calls were sent to the worker and await its reply."""
        with self._state_lock:
            return len(self._pending)

    @property
    def alive(self) -> bool:
        """Whether the worker takes requests: not closed, not crashed, its process running."""
        if self._alive and self.process.exitcode is not None:  # waitpid(WNOHANG): ~1 us
            self._die("its process exited")
        return self._alive

    # ------------------------------------------------------------------ reading replies
    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read replies on ``loop`` from now on (called on ``loop``'s thread)."""
        if self._loop is loop:
            return
        self._unwatch()
        loop.add_reader(self._fd, self._on_readable)
        if self._outbox:
            loop.add_writer(self._fd, self._on_writable)
        self._loop = loop

    def _unwatch(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for remove in (loop.remove_reader, loop.remove_writer):
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                if loop.is_running() and running is not loop:  # pragma: no cover - other thread
                    loop.call_soon_threadsafe(remove, self._fd)
                else:
                    remove(self._fd)

    def _write(self, message: bytes) -> None:
        """Queue one frame in ``multiprocessing``'s framing; write what the pipe takes now.

        Raises:
            OSError: The pipe is broken (the worker is gone).
        """
        size = len(message)
        head = _PIPE_LEN.pack(size) if size <= 0x7FFFFFFF else (
            _PIPE_LEN.pack(-1) + _PIPE_LEN_LONG.pack(size)
        )  # fmt: skip
        if not self._outbox and size < 1 << 16:
            frame = memoryview(head + message)
            try:
                written = os.write(self._fd, frame)
            except BlockingIOError:
                written = 0
            if written == len(frame):
                return
            self._outbox.append(frame[written:])
        else:
            self._outbox.append(memoryview(head))
            self._outbox.append(memoryview(message))
        assert self._loop is not None
        self._loop.add_writer(self._fd, self._on_writable)

    def _on_writable(self) -> None:
        outbox = self._outbox
        while outbox:
            try:
                written = os.write(self._fd, outbox[0])
            except BlockingIOError:
                return
            except OSError:
                outbox.clear()
                self._unwatch()
                self._die("its pipe broke")
                return
            if written < len(outbox[0]):
                outbox[0] = outbox[0][written:]
                return
            outbox.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self._fd)

    def _on_readable(self) -> None:
        """The pipe is readable: take what arrived and resolve every complete reply."""
        try:
            chunk = os.read(self._fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._unwatch()
            self._die("its process exited")
            return
        inbox = self._inbox
        inbox += chunk
        while len(inbox) >= 4:
            (size,) = _PIPE_LEN.unpack_from(inbox)
            start = 4
            if size == -1:
                if len(inbox) < 12:
                    return
                (size,) = _PIPE_LEN_LONG.unpack_from(inbox, 4)
                start = 12
            if len(inbox) < start + size:
                return
            message = bytes(inbox[start : start + size])
            del inbox[: start + size]
            try:
                if size < 0:
                    raise ValueError("negative frame length")
                header, payload = decode_frame(message)
            except (ValueError, struct.error):
                self._unwatch()
                self.kill()
                self._die("it sent a malformed reply")
                return
            with self._state_lock:
                waiter = self._pending.pop(int(header.get("id") or 0), None)
            if waiter is not None:
                loop, future = waiter
                if loop is self._loop:
                    _resolve(future, (header, bytes(payload)))
                else:  # pragma: no cover - a call made on another loop
                    loop.call_soon_threadsafe(_resolve, future, (header, bytes(payload)))

    def _die(self, why: str) -> None:
        with self._state_lock:
            if not self._alive and not self._pending:
                return
            self._alive = False
            pending, self._pending = self._pending, {}
        self.process.join(timeout=1)
        code = self.process.exitcode
        log.warning("worker died", extra={"worker": self.label, "exit_code": code, "why": why})
        error = ModelUnavailableError(
            f"the worker serving {self.label} crashed ({why}, exit code {code}); it will be"
            " restarted on the next request"
        )
        for loop, future in pending.values():
            loop.call_soon_threadsafe(_fail, future, error)

    # ------------------------------------------------------------------ calls
    async def call(
        self, header: dict[str, Any], *payload: bytes | memoryview, timeout_s: float
    ) -> tuple[dict[str, Any], bytes]:
        """Send one request and await its reply.

        Raises:
            ModelUnavailableError: The worker is dead, dies meanwhile, or exceeds ``timeout_s``
                (it is then killed).
        """
        if not self.alive:
            raise ModelUnavailableError(f"the worker serving {self.label} is not running")
        loop = asyncio.get_running_loop()
        self._watch(loop)
        future: asyncio.Future[Any] = loop.create_future()
        request_id = next(self._ids)
        with self._state_lock:
            self._pending[request_id] = (loop, future)
        message = encode_frame({**header, "id": request_id}, *payload)
        try:
            self._write(message)
        except OSError:
            self._die("its pipe broke")
        try:
            reply: tuple[dict[str, Any], bytes] = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            self.kill()
            self._die(f"no answer within {timeout_s} s")
            raise ModelUnavailableError(
                f"{self.label} took longer than {timeout_s} s; its worker was stopped"
            ) from None
        return reply

    def kill(self) -> None:
        """Stop the worker at once (SIGKILL)."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.process.kill()

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the pipe (the worker exits) and reap it; kill it if it lingers."""
        self._alive = False
        self._unwatch()
        self._outbox.clear()
        with contextlib.suppress(OSError):
            self._conn.close()
        self.process.join(timeout=timeout_s)
        if self.process.is_alive():
            self.kill()
            self.process.join(timeout=timeout_s)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def check_reply(header: dict[str, Any], label: str) -> None:
    """Turn a worker's error reply into the right exception.

    Raises:
        RequestRefusedError: 422 when ONNX Runtime refused the inputs, or the model answered
            NaN or an infinity (``non_finite_output``).
        ModelUnavailableError: Any other failure in the worker.
    """
    if header.get("ok"):
        return
    if header.get("kind") == "input":
        if header.get("code"):  # the worker's own check (an image), already naming the input
            raise RequestRefusedError(422, str(header["code"]), _first_line(header.get("error")))
        raise RequestRefusedError(422, "invalid_input", f"the model refused the inputs: "
                                  f"{_first_line(header.get('error', ''))}")  # fmt: skip
    if header.get("kind") == "non_finite":
        raise RequestRefusedError(
            422,
            "non_finite_output",
            f"for these inputs the model answered NaN or an infinity in its output"
            f" {_first_line(header.get('error', ''))}, which JSON cannot carry; nothing was signed",
        )
    raise ModelUnavailableError(
        f"{label}: {header.get('kind')}: {_first_line(header.get('error', ''))}"
    )


def _first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0][:300] if text else "unknown error"
