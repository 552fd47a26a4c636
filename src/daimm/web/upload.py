"""``POST /api/uploads``: a creator's page uploads a model's ciphertext, key envelope and card as
one CAR v1, authorised by the wallet's EIP-712 ``Upload`` signature.

The request: the CAR as the body, and the headers ``x-daimm-uploader`` (address),
``x-daimm-nonce`` (uint256, never reused by that address), ``x-daimm-deadline`` (Unix seconds) and
``x-daimm-signature`` (65 bytes hex) over ``Upload(uploader, bodyHash = SHA-256(body), size =
len(body), nonce, deadline)`` in the domain ``{name: "daimm Upload", version: "1", chainId,
verifyingContract: ModelRegistry}`` (:func:`daimm.eip712.upload_typed_data`).

Checked in this order, each refusal a ``{"error": code, "detail": message}`` answer, and nothing
stored unless every check passed:

1. the headers parse and a Content-Length is given (400 ``bad_upload_request``, 411); the
   deadline is neither past nor more than an hour ahead (401 ``upload_expired`` / 400);
2. the size is within the size limit (413 ``upload_too_large``) and the claimed uploader's quota
   (403 ``over_quota``), both before the body is read;
3. the body is read to a temporary file, never past that size (413), and hashed;
4. the signature is the uploader's over exactly these bytes (401 ``bad_signature``), and the
   quota is checked again for the signer (403);
5. the nonce is new for that uploader (409 ``replayed_upload``; it is spent from here on, so a
   refused upload is retried with a new signature);
6. the CAR is well formed and every block hashes to its CID (422 ``bad_car`` /
   ``block_mismatch``, naming the CID);
7. every root is a daimm ciphertext whose size fits its segment framing, a daimm key envelope, or a
   model card (``daimm.modelformat.card.parse_card``), and every block belongs to a root's DAG (422
   ``not_daimm_content``).

NOTE: the signature covers the body's hash, so it can only be checked once the body is in; until
then an unauthenticated client can make the server read (and discard) at most the size limit.

Blocks are staged in a temporary folder, then copied to the configured backend (the local block
store, a Kubo node, optionally pinned by a pinning service) and the roots pinned. The server sees
ciphertext, envelopes and cards only: never plaintext weights or a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daimm import eip712
from daimm.crypto.aead import HEADER_SIZE, MAGIC, Header
from daimm.crypto.envelope import KeyEnvelope
from daimm.errors import CryptoError, DaimmError, IntegrityError, SignatureError, ValidationError
from daimm.ipfs.backends import Backend, LocalBlockstore
from daimm.ipfs.car import CarReader
from daimm.ipfs.multiformats import CID
from daimm.ipfs.unixfs import iter_dag, iter_file
from daimm.modelformat.card import parse_card

__all__ = ["UploadLedger", "UploadSettings", "mount_uploads", "validate_content"]

DEFAULT_MAX_BYTES = 2 << 30
DEFAULT_QUOTA_BYTES = 20 << 30
MAX_CARD_BYTES = 1 << 20
_MAX_DEADLINE_AHEAD_S = 3600
_READ = 1 << 20


@dataclass(frozen=True)
class UploadSettings:
    """Where uploads go and how much each address may send.

    Attributes:
        backend: A factory of the backend blocks are stored in (called once per upload, closed
            after it): the local block store, a Kubo node, or a pinning service in front of one.
        ledger: The SQLite file recording spent nonces and each address's bytes.
        max_bytes: The largest CAR accepted in one upload.
        quota_bytes: The bytes one address may upload in total.
    """

    backend: Callable[[], contextlib.AbstractContextManager[Backend]]
    ledger: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    quota_bytes: int = DEFAULT_QUOTA_BYTES

    @classmethod
    def from_env(cls) -> UploadSettings:
        """``DAIMM_STORE`` (default ``~/.daimm/blocks``) or ``DAIMM_KUBO_URL``, optionally pinned
        by ``DAIMM_PINNING_URL`` with ``DAIMM_PINNING_TOKEN``; ``DAIMM_UPLOAD_LEDGER`` (default
        ``~/.daimm/uploads.sqlite``), ``DAIMM_UPLOAD_MAX_BYTES``, ``DAIMM_UPLOAD_QUOTA_BYTES``."""
        env = os.environ
        store = Path(env.get("DAIMM_STORE", "~/.daimm/blocks")).expanduser()
        kubo, pinning = env.get("DAIMM_KUBO_URL"), env.get("DAIMM_PINNING_URL")
        token = env.get("DAIMM_PINNING_TOKEN", "")

        @contextlib.contextmanager
        def backend() -> Iterator[Backend]:
            if not kubo and not pinning:
                yield LocalBlockstore(store)
                return
            import httpx

            from daimm.ipfs.backends import KuboRpc, PinningService

            with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
                inner: Backend = KuboRpc(client, kubo) if kubo else LocalBlockstore(store)
                yield PinningService(client, pinning, token, upstream=inner) if pinning else inner

        try:
            max_bytes = int(env.get("DAIMM_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))
            quota = int(env.get("DAIMM_UPLOAD_QUOTA_BYTES", DEFAULT_QUOTA_BYTES))
        except ValueError:
            raise ValidationError(
                "DAIMM_UPLOAD_MAX_BYTES and DAIMM_UPLOAD_QUOTA_BYTES must be whole numbers of bytes"
            ) from None
        ledger = Path(env.get("DAIMM_UPLOAD_LEDGER", "~/.daimm/uploads.sqlite")).expanduser()
        return cls(backend, ledger, max_bytes, quota)


class UploadLedger:
    """Spent nonces and bytes uploaded per address, in SQLite (survives restarts)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS nonces (uploader TEXT, nonce TEXT, deadline INTEGER,"
                " PRIMARY KEY (uploader, nonce))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS usage (uploader TEXT PRIMARY KEY, bytes INTEGER)"
            )

    def used(self, uploader: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT bytes FROM usage WHERE uploader = ?", (uploader,)
            ).fetchone()
        return int(row[0]) if row else 0

    def spend_nonce(self, uploader: str, nonce: int, deadline: int) -> bool:
        """Record the nonce; False if that uploader already used it. Expired entries are dropped
        (their signatures are refused by the deadline check anyway)."""
        with self._lock:
            self._db.execute("DELETE FROM nonces WHERE deadline < ?", (int(time.time()),))
            try:
                self._db.execute(
                    "INSERT INTO nonces VALUES (?, ?, ?)", (uploader, str(nonce), deadline)
                )
            except sqlite3.IntegrityError:
                return False
        return True

    def add_usage(self, uploader: str, size: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO usage VALUES (?, ?) ON CONFLICT(uploader) "
                "DO UPDATE SET bytes = bytes + excluded.bytes",
                (uploader, size),
            )

    def close(self) -> None:
        self._db.close()


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _header(request: Request, name: str) -> str:
    value = request.headers.get(name)
    if not value:
        raise _Refused(400, "bad_upload_request", f"the {name} header is missing")
    return value


def _parse_request(
    request: Request, body_hash: bytes, size: int
) -> tuple[eip712.UploadRequest, str]:
    try:
        signed = eip712.UploadRequest(
            uploader=_header(request, "x-daimm-uploader"),
            body_hash=body_hash,
            size=size,
            nonce=int(_header(request, "x-daimm-nonce")),
            deadline=int(_header(request, "x-daimm-deadline")),
        )
    except (ValueError, ValidationError) as exc:
        raise _Refused(400, "bad_upload_request", f"malformed upload headers: {exc}") from None
    return signed, _header(request, "x-daimm-signature")


def validate_content(root: CID, get_block: Callable[[CID], bytes]) -> str:
    """What the file ``root`` is (``ciphertext``, ``envelope`` or ``card``); refuses anything else.

    Raises:
        ValidationError: not a whole daimm ciphertext, key envelope or model card.
    """
    head = bytearray()
    total = 0
    for piece in iter_file(root, get_block):
        if len(head) < MAX_CARD_BYTES + 1:
            head += piece[: MAX_CARD_BYTES + 1 - len(head)]
        total += len(piece)
    if head.startswith(MAGIC):
        try:
            Header.parse(bytes(head[:HEADER_SIZE])).plaintext_size(total)
        except IntegrityError as exc:
            raise ValidationError(f"{root} is not a well-formed daimm ciphertext: {exc}") from None
        return "ciphertext"
    if total > MAX_CARD_BYTES:
        raise ValidationError(
            f"{root} ({total} bytes) is neither a daimm ciphertext nor a card or key envelope"
            f" (those are JSON of at most {MAX_CARD_BYTES} bytes); encrypt the weights first"
        )
    try:
        doc = json.loads(bytes(head))
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "daimm-key-envelope":
        try:
            KeyEnvelope.from_json(bytes(head))
        except CryptoError as exc:
            raise ValidationError(f"{root}: {exc}") from None
        return "envelope"
    if isinstance(doc, dict) and "name" in doc:
        try:
            parse_card(doc, stored=True)
        except ValidationError as exc:
            raise ValidationError(f"{root} is not a valid model card: {exc}") from None
        return "card"
    raise ValidationError(
        f"{root} is neither a daimm ciphertext, a key envelope nor a model card"
        " (docs/MODEL-CARD.md); only those are accepted"
    )


def _stage(car_path: Path, staging: LocalBlockstore) -> tuple[tuple[CID, ...], set[bytes], int]:
    """Read the CAR into ``staging``, every block verified; roots, block multihashes, bytes."""
    seen: set[bytes] = set()
    stored = 0
    try:
        with car_path.open("rb") as fh:
            reader = CarReader(fh)
            if not reader.roots:
                raise _Refused(422, "bad_car", "the CAR names no root; add the files' roots")
            for cid, data in reader.blocks():
                if cid.digest not in seen:
                    seen.add(cid.digest)
                    stored += len(data)
                staging.put_block(cid, data)
    except IntegrityError as exc:
        raise _Refused(422, "block_mismatch", f"refused, nothing stored: {exc}") from None
    except ValidationError as exc:
        raise _Refused(422, "bad_car", f"not a CAR v1 file: {exc}") from None
    return reader.roots, seen, stored


def _process(
    car_path: Path, signed: eip712.UploadRequest, settings: UploadSettings, ledger: UploadLedger
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="daimm-upload-") as tmp:
        staging = LocalBlockstore(tmp)
        roots, seen, stored = _stage(car_path, staging)
        kinds: list[str] = []
        reachable: set[bytes] = set()
        order: list[CID] = []
        try:
            for root in roots:
                kinds.append(validate_content(root, staging.get_block))
                for cid, _data in iter_dag(root, staging.get_block):
                    if cid.digest not in reachable:
                        reachable.add(cid.digest)
                        order.append(cid)
        except DaimmError as exc:  # a missing block, malformed UnixFS, or the content checks
            raise _Refused(422, "not_daimm_content", f"refused, nothing stored: {exc}") from None
        if seen - reachable:
            raise _Refused(
                422, "not_daimm_content",
                f"refused, nothing stored: {len(seen - reachable)} block(s) belong to no root's"
                " file; upload only the DAGs of the ciphertext, envelope and card",
            )  # fmt: skip
        with settings.backend() as backend:
            for cid in order:
                backend.put_block(cid, staging.get_block(cid))
            for root in roots:
                backend.pin(root)
    ledger.add_usage(signed.uploader, signed.size)
    return {
        "roots": [{"cid": str(r), "kind": k} for r, k in zip(roots, kinds, strict=True)],
        "blocks": len(order),
        "bytes": stored,
        "quota_left": max(0, settings.quota_bytes - ledger.used(signed.uploader)),
    }


def mount_uploads(
    app: FastAPI, *, chain_id: int, registry: str, settings: UploadSettings | None = None
) -> None:
    """Add ``POST /api/uploads`` to ``app`` (settings from the environment when None)."""
    settings = settings or UploadSettings.from_env()
    opened: list[UploadLedger] = []  # NOTE: opened on the first upload, not at start-up
    lock = threading.Lock()

    def the_ledger() -> UploadLedger:
        with lock:
            if not opened:
                opened.append(UploadLedger(settings.ledger))
            return opened[0]

    @app.post(
        "/api/uploads",
        summary="Upload a signed CAR: a model's ciphertext, key envelope and card",
        responses={
            401: {"description": "Expired or wrong signature"},
            403: {"description": "Over the address's quota"},
            409: {"description": "Nonce already used (replay)"},
            413: {"description": "Over the size limit"},
            422: {"description": "A block does not match its CID, or not daimm content"},
        },
    )
    async def api_uploads(request: Request) -> JSONResponse:
        """Stores a CAR whose every block was verified and whose roots are daimm content; see
        docs/WEB.md for the headers and the ``Upload`` EIP-712 message."""
        try:
            return JSONResponse(await _upload(request))
        except _Refused as exc:
            return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

    def check_quota(uploader: str, size: int) -> None:
        used = the_ledger().used(uploader)
        if used + size > settings.quota_bytes:
            raise _Refused(
                403, "over_quota",
                f"{uploader} has uploaded {used} of its {settings.quota_bytes} bytes; this upload"
                f" of {size} bytes does not fit",
            )  # fmt: skip

    async def _upload(request: Request) -> dict[str, Any]:
        try:
            size = int(request.headers["content-length"])
        except (KeyError, ValueError):
            raise _Refused(
                411, "length_required", "send the CAR with a Content-Length header"
            ) from None
        placeholder, signature = _parse_request(request, b"\x00" * 32, size)
        now = int(time.time())
        if placeholder.deadline < now:
            raise _Refused(
                401, "upload_expired", "the upload signature's deadline has passed; sign again"
            )
        if placeholder.deadline > now + _MAX_DEADLINE_AHEAD_S:
            raise _Refused(
                400, "bad_upload_request", "the deadline is more than an hour ahead; sign again"
            )
        if size > settings.max_bytes:
            raise _Refused(
                413, "upload_too_large",
                f"the upload is {size} bytes; this server accepts at most {settings.max_bytes}"
                " bytes per upload",
            )  # fmt: skip
        await run_in_threadpool(check_quota, placeholder.uploader, size)
        with tempfile.TemporaryDirectory(prefix="daimm-car-") as tmp:
            car_path = Path(tmp) / "upload.car"
            digest = hashlib.sha256()
            received = 0
            with car_path.open("wb") as fh:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > size:
                        raise _Refused(
                            413, "upload_too_large",
                            "the body is longer than its signed size; nothing was stored",
                        )  # fmt: skip
                    digest.update(chunk)
                    fh.write(chunk)
            if received != size:
                raise _Refused(
                    400,
                    "body_mismatch",
                    "the body is shorter than its Content-Length; send it again",
                )
            signed, _ = _parse_request(request, digest.digest(), received)
            try:
                eip712.verify_upload(signed, chain_id, registry, signature)
            except SignatureError as exc:
                raise _Refused(
                    401, "bad_signature",
                    f"the upload is not signed by {placeholder.uploader} for these bytes ({exc});"
                    " the body may have been altered, or sign again",
                ) from None  # fmt: skip
            await run_in_threadpool(check_quota, signed.uploader, size)
            ledger = await run_in_threadpool(the_ledger)
            fresh = await run_in_threadpool(
                ledger.spend_nonce, signed.uploader, signed.nonce, signed.deadline
            )
            if not fresh:
                raise _Refused(
                    409, "replayed_upload",
                    f"nonce {signed.nonce} was already used by {signed.uploader}: this upload"
                    " was replayed; sign a new one",
                )  # fmt: skip
            return await run_in_threadpool(_process, car_path, signed, settings, ledger)
