"""What every command shares, as a newcomer meets it: an example in each --help, one meaning per
option name, networks in ape's syntax (a node URL included), and one error line, never a
traceback."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from daimm.cli import cli, main
from daimm.cli.catalog import network_key_of


def _commands() -> Iterator[tuple[str, click.Command]]:
    """Every leaf command, by its full name (``relayer serve``)."""
    stack: list[tuple[str, click.Command]] = [
        (name, cli.get_command(None, name))  # type: ignore[arg-type,misc]
        for name in cli.list_commands(None)  # type: ignore[arg-type]
    ]
    while stack:
        name, command = stack.pop()
        if isinstance(command, click.Group):
            stack += [(f"{name} {sub}", command.commands[sub]) for sub in command.commands]
        else:
            yield name, command


def test_every_command__help__shows_an_example():
    missing = []
    for name, _command in _commands():
        result = CliRunner().invoke(cli, [*name.split(), "--help"])
        assert result.exit_code == 0, (name, result.output)
        if "Example" not in result.output:
            missing.append(name)

    assert missing == []


def test_every_command__relayer_option__is_the_relayers_address():
    meanings = {}
    for name, command in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and "--relayer" in param.opts:
                meanings[name] = param.help or ""

    assert {"infer", "verify-receipt", "credit deposit"} <= set(meanings)
    assert [n for n, text in meanings.items() if "address" not in text.lower()] == []
    assert [n for n, text in meanings.items() if "URL" in text] == []


def test_infer__relayer_given_a_url__says_to_use_relayer_url(tmp_path):
    sample = tmp_path / "input.json"
    sample.write_text('{"input": [[1.0]]}')

    result = CliRunner().invoke(
        cli, ["infer", "1", "--input", str(sample), "--relayer", "http://127.0.0.1:8700"]
    )

    assert result.exit_code == 2
    assert "give its URL with --relayer-url" in result.output


def test_network_key__a_node_url__is_recorded_under_ape_node_provider():
    assert network_key_of("ethereum:local:http://127.0.0.1:8545") == "ethereum:local:node"
    assert network_key_of("ethereum:local:foundry") == "ethereum:local:foundry"
    assert network_key_of("ethereum:sepolia:alchemy") == "ethereum:sepolia"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_catalog_sync__network_given_as_a_node_url__reads_that_node(capsys, tmp_path):
    code, err = _run(
        capsys,
        "catalog",
        "sync",
        "--network=ethereum:local:http://127.0.0.1:9",
        f"--db-url=sqlite:///{tmp_path / 'catalog.sqlite'}",
    )

    assert code == 1
    assert err.startswith("Error: cannot read the chain id") and err.count("\n") == 1, err


def test_catalog_sync__foundry_not_installed__is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no anvil on it: ape-foundry cannot start a node

    code, err = _run(
        capsys,
        "catalog",
        "sync",
        "--network=ethereum:local:foundry",
        f"--db-url=sqlite:///{tmp_path / 'catalog.sqlite'}",
    )

    assert code == 1
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("Error: cannot connect to ethereum:local:foundry: ")
    assert "ethereum:local:http://127.0.0.1:8545" in err


def test_connected__ape_logs_a_line__it_goes_to_stderr_not_stdout(capsys):
    from ape.logging import logger

    from daimm.cli._market import ape_logs_to_stderr

    ape_logs_to_stderr()
    logger.warning("Connecting to a 'anvil' node.")

    captured = capsys.readouterr()
    assert "Connecting" not in captured.out
    assert "Connecting" in captured.err


def test_infer__api_key_mangled__one_error_line_with_its_reason(capsys, tmp_path):
    sample = tmp_path / "input.json"
    sample.write_text('{"input": [[1.0]]}')

    code, err = _run(capsys, "infer", "1", "--input", str(sample), "--api-key", "daimm_sk_AAAA")

    assert code == 1
    assert err.startswith("Error: the API key is 3 bytes, not 286") and err.count("\n") == 1, err


def test_infer__api_key_and_account__one_error_line(capsys, tmp_path):
    sample = tmp_path / "input.json"
    sample.write_text('{"input": [[1.0]]}')

    code, err = _run(capsys, "infer", "1", "--input", str(sample), "--api-key", "daimm_sk_A",
                     "--account", "TEST::1")  # fmt: skip

    assert code == 1
    assert err == "Error: give --api-key or an account (--account, --key-file), not both\n"
