"""`daimm credit ...`: pay-per-use credit for a model served by one relayer."""

from __future__ import annotations

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

__all__ = ["credit"]


@click.group()
def credit() -> None:
    """Pay-per-use credit: deposit for calls through a relayer, reclaim what was not spent."""


@market_command(credit, "deposit")
@click.argument("model_id", type=click.IntRange(1))
@click.argument("amount")
@click.option("--relayer", required=True, help="Address of the relayer that will serve you.")
@click.option("--approve", is_flag=True, help="Approve the credit escrow first if needed (ERC-20).")
@account_option()
@deployments_option
@yes_option
@json_option
def deposit(
    model_id: int,
    amount: str,
    relayer: str,
    approve: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Deposit AMOUNT (in the offer's currency, e.g. '1 AIMT') of credit for MODEL_ID.

    \b
    Example:
      daimm credit deposit 1 "1 AIMT" --relayer 0xRelayer... --approve --account user
    """
    market = open_market(deployments)
    cur = market.currency(market.escrow.offer(model_id).currency)
    value = market.amount(amount, cur).value
    plan = market.credit.plan_deposit(model_id, relayer, value, sender=account, approve=approve)
    result = confirm_and_execute(plan, yes=yes)
    emit(
        f"Deposited {cur.format(result.amount)} of credit for model {model_id}",
        result,
        as_json=as_json,
        extra={"amount": cur.format(result.amount)},
    )


@market_command(credit, "reclaim")
@click.argument("model_id", type=click.IntRange(1))
@click.option("--relayer", required=True, help="Address of the channel's relayer.")
@account_option()
@deployments_option
@yes_option
@json_option
def reclaim(
    model_id: int,
    relayer: str,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Take back the credit the relayer did not redeem, once the channel has timed out.

    \b
    Example:
      daimm credit reclaim 1 --relayer 0xRelayer... --account user
    """
    market = open_market(deployments)
    channel = market.credit.channel(account, model_id, relayer)
    cur = market.currency(channel.currency)
    result = confirm_and_execute(
        market.credit.plan_reclaim(model_id, relayer, sender=account), yes=yes
    )
    emit(
        f"Reclaimed {cur.format(result.amount)}",
        result,
        as_json=as_json,
        extra={"amount": cur.format(result.amount)},
    )


def _address_of(account: str) -> str:
    """The address ``account`` names: an address as is, else an ape alias or ``TEST::n``."""
    from ape import accounts
    from eth_utils import is_address, to_checksum_address

    if is_address(account):
        return str(to_checksum_address(account))
    if account.upper().startswith("TEST::") and account[6:].isdigit():
        return str(accounts.test_accounts[int(account[6:])].address)
    try:
        return str(accounts.load(account).address)
    except KeyError:
        raise click.BadParameter(
            f"{account!r} is neither an address nor an ape account alias (`ape accounts list`)",
            param_hint="--account",
        ) from None


@market_command(credit, "show")
@click.argument("model_id", type=click.IntRange(1))
@click.option("--relayer", required=True, help="Address of the channel's relayer.")
@click.option(
    "--account",
    "--payer",
    "payer",
    required=True,
    envvar="DAIMM_ACCOUNT",
    metavar="ALIAS|ADDRESS",
    help="Whose credit: an ape account alias, TEST::n or any address (--payer is the old name)."
    " [env: DAIMM_ACCOUNT]",
)
@deployments_option
@json_option
def show(model_id: int, relayer: str, payer: str, deployments: str | None, as_json: bool) -> None:
    """Show a credit channel: deposited, redeemed, and when it can be reclaimed.

    \b
    Examples:
      daimm credit show 1 --relayer 0xRelayer... --account user
      daimm credit show 1 --relayer 0xRelayer... --account 0xUser...
    """
    payer = _address_of(payer)
    market = open_market(deployments)
    channel = market.credit.channel(payer, model_id, relayer)
    cur = market.currency(channel.currency)
    emit(
        f"Credit of {payer} for model {model_id}",
        channel,
        as_json=as_json,
        extra={
            "deposited": cur.format(channel.deposited),
            "redeemed": cur.format(channel.redeemed),
            "remaining": cur.format(channel.remaining),
        },
    )
