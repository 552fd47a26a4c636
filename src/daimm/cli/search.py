"""`daimm search`: find models in the local catalog by text, task, framework, price and rating."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from daimm.cli.catalog import db_options, open_store

if TYPE_CHECKING:
    from daimm.catalog import CatalogStore, ModelHit

__all__ = ["format_price", "search"]

ETH = "0x0000000000000000000000000000000000000000"


def format_price(value: int, hit: ModelHit) -> str:
    """``value`` in ``hit``'s currency for people (``-`` when not offered)."""
    from daimm.units import format_amount

    if not value:
        return "-"
    return format_amount(value, hit.decimals, hit.symbol or "?")


def _period(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _decimals_of(store: CatalogStore) -> dict[str, tuple[str, int]]:
    """Upper-case symbol -> (address, decimals) of the currencies the catalog has seen."""
    from daimm.catalog.queries import token_currencies

    known = token_currencies(store)
    known.setdefault("ETH", (ETH, 18))
    return known


def _table(hits: list[ModelHit]) -> list[str]:
    headers = ["ID", "NAME", "TASK", "RENT", "PER CALL", "BUY", "RATING", "CREATOR (REP)"]
    rows = []
    for h in hits:
        rent = format_price(h.price_per_period, h)
        if h.price_per_period:
            rent += f"/{_period(h.period_seconds)}"
        rating = f"{h.rating:.1f} ({h.rating_count})" if h.rating is not None else "-"
        rep = f"{h.reputation.score:.2f}" if h.reputation else "-"
        name = h.name if h.name else f"<metadata {h.metadata_status}>"
        rows.append(
            [
                str(h.model_id),
                name[:32],
                (h.task or "-")[:26],
                rent,
                format_price(h.price_per_call, h),
                format_price(h.perpetual_price, h),
                rating,
                f"{h.creator[:10]}… ({rep})",
            ]
        )
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(headers, widths, strict=True)).rstrip()]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return lines


@click.command("search")
@click.argument("text", required=False, default="")
@click.option("--task", help="Only this task, e.g. tabular-classification.")
@click.option("--framework", help="Only this framework, e.g. onnx.")
@click.option(
    "--max-price",
    metavar="AMOUNT",
    help="Highest price with its currency, e.g. '5 AIMT' or '0.01 ether' (see --price-kind).",
)
@click.option(
    "--price-kind",
    type=click.Choice(["rental", "perpetual", "call"]),
    default="rental",
    show_default=True,
    help="Which price --max-price and --sort price use: one rental period, a perpetual licence,"
    " or one pay-per-use call.",
)
@click.option(
    "--min-rating", type=click.FloatRange(1, 5), help="Lowest average rating (1-5 stars)."
)
@click.option("--creator", metavar="ADDRESS", help="Only models published by this address.")
@click.option(
    "--sort",
    type=click.Choice(["relevance", "price", "rating", "newest", "name"]),
    default="relevance",
    show_default=True,
    help="Result order (relevance falls back to newest without TEXT).",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--all", "include_inactive", is_flag=True, help="Include models with no active offer."
)
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@db_options
def search(
    text: str,
    task: str | None,
    framework: str | None,
    max_price: str | None,
    price_kind: str,
    min_rating: float | None,
    creator: str | None,
    sort: str,
    limit: int,
    include_inactive: bool,
    as_json: bool,
    network: str,
    db_url: str | None,
) -> None:
    """Search the catalog for models matching TEXT and the filters.

    TEXT is matched against name, description, task and tags (any word, best match first). The
    catalog is local: run `daimm catalog sync` to read the latest blocks.

    \b
    Examples:
      daimm search "fraud detection" --task tabular-classification --framework onnx \\
          --max-price "5 AIMT" --min-rating 4 --sort price
      daimm search cancer --json
    """
    from daimm.catalog import PriceKind, SearchQuery, SortKey
    from daimm.catalog import search as run_search
    from daimm.units import parse_amount

    store = open_store(network, db_url)
    currency = None
    max_value = None
    if max_price:
        known = _decimals_of(store)
        amount = parse_amount(max_price, {s: d for s, (_, d) in known.items()})
        currency, _ = known[amount.symbol.upper()]
        max_value = amount.value
    query = SearchQuery(
        text=text or None,
        task=task,
        framework=framework,
        currency=currency,
        max_price=max_value,
        price_kind=PriceKind(price_kind),
        min_rating=min_rating,
        creator=creator,
        include_inactive=include_inactive,
        sort=SortKey(sort),
        limit=limit,
    )
    hits = run_search(store, query)
    if as_json:
        click.echo(json.dumps([h.to_json() for h in hits], indent=2))
        return
    last = store.last_block()
    if last is None:
        click.echo("The catalog is empty: run `daimm catalog sync` first.", err=True)
    if not hits:
        click.echo("No models match.")
        return
    for line in _table(hits):
        click.echo(line)
    if last is not None:
        click.echo(f"{len(hits)} model(s); catalog at block {last}.", err=True)
