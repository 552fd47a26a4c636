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
