"""`daimm resale ...`: sell a licence you hold to someone else through the escrow, or buy one.

A resale pays the model owner's ERC-2981 royalty and the platform fee out of the price; the rest
is held for the seller like any payment (`daimm withdraw` after the dispute window).
"""

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

__all__ = ["resale"]


@click.group()
def resale() -> None:
    """Licence resales: list a licence you hold, withdraw the listing, buy a listed one."""


@market_command(resale, "list")
@click.argument("licence_id", type=click.IntRange(1))
@click.option("--price", required=True, help="Asked price, royalty and fee included: '80 AIMT'.")
@click.option(
    "--currency",
    default="AIMT",
    show_default=True,
    help="ETH, AIMT, another allowed currency's symbol, or a token address.",
)
@click.option(
    "--approve",
    is_flag=True,
    help="Let the escrow transfer the licence when it sells, if it may not yet.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def list_licence(
    licence_id: int,
    price: str,
    currency: str,
    approve: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Put LICENCE_ID, which you hold, up for resale at --price.

    \b
    Example:
      daimm resale list 7 --price "80 AIMT" --approve --account carol \\
          --network ethereum:local:foundry
    """
    market = open_market(deployments)
    cur = market.currency(currency)
    plan = market.escrow.plan_list(
        licence_id, market.amount(price, cur).value, cur.address, sender=account, approve=approve
    )
    listing = confirm_and_execute(plan, yes=yes)
    emit(
        f"Listed licence {licence_id} for {cur.format(listing.price)}",
        listing,
        as_json=as_json,
        extra={"price": cur.format(listing.price)},
    )


@market_command(resale, "delist")
@click.argument("licence_id", type=click.IntRange(1))
@account_option()
@deployments_option
@yes_option
def delist(licence_id: int, account: Any, deployments: str | None, yes: bool) -> None:
    """Withdraw the listing of LICENCE_ID (its seller or current holder).

    \b
    Example:
      daimm resale delist 7 --account carol --network ethereum:local:foundry
    """
    market = open_market(deployments)
    confirm_and_execute(market.escrow.plan_delist(licence_id, sender=account), yes=yes)
    click.echo(f"Licence {licence_id} is no longer for sale")


@market_command(resale, "buy")
@click.argument("licence_id", type=click.IntRange(1))
@payment_options("80 AIMT")
@account_option()
@deployments_option
@yes_option
@json_option
def buy_listed(
    licence_id: int,
    max_price: str | None,
    approve: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Buy the listed licence LICENCE_ID at its asked price.

    \b
    Example:
      daimm resale buy 7 --max-price "80 AIMT" --approve --account dave \\
          --network ethereum:local:foundry
    """
    from daimm.errors import OfferError

    market = open_market(deployments)
    listing = market.escrow.listing(licence_id)
    if listing is None:
        raise OfferError(f"licence {licence_id} is not for sale (`daimm resale show {licence_id}`)")
    cur = market.currency(listing.currency)
    ceiling = None if max_price is None else market.amount(max_price, cur).value
    plan = market.escrow.plan_buy_listed(
        licence_id, sender=account, max_price=ceiling, approve=approve
    )
    bought = confirm_and_execute(plan, yes=yes)
    emit(
        f"Bought licence {licence_id} (model {bought.model_id}) from {bought.seller}",
        bought,
        as_json=as_json,
        extra={"price": cur.format(bought.price), "royalty": cur.format(bought.royalty)},
    )


@market_command(resale, "show")
@click.argument("licence_id", type=click.IntRange(1))
@deployments_option
@json_option
def show(licence_id: int, deployments: str | None, as_json: bool) -> None:
    """Show whether LICENCE_ID is for sale, by whom and at what price.

    \b
    Example:
      daimm resale show 7 --network ethereum:local:foundry
    """
    market = open_market(deployments)
    listing = market.escrow.listing(licence_id)
    if listing is None:
        emit(f"Licence {licence_id} is not for sale", {"licence_id": licence_id}, as_json=as_json)
        return
    cur = market.currency(listing.currency)
    emit(
        f"Licence {licence_id} is for sale",
        listing,
        as_json=as_json,
        extra={"price": cur.format(listing.price)},
    )
