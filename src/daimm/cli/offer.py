"""`daimm offer ...` and `daimm split ...`: a model owner's terms of sale and revenue split."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from daimm.cli._market import (
    account_option,
    confirm_and_execute,
    deployments_option,
    emit,
    json_option,
    market_command,
    open_market,
    parse_duration,
    yes_option,
)

if TYPE_CHECKING:
    from daimm.market import Marketplace, Offer

__all__ = ["offer", "offer_options", "offer_terms", "split"]

F = TypeVar("F", bound=Callable[..., Any])


def offer_options(*, with_inactive: bool) -> Callable[[F], F]:
    """The terms of sale as options, shared by `daimm offer set` and `daimm model publish`:
    ``--currency``, ``--rent``, ``--period``, ``--min-periods``, ``--max-periods``,
    ``--perpetual``/``--buy``, ``--per-call`` (and ``--inactive`` with ``with_inactive``).
    :func:`offer_terms` turns them into an :class:`~daimm.market.Offer`."""

    def decorator(func: F) -> F:
        options = [
            click.option(
                "--currency",
                default="AIMT",
                show_default=True,
                help="ETH, AIMT, another allowed currency's symbol, or a token address.",
            ),
            click.option("--rent", "rent_price", help="Price of one rental period, e.g. '2 AIMT'."),
            click.option(
                "--period",
                default="1d",
                show_default=True,
                help="Length of a rental period: 3600, 12h, 1d...",
            ),
            click.option(
                "--min-periods",
                type=click.IntRange(1, 65535),
                default=1,
                show_default=True,
                help="Fewest periods one rental may buy.",
            ),
            click.option(
                "--max-periods",
                type=click.IntRange(1, 65535),
                default=30,
                show_default=True,
                help="Most periods one rental may buy.",
            ),
            click.option(
                "--perpetual",
                "--buy",
                "perpetual_price",
                help="Price of a perpetual licence, e.g. '50 AIMT'.",
            ),
            click.option(
                "--per-call", "call_price", help="Price of one relayer call, e.g. '0.01 AIMT'."
            ),
        ]
        if with_inactive:
            options.append(
                click.option(
                    "--inactive",
                    is_flag=True,
                    help="Stop taking new rentals, purchases and credit.",
                )
            )
        for option in reversed(options):
            func = option(func)
        return func

    return decorator


def offer_terms(
    market: Marketplace,
    *,
    currency: str,
    rent_price: str | None,
    period: str,
    min_periods: int,
    max_periods: int,
    perpetual_price: str | None,
    call_price: str | None,
    inactive: bool = False,
) -> Offer | None:
    """The offer the options of :func:`offer_options` describe, or None if they name no price.

    Raises:
        ValidationError: An unknown currency, or a price that does not parse or is in another
            currency.
        click.BadParameter: A period that is not a duration.
    """
    from daimm.market import Offer

    if rent_price is None and perpetual_price is None and call_price is None:
        return None
    cur = market.currency(currency)

    def price(text: str | None) -> int:
        return 0 if text is None else market.amount(text, cur).value

    return Offer(
        currency=cur.address,
        price_per_period=price(rent_price),
        period_seconds=parse_duration(period),
        min_periods=min_periods,
        max_periods=max_periods,
        active=not inactive,
        perpetual_price=price(perpetual_price),
        price_per_call=price(call_price),
    )


@click.group()
def offer() -> None:
    """Offers: a model's prices for rentals, perpetual licences and pay-per-use calls."""


@market_command(offer, "set")
@click.argument("model_id", type=click.IntRange(1))
@offer_options(with_inactive=True)
@account_option()
@deployments_option
@yes_option
@json_option
def set_offer(
    model_id: int,
    currency: str,
    rent_price: str | None,
    period: str,
    min_periods: int,
    max_periods: int,
    perpetual_price: str | None,
    call_price: str | None,
    inactive: bool,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Set the offer of MODEL_ID (replaces the previous one). Leave a price out to not offer it.

    `daimm model publish` takes the same options, to publish and offer in one go.

    \b
    Example:
      daimm offer set 1 --currency AIMT --rent "2 AIMT" --period 1d --max-periods 30 \\
          --perpetual "50 AIMT" --per-call "0.01 AIMT" --account creator
    """
    market = open_market(deployments)
    terms = offer_terms(
        market,
        currency=currency,
        rent_price=rent_price,
        period=period,
        min_periods=min_periods,
        max_periods=max_periods,
        perpetual_price=perpetual_price,
        call_price=call_price,
        inactive=inactive,
    )
    if terms is None or not (
        terms.price_per_period or terms.perpetual_price or terms.price_per_call
    ):
        raise click.UsageError("give at least one of --rent, --perpetual and --per-call")
    cur = market.currency(terms.currency)
    result = confirm_and_execute(
        market.escrow.plan_set_offer(model_id, terms, sender=account), yes=yes
    )
    emit(
        f"Offer of model {model_id} set",
        result,
        as_json=as_json,
        extra={
            "price_per_period": cur.format(result.price_per_period),
            "perpetual_price": cur.format(result.perpetual_price),
            "price_per_call": cur.format(result.price_per_call),
        },
    )


@market_command(offer, "show")
@click.argument("model_id", type=click.IntRange(1))
@deployments_option
@json_option
def show_offer(model_id: int, deployments: str | None, as_json: bool) -> None:
    """Show the offer of MODEL_ID.

    \b
    Example:
      daimm offer show 1 --network ethereum:local:foundry
    """
    market = open_market(deployments)
    terms = market.escrow.offer(model_id)
    cur = market.currency(terms.currency)
    emit(
        f"Offer of model {model_id}",
        terms,
        as_json=as_json,
        extra={
            "currency": f"{cur.symbol} ({cur.address})",
            "price_per_period": cur.format(terms.price_per_period),
            "perpetual_price": cur.format(terms.perpetual_price),
            "price_per_call": cur.format(terms.price_per_call),
        },
    )


@click.group()
def split() -> None:
    """Revenue splits: share a model's future revenue among up to N payees."""


def _payee(text: str) -> tuple[str, int]:
    address, _, bps = text.partition(":")
    if not address.startswith("0x") or len(address) != 42 or not bps.isdigit():
        raise click.BadParameter(f"{text!r}: write ADDRESS:BPS, e.g. 0xAb...cd:7000")
    return address, int(bps)


@market_command(split, "set")
@click.argument("model_id", type=click.IntRange(1))
@click.option(
    "--payee",
    "payees",
    multiple=True,
    required=True,
    metavar="ADDRESS:BPS",
    help="A payee and its share in basis points; repeat; shares sum to 10000.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def set_split(
    model_id: int,
    payees: tuple[str, ...],
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Split future revenue of MODEL_ID among payees (basis points summing to 10000).

    \b
    Example:
      daimm split set 1 --payee 0xCreator...:7000 --payee 0xCoauthor...:3000 --account creator
    """
    parsed = [_payee(p) for p in payees]
    market = open_market(deployments)
    plan = market.escrow.plan_set_split(
        model_id, [a for a, _ in parsed], [b for _, b in parsed], sender=account
    )
    result = confirm_and_execute(plan, yes=yes)
    emit(f"Split of model {model_id} set (payee set {result.payee_set})", result, as_json=as_json)
