"""Uploads in pieces: a large CAR (a 600 MB model's ciphertext) without one huge request body.

1. ``POST /api/uploads/sessions``: the wallet signs once, EIP-712 ``UploadSession(uploader,
   piecesHash, pieces, size, nonce, deadline)`` (:func:`daimm.eip712.upload_session_typed_data`)
   where ``piecesHash`` is the SHA-256 of the pieces' SHA-256 digests in order; the JSON body
   ``{"size": N, "pieces": ["<sha256 hex>", ...]}`` lists those digests. The headers are those of
   ``POST /api/uploads`` (``x-daimm-uploader``, ``-nonce``, ``-deadline``, ``-signature``). The
   size limit and the piece limit are checked, the signature verified, the nonce spent (one nonce
   space with single uploads) and ``size`` reserved against the uploader's quota in one
   transaction, so concurrent uploads by one address cannot together pass it. The answer names the
   session (``{"session": id, "piece_bytes": ..., "expires": ...}``).
2. ``PUT /api/uploads/sessions/{id}/pieces/{n}``, n = 0, 1, ... in order: each piece at most
   ``piece_bytes``, its SHA-256 the signed list's n-th digest, holding whole CAR sections (piece 0
   starts with the CAR header); every block is verified against its CID as the piece arrives and
   staged. A piece whose bytes differ from the signed digest may be sent again; a block that does
   not match its CID, or a piece that cuts a block, closes the session (the signed bytes
   themselves are bad).
3. ``POST /api/uploads/sessions/{id}/commit``: once every piece is in, the same content checks as
   a single upload (every root a daimm ciphertext, key envelope or card, every block in a root's
   DAG), then the blocks go to the configured backend and the reservation becomes usage.
   ``DELETE /api/uploads/sessions/{id}`` abandons it.

A session lives until an hour after its signature's deadline; then (checked on every session
request) its staging folder is deleted and its reservation released. Sessions are held by the one
server process (`daimm web` runs one worker): a restart abandons the uploads in progress.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daimm import eip712
from daimm.errors import SignatureError, ValidationError
from daimm.ipfs.backends import LocalBlockstore
from daimm.ipfs.multiformats import CID
from daimm.web.upload import (
    SIGNED_RESPONSES,
    Refused,
    UploadLedger,
    UploadSettings,
    admit,
    check_deadline,
    check_size,
    request_header,
    stage_car,
    store_staged,
)

__all__ = ["SESSION_GRACE_S", "mount_upload_sessions"]

#: How long after its signature's deadline a session still takes pieces and its commit.
SESSION_GRACE_S = 3600
_MAX_MANIFEST_BYTES = 1 << 20


def _clock() -> int:
    return int(time.time())


@dataclass
class _Session:
    key: str
    uploader: str
    size: int
    digests: list[bytes]
    expires: int
    folder: Path
    next: int = 0
    received: int = 0
    roots: tuple[CID, ...] = ()
    seen: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def staging(self) -> LocalBlockstore:
        return LocalBlockstore(self.folder / "blocks")


def _manifest(raw: bytes) -> tuple[int, list[bytes]]:
    try:
        doc = json.loads(raw)
        size, pieces = doc["size"], doc["pieces"]
        if set(doc) != {"size", "pieces"} or type(size) is not int or not isinstance(pieces, list):
            raise ValueError("expected exactly {size: integer, pieces: [hex, ...]}")
        digests = [bytes.fromhex(p) for p in pieces]
        if any(len(d) != 32 for d in digests):
            raise ValueError("each piece digest is 32 bytes of hex")
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused(400, "bad_upload_request", f"malformed session request: {exc}") from None
    return size, digests


def mount_upload_sessions(
    app: FastAPI,
    *,
    chain_id: int,
    registry: str,
    settings: UploadSettings,
    ledger: Callable[[], UploadLedger],
) -> None:
    """Add the upload-in-pieces routes to ``app`` (``mount_uploads`` calls this)."""
    sessions: dict[str, _Session] = {}
    guard = threading.Lock()
    cleared: list[bool] = []

    def sweep() -> None:
        """Delete abandoned sessions: staging folders and reservations past their expiry."""
        with guard:
            if not cleared:  # nothing staged survives a restart (sessions live in memory)
                shutil.rmtree(settings.staging_dir, ignore_errors=True)
                cleared.append(True)
        for key in ledger().expired(_clock()):
            if key.startswith("session:"):
                drop(key.removeprefix("session:"))
            ledger().release(key)

    def drop(sid: str) -> None:
        with guard:
            session = sessions.pop(sid, None)
        if session is not None:
            shutil.rmtree(session.folder, ignore_errors=True)
            ledger().release(session.key)

    def find(sid: str) -> _Session:
        with guard:
            session = sessions.get(sid)
        if session is None or session.expires < _clock():
            raise Refused(
                404, "unknown_session",
                "no such upload session (it was committed, abandoned or expired): open a new one",
            )  # fmt: skip
        return session

    def respond(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        async def wrapped(*args: Any, **kwargs: Any) -> JSONResponse:
            try:
                await run_in_threadpool(sweep)
                return JSONResponse(await handler(*args, **kwargs))
            except Refused as exc:
                return JSONResponse(
                    {"error": exc.code, "detail": exc.detail}, status_code=exc.status
                )

        return wrapped

    async def read_body(request: Request, limit: int, what: str) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, "piece_too_large", f"{what} is longer than {limit} bytes")
        return bytes(body)

    @app.get("/api/uploads/limits", summary="The upload size, piece size and quota limits")
    async def upload_limits() -> dict[str, int]:
        """What a page needs before it cuts and signs an upload in pieces."""
        return {
            "max_bytes": settings.max_bytes,
            "piece_bytes": settings.piece_bytes,
            "quota_bytes": settings.quota_bytes,
        }

    @app.post(
        "/api/uploads/sessions",
        summary="Open an upload in pieces, signed once (EIP-712 UploadSession)",
        responses={
            **SIGNED_RESPONSES,
            413: {"description": "Over the size limit, or pieces over the piece limit"},
        },
    )
    @respond
    async def open_session(request: Request) -> dict[str, Any]:
        """Checks the size and piece limits, the signature, the nonce and the quota (reserving
        the whole size); see docs/WEB.md."""
        size, digests = _manifest(await read_body(request, _MAX_MANIFEST_BYTES, "the request"))
        try:
            signed = eip712.UploadSessionRequest(
                uploader=request_header(request, "x-daimm-uploader"),
                pieces_hash=hashlib.sha256(b"".join(digests)).digest(),
                pieces=len(digests),
                size=size,
                nonce=int(request_header(request, "x-daimm-nonce")),
                deadline=int(request_header(request, "x-daimm-deadline")),
            )
        except (ValueError, ValidationError) as exc:
            raise Refused(400, "bad_upload_request", f"malformed upload headers: {exc}") from None
        signature = request_header(request, "x-daimm-signature")
        check_deadline(signed.deadline)
        check_size(size, settings)
        if not 0 < len(digests) <= size or -(-size // settings.piece_bytes) > len(digests):
            raise Refused(
                413, "piece_too_large",
                f"{len(digests)} pieces cannot carry {size} bytes: cut the CAR into pieces of"
                f" 1 to {settings.piece_bytes} bytes",
            )  # fmt: skip
        try:
            eip712.verify_upload_session(signed, chain_id, registry, signature)
        except SignatureError as exc:
            raise Refused(
                401, "bad_signature",
                f"the session is not signed by {signed.uploader} for these pieces ({exc})",
            ) from None  # fmt: skip
        sid = secrets.token_hex(16)
        session = _Session(
            key=f"session:{sid}",
            uploader=signed.uploader,
            size=size,
            digests=digests,
            expires=signed.deadline + SESSION_GRACE_S,
            folder=settings.staging_dir / sid,
        )
        book = await run_in_threadpool(ledger)
        await run_in_threadpool(
            admit, book, session.key, signed.uploader, signed.nonce, size, settings,
            session.expires,
        )  # fmt: skip
        session.folder.mkdir(parents=True)
        with guard:
            sessions[sid] = session
        return {
            "session": sid,
            "pieces": len(digests),
            "piece_bytes": settings.piece_bytes,
            "expires": session.expires,
        }

    def check_order(session: _Session, n: int) -> None:
        if n < session.next:
            raise Refused(
                409, "replayed_piece",
                f"piece {n} was already received; send piece {session.next}",
            )  # fmt: skip
        if n != session.next:
            raise Refused(
                409, "bad_piece_order",
                f"pieces are taken in order: send piece {session.next}, not piece {n}"
                f" (of {len(session.digests)})",
            )  # fmt: skip

    def stage_piece(session: _Session, n: int, body: bytes) -> None:
        with session.lock:
            check_order(session, n)
            if session.received + len(body) > session.size:
                raise Refused(
                    413, "upload_too_large",
                    f"the pieces pass the signed size of {session.size} bytes",
                )  # fmt: skip
            if hashlib.sha256(body).digest() != session.digests[n]:
                raise Refused(
                    422, "piece_mismatch",
                    f"piece {n} is not the signed piece (its SHA-256 differs); send it again",
                )  # fmt: skip
            try:
                roots = stage_car(io.BytesIO(body), session.staging, session.seen, header=n == 0)
            except Refused as exc:
                drop(session.key.removeprefix("session:"))
                raise Refused(
                    exc.status, exc.code,
                    f"piece {n}: {exc.detail}; the session is closed (each piece must hold whole,"
                    " valid blocks)",
                ) from None  # fmt: skip
            if n == 0:
                session.roots = roots
            session.next += 1
            session.received += len(body)

    @app.put(
        "/api/uploads/sessions/{sid}/pieces/{n}",
        summary="Send piece n of an upload in pieces",
        responses={
            404: {"description": "No such session"},
            409: {"description": "Piece out of order, or already received"},
            413: {"description": "Piece over the piece limit"},
            422: {"description": "Not the signed piece, or a block not matching its CID"},
        },
    )
    @respond
    async def put_piece(sid: str, n: int, request: Request) -> dict[str, Any]:
        """Piece ``n`` (whole CAR sections; piece 0 starts with the header), verified block by
        block and staged."""
        session = find(sid)
        if not 0 <= n < len(session.digests):
            raise Refused(
                409, "bad_piece_order",
                f"piece {n} is not one of the session's {len(session.digests)} pieces",
            )  # fmt: skip
        check_order(session, n)  # before reading the body; again once it is in
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.piece_bytes:
            raise Refused(
                413, "piece_too_large",
                f"piece {n} is {declared} bytes; pieces are at most {settings.piece_bytes} bytes",
            )  # fmt: skip
        body = await read_body(request, settings.piece_bytes, f"piece {n}")
        await run_in_threadpool(stage_piece, session, n, body)
        return {"piece": n, "received": session.received, "size": session.size}

    def commit(session: _Session) -> dict[str, Any]:
        with session.lock:
            if session.next != len(session.digests):
                raise Refused(
                    409, "incomplete_upload",
                    f"{session.next} of {len(session.digests)} pieces received; send piece"
                    f" {session.next} before committing",
                )  # fmt: skip
            sid = session.key.removeprefix("session:")
            try:
                if session.received != session.size:
                    raise Refused(
                        422, "bad_upload_request",
                        f"the pieces hold {session.received} bytes, not the signed {session.size}",
                    )  # fmt: skip
                answer = store_staged(session.roots, session.seen, session.staging, settings)
                ledger().settle(session.key)
            finally:
                drop(sid)
        answer["quota_left"] = max(0, settings.quota_bytes - ledger().used(session.uploader))
        return answer

    @app.post(
        "/api/uploads/sessions/{sid}/commit",
        summary="Store an upload in pieces once every piece is in",
        responses={
            404: {"description": "No such session"},
            409: {"description": "Pieces missing"},
            422: {"description": "Not daimm content"},
        },
    )
    @respond
    async def commit_session(sid: str) -> dict[str, Any]:
        """The content checks of a single upload, then the blocks are stored and pinned."""
        return await run_in_threadpool(commit, find(sid))

    @app.delete("/api/uploads/sessions/{sid}", summary="Abandon an upload in pieces")
    @respond
    async def abandon_session(sid: str) -> dict[str, Any]:
        """Deletes what was staged and releases the quota it reserved."""
        find(sid)
        await run_in_threadpool(drop, sid)
        return {"session": sid, "abandoned": True}
