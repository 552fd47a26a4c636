"""Private key files: 0600, optional scrypt passphrase, strict parsing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from daimm.crypto import keys
from daimm.crypto.keys import (
    PublicKey,
    generate_private_key,
    load_private_key,
    parse_private_key,
    public_key_of,
    save_private_key,
    serialize_private_key,
)
from daimm.errors import CryptoError


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # NOTE: real cost parameters are exercised by the CLI test; here speed matters.
    monkeypatch.setattr(keys, "SCRYPT_N", 1 << 10)


def test_save_private_key__new_file__is_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "relayer.key"
    old = os.umask(0)
    try:
        save_private_key(path, generate_private_key())
    finally:
        os.umask(old)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_private_key__existing_file__raises_without_overwriting(tmp_path: Path) -> None:
    path = tmp_path / "relayer.key"
    path.write_text("keep me")

    with pytest.raises(CryptoError, match="already exists"):
        save_private_key(path, generate_private_key())

    assert path.read_text() == "keep me"


def test_load_private_key__round_trip__same_key(tmp_path: Path) -> None:
    path = tmp_path / "relayer.key"
    private = generate_private_key()
    save_private_key(path, private)

    assert public_key_of(load_private_key(path)) == public_key_of(private)


def test_load_private_key__readable_by_others__raises(tmp_path: Path) -> None:
    path = tmp_path / "relayer.key"
    save_private_key(path, generate_private_key())
    path.chmod(0o644)

    with pytest.raises(CryptoError, match="chmod 600"):
        load_private_key(path)


def test_parse_private_key__passphrase_round_trip__same_key() -> None:
    private = generate_private_key()
    data = serialize_private_key(private, "correct horse")

    assert "private_key" not in json.loads(data)
    assert public_key_of(parse_private_key(data, "correct horse")) == public_key_of(private)


def test_parse_private_key__wrong_passphrase__raises() -> None:
    data = serialize_private_key(generate_private_key(), "correct horse")

    with pytest.raises(CryptoError, match="wrong passphrase"):
        parse_private_key(data, "battery staple")


def test_parse_private_key__missing_passphrase__says_how_to_give_it() -> None:
    data = serialize_private_key(generate_private_key(), "correct horse")

    with pytest.raises(CryptoError, match="DAIMM_KEY_PASSPHRASE"):
        parse_private_key(data)


def test_parse_private_key__public_key_swapped__raises() -> None:
    doc = json.loads(serialize_private_key(generate_private_key()))
    doc["public_key"] = str(public_key_of(generate_private_key()))

    with pytest.raises(CryptoError, match="does not match"):
        parse_private_key(json.dumps(doc).encode())


def test_parse_private_key__sealed_key_moved_to_other_public_key__raises() -> None:
    doc = json.loads(serialize_private_key(generate_private_key(), "pw"))
    doc["public_key"] = str(public_key_of(generate_private_key()))

    with pytest.raises(CryptoError, match="wrong passphrase"):
        parse_private_key(json.dumps(doc).encode(), "pw")


def test_parse_private_key__huge_scrypt_cost__raises() -> None:
    doc = json.loads(serialize_private_key(generate_private_key(), "pw"))
    doc["encrypted"]["n"] = 1 << 30

    with pytest.raises(CryptoError, match="implausible scrypt"):
        parse_private_key(json.dumps(doc).encode(), "pw")


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b"\xff", b'{"kind": "x"}'])
def test_parse_private_key__not_a_key_file__raises(data: bytes) -> None:
    with pytest.raises(CryptoError, match="not a daimm private key file"):
        parse_private_key(data)


def test_public_key__text_round_trip__equal() -> None:
    public = public_key_of(generate_private_key())

    assert PublicKey.parse(str(public)) == public
    assert str(public).startswith("x25519:")


@pytest.mark.parametrize("text", ["", "x25519:", "x25519:zz", "ed25519:" + "00" * 32, "00" * 31])
def test_public_key__malformed_text__raises(text: str) -> None:
    with pytest.raises(CryptoError, match="not a daimm public key"):
        PublicKey.parse(text)


# ------------------------------------------------------------------ derive_private_key
from daimm.crypto.keys import DERIVE_INFO, derive_private_key  # noqa: E402

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: anvil's and ape's first test account (mnemonic "test ... junk").
_ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _wallet_signature() -> bytes:
    from eth_account import Account

    from daimm import eip712

    account = Account.from_key(_ANVIL_KEY)
    signed = account.sign_message(eip712.signable_creator_key(account.address))
    return eip712.encode_signature(signed.v, signed.r, signed.s)


def _hkdf_reference(ikm: bytes) -> bytes:
    import hashlib
    import hmac

    prk = hmac.new(bytes(32), ikm, hashlib.sha256).digest()  # RFC 5869: no salt = zeros
    return hmac.new(prk, DERIVE_INFO + b"\x01", hashlib.sha256).digest()


def test_derive_private_key__wallet_signature__hkdf_of_r_and_s() -> None:
    signature = _wallet_signature()
    expected = _hkdf_reference(signature[:64])
    assert derive_private_key(signature).private_bytes_raw() == expected


def test_derive_private_key__same_account_signs_again__same_key() -> None:
    # RFC 6979: the wallet's signature, and so the key, is reproducible.
    first, second = _wallet_signature(), _wallet_signature()
    assert first == second
    assert public_key_of(derive_private_key(first)) == public_key_of(derive_private_key(second))


def test_derive_private_key__high_s_twin_or_other_v__same_key() -> None:
    signature = _wallet_signature()
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    raw_v = signature[:64] + bytes([signature[64] - 27])
    key = derive_private_key(signature).private_bytes_raw()
    assert derive_private_key(twin).private_bytes_raw() == key
    assert derive_private_key(raw_v).private_bytes_raw() == key


def test_derive_private_key__other_signature__other_key() -> None:
    signature = bytearray(_wallet_signature())
    signature[5] ^= 1
    assert derive_private_key(bytes(signature)).private_bytes_raw() != _hkdf_reference(
        _wallet_signature()[:64]
    )


@pytest.mark.parametrize(
    "signature",
    [b"\x01" * 64, b"\x00" * 32 + b"\x01" * 32 + b"\x1b", b"\x01" * 32 + b"\xff" * 32 + b"\x1b"],
    ids=["64-bytes", "r-zero", "s-out-of-range"],
)
def test_derive_private_key__malformed_signature__refused(signature: bytes) -> None:
    with pytest.raises(CryptoError, match="signature"):
        derive_private_key(signature)


def test_creator_key_message__signed_by_account__verifies_and_others_do_not() -> None:
    from eth_account import Account

    from daimm import eip712
    from daimm.errors import SignatureError

    signature = _wallet_signature()
    eip712.verify_creator_key(Account.from_key(_ANVIL_KEY).address, signature)
    with pytest.raises(SignatureError):
        eip712.verify_creator_key(Account.create().address, signature)
