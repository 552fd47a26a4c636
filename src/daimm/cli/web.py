"""`daimm web`: serve the catalog in a browser (pages, JSON API, the wallet module)."""

from __future__ import annotations

import os

import click

from daimm.cli.catalog import DEFAULT_NETWORK

__all__ = ["web"]


@click.command("web")
@click.option(
    "--catalog",
    "--db-url",
    "db_url",
    metavar="URL",
    envvar="DAIMM_CATALOG_URL",
    default=None,
    help="SQLAlchemy URL of the catalog (as `daimm catalog sync --db-url`); default"
    " ~/.daimm/catalog-<network>.sqlite. [env: DAIMM_CATALOG_URL]",
)
@click.option(
    "--rpc",
    "--rpc-url",
    "rpc_url",
    metavar="URL",
    envvar="DAIMM_RPC_URL",
    default="http://127.0.0.1:8545",
    show_default=True,
    help="The chain's JSON-RPC endpoint; the browser's reads go through the server to it."
    " [env: DAIMM_RPC_URL]",
)
@click.option(
    "--deployments",
    metavar="FILE",
    default=None,
    help="The deployments file (default: $DAIMM_DEPLOYMENTS or ./deployments.json).",
)
@click.option(
    "--network",
    metavar="CHOICE",
    envvar="DAIMM_NETWORK",
    default=DEFAULT_NETWORK,
    show_default=True,
    help="Network in ape's syntax; picks the deployment and the catalog. [env: DAIMM_NETWORK]",
)
@click.option(
    "--public-rpc",
    metavar="URL",
    default=None,
    help="RPC URL offered to wallets that do not know the chain (default: --rpc).",
)
@click.option(
    "--store",
    metavar="DIR",
    envvar="DAIMM_STORE",
    default=None,
    help="The block store folder the relayers read: a model whose weights are not in it cannot"
    " be rented or bought from its page (default: only the metadata is checked). [env:"
    " DAIMM_STORE]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8800, show_default=True)
def web(
    db_url: str | None,
    rpc_url: str,
    deployments: str | None,
    network: str,
    public_rpc: str | None,
    store: str | None,
    host: str,
    port: int,
) -> None:
    """Serve the marketplace in a browser: search, model cards, rent/buy/try with a wallet, and
    a creator's dashboard.

    It reads the local catalog and does not sync it: run `daimm catalog sync --follow` beside it
    (`daimm up` runs both).

    \b
    Example:
      daimm catalog sync --rpc-url http://127.0.0.1:8545 --follow &
      daimm web --rpc http://127.0.0.1:8545 --deployments deployments.json --port 8800
      # then open http://127.0.0.1:8800/
    """
    import uvicorn

    from daimm.catalog import default_db_url
    from daimm.cli.catalog import network_key_of
    from daimm.web import WebConfig, create_app

    key = network_key_of(network)
    config = WebConfig(
        catalog_url=db_url or default_db_url(key),
        rpc_url=rpc_url,
        deployments=deployments,
        network=key,
        public_rpc_url=public_rpc,
        store=os.path.expanduser(store) if store else None,
    )
    app = create_app(config)
    click.echo(
        f"daimm web on http://{host}:{port}/ ({key}; catalog {config.catalog_url})", err=True
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
