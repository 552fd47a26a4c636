"""Seller analytics folded from the catalog's event log, checked against the prices paid."""

from __future__ import annotations

import pytest

from daimm.catalog.stats import model_stats, plot_stats
from daimm.errors import CatalogError

AIMT = 10**18
ETH = "0x0000000000000000000000000000000000000000"
REFUND = 0


def fee(amount: int) -> int:
    return amount * 250 // 10_000


def test_stats_give_revenue_by_currency_sales_calls_refunds_and_ratings(
    market,
    chain,
    creator,
    renter,
    buyer,
    arbiter,
    relayer,
    publish,
    set_offer,
    fund,
    make_indexer,
    store,
):
    from daimm.eip712 import Voucher, sign_voucher

    model_id = publish(creator, {"name": "Analysed"}, royalty_bps=500)
    set_offer(creator, model_id, rent=2, buy=30, call=1)
    market.escrow.rent(model_id, 3, 6 * AIMT, sender=renter)  # 6 AIMT
    market.escrow.rent(model_id, 1, 2 * AIMT, sender=renter)  # extension, 2 AIMT
    market.escrow.buy(model_id, 30 * AIMT, sender=buyer)  # 30 AIMT
    rental = int(market.licences.rentalOf(model_id, renter))
    market.reviews.review(rental, 4, "bafyc", sender=renter)
    perpetual = rental + 1
    market.reviews.review(perpetual, 2, "bafyd", sender=buyer)
    market.licences.approve(market.escrow.address, perpetual, sender=buyer)
    market.escrow.list(perpetual, market.token.address, 20 * AIMT, sender=buyer)
    market.escrow.buyListed(perpetual, 20 * AIMT, sender=renter)  # royalty 1 AIMT
    market.relayers.register(relayer, b"\x02" * 32, "http://127.0.0.1:1", sender=relayer)
    market.relayers.authorise(model_id, relayer, "bafyenv", sender=creator)
    fund(buyer, 10)
    market.credit.deposit(model_id, relayer, 5 * AIMT, sender=buyer)
    voucher = Voucher(model_id, relayer.address, 3 * AIMT, chain.chain_id, market.credit.address)
    market.credit.redeem(
        buyer, voucher.as_tuple(), sign_voucher(voucher, buyer.private_key), sender=relayer
    )  # 3 calls
    # The owner moves the offer to ETH; a second renter pays in ETH, disputes, is refunded.
    set_offer(creator, model_id, rent=1, currency=ETH, unit=10**16)
    market.escrow.rent(model_id, 2, 2 * 10**16, sender=buyer, value=2 * 10**16)
    market.escrow.openDispute(int(market.licences.rentalOf(model_id, buyer)), sender=buyer)
    market.escrow.resolveDispute(market.escrow.disputeCount(), REFUND, 0, sender=arbiter)

    make_indexer().sync()
    stats = model_stats(store, model_id)

    by = {r.symbol: r for r in stats.revenue}
    aimt = by["AIMT"]
    paid = 6 * AIMT + 2 * AIMT + 30 * AIMT + 3 * AIMT
    assert (aimt.gross, aimt.fee, aimt.refunded) == (
        paid + AIMT,
        fee(6 * AIMT) + fee(2 * AIMT) + fee(30 * AIMT) + fee(3 * AIMT),
        0,
    )
    assert (aimt.royalties, aimt.pay_per_use) == (AIMT, 3 * AIMT)
    assert aimt.net == aimt.gross - aimt.fee
    eth = by["ETH"]
    assert (eth.gross, eth.fee, eth.refunded, eth.net) == (
        2 * 10**16,
        fee(2 * 10**16),
        2 * 10**16,
        0,
    )
    assert (stats.rentals, stats.rental_extensions, stats.purchases, stats.resales) == (2, 1, 1, 1)
    assert (stats.calls, stats.refunds, stats.disputes_opened, stats.disputes_open) == (3, 1, 1, 0)
    assert [(r.rating, r.average) for r in stats.ratings] == [(4, 4.0), (2, 3.0)]
    assert [p.kind for p in stats.timeline] == [
        "rental",
        "rental",
        "purchase",
        "resale",
        "pay-per-use",
        "rental",
        "refund",
    ]


def test_plot_writes_a_png_with_the_three_panels(
    market, creator, renter, publish, set_offer, make_indexer, store, tmp_path
):
    model_id = publish(creator, {"name": "Plotted"})
    set_offer(creator, model_id, rent=2)
    market.escrow.rent(model_id, 1, 2 * AIMT, sender=renter)
    market.reviews.review(int(market.licences.rentalOf(model_id, renter)), 5, "c", sender=renter)
    make_indexer().sync()
    path = tmp_path / "stats.png"

    plot_stats(model_stats(store, model_id), str(path))

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_stats_of_an_unknown_model_say_to_sync(make_indexer, store):
    make_indexer().sync()

    with pytest.raises(CatalogError, match="daimm catalog sync"):
        model_stats(store, 999)


def test_plot__one_rental_and_one_review__revenue_starts_at_zero_and_time_spans_hours(
    market, creator, renter, publish, set_offer, make_indexer, store
):
    import matplotlib.dates as mdates

    from daimm.catalog.stats import stats_figure

    model_id = publish(creator, {"name": "Lone points"})
    set_offer(creator, model_id, rent=2)
    market.escrow.rent(model_id, 1, 2 * AIMT, sender=renter)
    market.reviews.review(int(market.licences.rentalOf(model_id, renter)), 5, "c", sender=renter)
    make_indexer().sync()

    revenue, _sales, ratings = stats_figure(model_stats(store, model_id)).axes

    assert revenue.get_ylim()[0] == 0
    for panel in (revenue, ratings):
        start, end = (mdates.num2date(v) for v in panel.get_xlim())
        assert (end - start).total_seconds() <= 2 * 3600
