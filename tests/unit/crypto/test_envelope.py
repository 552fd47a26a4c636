"""Key envelopes: wrapping the content key for X25519 recipients, and refusing bad envelopes."""

from __future__ import annotations

import base64
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from daimm.crypto import encrypt_stream, generate_content_key, model_associated_data
from daimm.crypto.envelope import (
    SCHEME_HPKE,
    SCHEME_X25519,
    KeyEnvelope,
    add_recipient,
    default_scheme,
    unwrap_key,
    wrap_key,
)
from daimm.crypto.keys import PublicKey, public_key_of
from daimm.errors import CryptoError
from daimm.ipfs import hash_file

SCHEMES = [SCHEME_HPKE, SCHEME_X25519]

# Low-order points of Curve25519 (and their non-canonical encodings): X25519 with any of them
# gives an all-zero shared secret. From RFC 7748 section 6.1 and the well-known blocklist.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.fixture
def relayer() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture
def licensee() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unwrap__each_recipient__recovers_content_key(
    scheme: str, relayer: X25519PrivateKey, licensee: X25519PrivateKey
) -> None:
    content_key = generate_content_key()
    envelope = wrap_key(
        content_key, [public_key_of(relayer), public_key_of(licensee)], scheme=scheme
    )

    parsed = KeyEnvelope.from_json(envelope.to_json())

    assert unwrap_key(parsed, relayer) == content_key
    assert unwrap_key(parsed, licensee) == content_key


def test_default_scheme__hpke_available__uses_hpke() -> None:
    assert default_scheme() == SCHEME_HPKE


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unwrap__key_not_in_envelope__raises(scheme: str, relayer: X25519PrivateKey) -> None:
    envelope = wrap_key(generate_content_key(), [public_key_of(relayer)], scheme=scheme)

    with pytest.raises(CryptoError, match="no entry for public key"):
        unwrap_key(envelope, X25519PrivateKey.generate())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unwrap__tampered_wrapped_key__raises(scheme: str, relayer: X25519PrivateKey) -> None:
    doc = json.loads(
        wrap_key(generate_content_key(), [public_key_of(relayer)], scheme=scheme).to_json()
    )
    wrapped = bytearray(base64.b64decode(doc["recipients"][0]["wrapped_key"]))
    wrapped[0] ^= 1
    doc["recipients"][0]["wrapped_key"] = base64.b64encode(bytes(wrapped)).decode()

    with pytest.raises(CryptoError, match="failed to authenticate"):
        unwrap_key(KeyEnvelope.from_json(json.dumps(doc)), relayer)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_unwrap__entry_moved_to_another_recipient__raises(
    scheme: str, relayer: X25519PrivateKey, licensee: X25519PrivateKey
) -> None:
    # The licensee's public key is bound into the wrap: relabelling an entry does not work.
    doc = json.loads(
        wrap_key(generate_content_key(), [public_key_of(relayer)], scheme=scheme).to_json()
    )
    doc["recipients"][0]["public_key"] = str(public_key_of(licensee))

    with pytest.raises(CryptoError):
        unwrap_key(KeyEnvelope.from_json(json.dumps(doc)), licensee)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_wrap__low_order_recipient_key__refuses_all_zero_secret(point: bytes) -> None:
    with pytest.raises(CryptoError, match="all-zero shared secret"):
        wrap_key(generate_content_key(), [PublicKey(point)])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("point", LOW_ORDER_POINTS[:3], ids=lambda p: p.hex()[:8])
def test_unwrap__low_order_ephemeral_key__refuses_all_zero_secret(
    scheme: str, point: bytes, relayer: X25519PrivateKey
) -> None:
    doc = json.loads(
        wrap_key(generate_content_key(), [public_key_of(relayer)], scheme=scheme).to_json()
    )
    doc["recipients"][0]["enc"] = base64.b64encode(point).decode()

    with pytest.raises(CryptoError, match="all-zero shared secret"):
        unwrap_key(KeyEnvelope.from_json(json.dumps(doc)), relayer)


def _doc(relayer: X25519PrivateKey, scheme: str | None = None) -> dict:
    return json.loads(
        wrap_key(generate_content_key(), [public_key_of(relayer)], scheme=scheme).to_json()
    )


def _valid_doc(relayer: X25519PrivateKey) -> dict:
    return json.loads(wrap_key(generate_content_key(), [public_key_of(relayer)]).to_json())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json at all", "not JSON"),
        (lambda d: [], "not a daimm key envelope"),
        (lambda d: {**d, "kind": "other"}, "not a daimm key envelope"),
        (lambda d: {**d, "version": 2}, "version 2"),
        (lambda d: {**d, "extra": 1}, "unexpected or missing"),
        (lambda d: {k: v for k, v in d.items() if k != "scheme"}, "unexpected or missing"),
        (lambda d: {**d, "scheme": "rot13"}, "not supported"),
        (lambda d: {**d, "recipients": []}, "non-empty list"),
        (lambda d: {**d, "recipients": {}}, "non-empty list"),
        (lambda d: {**d, "recipients": ["x"]}, "each recipient"),
        (
            lambda d: {**d, "recipients": [{**d["recipients"][0], "enc": "!!"}]},
            "'enc' must be 32 bytes",
        ),
        (
            lambda d: {**d, "recipients": [{**d["recipients"][0], "wrapped_key": "AAAA"}]},
            "'wrapped_key' must be 48 bytes",
        ),
        (
            lambda d: {**d, "recipients": [{**d["recipients"][0], "public_key": "x25519:00"}]},
            "not a daimm public key",
        ),
        (
            lambda d: {**d, "recipients": [{**d["recipients"][0], "public_key": 5}]},
            "must be a string",
        ),
    ],
)
def test_from_json__malformed_envelope__raises(
    relayer: X25519PrivateKey, mutate, message: str
) -> None:
    doc = mutate(_valid_doc(relayer))
    text = doc if isinstance(doc, str) else json.dumps(doc)

    with pytest.raises(CryptoError, match=message):
        KeyEnvelope.from_json(text)


def test_add_recipient__new_licensee__opens_without_changing_ciphertext_cid(
    relayer: X25519PrivateKey, licensee: X25519PrivateKey
) -> None:
    content_key = generate_content_key()
    ciphertext = io.BytesIO()
    encrypt_stream(io.BytesIO(b"w" * 5000), ciphertext, content_key, model_associated_data(3, 1))
    cid_before = hash_file(io.BytesIO(ciphertext.getvalue())).cid
    envelope = wrap_key(content_key, [public_key_of(relayer)])

    shared = add_recipient(envelope, unwrap_key(envelope, relayer), public_key_of(licensee))

    assert unwrap_key(shared, licensee) == content_key
    assert len(shared.recipients) == 2
    assert hash_file(io.BytesIO(ciphertext.getvalue())).cid == cid_before


def test_wrap__no_recipients__raises() -> None:
    with pytest.raises(CryptoError, match="at least one recipient"):
        wrap_key(generate_content_key(), [])
