"""`daimm relayer register`, `authorise` and `approve-operator`: on-chain relayer administration.

These two commands belong to the `relayer` group (src/daimm/cli/relayer.py, which also has
`relayer serve`); they live here so the marketplace side owns what it sends on chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daimm.cli._market import (
    account_option,
    confirm_and_execute,
    deployments_option,
    emit,
    json_option,
    market_command,
    open_market,
    yes_option,
)
from daimm.cli._reach import check_store_reaches_relayer, note_local_store, require_model_blocks
from daimm.cli.ipfs import open_backend, store_options
from daimm.cli.keys import load_key, passphrase_options

__all__ = ["COMMANDS", "approve_operator", "authorise", "register"]


@market_command(None, "register")
@click.option(
    "--x25519",
    "public_key",
    required=True,
    metavar="PUBKEY",
    help="The relayer's X25519 public key (x25519:..., printed by `daimm keys new`).",
)
@click.option("--endpoint", required=True, help="The relayer's URL, e.g. https://relay.example.")
@click.option(
    "--relayer",
    "relayer_address",
    help="The relayer's signing address (default: --account, the operator).",
)
@account_option()
@deployments_option
@yes_option
@json_option
def register(
    public_key: str,
    endpoint: str,
    relayer_address: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Register a relayer with --account as its operator.

    \b
    Example:
      daimm relayer register --x25519 x25519:3b6a... --endpoint https://relay.example \\
          --account operator --network ethereum:local:foundry
    """
    from daimm.crypto import PublicKey

    key = PublicKey.parse(public_key)
    market = open_market(deployments)
    relayer = relayer_address or account.address
    plan = market.relayers.plan_register(relayer, key.raw, endpoint, sender=account)
    result = confirm_and_execute(plan, yes=yes)
    emit(f"Registered relayer {result.relayer}", result, as_json=as_json)


@market_command(None, "authorise")
@click.argument("model_id", type=click.IntRange(1))
@click.argument("relayer")
@click.option(
    "--key",
    "keyfile",
    required=True,
    envvar="DAIMM_KEY_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your (the creator's) X25519 key file, which opens the model's key envelope."
    " [env: DAIMM_KEY_FILE]",
)
@passphrase_options
@store_options
@account_option()
@deployments_option
@yes_option
@json_option
def authorise(
    model_id: int,
    relayer: str,
    keyfile: Path,
    passphrase_file: Path | None,
    ask_passphrase: bool,
    store: str,
    kubo: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Let RELAYER serve MODEL_ID: wrap the model's key for the relayer's registered X25519 key,
    store that envelope, and authorise the relayer on chain.

    \b
    Example:
      daimm relayer authorise 1 0xRelayer... --key creator.key --account creator \\
          --network ethereum:local:foundry
    """
    from daimm.market import publishing

    check_store_reaches_relayer(store, kubo, deployments)
    creator_key = load_key(keyfile, passphrase_file, ask_passphrase)
    market = open_market(deployments)
    with open_backend(store, kubo) as backend:
        require_model_blocks(market, model_id, backend, kubo or store)
        envelope_cid, plan = publishing.plan_authorise_relayer(
            market, model_id, relayer, backend=backend, creator_key=creator_key, sender=account
        )
    click.echo(f"stored the relayer's key envelope {envelope_cid}", err=True)
    note_local_store(store, kubo)
    result = confirm_and_execute(plan, yes=yes)
    emit(f"Authorised relayer {result.relayer} for model {model_id}", result, as_json=as_json)


@market_command(None, "approve-operator")
@click.argument("operator")
@account_option()
@deployments_option
@yes_option
@json_option
def approve_operator(
    operator: str, account: Any, deployments: str | None, yes: bool, as_json: bool
) -> None:
    """As the relayer's own address (--account), let OPERATOR register this relayer.

    Needed only when the operator is another account than the relayer's signing address.

    \b
    Example:
      daimm relayer approve-operator 0xOperator... --account relayer
    """
    market = open_market(deployments)
    result = confirm_and_execute(
        market.relayers.plan_approve_operator(operator, sender=account), yes=yes
    )
    emit(
        f"{result} may now register relayer {account.address}",
        {"relayer": account.address, "operator": result},
        as_json=as_json,
    )


#: The commands to attach to the `relayer` group: ``for c in COMMANDS: relayer.add_command(c)``.
COMMANDS = (register, authorise, approve_operator)
