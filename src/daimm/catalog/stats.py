"""Seller analytics: what a model earned, sold and was rated, from the catalog's event log.

Everything is folded from the events the indexer recorded for one model, in chain order, so the
numbers agree with the chain to the wei:

- **revenue by currency**: ``gross`` is what was paid into escrow for the model's payees
  (rentals, purchases, redeemed pay-per-use credit, and the royalty of licence resales); ``fee``
  the platform's part of it; ``refunded`` what arbiters gave back to payers; ``net`` = ``gross -
  fee - refunded + fee_refunded`` is what the model's payees are owed or were paid. Of a resale
  only the royalty counts: the rest of the price (less its fee) belongs to the licence's seller.
- **counts**: rentals (new and extended), perpetual purchases, resales, pay-per-use calls,
  refunds, disputes.
- **calls** are the redeemed amount divided by the offer's price per call at redemption time (the
  chain records amounts, not calls; the relayer's log has the exact count).
- **ratings over time**: each review with the running average after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from daimm.catalog import store as t
from daimm.catalog.search import ModelHit, get_model
from daimm.catalog.store import CatalogStore

__all__ = [
    "CurrencyRevenue",
    "ModelStats",
    "RatingPoint",
    "RevenuePoint",
    "model_stats",
    "plot_stats",
    "stats_figure",
]


@dataclass(frozen=True)
class CurrencyRevenue:
    """Revenue of one model in one currency; amounts in the currency's smallest unit."""

    currency: str
    symbol: str
    decimals: int
    gross: int
    fee: int
    refunded: int
    net: int
    royalties: int
    pay_per_use: int


@dataclass(frozen=True)
class RevenuePoint:
    """One payment for plotting: ``amount`` (smallest unit) to the payees at ``timestamp``."""

    timestamp: int
    currency: str
    kind: str  # rental | purchase | resale | pay-per-use | refund
    amount: int


@dataclass(frozen=True)
class RatingPoint:
    """One review and the model's average after it (timestamp in seconds)."""

    timestamp: int
    rating: int
    average: float


@dataclass(frozen=True)
class ModelStats:
    """A model's sales, revenue and ratings (see the module docstring for the definitions)."""

    model: ModelHit
    revenue: tuple[CurrencyRevenue, ...]
    rentals: int
    rental_extensions: int
    purchases: int
    resales: int
    calls: int
    refunds: int
    disputes_opened: int
    disputes_open: int
    ratings: tuple[RatingPoint, ...]
    timeline: tuple[RevenuePoint, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class _Money:
    gross: int = 0
    fee: int = 0
    refunded: int = 0
    fee_refunded: int = 0
    royalties: int = 0
    pay_per_use: int = 0


def model_stats(store: CatalogStore, model_id: int, *, model: ModelHit | None = None) -> ModelStats:
    """Fold the event log of ``model_id`` into its statistics.

    Args:
        model: The model, when the caller has read it already (it is not read again).

    Raises:
        CatalogError: The model is not in the catalog.
    """
    if model is None:
        model = get_model(store, model_id)
    with store.connect() as conn:
        rows = conn.execute(
            select(
                t.events.c.tx_hash,
                t.events.c.event,
                t.events.c.args,
                t.events.c.timestamp,
            )
            .where(t.events.c.model_id == model_id)
            .order_by(t.events.c.block_number, t.events.c.log_index)
        ).all()
        tokens = {r.address: (r.symbol, r.decimals) for r in conn.execute(select(t.tokens))}
    # Events of one transaction belong together (PaymentHeld + Rented, RevenueDeposited + ...).
    by_tx: dict[str, list[tuple[str, dict[str, Any], int]]] = defaultdict(list)
    order: list[str] = []
    for tx_hash, name, args, ts in rows:
        if tx_hash not in by_tx:
            order.append(tx_hash)
        by_tx[tx_hash].append((name, json.loads(args), int(ts)))

    money: dict[str, _Money] = defaultdict(_Money)
    timeline: list[RevenuePoint] = []
    ratings: list[RatingPoint] = []
    disputed: dict[int, tuple[str, int, int]] = {}  # dispute -> (currency, amount, fee)
    price_per_call = 0
    counts: dict[str, int] = defaultdict(int)
    rating_sum = 0

    for tx_hash in order:
        group = by_tx[tx_hash]
        names = {name for name, _, _ in group}
        minted = any(name == "LicenceMinted" for name, _, _ in group)
        for name, a, ts in group:
            if name == "OfferSet":
                price_per_call = int(a["offer"]["pricePerCall"])
            elif name == "PaymentHeld" and "Resold" not in names:
                currency = a["currency"]
                amount, fee = int(a["amount"]), int(a["fee"])
                m = money[currency]
                m.gross += amount
                m.fee += fee
                if "Bought" in names:
                    kind = "purchase"
                elif "Rented" in names:
                    kind = "rental"
                else:
                    kind = "pay-per-use"
                    m.pay_per_use += amount
                timeline.append(RevenuePoint(ts, currency, kind, amount - fee))
            elif name == "RevenueDeposited" and "PaymentHeld" not in names:
                # NOTE: counted here only when the escrow did not also emit PaymentHeld for it.
                currency = a["currency"]
                amount, fee = int(a["amount"]), int(a["fee"])
                money[currency].gross += amount
                money[currency].fee += fee
                money[currency].pay_per_use += amount
                timeline.append(RevenuePoint(ts, currency, "pay-per-use", amount - fee))
            elif name == "Rented":
                counts["rentals" if minted else "rental_extensions"] += 1
            elif name == "Bought":
                counts["purchases"] += 1
            elif name == "Resold":
                # The price less the royalty is the seller's (it is held for them, the fee taken
                # from it); only the royalty is the model's revenue.
                counts["resales"] += 1
                royalty = int(a["royalty"])
                currency = _currency_in(group)
                money[currency].gross += royalty
                money[currency].royalties += royalty
                timeline.append(RevenuePoint(ts, currency, "resale", royalty))
            elif name == "VoucherRedeemed":
                paid = int(a["paid"])
                if price_per_call:
                    counts["calls"] += paid // price_per_call
            elif name == "PaymentDisputed":
                disputed[int(a["disputeId"])] = (a["currency"], int(a["amount"]), int(a["fee"]))
            elif name == "DisputeOpened":
                counts["disputes_opened"] += 1
                counts["disputes_open"] += 1
            elif name == "DisputeResolved":
                counts["disputes_open"] -= 1
                refunded = int(a["refunded"])
                if refunded:
                    counts["refunds"] += 1
                    currency, amount, fee = disputed.get(int(a["disputeId"]), ("", 0, 0))
                    m = money[currency]
                    m.refunded += refunded
                    # The fee is refunded in proportion (all of it for a full refund; a split
                    # rounds each part down on chain, so this may differ from it by 1 unit).
                    refund_fee = fee if refunded == amount else fee * refunded // max(amount, 1)
                    m.fee_refunded += refund_fee
                    timeline.append(RevenuePoint(ts, currency, "refund", refund_fee - refunded))
            elif name == "Reviewed":
                rating = int(a["rating"])
                rating_sum += rating
                ratings.append(RatingPoint(ts, rating, rating_sum / (len(ratings) + 1)))

    revenue = []
    for currency, m in sorted(money.items()):
        symbol, decimals = tokens.get(currency, (None, 18))
        if symbol is None:
            symbol = "ETH" if currency and int(currency, 16) == 0 else currency[:10]
        revenue.append(
            CurrencyRevenue(
                currency=currency,
                symbol=symbol,
                decimals=int(decimals),
                gross=m.gross,
                fee=m.fee,
                refunded=m.refunded,
                net=m.gross - m.fee - m.refunded + m.fee_refunded,
                royalties=m.royalties,
                pay_per_use=m.pay_per_use,
            )
        )
    return ModelStats(
        model=model,
        revenue=tuple(revenue),
        rentals=counts["rentals"],
        rental_extensions=counts["rental_extensions"],
        purchases=counts["purchases"],
        resales=counts["resales"],
        calls=counts["calls"],
        refunds=counts["refunds"],
        disputes_opened=counts["disputes_opened"],
        disputes_open=counts["disputes_open"],
        ratings=tuple(ratings),
        timeline=tuple(timeline),
    )


def _currency_in(group: list[tuple[str, dict[str, Any], int]]) -> str:
    for name, a, _ in group:
        if name in ("PaymentHeld", "Listed") and "currency" in a:
            return str(a["currency"])
    return ""


#: Time shown either side of the points of a panel whose points all fall in one instant.
_LONE_POINT_MARGIN = timedelta(hours=1)


def _fit_time_axis(ax: Any, xs: list[datetime]) -> None:
    """Pad the time axis of ``ax`` an hour either side when ``xs`` hold one instant (matplotlib
    would otherwise span years around a single date)."""
    if xs and min(xs) == max(xs):
        ax.set_xlim(xs[0] - _LONE_POINT_MARGIN, xs[0] + _LONE_POINT_MARGIN)


def plot_stats(stats: ModelStats, path: str) -> None:
    """Draw revenue over time (per currency), sales counts and ratings into the PNG ``path``.

    Uses matplotlib's Agg backend (no display needed).
    """
    import matplotlib.pyplot as plt

    fig = stats_figure(stats)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def stats_figure(stats: ModelStats) -> Any:
    """The matplotlib figure :func:`plot_stats` saves: three panels (revenue, sales, ratings).

    Revenue starts at 0, and a panel whose points share one instant spans two hours around it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    title = stats.model.name or f"model {stats.model.model_id}"
    fig.suptitle(f"{title} (model {stats.model.model_id})")

    ax = axes[0]
    decimals = {r.currency: (r.symbol, r.decimals) for r in stats.revenue}
    by_currency: dict[str, list[RevenuePoint]] = defaultdict(list)
    for point in stats.timeline:
        by_currency[point.currency].append(point)
    revenue_times: list[datetime] = []
    for currency, points in by_currency.items():
        symbol, dec = decimals.get(currency, (currency[:8], 18))
        total = 0
        xs, ys = [], []
        for p in points:
            total += p.amount
            xs.append(datetime.fromtimestamp(p.timestamp, tz=UTC))
            ys.append(total / 10**dec)
        ax.step(xs, ys, where="post", marker="o", label=symbol)
        revenue_times += xs
    ax.set_title("Net revenue to payees (cumulative)")
    ax.set_ylabel("amount")
    _fit_time_axis(ax, revenue_times)
    ax.set_ylim(bottom=0)
    if by_currency:
        ax.legend()
    ax.tick_params(axis="x", rotation=30)

    ax = axes[1]
    labels = ["rentals", "extensions", "purchases", "resales", "calls", "refunds"]
    values = [
        stats.rentals,
        stats.rental_extensions,
        stats.purchases,
        stats.resales,
        stats.calls,
        stats.refunds,
    ]
    ax.bar(labels, values, color="tab:blue")
    ax.set_title("Sales")
    ax.tick_params(axis="x", rotation=30)

    ax = axes[2]
    if stats.ratings:
        xs = [datetime.fromtimestamp(r.timestamp, tz=UTC) for r in stats.ratings]
        ax.scatter(xs, [r.rating for r in stats.ratings], label="review", color="tab:orange")
        ax.plot(xs, [r.average for r in stats.ratings], label="average", color="tab:green")
        ax.legend()
        _fit_time_axis(ax, xs)
    ax.set_ylim(0, 5.5)
    ax.set_title("Ratings over time")
    ax.tick_params(axis="x", rotation=30)

    fig.tight_layout()
    return fig
