"""`daimm buy`: buy a perpetual licence for a model."""

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
    payment_options,
    yes_option,
)
from daimm.cli._reach import require_servable

__all__ = ["buy"]


@market_command(None, "buy")
@click.argument("model_id", type=click.IntRange(1))
@payment_options("50 AIMT")
@account_option()
@deployments_option
@yes_option
@json_option
def buy(
    model_id: int,
    max_price: str | None,
    approve: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Buy a perpetual licence for MODEL_ID.

    \b
    Example:
      daimm buy 1 --max-price "50 AIMT" --approve --account buyer --network ethereum:local:foundry
    """
    market = open_market(deployments)
    require_servable(market, model_id, deployments)
    terms = market.escrow.offer(model_id)
    cur = market.currency(terms.currency)
    ceiling = None if max_price is None else market.amount(max_price, cur).value
    plan = market.escrow.plan_buy(model_id, sender=account, max_price=ceiling, approve=approve)
    purchase = confirm_and_execute(plan, yes=yes)
    emit(
        f"Bought a perpetual licence for model {model_id}: licence {purchase.licence_id}",
        purchase,
        as_json=as_json,
        extra={"price": cur.format(purchase.price)},
    )
