"""`daimm catalog ...`: build and inspect the local catalog read by `daimm search` and `stats`.

Also home of the options the three catalog verbs share (which network, which database, which
storage backend) and of the functions that open them.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from daimm.catalog import CatalogStore, ChainReader
    from daimm.deployments import Deployment

__all__ = ["CatalogTarget", "catalog", "db_options", "open_store"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_NETWORK = "ethereum:local:foundry"


def db_options(func: F) -> F:
    """--network / --db-url: which chain's catalog, and where it is stored."""
    func = click.option(
        "--db-url",
        metavar="URL",
        envvar="DAIMM_CATALOG_URL",
        default=None,
        help="SQLAlchemy URL of the catalog (sqlite:///FILE or postgresql+psycopg://...); default"
        " ~/.daimm/catalog-<network>.sqlite. [env: DAIMM_CATALOG_URL]",
    )(func)
    func = click.option(
        "--network",
        metavar="CHOICE",
        envvar="DAIMM_NETWORK",
        default=DEFAULT_NETWORK,
        show_default=True,
        help="Network in ape's syntax (ecosystem:network:provider). [env: DAIMM_NETWORK]",
    )(func)
    return func


def network_key_of(choice: str) -> str:
    """The deployments-file key of an ape network choice (``ethereum:sepolia:infura`` ->
    ``ethereum:sepolia``; a local chain keeps its provider)."""
    from daimm.deployments import network_key

    parts = choice.split(":", 2)
    if len(parts) == 2:
        parts.append("node")
    if len(parts) != 3 or not all(parts):
        raise click.BadParameter(
            f"{choice!r} is not ecosystem:network[:provider], e.g. ethereum:local:foundry or"
            " ethereum:local:http://127.0.0.1:8545",
            param_hint="--network",
        )
    if "://" in parts[2]:
        # NOTE: ape serves a network given by URL (ethereum:local:http://...) with its `node`
        # provider, so the deployment is recorded under that name (as `daimm up` does).
        parts[2] = "node"
    return network_key(*parts)


def open_store(network: str, db_url: str | None) -> CatalogStore:
    """The catalog database of ``network`` (or ``db_url``)."""
    from daimm.catalog import CatalogStore, default_db_url

    return CatalogStore(db_url or default_db_url(network_key_of(network)))


@dataclass(frozen=True)
class CatalogTarget:
    """What `catalog sync` reads from: a deployment and a chain reader."""

    deployment: Deployment
    reader: ChainReader


@contextlib.contextmanager
def connect_chain(network: str, rpc_url: str | None, deployments: str | None) -> Iterator[Any]:
    """A chain reader and the deployment on it.

    With ``rpc_url`` the reader talks JSON-RPC directly (no ape); otherwise ape connects to
    ``network`` (so its provider plugins and API keys apply) and lends its web3.
    """
    from daimm.catalog import ChainReader
    from daimm.deployments import DeploymentsFile

    key = network_key_of(network)
    given = network.split(":", 2)[-1]
    if rpc_url is None and given.startswith(("http://", "https://")):
        rpc_url = given  # ethereum:local:http://...: read that node directly
    if rpc_url:
        reader = ChainReader.from_url(rpc_url)
        deployment = DeploymentsFile(deployments).get(key, chain_id=reader.chain_id())
        yield CatalogTarget(deployment, reader)
        return
    from ape import networks

    from daimm.deployments import provider_key
    from daimm.stack import enter_network

    active = networks.active_provider
    if active is not None and active.is_connected and provider_key(active) == key:
        # Already connected (inside `ape console`, a script or a test): reuse that connection.
        reader = ChainReader(active.web3)
        deployment = DeploymentsFile(deployments).get(key, chain_id=reader.chain_id())
        yield CatalogTarget(deployment, reader)
        return
    context, provider = enter_network(
        network,
        "give --network (or DAIMM_NETWORK) a chain that runs, e.g."
        " ethereum:local:http://127.0.0.1:8545, or --rpc-url",
    )
    try:
        reader = ChainReader(provider.web3)
        deployment = DeploymentsFile(deployments).get(key, chain_id=reader.chain_id())
        yield CatalogTarget(deployment, reader)
    finally:
        context.__exit__(None, None, None)


def _storage_options(func: F) -> F:
    func = click.option(
        "--gateway",
        metavar="URL",
        envvar="DAIMM_GATEWAY_URL",
        default=None,
        help="Fetch metadata from a trustless HTTP gateway. [env: DAIMM_GATEWAY_URL]",
    )(func)
    func = click.option(
        "--kubo",
        metavar="URL",
        envvar="DAIMM_KUBO_URL",
        default=None,
        help="Fetch metadata from a Kubo node's RPC API. [env: DAIMM_KUBO_URL]",
    )(func)
    func = click.option(
        "--store",
        metavar="DIR",
        envvar="DAIMM_STORE",
        default="~/.daimm/blocks",
        show_default=True,
        help="Folder of the embedded block store metadata is read from. [env: DAIMM_STORE]",
    )(func)
    return func


@click.group()
def catalog() -> None:
    """The local catalog of models, built from the chain's events and verified metadata.

    `daimm search` and `daimm stats` read it; `daimm catalog sync` brings it up to date. It is a
    SQLite file per network (or a database given by --db-url).

    \b
    Example:
      daimm catalog sync --network ethereum:local:foundry
      daimm search "fraud detection"
    """


@catalog.command("sync")
@db_options
@click.option(
    "--rpc-url",
    metavar="URL",
    envvar="DAIMM_RPC_URL",
    default=None,
    help="Read the chain over this JSON-RPC endpoint instead of through ape. [env: DAIMM_RPC_URL]",
)
@click.option(
    "--deployments",
    metavar="FILE",
    default=None,
    help="The deployments file (default: $DAIMM_DEPLOYMENTS or ./deployments.json).",
)
@_storage_options
@click.option("--to-block", type=click.IntRange(min=0), default=None, help="Stop at this block.")
@click.option(
    "--batch-blocks",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Blocks per eth_getLogs call (lower it for providers that limit log queries).",
)
@click.option(
    "--reorg-depth",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="How many recent block hashes are kept and re-checked for reorganisations.",
)
@click.option("--rebuild", is_flag=True, help="Forget what was read and sync from the start.")
@click.option(
    "--retry-metadata", is_flag=True, help="Retry unavailable metadata now (skip the back-off)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the sync report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--follow",
    is_flag=True,
    help="Keep syncing every --interval seconds until SIGTERM or Ctrl-C (one line per change).",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between syncs with --follow.",
)
def sync(
    network: str,
    db_url: str | None,
    rpc_url: str | None,
    deployments: str | None,
    store: str,
    kubo: str | None,
    gateway: str | None,
    to_block: int | None,
    batch_blocks: int,
    reorg_depth: int,
    rebuild: bool,
    retry_metadata: bool,
    as_json: bool,
    quiet: bool,
    follow: bool,
    interval_s: float,
) -> None:
    """Read new contract events and metadata into the catalog.

    Resumes from where the last sync stopped (a sync killed half way loses nothing), re-checks the
    last --reorg-depth blocks for a reorganised chain, and retries metadata that could not be
    fetched before.

    \b
    Examples:
      daimm catalog sync
      daimm catalog sync --network ethereum:sepolia:infura --batch-blocks 500
      daimm catalog sync --rpc-url http://127.0.0.1:8545 --retry-metadata
      daimm catalog sync --rpc-url http://127.0.0.1:8545 --follow --interval 1
    """
    from tqdm import tqdm

    from daimm.catalog import CatalogContracts, Indexer, ipfs_fetcher
    from daimm.cli.ipfs import open_backend

    catalog_store = open_store(network, db_url)
    with (
        connect_chain(network, rpc_url, deployments) as target,
        open_backend(store, kubo, gateway) as backend,
    ):
        indexer = Indexer(
            catalog_store,
            target.reader,
            CatalogContracts.from_deployment(target.deployment),
            ipfs_fetcher(backend),
            reorg_depth=reorg_depth,
            batch_blocks=batch_blocks,
        )
        if rebuild:
            indexer.rebuild()
        if follow:
            _follow(indexer, interval_s, as_json)
            return
        with tqdm(
            total=None,
            desc="blocks",
            unit="block",
            file=sys.stderr,
            disable=quiet or as_json or not sys.stderr.isatty(),
            leave=False,
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            report = indexer.sync(progress=progress, retry_now=retry_metadata)
        status = indexer.metadata_status()
    if as_json:
        out = {
            "from_block": report.from_block,
            "to_block": report.to_block,
            "events": report.events,
            "reorged_from": report.reorged_from,
            "metadata_fetched": report.metadata_fetched,
            "metadata_failed": report.metadata_failed,
            "metadata": status,
            "seconds": round(report.seconds, 3),
            "db_url": catalog_store.url,
        }
        click.echo(json.dumps(out, indent=2))
        return
    if report.reorged_from is not None:
        click.echo(f"Chain reorganised: re-read from block {report.reorged_from}.")
    click.echo(
        f"Synced to block {report.to_block}: {report.events} new events,"
        f" {report.metadata_fetched} metadata documents fetched"
        + (f", {report.metadata_failed} failed (retried later)" if report.metadata_failed else "")
        + f" ({report.seconds:.1f} s)."
    )


def _follow(indexer: Any, interval_s: float, as_json: bool) -> None:
    """`sync --follow`: the loop until SIGTERM/SIGINT; a line (or JSON object) per change."""
    import signal
    import threading

    from daimm.catalog.follow import follow

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def report(r: Any) -> None:
        if not (r.events or r.metadata_fetched or r.metadata_failed or r.reorged_from):
            return
        if as_json:
            line = {"to_block": r.to_block, "events": r.events, "reorged_from": r.reorged_from}
            click.echo(json.dumps({**line, "metadata_fetched": r.metadata_fetched}))
        else:
            click.echo(
                f"Synced to block {r.to_block}: {r.events} new events,"
                f" {r.metadata_fetched} metadata documents fetched."
            )

    click.echo(f"Following the chain every {interval_s:g} s (Ctrl-C stops).", err=True)
    follow(indexer, interval_s=interval_s, stop=stop, on_report=report)
    click.echo("Stopped.", err=True)


@catalog.command("status")
@db_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(network: str, db_url: str | None, as_json: bool) -> None:
    """Show where the catalog stands: last block, models, and metadata by status.

    \b
    Example:
      daimm catalog status --network ethereum:local:foundry
    """
    from daimm.catalog.queries import catalog_status

    catalog_store = open_store(network, db_url)
    found = catalog_status(catalog_store)
    counts = {
        "models": found.models,
        "events": found.events,
        "licences": found.licences,
        "reviews": found.reviews,
    }
    metadata = found.metadata
    out: dict[str, Any] = {
        "db_url": catalog_store.url,
        "last_block": found.last_block,
        **counts,
        "metadata": metadata,
        "metadata_problems": [{"cid": c, "error": e} for c, e in found.metadata_problems],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"Catalog:     {out['db_url']}")
    last = out["last_block"]
    click.echo(f"Last block:  {last if last is not None else 'never synced'}")
    click.echo(
        f"Models:      {counts['models']}  (events {counts['events']}, licences"
        f" {counts['licences']}, reviews {counts['reviews']})"
    )
    shown = ", ".join(f"{k} {v}" for k, v in sorted(metadata.items())) or "none"
    click.echo(f"Metadata:    {shown}")
    for problem in out["metadata_problems"]:
        click.echo(f"  {problem['cid']}: {problem['error']}")
