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
7. every root is a daimm ciphertext whose size fits its segment framing, a daimm key envelope, a
   model card (``daimm.modelformat.card.parse_card``), or a review comment (plain UTF-8 text of at
   most 4 KiB, not JSON, the model page's "write a review"), and every block belongs to a root's
   DAG (422 ``not_daimm_content``).

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
from typing import Any, BinaryIO

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from daimm import eip712, sqlitefile
from daimm.crypto.aead import HEADER_SIZE, MAGIC, Header
from daimm.crypto.envelope import KeyEnvelope
from daimm.errors import CryptoError, DaimmError, IntegrityError, SignatureError, ValidationError
from daimm.ipfs.backends import Backend, LocalBlockstore
from daimm.ipfs.car import CarReader, read_blocks
from daimm.ipfs.multiformats import CID
from daimm.ipfs.unixfs import iter_dag, iter_file
from daimm.modelformat.card import parse_card

__all__ = [
    "UploadLedger",
    "UploadSettings",
    "admit",
    "check_size",
    "mount_uploads",
    "stage_car",
    "store_staged",
    "validate_content",
]

DEFAULT_MAX_BYTES = 2 << 30
DEFAULT_QUOTA_BYTES = 20 << 30
DEFAULT_PIECE_BYTES = 32 << 20
MAX_CARD_BYTES = 1 << 20
#: The largest review comment accepted (as `daimm review --comment`).
MAX_COMMENT_BYTES = 4096
_MAX_DEADLINE_AHEAD_S = 3600
_READ = 1 << 20


@dataclass(frozen=True)
class UploadSettings:
    """Where uploads go and how much each address may send.

    Attributes:
        backend: A factory of the backend blocks are stored in (called once per upload, closed
            after it): the local block store, a Kubo node, or a pinning service in front of one.
        ledger: The SQLite file recording spent nonces and each address's bytes.
        max_bytes: The largest CAR accepted in one upload (whole, or all its pieces together).
        quota_bytes: The bytes one address may upload in total.
        piece_bytes: The largest piece of an upload in pieces (``/api/uploads/sessions``).
        staging: Where uploads in pieces are staged until committed (default: a folder
            ``upload-staging`` beside the ledger).
    """

    backend: Callable[[], contextlib.AbstractContextManager[Backend]]
    ledger: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    quota_bytes: int = DEFAULT_QUOTA_BYTES
    piece_bytes: int = DEFAULT_PIECE_BYTES
    staging: Path | None = None

    @property
    def staging_dir(self) -> Path:
        return self.staging or self.ledger.parent / "upload-staging"

    @classmethod
    def from_env(cls) -> UploadSettings:
        """``DAIMM_STORE`` (default ``~/.daimm/blocks``) or ``DAIMM_KUBO_URL``, optionally pinned
        by ``DAIMM_PINNING_URL`` with ``DAIMM_PINNING_TOKEN``; ``DAIMM_UPLOAD_LEDGER`` (default
        ``~/.daimm/uploads.sqlite``), ``DAIMM_UPLOAD_MAX_BYTES``, ``DAIMM_UPLOAD_QUOTA_BYTES``,
        ``DAIMM_UPLOAD_PIECE_BYTES``."""
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
            piece = int(env.get("DAIMM_UPLOAD_PIECE_BYTES", DEFAULT_PIECE_BYTES))
        except ValueError:
            raise ValidationError(
                "DAIMM_UPLOAD_MAX_BYTES, DAIMM_UPLOAD_QUOTA_BYTES and DAIMM_UPLOAD_PIECE_BYTES must"
                " be whole numbers of bytes"
            ) from None
        ledger = Path(env.get("DAIMM_UPLOAD_LEDGER", "~/.daimm/uploads.sqlite")).expanduser()
        return cls(backend, ledger, max_bytes, quota, piece)


class UploadLedger:
    """Spent nonces, bytes uploaded per address and open reservations, in SQLite (survives
    restarts).

    An upload reserves its size against the uploader's quota before it is stored (one
    transaction: bytes used plus bytes reserved plus this upload within the quota), so concurrent
    uploads by one address cannot together pass the quota; a stored upload turns its reservation
    into usage, a refused or abandoned one releases it.
    """

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
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, uploader TEXT,"
                " bytes INTEGER, expires INTEGER, state TEXT)"
            )

    def used(self, uploader: str) -> int:
        """Bytes stored for ``uploader`` plus bytes reserved by its uploads in progress."""
        with self._lock:
            return self._used(uploader)

    def _used(self, uploader: str) -> int:
        row = self._db.execute(
            "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM usage WHERE uploader = ?)"
            " + (SELECT COALESCE(SUM(bytes), 0) FROM reservations WHERE uploader = ?)",
            (uploader, uploader),
        ).fetchone()
        return int(row[0])

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

    def reserve(
        self, key: str, uploader: str, size: int, quota: int, expires: int, state: str = ""
    ) -> int | None:
        """Reserve ``size`` bytes of ``uploader``'s quota under ``key`` until ``expires``; None
        if that would pass ``quota``, else the bytes left after it."""
        with self._lock, sqlitefile.write_transaction(self._db):
            left = quota - self._used(uploader) - size
            if left < 0:
                return None
            self._db.execute(
                "INSERT INTO reservations VALUES (?, ?, ?, ?, ?)",
                (key, uploader, size, expires, state),
            )
            return left

    def state(self, key: str) -> tuple[str, int, int, str] | None:
        """A reservation's (uploader, bytes, expires, state), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT uploader, bytes, expires, state FROM reservations WHERE id = ?", (key,)
            ).fetchone()
        return (str(row[0]), int(row[1]), int(row[2]), str(row[3])) if row else None

    def set_state(self, key: str, state: str) -> None:
        with self._lock:
            self._db.execute("UPDATE reservations SET state = ? WHERE id = ?", (state, key))

    def settle(self, key: str) -> None:
        """The upload under ``key`` was stored: its reservation becomes usage."""
        # One transaction: a failure between the two writes leaves the reservation in place.
        with self._lock, sqlitefile.write_transaction(self._db):
            row = self._db.execute(
                "SELECT uploader, bytes FROM reservations WHERE id = ?", (key,)
            ).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM reservations WHERE id = ?", (key,))
                self._db.execute(
                    "INSERT INTO usage VALUES (?, ?) ON CONFLICT(uploader) "
                    "DO UPDATE SET bytes = bytes + excluded.bytes",
                    row,
                )

    def release(self, key: str) -> None:
        """The upload under ``key`` was refused or abandoned: its bytes are free again."""
        with self._lock:
            self._db.execute("DELETE FROM reservations WHERE id = ?", (key,))

    def expired(self, now: int) -> list[str]:
        """Keys of reservations past their expiry (abandoned uploads)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM reservations WHERE expires < ?", (now,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self._db.close()


class Refused(Exception):
    """An upload refused: ``{"error": code, "detail": detail}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


#: The refusals every signed upload request may answer (OpenAPI ``responses``).
SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Expired or wrong signature"},
    403: {"description": "Over the address's quota"},
    409: {"description": "Nonce already used (replay)"},
}


def request_header(request: Request, name: str) -> str:
    """The header ``name``; refused (400) when missing."""
    value = request.headers.get(name)
    if not value:
        raise Refused(400, "bad_upload_request", f"the {name} header is missing")
    return value


def check_deadline(deadline: int) -> None:
    """Refuses a signature whose deadline has passed or lies more than an hour ahead."""
    now = int(time.time())
    if deadline < now:
        raise Refused(
            401, "upload_expired", "the upload signature's deadline has passed; sign again"
        )
    if deadline > now + _MAX_DEADLINE_AHEAD_S:
        raise Refused(
            400, "bad_upload_request", "the deadline is more than an hour ahead; sign again"
        )


def _parse_request(
    request: Request, body_hash: bytes, size: int
) -> tuple[eip712.UploadRequest, str]:
    try:
        signed = eip712.UploadRequest(
            uploader=request_header(request, "x-daimm-uploader"),
            body_hash=body_hash,
            size=size,
            nonce=int(request_header(request, "x-daimm-nonce")),
            deadline=int(request_header(request, "x-daimm-deadline")),
        )
    except (ValueError, ValidationError) as exc:
        raise Refused(400, "bad_upload_request", f"malformed upload headers: {exc}") from None
    return signed, request_header(request, "x-daimm-signature")


def validate_content(root: CID, get_block: Callable[[CID], bytes]) -> str:
    """What the file ``root`` is (``ciphertext``, ``envelope``, ``card`` or ``comment``, a review's
    plain text); refuses anything else.

    Raises:
        ValidationError: not a whole daimm ciphertext, key envelope, model card or review comment.
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
    if total <= MAX_COMMENT_BYTES and not isinstance(doc, dict | list) and _is_text(bytes(head)):
        return "comment"
    raise ValidationError(
        f"{root} is neither a daimm ciphertext, a key envelope, a model card"
        " (docs/MODEL-CARD.md) nor a review comment (plain UTF-8 text of at most"
        f" {MAX_COMMENT_BYTES} bytes); only those are accepted"
    )


def _is_text(data: bytes) -> bool:
    """UTF-8 with no control characters but tab and line breaks (a review comment)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch in "\t\n\r" or ch.isprintable() for ch in text)


def stage_car(
    src: BinaryIO, staging: LocalBlockstore, seen: set[bytes], *, header: bool = True
) -> tuple[CID, ...]:
    """Read a CAR (or, with ``header=False``, a run of its sections: a later piece) into
    ``staging``, every block verified, adding their multihashes to ``seen``; the header's roots."""
    roots: tuple[CID, ...] = ()
    try:
        if header:
            reader = CarReader(src)
            if not reader.roots:
                raise Refused(422, "bad_car", "the CAR names no root; add the files' roots")
            roots = reader.roots
        for cid, data in read_blocks(src):
            seen.add(cid.digest)
            staging.put_block(cid, data)
    except IntegrityError as exc:
        raise Refused(422, "block_mismatch", f"refused, nothing stored: {exc}") from None
    except ValidationError as exc:
        raise Refused(422, "bad_car", f"not a CAR v1 file: {exc}") from None
    return roots


def store_staged(
    roots: tuple[CID, ...], seen: set[bytes], staging: LocalBlockstore, settings: UploadSettings
) -> dict[str, Any]:
    """Check what ``staging`` holds (every root daimm content, every block in a root's DAG),
    then copy it to the configured backend and pin the roots; the answer's roots, blocks, bytes."""
    kinds: list[str] = []
    reachable: set[bytes] = set()
    order: list[CID] = []
    stored = 0
    try:
        for root in roots:
            kinds.append(validate_content(root, staging.get_block))
            for cid, data in iter_dag(root, staging.get_block):
                if cid.digest not in reachable:
                    reachable.add(cid.digest)
                    order.append(cid)
                    stored += len(data)
    except DaimmError as exc:  # a missing block, malformed UnixFS, or the content checks
        raise Refused(422, "not_daimm_content", f"refused, nothing stored: {exc}") from None
    if seen - reachable:
        raise Refused(
            422, "not_daimm_content",
            f"refused, nothing stored: {len(seen - reachable)} block(s) belong to no root's"
            " file; upload only the DAGs of the ciphertext, envelope and card",
        )  # fmt: skip
    with settings.backend() as backend:
        for cid in order:
            backend.put_block(cid, staging.get_block(cid))
        for root in roots:
            backend.pin(root)
    return {
        "roots": [{"cid": str(r), "kind": k} for r, k in zip(roots, kinds, strict=True)],
        "blocks": len(order),
        "bytes": stored,
    }


def _process(
    car_path: Path, signed: eip712.UploadRequest, settings: UploadSettings, ledger: UploadLedger,
    key: str,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="daimm-upload-") as tmp:
        staging = LocalBlockstore(tmp)
        seen: set[bytes] = set()
        with car_path.open("rb") as fh:
            roots = stage_car(fh, staging, seen)
        answer = store_staged(roots, seen, staging, settings)
    ledger.settle(key)
    answer["quota_left"] = max(0, settings.quota_bytes - ledger.used(signed.uploader))
    return answer


def check_size(size: int, settings: UploadSettings) -> None:
    """Refuses an upload over the size limit (413)."""
    if size > settings.max_bytes:
        raise Refused(
            413, "upload_too_large",
            f"the upload is {size} bytes; this server accepts at most {settings.max_bytes}"
            " bytes per upload",
        )  # fmt: skip


def admit(
    ledger: UploadLedger, key: str, uploader: str, nonce: int, size: int,
    settings: UploadSettings, expires: int,
) -> None:  # fmt: skip
    """Spend the nonce (409 if replayed), then reserve ``size`` of the uploader's quota under
    ``key`` until ``expires`` (403 if it does not fit).

    NOTE: the quota is reserved in one transaction (used + reserved + this upload), so concurrent
    uploads by one address cannot together pass it.
    """
    if not ledger.spend_nonce(uploader, nonce, expires):
        raise Refused(
            409, "replayed_upload",
            f"nonce {nonce} was already used by {uploader}: this upload was replayed; sign a new"
            " one",
        )  # fmt: skip
    if ledger.reserve(key, uploader, size, settings.quota_bytes, expires) is None:
        raise refuse_over_quota(uploader, size, settings, ledger.used(uploader))


def refuse_over_quota(uploader: str, size: int, settings: UploadSettings, used: int) -> Refused:
    return Refused(
        403, "over_quota",
        f"{uploader} has uploaded or is uploading {used} of its {settings.quota_bytes} bytes;"
        f" this upload of {size} bytes does not fit",
    )  # fmt: skip


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
            **SIGNED_RESPONSES,
            413: {"description": "Over the size limit"},
            422: {"description": "A block does not match its CID, or not daimm content"},
        },
    )
    async def api_uploads(request: Request) -> JSONResponse:
        """Stores a CAR whose every block was verified and whose roots are daimm content; see
        docs/WEB.md for the headers and the ``Upload`` EIP-712 message."""
        try:
            return JSONResponse(await _upload(request))
        except Refused as exc:
            return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

    def check_quota(uploader: str, size: int) -> None:
        used = the_ledger().used(uploader)
        if used + size > settings.quota_bytes:
            raise refuse_over_quota(uploader, size, settings, used)

    async def _upload(request: Request) -> dict[str, Any]:
        try:
            size = int(request.headers["content-length"])
        except (KeyError, ValueError):
            raise Refused(
                411, "length_required", "send the CAR with a Content-Length header"
            ) from None
        placeholder, signature = _parse_request(request, b"\x00" * 32, size)
        check_deadline(placeholder.deadline)
        check_size(size, settings)
        await run_in_threadpool(check_quota, placeholder.uploader, size)
        with tempfile.TemporaryDirectory(prefix="daimm-car-") as tmp:
            car_path = Path(tmp) / "upload.car"
            digest = hashlib.sha256()
            received = 0
            with car_path.open("wb") as fh:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > size:
                        raise Refused(
                            413, "upload_too_large",
                            "the body is longer than its signed size; nothing was stored",
                        )  # fmt: skip
                    digest.update(chunk)
                    fh.write(chunk)
            if received != size:
                raise Refused(
                    400,
                    "body_mismatch",
                    "the body is shorter than its Content-Length; send it again",
                )
            signed, _ = _parse_request(request, digest.digest(), received)
            try:
                eip712.verify_upload(signed, chain_id, registry, signature)
            except SignatureError as exc:
                raise Refused(
                    401, "bad_signature",
                    f"the upload is not signed by {placeholder.uploader} for these bytes ({exc});"
                    " the body may have been altered, or sign again",
                ) from None  # fmt: skip
            ledger = await run_in_threadpool(the_ledger)
            key = f"single:{signed.uploader}:{signed.nonce}"
            expires = signed.deadline + _MAX_DEADLINE_AHEAD_S
            await run_in_threadpool(
                admit, ledger, key, signed.uploader, signed.nonce, size, settings, expires
            )
            try:
                return await run_in_threadpool(_process, car_path, signed, settings, ledger, key)
            finally:
                await run_in_threadpool(ledger.release, key)  # a no-op once settled

    from daimm.web.upload_sessions import mount_upload_sessions

    mount_upload_sessions(app, chain_id=chain_id, registry=registry, settings=settings,
                          ledger=the_ledger)  # fmt: skip
