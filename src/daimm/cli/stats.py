"""`daimm stats`: a model's revenue by currency, sales, calls, refunds and ratings over time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daimm.cli.catalog import db_options, open_store

if TYPE_CHECKING:
    from daimm.catalog.stats import ModelStats

__all__ = ["stats", "stats_to_json"]


def stats_to_json(s: ModelStats) -> dict[str, Any]:
    """Statistics as JSON (amounts as decimal strings in the currency's smallest unit)."""
    return {
        "model_id": s.model.model_id,
        "name": s.model.name,
        "owner": s.model.owner,
        "revenue": [
            {
                "currency": r.currency,
                "symbol": r.symbol,
                "decimals": r.decimals,
                "gross": str(r.gross),
                "fee": str(r.fee),
                "refunded": str(r.refunded),
                "net": str(r.net),
                "royalties": str(r.royalties),
                "pay_per_use": str(r.pay_per_use),
            }
            for r in s.revenue
        ],
        "rentals": s.rentals,
        "rental_extensions": s.rental_extensions,
        "purchases": s.purchases,
        "resales": s.resales,
        "calls": s.calls,
        "refunds": s.refunds,
        "disputes_opened": s.disputes_opened,
        "disputes_open": s.disputes_open,
        "rating": {"count": s.model.rating_count, "average": s.model.rating},
        "ratings": [
            {"timestamp": r.timestamp, "rating": r.rating, "average": round(r.average, 4)}
            for r in s.ratings
        ],
    }


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M")


@click.command("stats")
@click.option("--model", "model_id", type=click.IntRange(min=1), required=True, help="Model id.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also draw revenue, sales and ratings into this PNG file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@db_options
def stats(
    model_id: int, plot: Path | None, as_json: bool, network: str, db_url: str | None
) -> None:
    """Show what a model earned and sold, and how it was rated, from the local catalog.

    Revenue is per currency: gross paid by buyers, the platform fee, refunds, and the net owed to
    the model's payees. Run `daimm catalog sync` first to include the latest blocks.

    \b
    Examples:
      daimm stats --model 1
      daimm stats --model 1 --plot stats.png
      daimm stats --model 1 --json
    """
    from daimm.catalog.stats import model_stats, plot_stats
    from daimm.units import format_amount

    s = model_stats(open_store(network, db_url), model_id)
    if plot is not None:
        plot_stats(s, str(plot))
    if as_json:
        out = stats_to_json(s)
        if plot is not None:
            out["plot"] = str(plot)
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(
        f"Model {s.model.model_id}: {s.model.name or '<metadata ' + s.model.metadata_status + '>'}"
    )
    click.echo(f"Owner {s.model.owner}, {s.model.versions} version(s)")
    click.echo("")
    if s.revenue:
        click.echo("Revenue      gross        fee          refunded     net to payees  royalties")
        for r in s.revenue:

            def f(v: int, r: Any = r) -> str:
                return format_amount(v, r.decimals, r.symbol)

            click.echo(
                f"  {r.symbol:<9}  {f(r.gross):<11}  {f(r.fee):<11}  {f(r.refunded):<11}"
                f"  {f(r.net):<13}  {f(r.royalties)}"
            )
    else:
        click.echo("Revenue      none yet")
    click.echo("")
    click.echo(
        f"Rentals {s.rentals} (+{s.rental_extensions} extensions), purchases {s.purchases},"
        f" resales {s.resales}, pay-per-use calls {s.calls}, refunds {s.refunds},"
        f" disputes {s.disputes_opened} ({s.disputes_open} open)"
    )
    if s.ratings:
        click.echo(f"Rating {s.model.rating:.2f} from {s.model.rating_count} review(s):")
        for point in s.ratings:
            click.echo(
                f"  {_when(point.timestamp)}  {'*' * point.rating:<5}  average {point.average:.2f}"
            )
    else:
        click.echo("Rating: no reviews yet")
    if plot is not None:
        click.echo(f"Plot written to {plot}")
