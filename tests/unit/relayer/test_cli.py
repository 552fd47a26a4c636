"""`daimm verify-receipt` and the relayer command group."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from eth_account import Account

from daimm import eip712
from daimm.cli import cli, main

REGISTRY = "0x" + "12" * 20


def _answer(relayer_key: bytes) -> dict:
    outputs = {"label": [1]}
    outputs_hash = eip712.keccak256(
        json.dumps(outputs, sort_keys=True, separators=(",", ":")).encode()
    )
    receipt = eip712.Receipt(3, "bafy-w", b"\x01" * 32, outputs_hash, 1_700_000_000)
    signature = eip712.sign_receipt(receipt, 31337, REGISTRY, relayer_key)
    return {
        "outputs": outputs,
        "receipt": {
            "modelId": 3, "weightsCid": "bafy-w", "inputsHash": "0x" + "01" * 32,
            "outputsHash": "0x" + outputs_hash.hex(), "timestamp": 1_700_000_000,
            "chainId": 31337, "verifyingContract": REGISTRY, "signature": "0x" + signature.hex(),
        },
    }  # fmt: skip


def test_verify_receipt_accepts_the_relayers_receipt(tmp_path: Path) -> None:
    relayer = Account.create()
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(_answer(bytes(relayer.key))))

    result = CliRunner().invoke(cli, ["verify-receipt", str(path), "--relayer", relayer.address])

    assert result.exit_code == 0, result.output
    assert "OK: receipt for model 3" in result.output


def test_verify_receipt_fails_for_another_relayer_or_altered_outputs(
    tmp_path: Path, capsys: object
) -> None:
    relayer = Account.create()
    answer = _answer(bytes(relayer.key))
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(answer))
    other = CliRunner().invoke(
        cli, ["verify-receipt", str(path), "--relayer", Account.create().address]
    )
    answer["outputs"] = {"label": [2]}
    path.write_text(json.dumps(answer))
    altered = CliRunner().invoke(cli, ["verify-receipt", str(path), "--relayer", relayer.address])

    assert other.exit_code != 0
    assert "not by relayer" in str(other.exception)
    assert altered.exit_code != 0
    assert "outputsHash" in str(altered.exception)


def test_the_cli_turns_a_bad_receipt_into_one_line_and_exit_1(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(_answer(bytes(Account.create().key))))
    try:
        main(["verify-receipt", str(path), "--relayer", Account.create().address])
    except SystemExit as exc:
        assert exc.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: receipt was signed by")
    assert "Traceback" not in err


def test_relayer_group_has_serve_and_the_admin_verbs() -> None:
    result = CliRunner().invoke(cli, ["relayer", "--help"])
    assert result.exit_code == 0
    for verb in ("serve", "register", "authorise"):
        assert verb in result.output
