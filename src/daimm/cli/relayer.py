"""``daimm relayer ...``: run an inference relayer.

NOTE: ``relayer register`` and ``relayer authorise`` (on-chain registration through
``daimm.market``) are added to this same group by the marketplace CLI; keep verbs here thin.
"""

from __future__ import annotations

import click


@click.group()
def relayer() -> None:
    """Run and manage an inference relayer."""


@relayer.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Relayer config file (TOML or YAML); DAIMM_RELAYER_* variables override it.",
)
@click.option("--host", default=None, help="Listen address (overrides the config).")
@click.option("--port", type=int, default=None, help="Listen port (overrides the config).")
def serve(config_file: str, host: str | None, port: int | None) -> None:
    """Serve predictions until SIGTERM/SIGINT (in-flight requests finish first).

    \b
    Example:
      daimm relayer serve --config relayer.toml --port 8700
    """
    from daimm.relayer.runner import serve as run
    from daimm.relayer.settings import load_settings

    overrides: dict[str, object] = {
        k: v for k, v in {"host": host, "port": port}.items() if v is not None
    }
    run(load_settings(config_file, None, **overrides))


# `relayer register` and `relayer authorise` live with the marketplace commands (they send
# transactions through daimm.market); attach them to this group.
from daimm.cli.relayer_admin import COMMANDS as _ADMIN_COMMANDS  # noqa: E402

for _command in _ADMIN_COMMANDS:
    relayer.add_command(_command)
