"""``POST /api/uploads``: a signed CAR of daimm content is verified, stored and pinned; every
refusal (a block not matching its CID, plaintext, a truncated ciphertext, stray blocks, over the
size limit, over the quota, a replay, a wrong or expired signature) stores nothing.

The endpoint is mounted on a bare FastAPI app over a real local block store and ledger (no chain
is needed: the signature is EIP-712 over a fixed domain, signed here with a throwaway key).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient

from daimm import eip712
from daimm.crypto import (
    encrypt_stream,
    generate_content_key,
    generate_private_key,
    model_associated_data,
    public_key_of,
    wrap_key,
)
from daimm.ipfs import LocalBlockstore
from daimm.ipfs.car import write_car
from daimm.ipfs.files import fetch_file
from daimm.ipfs.multiformats import CID
from daimm.ipfs.unixfs import KUBO_CID_V1, import_file
from daimm.web.upload import UploadSettings, mount_uploads

CHAIN_ID = 31337
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
LIMIT = 256 * 1024
QUOTA = 400 * 1024


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    store = LocalBlockstore(tmp_path / "blocks")

    @contextlib.contextmanager
    def backend() -> Iterator[LocalBlockstore]:
        yield store

    settings = UploadSettings(backend, tmp_path / "ledger.sqlite", LIMIT, QUOTA)
    app = FastAPI()
    mount_uploads(app, chain_id=CHAIN_ID, registry=REGISTRY, settings=settings)
    with TestClient(app) as client:
        yield {"client": client, "store": store}


@pytest.fixture
def wallet() -> Any:
    return Account.create()


def _dag(data: bytes) -> tuple[CID, list[tuple[CID, bytes]]]:
    blocks: list[tuple[CID, bytes]] = []
    result = import_file(io.BytesIO(data), lambda c, b: blocks.append((c, b)), KUBO_CID_V1)
    return result.cid, blocks


def _car(*files: bytes, extra: list[tuple[CID, bytes]] = ()) -> tuple[bytes, list[CID]]:
    roots, blocks = [], list(extra)
    for data in files:
        root, dag = _dag(data)
        roots.append(root)
        blocks += dag
    out = io.BytesIO()
    write_car(roots, blocks, out)
    return out.getvalue(), roots


def _ciphertext(size: int = 100_000) -> bytes:
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(os.urandom(size)), out, generate_content_key(), model_associated_data(7, 1),
        segment_size=16 * 1024,
    )  # fmt: skip
    return out.getvalue()


def _envelope() -> bytes:
    return wrap_key(generate_content_key(), [public_key_of(generate_private_key())]).to_json()


CARD = (
    Path(__file__).resolve().parents[3] / "src/daimm/samples/breast_cancer.card.json"
).read_bytes()


def _headers(wallet: Any, body: bytes, *, nonce: int = 1, deadline: int | None = None,
             size: int | None = None, signer: Any = None) -> dict[str, str]:  # fmt: skip
    request = eip712.UploadRequest(
        uploader=wallet.address,
        body_hash=hashlib.sha256(body).digest(),
        size=len(body) if size is None else size,
        nonce=nonce,
        deadline=int(time.time()) + 300 if deadline is None else deadline,
    )
    signature = eip712.sign_upload(request, CHAIN_ID, REGISTRY, (signer or wallet).key)
    return {
        "x-daimm-uploader": wallet.address,
        "x-daimm-nonce": str(request.nonce),
        "x-daimm-deadline": str(request.deadline),
        "x-daimm-signature": "0x" + signature.hex(),
    }


def _post(server: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
    return server["client"].post("/api/uploads", content=body, headers=headers)


def test_upload__ciphertext_envelope_and_card__all_stored_and_readable(server, wallet) -> None:
    ciphertext, envelope = _ciphertext(), _envelope()
    body, roots = _car(ciphertext, envelope, CARD)
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert [r["kind"] for r in doc["roots"]] == ["ciphertext", "envelope", "card"]
    assert [r["cid"] for r in doc["roots"]] == [str(r) for r in roots]
    assert doc["quota_left"] == QUOTA - len(body)
    for root, original in zip(roots, (ciphertext, envelope, CARD), strict=True):
        out = io.BytesIO()
        fetch_file(root, server["store"], out)
        assert out.getvalue() == original


def test_upload__block_not_matching_its_cid__refused_nothing_stored(server, wallet) -> None:
    body, _ = _car(_ciphertext())
    tampered = bytearray(body)
    tampered[-10] ^= 1  # inside the last block's data
    body = bytes(tampered)
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert answer.json()["error"] == "block_mismatch"
    assert server["store"].count() == 0


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x08\x07onnx-ish plaintext weights" * 100, "neither a daimm ciphertext"),
        (json.dumps({"kind": "daimm-key-envelope", "version": 1}).encode(), "key envelope"),
        (json.dumps(["no", "name"]).encode(), "neither a daimm ciphertext"),
        (json.dumps({"name": "m", "task": "tabular-classification"}).encode(), "'inputs'"),
    ],
    ids=["plaintext", "malformed-envelope", "json-not-a-card", "card-without-inputs"],
)
def test_upload__not_daimm_content__refused(server, wallet, content: bytes, why: str) -> None:
    body, _ = _car(content)
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert answer.json()["error"] == "not_daimm_content"
    assert why in answer.json()["detail"]
    assert server["store"].count() == 0


def test_upload__ciphertext_cut_inside_a_tag__refused_as_not_whole(server, wallet) -> None:
    # NOTE: the server has no key, so it checks the size against the framing only: a cut that
    # leaves a final segment shorter than a tag (any other cut fails decryption, not here).
    body, _ = _car(_ciphertext()[: 83 + 6 * (16 * 1024 + 16) + 10])
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert "truncated or extended" in answer.json()["detail"]
    assert server["store"].count() == 0


def test_upload__block_outside_every_root__refused(server, wallet) -> None:
    _, stray = _dag(b"smuggled bytes that belong to no root")
    body, _ = _car(CARD, extra=stray)
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert "belong to no root" in answer.json()["detail"]


def test_upload__not_a_car__refused(server, wallet) -> None:
    body = b"\x05hello world"
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert answer.json()["error"] == "bad_car"


def test_upload__over_the_size_limit__refused_before_reading(server, wallet) -> None:
    body, _ = _car(_ciphertext(LIMIT + 1))
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 413
    assert answer.json()["error"] == "upload_too_large"
    assert str(LIMIT) in answer.json()["detail"]


def test_upload__over_the_address_quota__refused(server, wallet) -> None:
    first, _ = _car(_ciphertext(200_000))
    assert _post(server, first, _headers(wallet, first, nonce=1)).status_code == 200
    second, _ = _car(_ciphertext(220_000))
    answer = _post(server, second, _headers(wallet, second, nonce=2))
    assert answer.status_code == 403
    assert answer.json()["error"] == "over_quota"
    other = Account.create()  # the quota is per address
    assert _post(server, second, _headers(other, second, nonce=2)).status_code == 200


def test_upload__same_signed_request_twice__replay_refused(server, wallet) -> None:
    body, _ = _car(CARD)
    headers = _headers(wallet, body, nonce=42)
    assert _post(server, body, headers).status_code == 200
    answer = _post(server, body, headers)
    assert answer.status_code == 409
    assert answer.json()["error"] == "replayed_upload"


def test_upload__signed_by_another_key__refused(server, wallet) -> None:
    body, _ = _car(CARD)
    answer = _post(server, body, _headers(wallet, body, signer=Account.create()))
    assert answer.status_code == 401
    assert answer.json()["error"] == "bad_signature"
    assert server["store"].count() == 0


def test_upload__body_changed_after_signing__refused(server, wallet) -> None:
    body, _ = _car(CARD)
    other, _ = _car(CARD.replace(b"Breast", b"Other"))
    headers = _headers(wallet, body)
    answer = _post(server, other, headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "bad_signature"


def test_upload__deadline_passed__refused(server, wallet) -> None:
    body, _ = _car(CARD)
    answer = _post(server, body, _headers(wallet, body, deadline=int(time.time()) - 1))
    assert answer.status_code == 401
    assert answer.json()["error"] == "upload_expired"


def test_upload__missing_signature_header__refused(server, wallet) -> None:
    body, _ = _car(CARD)
    headers = _headers(wallet, body)
    del headers["x-daimm-signature"]
    answer = _post(server, body, headers)
    assert answer.status_code == 400
    assert "x-daimm-signature" in answer.json()["detail"]


def test_upload__daimm_web_app__mounts_the_endpoint(client: Any) -> None:
    # `client` is the real `daimm web` app of tests/unit/web/conftest.py.
    answer = client.post("/api/uploads", content=b"x", headers={"x-daimm-nonce": "1"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "bad_upload_request",
        "detail": "the x-daimm-uploader header is missing",
    }


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "LocalBlockstore"),
        ({"DAIMM_KUBO_URL": "http://127.0.0.1:5001"}, "KuboRpc"),
        (
            {"DAIMM_PINNING_URL": "https://pins.example/psa", "DAIMM_PINNING_TOKEN": "t"},
            "PinningService",
        ),
    ],
    ids=["local", "kubo", "pinning"],
)
def test_upload_settings__from_env__the_configured_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    for name in ("DAIMM_KUBO_URL", "DAIMM_PINNING_URL", "DAIMM_PINNING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAIMM_STORE", str(tmp_path / "blocks"))
    monkeypatch.setenv("DAIMM_UPLOAD_LEDGER", str(tmp_path / "ledger.sqlite"))
    monkeypatch.setenv("DAIMM_UPLOAD_MAX_BYTES", "1000")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = UploadSettings.from_env()
    assert (settings.max_bytes, settings.ledger) == (1000, tmp_path / "ledger.sqlite")
    with settings.backend() as backend:
        assert type(backend).__name__ == expected
    assert not (tmp_path / "ledger.sqlite").exists()  # opened on the first upload only


def test_upload_settings__limit_not_a_number__refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from daimm.errors import ValidationError

    monkeypatch.setenv("DAIMM_UPLOAD_MAX_BYTES", "2GB")
    with pytest.raises(ValidationError, match="whole numbers of bytes"):
        UploadSettings.from_env()


def test_upload__a_review_comment__stored_as_plain_text(server, wallet) -> None:
    comment = "Accurate and fast ✓\nWould rent again.".encode()
    body, [root] = _car(comment)

    answer = _post(server, body, _headers(wallet, body))

    assert answer.status_code == 200, answer.text
    assert answer.json()["roots"] == [{"cid": str(root), "kind": "comment"}]
    out = io.BytesIO()
    fetch_file(root, server["store"], out)
    assert out.getvalue() == comment


@pytest.mark.parametrize(
    "content",
    [b"x" * 4097, b"text with a \x00 control byte", "\u202e".encode() + b"\xff"],
    ids=["over-4-KiB", "control-byte", "not-utf8"],
)
def test_upload__not_a_plain_text_comment__refused(server, wallet, content: bytes) -> None:
    body, _ = _car(content)
    answer = _post(server, body, _headers(wallet, body))
    assert answer.status_code == 422
    assert answer.json()["error"] == "not_daimm_content"
    assert server["store"].count() == 0


# ------------------------------------------------------------------ uploads in pieces
PIECE = 300 * 1024  # a 256 KiB block and its section fit in one piece


@pytest.fixture
def pieces_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    store = LocalBlockstore(tmp_path / "blocks")

    @contextlib.contextmanager
    def backend() -> Iterator[LocalBlockstore]:
        yield store

    settings = UploadSettings(
        backend, tmp_path / "ledger.sqlite", max_bytes=2 << 20, quota_bytes=3 << 20,
        piece_bytes=PIECE, staging=tmp_path / "staging",
    )  # fmt: skip
    app = FastAPI()
    mount_uploads(app, chain_id=CHAIN_ID, registry=REGISTRY, settings=settings)
    with TestClient(app) as client:
        yield {"client": client, "store": store, "staging": tmp_path / "staging"}


def _split(car: bytes, limit: int = PIECE, *, header: bool = True) -> list[bytes]:
    """The CAR (or its sections) cut at section boundaries into pieces of at most ``limit``
    bytes, as ipfs.js cuts them."""
    from daimm.ipfs.multiformats import decode_varint

    length, used = decode_varint(car[:10]) if header else (0, 0)
    bounds, at = [used + length], used + length
    while at < len(car):
        length, used = decode_varint(car[at : at + 10])
        at += used + length
        bounds.append(at)
    pieces, start, end = [], 0, 0
    for bound in bounds:
        if bound - start > limit and end > start:
            pieces.append(car[start:end])
            start = end
        end = bound
    pieces.append(car[start:end])
    return pieces


def _open(server: dict[str, Any], wallet: Any, pieces: list[bytes], *, nonce: int = 1,
          size: int | None = None, signer: Any = None) -> Any:  # fmt: skip
    digests = [hashlib.sha256(p).digest() for p in pieces]
    request = eip712.UploadSessionRequest(
        uploader=wallet.address,
        pieces_hash=hashlib.sha256(b"".join(digests)).digest(),
        pieces=len(pieces),
        size=sum(map(len, pieces)) if size is None else size,
        nonce=nonce,
        deadline=int(time.time()) + 300,
    )
    signature = eip712.sign_upload_session(request, CHAIN_ID, REGISTRY, (signer or wallet).key)
    headers = {
        "x-daimm-uploader": wallet.address,
        "x-daimm-nonce": str(nonce),
        "x-daimm-deadline": str(request.deadline),
        "x-daimm-signature": "0x" + signature.hex(),
    }
    body = {"size": request.size, "pieces": [d.hex() for d in digests]}
    return server["client"].post("/api/uploads/sessions", json=body, headers=headers)


def _put(server: dict[str, Any], sid: str, n: int, piece: bytes) -> Any:
    return server["client"].put(f"/api/uploads/sessions/{sid}/pieces/{n}", content=piece)


def _commit(server: dict[str, Any], sid: str) -> Any:
    return server["client"].post(f"/api/uploads/sessions/{sid}/commit")


def _model_car() -> tuple[bytes, list[CID], tuple[bytes, ...]]:
    files = (_ciphertext(700_000), _envelope(), CARD)
    body, roots = _car(*files)
    return body, roots, files


def test_upload_in_pieces__every_piece_then_commit__stored_and_readable(
    pieces_server, wallet
) -> None:
    body, roots, files = _model_car()
    pieces = _split(body)
    assert len(pieces) >= 3 and max(map(len, pieces)) <= PIECE
    opened = _open(pieces_server, wallet, pieces)
    assert opened.status_code == 200, opened.text
    sid = opened.json()["session"]
    for n, piece in enumerate(pieces):
        answer = _put(pieces_server, sid, n, piece)
        assert answer.status_code == 200, answer.text
    assert pieces_server["store"].count() == 0  # staged only, until the commit
    done = _commit(pieces_server, sid)
    assert done.status_code == 200, done.text
    doc = done.json()
    assert [r["kind"] for r in doc["roots"]] == ["ciphertext", "envelope", "card"]
    assert doc["quota_left"] == (3 << 20) - len(body)
    for root, original in zip(roots, files, strict=True):
        out = io.BytesIO()
        fetch_file(root, pieces_server["store"], out)
        assert out.getvalue() == original
    assert list(pieces_server["staging"].iterdir()) == []  # the staging folder is cleaned up
    assert _commit(pieces_server, sid).json()["error"] == "unknown_session"


def test_upload_in_pieces__piece_out_of_order__refused(pieces_server, wallet) -> None:
    pieces = _split(_model_car()[0])
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    answer = _put(pieces_server, sid, 1, pieces[1])
    assert answer.status_code == 409
    assert answer.json()["error"] == "bad_piece_order"
    assert "send piece 0" in answer.json()["detail"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200  # the session goes on


def test_upload_in_pieces__piece_sent_twice__replay_refused(pieces_server, wallet) -> None:
    pieces = _split(_model_car()[0])
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200
    answer = _put(pieces_server, sid, 0, pieces[0])
    assert answer.status_code == 409
    assert answer.json()["error"] == "replayed_piece"


def test_upload_in_pieces__piece_over_the_piece_limit__refused(pieces_server, wallet) -> None:
    body = _model_car()[0]
    first = _split(body, limit=2 * PIECE)[0]  # signed, but twice the server's piece limit
    pieces = [first, *_split(body[len(first) :], 1, header=False)]  # a piece a block
    too_few = _open(pieces_server, wallet, [first, body[len(first) :]], nonce=1)
    assert (too_few.status_code, too_few.json()["error"]) == (413, "piece_too_large")
    sid = _open(pieces_server, wallet, pieces, nonce=2).json()["session"]
    answer = _put(pieces_server, sid, 0, pieces[0])
    assert answer.status_code == 413
    assert answer.json()["error"] == "piece_too_large"
    assert str(PIECE) in answer.json()["detail"]


def test_upload_in_pieces__block_not_matching_its_cid__refused_session_closed(
    pieces_server, wallet
) -> None:
    body = bytearray(_model_car()[0])
    pieces = _split(bytes(body))
    tampered = bytearray(pieces[1])
    tampered[-10] ^= 1  # inside a block's data; signed as tampered, so only the CID check fails
    pieces[1] = bytes(tampered)
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200
    answer = _put(pieces_server, sid, 1, pieces[1])
    assert answer.status_code == 422
    assert answer.json()["error"] == "block_mismatch"
    assert "session is closed" in answer.json()["detail"]
    assert _put(pieces_server, sid, 2, pieces[2]).json()["error"] == "unknown_session"
    assert pieces_server["store"].count() == 0
    assert list(pieces_server["staging"].iterdir()) == []


def test_upload_in_pieces__piece_cutting_a_block__refused(pieces_server, wallet) -> None:
    body = _model_car()[0]
    pieces = [body[:PIECE], body[PIECE : 2 * PIECE], body[2 * PIECE :]]  # cut mid-section
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    answer = _put(pieces_server, sid, 0, pieces[0])
    assert answer.status_code == 422
    assert answer.json()["error"] == "bad_car"
    assert "truncated CAR section" in answer.json()["detail"]


def test_upload_in_pieces__piece_not_the_signed_one__refused_then_resent(
    pieces_server, wallet
) -> None:
    pieces = _split(_model_car()[0])
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    answer = _put(pieces_server, sid, 0, pieces[0][:-1] + bytes([pieces[0][-1] ^ 0xFF]))
    assert answer.status_code == 422
    assert answer.json()["error"] == "piece_mismatch"
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200  # sent again, intact


def test_upload_in_pieces__total_over_the_size_limit__refused_at_open(
    pieces_server, wallet
) -> None:
    pieces = _split(_model_car()[0])
    answer = _open(pieces_server, wallet, pieces, size=(2 << 20) + 1)
    assert answer.status_code == 413
    assert answer.json()["error"] == "upload_too_large"


def test_upload_in_pieces__pieces_longer_than_signed_size__refused(pieces_server, wallet) -> None:
    pieces = _split(_model_car()[0])
    sid = _open(pieces_server, wallet, pieces, size=len(pieces[0]) + 10).json()["session"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200
    answer = _put(pieces_server, sid, 1, pieces[1])
    assert answer.status_code == 413
    assert answer.json()["error"] == "upload_too_large"


def test_upload_in_pieces__commit_before_every_piece__refused(pieces_server, wallet) -> None:
    pieces = _split(_model_car()[0])
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200
    answer = _commit(pieces_server, sid)
    assert answer.status_code == 409
    assert answer.json()["error"] == "incomplete_upload"
    assert f"1 of {len(pieces)} pieces" in answer.json()["detail"]
    assert pieces_server["store"].count() == 0


def test_upload_in_pieces__plaintext_committed__refused_nothing_stored(
    pieces_server, wallet
) -> None:
    body, _ = _car(os.urandom(500_000))
    pieces = _split(body)
    sid = _open(pieces_server, wallet, pieces).json()["session"]
    for n, piece in enumerate(pieces):
        assert _put(pieces_server, sid, n, piece).status_code == 200
    answer = _commit(pieces_server, sid)
    assert answer.status_code == 422
    assert answer.json()["error"] == "not_daimm_content"
    assert pieces_server["store"].count() == 0
    assert list(pieces_server["staging"].iterdir()) == []


def test_upload_in_pieces__session_replayed_or_signed_by_another__refused(
    pieces_server, wallet
) -> None:
    pieces = _split(_model_car()[0])
    assert _open(pieces_server, wallet, pieces, nonce=5).status_code == 200
    replay = _open(pieces_server, wallet, pieces, nonce=5)
    assert (replay.status_code, replay.json()["error"]) == (409, "replayed_upload")
    forged = _open(pieces_server, wallet, pieces, nonce=6, signer=Account.create())
    assert (forged.status_code, forged.json()["error"]) == (401, "bad_signature")


def test_upload_in_pieces__open_sessions_count_against_the_quota(pieces_server, wallet) -> None:
    body = _model_car()[0]  # ~0.7 MiB; the quota is 3 MiB
    pieces = _split(body)
    opened = [_open(pieces_server, wallet, pieces, nonce=n) for n in range(1, 6)]
    codes = [o.status_code for o in opened]
    assert codes == [200] * 4 + [403]  # nothing stored yet, yet the fifth does not fit
    assert opened[-1].json()["error"] == "over_quota"
    sid = opened[0].json()["session"]  # abandoning one frees its bytes
    assert pieces_server["client"].delete(f"/api/uploads/sessions/{sid}").status_code == 200
    assert _open(pieces_server, wallet, pieces, nonce=9).status_code == 200


def test_upload_in_pieces__two_concurrent_sessions_over_the_quota__one_refused(
    pieces_server, wallet
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    big, _ = _car(_ciphertext(1_700_000))  # two of these pass the 3 MiB quota; one fits
    pieces = _split(big)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda n: _open(pieces_server, wallet, pieces, nonce=n), (1, 2)))
    assert sorted(a.status_code for a in answers) == [200, 403]


def test_upload_ledger__concurrent_reservations__never_past_the_quota(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from daimm.web.upload import UploadLedger

    ledger = UploadLedger(tmp_path / "ledger.sqlite")
    address = Account.create().address
    expires = int(time.time()) + 60

    def reserve(n: int) -> int | None:
        return ledger.reserve(f"k{n}", address, 100, 350, expires)

    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = [r for r in pool.map(reserve, range(32)) if r is not None]
    assert len(granted) == 3
    assert ledger.used(address) == 300


def test_upload_ledger__settle_fails_half_way__the_reservation_stays(tmp_path: Path) -> None:
    import sqlite3

    from daimm.web.upload import UploadLedger

    ledger = UploadLedger(tmp_path / "ledger.sqlite")
    address = Account.create().address
    ledger.reserve("k", address, 100, 1000, int(time.time()) + 60)
    # The second write of a settlement fails (as a full disk would), after the first one.
    ledger._db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON usage BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        ledger.settle("k")

    # Nothing of it was kept: the bytes still count (the reservation was not dropped unpaid).
    assert ledger.state("k") is not None
    assert ledger.used(address) == 100
    ledger._db.execute("DROP TRIGGER fail")
    ledger.settle("k")
    assert ledger.state("k") is None
    assert ledger.used(address) == 100


def test_upload_in_pieces__abandoned_session__staging_deleted_quota_released(
    pieces_server, wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from daimm.web import upload_sessions

    body = _model_car()[0]
    pieces = _split(body)
    sid = _open(pieces_server, wallet, pieces, nonce=1).json()["session"]
    assert _put(pieces_server, sid, 0, pieces[0]).status_code == 200
    assert (pieces_server["staging"] / sid).exists()
    later = int(time.time()) + 300 + upload_sessions.SESSION_GRACE_S + 1
    monkeypatch.setattr(upload_sessions, "_clock", lambda: later)
    answer = _put(pieces_server, sid, 1, pieces[1])
    assert answer.json()["error"] == "unknown_session"
    assert not (pieces_server["staging"] / sid).exists()
    monkeypatch.undo()
    for n in range(2, 6):  # the abandoned session's bytes count no more: four fit again
        assert _open(pieces_server, wallet, pieces, nonce=n).status_code == 200


def test_upload__two_concurrent_single_uploads_over_the_quota__one_refused(server, wallet) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = [_car(_ciphertext(210_000))[0] for _ in range(2)]  # each fits; both pass QUOTA
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(
            pool.map(lambda i: _post(server, bodies[i], _headers(wallet, bodies[i], nonce=i)),
                     (0, 1))
        )  # fmt: skip
    assert sorted(a.status_code for a in answers) == [200, 403]
