"""`daimm dispute ...`: open a dispute over a payment, or resolve one as the arbiter."""

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

__all__ = ["dispute"]


@click.group()
def dispute() -> None:
    """Disputes: a payer contests a held payment; the arbiter refunds, releases or splits it."""


@market_command(dispute, "open")
@click.argument("licence_id", type=click.IntRange(1))
@account_option()
@deployments_option
@yes_option
@json_option
def open_(licence_id: int, account: Any, deployments: str | None, yes: bool, as_json: bool) -> None:
    """Dispute the latest held payment for LICENCE_ID (during the dispute window).

    \b
    Example:
      daimm dispute open 3 --account renter --network ethereum:local:foundry
    """
    market = open_market(deployments)
    result = confirm_and_execute(
        market.escrow.plan_open_dispute(licence_id, sender=account), yes=yes
    )
    emit(f"Opened dispute {result.dispute_id}", result, as_json=as_json)


@market_command(dispute, "resolve")
@click.argument("dispute_id", type=click.IntRange(1))
@click.option("--refund", "outcome", flag_value="refund", help="Everything back to the payer.")
@click.option("--release", "outcome", flag_value="release", help="Everything to the payees.")
@click.option(
    "--split",
    "refund_bps",
    type=click.IntRange(1, 9999),
    help="Refund this many basis points to the payer, release the rest.",
)
@account_option()
@deployments_option
@yes_option
@json_option
def resolve(
    dispute_id: int,
    outcome: str | None,
    refund_bps: int | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Resolve DISPUTE_ID as the arbiter: --refund, --release or --split BPS.

    \b
    Example:
      daimm dispute resolve 1 --split 5000 --account arbiter --network ethereum:local:foundry
    """
    from daimm.market import Resolution

    if (outcome is None) == (refund_bps is None):
        raise click.UsageError("choose exactly one of --refund, --release and --split BPS")
    if refund_bps is not None:
        resolution = Resolution.SPLIT
    else:
        resolution = Resolution.REFUND if outcome == "refund" else Resolution.RELEASE
    market = open_market(deployments)
    plan = market.escrow.plan_resolve_dispute(
        dispute_id, resolution, refund_bps=refund_bps or 0, sender=account
    )
    result = confirm_and_execute(plan, yes=yes)
    emit(f"Resolved dispute {dispute_id} ({resolution.name.lower()})", result, as_json=as_json)
