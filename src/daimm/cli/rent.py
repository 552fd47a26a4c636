"""`daimm rent`: rent a model for some periods, or extend your rental."""

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

__all__ = ["rent"]


@market_command(None, "rent")
@click.argument("model_id", type=click.IntRange(1))
@click.option(
    "--periods", type=click.IntRange(1), default=1, show_default=True, help="Periods to rent."
)
@payment_options(
    "10 AIMT",
    note=" If the owner raises the price before your transaction lands, it reverts instead of"
    " charging more.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def rent(
    model_id: int,
    periods: int,
    max_price: str | None,
    approve: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Rent MODEL_ID for --periods periods (extends your rental if you have one).

    \b
    Example:
      daimm rent 1 --periods 3 --max-price "6 AIMT" --approve --account renter \\
          --network ethereum:local:foundry
    """
    market = open_market(deployments)
    require_servable(market, model_id, deployments)
    terms = market.escrow.offer(model_id)
    cur = market.currency(terms.currency)
    ceiling = None if max_price is None else market.amount(max_price, cur).value
    plan = market.escrow.plan_rent(
        model_id, periods, sender=account, max_price=ceiling, approve=approve
    )
    rental = confirm_and_execute(plan, yes=yes)
    emit(
        f"Rented model {model_id}: licence {rental.licence_id}",
        rental,
        as_json=as_json,
        extra={"price": cur.format(rental.price)},
    )
