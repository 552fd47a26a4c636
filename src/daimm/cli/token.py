"""`daimm token ...`: balances, approvals and transfers of AIMT and the other currencies."""

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

__all__ = ["token"]

#: Names the CLI accepts for daimm's own contracts as spenders.
SPENDERS = {"escrow": "RentalEscrow", "credit": "CreditEscrow"}


@click.group()
def token() -> None:
    """Tokens: balances, approvals for the escrow, transfers (AIMT or any allowed currency)."""


@market_command(token, "balance")
@click.argument("address", required=False)
@account_option(required=False)
@deployments_option
@json_option
def balance(address: str | None, account: Any, deployments: str | None, as_json: bool) -> None:
    """Balances of ADDRESS (or --account) in ETH, AIMT and every allowed currency, and what the
    escrow owes it.

    \b
    Example:
      daimm token balance 0xAb... --network ethereum:local:foundry
      daimm token balance --account creator
    """
    market = open_market(deployments)
    who = address or (account.address if account is not None else None)
    if who is None:
        raise click.UsageError("give an ADDRESS or --account")
    data: dict[str, str] = {}
    for symbol, value in market.balances(who).items():
        cur = market.currency(symbol)
        data[symbol] = cur.format(value)
        owed = market.escrow.owed(who, cur.address)
        if owed:
            data[f"{symbol} owed by escrow"] = cur.format(owed)
    emit(f"Balances of {who}", data, as_json=as_json)


@market_command(token, "approve")
@click.argument("amount")
@click.option(
    "--spender",
    default="escrow",
    show_default=True,
    help="escrow (rent, buy), credit (pay-per-use deposits), or an address.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def approve(
    amount: str, spender: str, account: Any, deployments: str | None, yes: bool, as_json: bool
) -> None:
    """Let --spender move AMOUNT (e.g. '10 AIMT' or '25 USDC') of your tokens.

    \b
    Example:
      daimm token approve "10 AIMT" --spender escrow --account renter
    """
    market = open_market(deployments)
    parsed = market.amount(amount)
    if parsed.is_eth:
        raise click.UsageError("ether needs no approval: it is sent with the transaction")
    target = market.deployment.address(SPENDERS[spender]) if spender in SPENDERS else spender
    erc20 = market.erc20(market.currency(parsed.symbol).address)
    result = confirm_and_execute(erc20.plan_approve(target, parsed.value, sender=account), yes=yes)
    emit(
        f"Approved {erc20.format(result.amount)} for {result.spender}",
        result,
        as_json=as_json,
        extra={"amount": erc20.format(result.amount)},
    )


@market_command(token, "transfer")
@click.argument("amount")
@click.option("--to", "recipient", required=True, help="The receiving address.")
@account_option()
@deployments_option
@yes_option
@json_option
def transfer(
    amount: str, recipient: str, account: Any, deployments: str | None, yes: bool, as_json: bool
) -> None:
    """Send AMOUNT (e.g. '100 AIMT') of a token to --to.

    \b
    Example:
      daimm token transfer "100 AIMT" --to 0xRenter... --account treasury
    """
    market = open_market(deployments)
    parsed = market.amount(amount)
    if parsed.is_eth:
        raise click.UsageError("use your wallet to send ether; this sends ERC-20 tokens")
    erc20 = market.erc20(market.currency(parsed.symbol).address)
    result = confirm_and_execute(
        erc20.plan_transfer(recipient, parsed.value, sender=account), yes=yes
    )
    emit(
        f"Sent {erc20.format(result.amount)} to {result.to}",
        result,
        as_json=as_json,
        extra={"amount": erc20.format(result.amount)},
    )
