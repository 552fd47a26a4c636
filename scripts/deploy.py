"""Deploy daimm to a network: `ape run deploy --network NETWORK --account ALIAS`.

Deploys and wires every contract (roles, fee, treasury, dispute window, allowed currencies, credit
timeout, from deploy-config.yaml), reads the wiring back to verify it, and records the addresses and
the deploy block in the deployments file the CLI and the relayer read. A network that already has a
deployment is left alone unless --force is given.

Examples:
    ape run deploy --network ethereum:local:foundry --account TEST::0
    ape run deploy --network ethereum:sepolia:alchemy --account deployer --config deploy-config.yaml
"""

from __future__ import annotations

from pathlib import Path

import click
from ape.cli import account_option

from daimm.cli._market import connected
from daimm.deployments import provider_key
from daimm.errors import DaimmError


# NOTE: ape's ConnectedProviderCommand would open a second connection to a network that is already
# connected (under `ape test` that wipes the in-process chain's snapshots, breaking test isolation);
# `connected` reuses a live connection to the same network and otherwise connects as ape does.
@click.command(short_help="Deploy daimm to a network.")
@click.option(
    "--network",
    default=None,
    metavar="ECOSYSTEM:NETWORK:PROVIDER",
    help="Network in ape's syntax, e.g. ethereum:local:foundry or ethereum:sepolia:alchemy.",
)
@account_option()
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default="deploy-config.yaml",
    show_default=True,
    help="Fee, treasury, arbiter, windows and currencies (a `networks:` section overrides them).",
)
@click.option(
    "--deployments",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="DAIMM_DEPLOYMENTS",
    default=None,
    help="Deployments file to record into. [env: DAIMM_DEPLOYMENTS; default: ./deployments.json]",
)
@click.option("--force", is_flag=True, help="Deploy again even if the network has a deployment.")
def cli(network, account, config_path: Path, deployments: Path | None, force: bool) -> None:
    """Deploy and wire daimm's contracts, verify them, and record them in the deployments file.

    \b
    Example:
      ape run deploy --network ethereum:local:foundry --account TEST::0
    """
    with connected(network) as provider:
        _deploy(provider, account, config_path, deployments, force)


def _deploy(provider, account, config_path: Path, deployments: Path | None, force: bool) -> None:
    from ape import project

    from daimm.market.wiring import deploy_marketplace, existing_deployment, load_deploy_config

    key = provider_key(provider)
    try:
        config = load_deploy_config(config_path, key)
        recorded = existing_deployment(deployments)
        if recorded is not None and not force:
            click.echo(
                f"{key} already has a daimm deployment (block {recorded.block}, escrow"
                f" {recorded.contracts.get('RentalEscrow')}); nothing changed. Use --force to"
                " deploy a new one."
            )
            return
        click.echo(f"Deploying daimm to {key} (chain {provider.chain_id}) from {account.address}")
        deployment = deploy_marketplace(project, account, config, path=deployments, force=force)
    except DaimmError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Wiring verified (roles, fee, treasury, dispute window, currencies, timeout).")
    for name, address in deployment.contracts.items():
        click.echo(f"  {name:<16} {address}")
    click.echo(
        f"Recorded {key} (from block {deployment.block}) in {deployments or 'deployments.json'}"
    )
