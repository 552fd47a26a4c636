"""The relayer's fast digests and signatures agree with daimm.eip712 (the reference)."""

from __future__ import annotations

import secrets

import pytest
from eth_account import Account

from daimm import eip712
from daimm.errors import SignatureError
from daimm.relayer import signing
from daimm.relayer.signing import DigestBuilder, ReceiptSigner, SignatureVerifier

REGISTRY = "0x" + "12" * 20


def test_request_and_receipt_digests_equal_the_reference() -> None:
    builder = DigestBuilder(31337, REGISTRY)
    relayer = Account.create().address
    for _ in range(20):
        body_hash = secrets.token_bytes(32)
        nonce, deadline, model = secrets.randbits(256), secrets.randbits(64), secrets.randbits(256)
        request = eip712.PredictRequest(model, body_hash, nonce, deadline, 31337, relayer)
        receipt = eip712.Receipt(model, "bafy" + secrets.token_hex(20), body_hash,
                                 secrets.token_bytes(32), deadline)  # fmt: skip

        assert builder.request(model, body_hash, nonce, deadline, 31337, relayer) == (
            eip712.predict_request_digest(request, REGISTRY)
        )
        fast = builder.receipt(
            model, receipt.weights_cid, body_hash, receipt.outputs_hash, deadline
        )
        assert fast == eip712.receipt_digest(receipt, 31337, REGISTRY)


@pytest.mark.parametrize("fast", [False, True])
def test_receipt_signatures_recover_to_the_relayer_with_the_reference(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(signing, "FAST_BACKEND", fast)
    account = Account.create()
    signer = ReceiptSigner(bytes(account.key))
    receipt = eip712.Receipt(1, "bafy-x", b"\x01" * 32, b"\x02" * 32, 123)
    digest = eip712.receipt_digest(receipt, 31337, REGISTRY)

    for _ in range(10):
        signature = signer.sign(digest)
        _v, _r, s = eip712.split_signature(signature)  # refuses high s and bad v
        assert eip712.is_low_s(s)
        assert eip712.recover_receipt_signer(receipt, 31337, REGISTRY, signature) == account.address


@pytest.mark.parametrize("fast", [False, True])
def test_verifier_accepts_the_signer_and_refuses_anyone_else(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(signing, "FAST_BACKEND", fast)
    user, other = Account.create(), Account.create()
    verifier = SignatureVerifier()
    for round_ in range(3):  # the first check recovers, later ones use the cached key
        digest = secrets.token_bytes(32)
        signature = ReceiptSigner(bytes(user.key)).sign(digest)

        assert verifier.is_signed_by(digest, signature, user.address), round_
        assert not verifier.is_signed_by(digest, signature, other.address)
        assert not verifier.is_signed_by(secrets.token_bytes(32), signature, user.address)


def test_verifier_refuses_the_high_s_twin() -> None:
    user = Account.create()
    digest = secrets.token_bytes(32)
    v, r, s = eip712.split_signature(ReceiptSigner(bytes(user.key)).sign(digest))
    twin = r.to_bytes(32, "big") + (eip712.SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])

    with pytest.raises(SignatureError, match="high-s"):
        SignatureVerifier().is_signed_by(digest, twin, user.address)
