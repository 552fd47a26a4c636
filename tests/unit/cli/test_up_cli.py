"""`daimm up`'s option checks: they fail before anything starts (no anvil, no deployment)."""

from __future__ import annotations

import click
from click.testing import CliRunner

from daimm.cli import cli


def test_up_help__documents_every_option():
    result = CliRunner().invoke(cli, ["up", "--help"])
    up = cli.get_command(None, "up")  # type: ignore[arg-type]

    assert result.exit_code == 0
    undocumented = [p.name for p in up.params if isinstance(p, click.Option) and not p.help]
    assert undocumented == []
    assert "daimm up --port-base 9500" in result.output


def test_up__account_without_network__is_refused_before_anything_starts(tmp_path):
    result = CliRunner().invoke(
        cli, ["up", "--account", "TEST::0", "--state-dir", str(tmp_path / "state")]
    )

    assert result.exit_code == 2
    assert "--account is only used with --network" in result.output
    assert not (tmp_path / "state").exists()
