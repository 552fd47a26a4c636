"""CIDs and varints: the text and binary forms Kubo uses, and refusal of what cannot be verified."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daimm.errors import IntegrityError, ValidationError
from daimm.ipfs.multiformats import CID, DAG_PB, RAW, decode_varint, encode_varint, verify_block

EMPTY_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_RAW = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


@pytest.mark.parametrize(
    "text", [EMPTY_V0, EMPTY_RAW, "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"]
)
def test_cid__parse_then_print__same_text(text: str) -> None:
    assert str(CID.parse(text)) == text


def test_cid__raw_empty_block__is_sha256_of_nothing() -> None:
    assert CID.parse(EMPTY_RAW) == CID(1, RAW, hashlib.sha256(b"").digest())


def test_cid__v0_to_v1__same_digest_base32() -> None:
    v1 = CID.parse(EMPTY_V0).to_v1()

    assert v1.codec == DAG_PB
    assert str(v1).startswith("bafybei")
    assert CID.parse(str(v1)).digest == CID.parse(EMPTY_V0).digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty CID"),
        ("hello", "not a CID"),
        ("Qm" + "0" * 44, "not base58btc"),
        ("b!!!!", "not base32"),
        ("bafyrei" + "a" * 52, "codec"),  # dag-cbor: not a UnixFS file block
        ("f01551420" + "00" * 32, "sha2-256"),  # sha2-512 multihash code
    ],
)
def test_cid__unverifiable_or_malformed__raises(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CID.parse(text)


def test_verify_block__wrong_bytes__raises_naming_the_cid() -> None:
    cid = CID.for_block(b"weights", version=1, codec=RAW)

    with pytest.raises(IntegrityError, match=str(cid)):
        verify_block(cid, b"weightz")


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_varint__round_trip__same_value(value: int) -> None:
    raw = encode_varint(value)

    assert decode_varint(raw) == (value, len(raw))


def test_varint__not_minimal__raises() -> None:
    with pytest.raises(ValidationError, match="minimally"):
        decode_varint(b"\x81\x00")
