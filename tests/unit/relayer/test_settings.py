"""Relayer settings: config file (TOML or YAML), DAIMM_RELAYER_* overrides, key sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from daimm.errors import ConfigError
from daimm.relayer.settings import load_settings, write_settings

CONTRACTS = {
    name: "0x" + f"{i:02x}" * 20
    for i, name in enumerate(
        ["ModelRegistry", "LicenseNFT", "RelayerRegistry", "RentalEscrow", "CreditEscrow"], 1
    )
}


def test_toml_file_is_read_and_environment_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "relayer.toml"
    config.write_text(
        '[relayer]\nrpc_url = "http://node:8545"\nport = 9000\ndb_path = "state/r.db"\n'
        "[relayer.contracts]\n" + "\n".join(f'{k} = "{v}"' for k, v in CONTRACTS.items())
    )

    settings = load_settings(config, environ={"DAIMM_RELAYER_PORT": "9100"})

    assert settings.rpc_url == "http://node:8545"
    assert settings.port == 9100
    assert settings.db_path == tmp_path / "state" / "r.db"  # relative to the file
    assert settings.contract_addresses() == CONTRACTS


def test_state_location__is_the_sqlite_file_unless_a_state_url_is_set(tmp_path: Path) -> None:
    config = tmp_path / "relayer.toml"
    config.write_text('db_path = "r.db"\n')
    url = "postgresql://relayer:secret@db.internal:5432/relayer"

    plain = load_settings(config, environ={})
    shared = load_settings(config, environ={"DAIMM_RELAYER_STATE_URL": url})

    assert plain.state_location() == tmp_path / "r.db"
    assert shared.state_location() == url
    assert "secret" not in repr(shared)  # the URL may hold a password


def test_yaml_file_is_read(tmp_path: Path) -> None:
    config = tmp_path / "relayer.yaml"
    config.write_text("rpc_url: http://node:8545\nmax_body_bytes: 2048\n")

    settings = load_settings(config, environ={})

    assert (settings.rpc_url, settings.max_body_bytes) == ("http://node:8545", 2048)


def test_invalid_values_and_unknown_keys_are_refused_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "relayer.toml"
    config.write_text("port = 99999999\n")
    with pytest.raises(ConfigError, match="port"):
        load_settings(config, environ={})
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(config, environ={})


def test_missing_contract_addresses_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CreditEscrow"):
        load_settings(
            environ={}, contracts={"ModelRegistry": CONTRACTS["ModelRegistry"]}
        ).contract_addresses()


def test_the_key_file_must_be_private(tmp_path: Path) -> None:
    account = Account.create()
    key_file = tmp_path / "relayer.key"
    key_file.write_text(account.key.hex())
    key_file.chmod(0o644)
    settings = load_settings(environ={}, account_key_file=key_file)

    with pytest.raises(ConfigError, match="chmod 600"):
        settings.private_key()
    key_file.chmod(0o600)
    assert settings.private_key() == bytes(account.key)


def test_a_keystore_is_opened_with_the_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    account = Account.create()
    keystore = tmp_path / "relayer.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "s3cret", iterations=2)))
    settings = load_settings(environ={}, account_keystore=keystore)

    with pytest.raises(ConfigError, match="DAIMM_RELAYER_ACCOUNT_PASSWORD"):
        settings.private_key()
    monkeypatch.setenv("DAIMM_RELAYER_ACCOUNT_PASSWORD", "s3cret")
    assert settings.private_key() == bytes(account.key)


def test_write_settings__the_file_reads_back_as_written(tmp_path: Path) -> None:
    path = write_settings(
        tmp_path / "relayer.toml",
        rpc_url="http://127.0.0.1:8545",
        chain_id=1337,
        x25519_key_file=tmp_path / "relayer.x25519",
        storage_path=tmp_path / "blocks",
        port=8701,
        redeem_interval_s=2.0,
        contracts={"ModelRegistry": "0x" + "12" * 20},
    )

    settings = load_settings(path, environ={})

    assert (settings.rpc_url, settings.chain_id, settings.port) == (
        "http://127.0.0.1:8545",
        1337,
        8701,
    )
    assert settings.x25519_key_file == tmp_path / "relayer.x25519"
    assert settings.storage_path == tmp_path / "blocks"
    assert settings.redeem_interval_s == 2.0
    assert settings.contracts == {"ModelRegistry": "0x" + "12" * 20}


def test_write_settings__unknown_or_invalid_field__refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="redeem_every"):
        write_settings(tmp_path / "a.toml", redeem_every=2)
    with pytest.raises(ConfigError, match="port"):
        write_settings(tmp_path / "b.toml", port=-1)

    assert list(tmp_path.iterdir()) == []
