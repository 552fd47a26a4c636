"""The `daimm` command line: parse, validate, call the library, print.

Subcommands live in their own modules and load lazily, so `daimm --help` stays instant even though
the library pulls in ape, onnxruntime and friends.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from daimm.errors import DaimmError

__all__ = ["cli", "main"]

# name -> "module:attribute" of a click command or group; each module owns its verbs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {}


def register(name: str, target: str, help_text: str) -> None:
    """Declare a lazily loaded subcommand (`target` is ``module:attribute``)."""
    SUBCOMMANDS[name] = (target, help_text)


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when they are invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *SUBCOMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module_name, attr = SUBCOMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the registry, so listing commands imports nothing heavy.
        rows = [(name, SUBCOMMANDS[name][1]) for name in sorted(SUBCOMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="daimm")
def cli() -> None:
    """daimm: a decentralized AI model marketplace.

    Creators publish encrypted ONNX models on IPFS and rent or sell licences on chain; a relayer
    serves predictions only to wallets that hold a live licence.
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point: DaimmError becomes one line on stderr and exit status 1, never a traceback."""
    try:
        return cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DaimmError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


# Subcommands are registered here, one line each; their modules are imported only when used.
from daimm.cli import _commands  # noqa: E402,F401
