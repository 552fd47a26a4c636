"""The catalog's own reads (daimm.catalog.queries) on both databases: a model's page read with one
lookup of the model, what an address holds, what a creator is owed, and the lookups the CLI,
the web server and the stack use instead of writing SQL against the catalog's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from daimm.catalog import queries

AIMT = 10**18


def _count_model_reads(store: Any) -> list[str]:
    """Every statement that looks a model up with its metadata and offer (search's base select)."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM models LEFT OUTER JOIN metadata" in statement:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", on_execute)
    return seen


def test_queries__a_marketplace_with_sales_reviews_and_credit__read_back_field_by_field(
    market, creator, renter, buyer, relayer, publish, set_offer, fund, make_indexer, store
):
    model_id = publish(creator, {"name": "Queried", "task": "tabular-classification"})
    set_offer(creator, model_id, rent=2, buy=30, call=1)
    market.escrow.rent(model_id, 3, 6 * AIMT, sender=renter)
    market.escrow.buy(model_id, 30 * AIMT, sender=buyer)
    rental = int(market.licences.rentalOf(model_id, renter))
    market.reviews.review(rental, 4, "bafycomment", sender=renter)
    market.relayers.register(relayer, b"\x02" * 32, "http://127.0.0.1:1", sender=relayer)
    market.relayers.authorise(model_id, relayer, "bafyenv", sender=creator)
    fund(buyer, 10)
    market.credit.deposit(model_id, relayer, 5 * AIMT, sender=buyer)
    make_indexer().sync()
    reads = _count_model_reads(store)

    page = queries.model_page(store, model_id)

    assert len(reads) == 1
    assert page.model.model_id == model_id and page.document is not None
    assert page.document["name"] == "Queried"
    assert [(v.version, v.metadata_cid) for v in page.versions] == [(0, page.model.metadata_cid)]
    assert [(r.licence_id, r.reviewer, r.rating, r.comment_cid) for r in page.reviews] == [
        (rental, renter.address, 4, "bafycomment")
    ]
    assert page.endpoints == {relayer.address: "http://127.0.0.1:1"}
    assert (page.stats.rentals, page.stats.purchases) == (1, 1)

    held = queries.licences_of(store, renter.address)
    mine = [h for h in held if h.model_id == model_id]
    assert [(h.licence_id, h.kind, h.model_name) for h in mine] == [(rental, "rental", "Queried")]
    assert mine[0].expires == int(market.licences.userExpires(rental))
    bought = [h for h in queries.licences_of(store, buyer.address) if h.model_id == model_id]
    assert [(h.kind, h.expires) for h in bought] == [("perpetual", None)]

    [channel] = [c for c in queries.channels_of(store, buyer.address) if c.model_id == model_id]
    assert (channel.relayer, channel.symbol, channel.decimals) == (relayer.address, "AIMT", 18)
    assert (channel.deposited, channel.redeemed, channel.balance) == (5 * AIMT, 0, 5 * AIMT)

    buckets = queries.held_payments(store, [model_id])
    assert sum(b.amount for b in buckets) == 36 * AIMT
    assert queries.relayer_of(store, relayer.address) == queries.RelayerInfo(
        relayer.address, "http://127.0.0.1:1", True
    )
    assert queries.relayer_of(store, creator.address) is None
    assert queries.has_model(store, model_id) and not queries.has_model(store, model_id + 1000)
    assert queries.token_currencies(store)["AIMT"] == (market.token.address, 18)
    status = queries.catalog_status(store)
    assert status.models >= 1 and status.licences >= 2 and status.reviews >= 1
    assert status.metadata.get("ok", 0) >= 1 and status.last_block == store.last_block()


def test_licences_of__an_address_with_nothing__is_empty(store, creator):
    assert queries.licences_of(store, creator.address) == []
    assert queries.channels_of(store, creator.address) == []
    assert queries.held_payments(store, []) == []
