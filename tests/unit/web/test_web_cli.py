"""`daimm web`: options, help and the errors it turns into one line."""

from __future__ import annotations

from click.testing import CliRunner

from daimm.cli import cli


def test_web_help__lists_the_options_and_an_example():
    result = CliRunner().invoke(cli, ["web", "--help"])

    assert result.exit_code == 0
    for option in ("--catalog", "--rpc", "--deployments", "--network", "--host", "--port"):
        assert option in result.output
    assert "8800" in result.output and "127.0.0.1" in result.output
    assert "Example:" in result.output


def test_web__no_deployment__fails_with_one_line(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["web", "--deployments", str(tmp_path / "none.json"), "--catalog",
         f"sqlite:///{tmp_path / 'c.sqlite'}"],
    )  # fmt: skip

    assert result.exit_code != 0
    assert "no daimm deployment for network ethereum:local:foundry" in str(result.exception)
