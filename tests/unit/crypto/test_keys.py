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
