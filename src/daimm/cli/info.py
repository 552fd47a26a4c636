"""Small informational commands."""

import click

import daimm


@click.command()
def version() -> None:
    """Print the daimm version.

    \b
    Example:
      daimm version
    """
    click.echo(daimm.__version__)
