"""`daimm withdraw`: settle matured payments and withdraw what you are owed."""

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

__all__ = ["withdraw"]


@market_command(None, "withdraw")
@click.option(
    "--currency",
    default="AIMT",
    show_default=True,
    help="ETH, AIMT, another allowed currency's symbol, or a token address.",
)
@click.option(
    "--no-settle",
    is_flag=True,
    help="Only withdraw what is already credited; do not settle matured held payments first.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def withdraw(
    currency: str,
    no_settle: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Withdraw everything owed to you in --currency (payees, treasury, refunded buyers).

    Payments are held for the dispute window; once it has passed, this settles the held payments
    that pay you and withdraws in the same run.

    \b
    Example:
      daimm withdraw --currency AIMT --account creator --network ethereum:local:foundry
    """
    market = open_market(deployments)
    cur = market.currency(currency)
    plan = market.escrow.plan_withdraw(cur.address, sender=account, settle=not no_settle)
    result = confirm_and_execute(plan, yes=yes)
    emit(
        f"Withdrew {cur.format(result.amount)}",
        result,
        as_json=as_json,
        extra={"amount": cur.format(result.amount), "settlements": str(len(result.settlements))},
    )
