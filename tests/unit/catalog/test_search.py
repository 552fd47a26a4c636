"""Full-text search with filters and sorting, over a catalog synced from ape's local chain."""

from __future__ import annotations

from typing import Any

import pytest

from daimm.catalog import (
    CatalogStore,
    ChainReader,
    Indexer,
    PriceKind,
    SearchQuery,
    SortKey,
    ipfs_fetcher,
    search,
)
from daimm.errors import ValidationError

AIMT = 10**18
ETH = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def store(catalog_backend, catalog_databases, shelf, chain, catalog_contracts, blockstore):
    """One catalog per backend for the module, synced once from `shelf` (the tests only read it).

    Both backends read the same chain, so every assertion below holds for SQLite and PostgreSQL.
    """
    catalog = CatalogStore(catalog_databases.url(catalog_backend))
    Indexer(
        catalog, ChainReader(chain.provider.web3), catalog_contracts, ipfs_fetcher(blockstore)
    ).sync()
    yield catalog
    catalog.close()


@pytest.fixture(scope="module")
def shelf(
    market,
    chain,
    creator,
    rival,
    renter,
    buyer,
    publish,
    set_offer,
):
    """Six models on chain; returns their ids by nickname. Ratings: card 5 and 4, claims 3."""
    ids: dict[str, int] = {}

    def add(nick: str, owner: Any, doc: dict[str, Any], **offer: Any) -> None:
        ids[nick] = publish(owner, doc)
        set_offer(owner, ids[nick], **offer)

    tabular = "tabular-classification"
    add(
        "card",
        creator,
        {"name": "Credit card fraud detector", "task": tabular, "tags": ["fraud", "finance"]},
        rent=3,
        buy=40,
        call=1,
    )
    add(
        "claims",
        rival,
        {
            "name": "Insurance claims",
            "task": tabular,
            "description": "Fraud detection for insurance claims",
        },
        rent=8,
    )
    add(
        "image",
        creator,
        {
            "name": "Forged document finder",
            "task": "image-classification",
            "tags": ["fraud", "vision"],
        },
        rent=1,
    )
    add(
        "iris",
        creator,
        {"name": "Iris classifier", "task": tabular},
        rent=1,
        currency=ETH,
        unit=10**16,
    )
    add("asleep", creator, {"name": "Dormant fraud model", "task": tabular}, rent=2, active=False)
    add("torch", rival, {"name": "Fraud scorer", "task": tabular, "framework": "pytorch"}, rent=2)
    for account, nick, rating in ((renter, "card", 5), (buyer, "card", 4), (renter, "claims", 3)):
        market.escrow.rent(ids[nick], 1, 10 * AIMT, sender=account)
        licence = int(market.licences.rentalOf(ids[nick], account))
        market.reviews.review(licence, rating, "bafycomment", sender=account)
    return ids


def _ids(hits) -> list[int]:
    return [h.model_id for h in hits]


def test_text_matches_name_description_and_tags_with_stemming(shelf, store):
    hits = search(store, SearchQuery(text="fraud detection"))

    assert set(_ids(hits)) == {shelf[n] for n in ("card", "claims", "image", "torch")}
    assert _ids(search(store, SearchQuery(text="detect")))[0] == shelf["claims"]


def test_the_issue_example_finds_only_the_cheap_well_rated_onnx_tabular_model(shelf, store, market):
    query = SearchQuery(
        text="fraud detection",
        task="tabular-classification",
        framework="onnx",
        currency=market.token.address,
        max_price=5 * AIMT,
        min_rating=4,
        sort=SortKey.PRICE,
    )

    [hit] = search(store, query)

    assert (hit.model_id, hit.name, hit.rating) == (
        shelf["card"],
        "Credit card fraud detector",
        4.5,
    )
    assert (hit.price_per_period, hit.symbol) == (3 * AIMT, "AIMT")


def test_max_price_keeps_only_offers_in_that_currency_at_or_below_it(shelf, store, market):
    aimt = market.token.address

    in_aimt = search(store, SearchQuery(currency=aimt, max_price=3 * AIMT))
    in_eth = search(store, SearchQuery(currency=ETH, max_price=10**16))
    per_call = search(store, SearchQuery(currency=aimt, max_price=AIMT, price_kind=PriceKind.CALL))

    assert set(_ids(in_aimt)) == {shelf["card"], shelf["image"], shelf["torch"]}
    assert _ids(in_eth) == [shelf["iris"]]
    assert _ids(per_call) == [shelf["card"]]


def test_sort_by_price_puts_the_cheapest_first_and_unpriced_last(shelf, store, market):
    hits = search(store, SearchQuery(currency=market.token.address, sort=SortKey.PRICE))
    perpetual = search(store, SearchQuery(sort=SortKey.PRICE, price_kind=PriceKind.PERPETUAL))

    prices = [h.price_per_period for h in hits]
    assert prices == sorted(prices) and prices[0] == AIMT
    assert _ids(perpetual)[0] == shelf["card"]  # the only one with a perpetual price


def test_sort_by_rating_puts_the_best_average_first_and_unrated_last(shelf, store):
    hits = search(store, SearchQuery(sort=SortKey.RATING))

    assert _ids(hits)[:2] == [shelf["card"], shelf["claims"]]
    assert all(h.rating is None for h in hits[2:])


def test_min_rating_leaves_out_unrated_and_lower_rated_models(shelf, store):
    assert set(_ids(search(store, SearchQuery(min_rating=3)))) == {shelf["card"], shelf["claims"]}
    assert _ids(search(store, SearchQuery(min_rating=4.6))) == []


def test_task_framework_creator_and_inactive_filters(shelf, store, rival):
    assert _ids(search(store, SearchQuery(task="image-classification"))) == [shelf["image"]]
    assert _ids(search(store, SearchQuery(framework="PyTorch"))) == [shelf["torch"]]
    assert set(_ids(search(store, SearchQuery(creator=rival.address)))) == {
        shelf["claims"],
        shelf["torch"],
    }
    assert shelf["asleep"] not in _ids(search(store, SearchQuery(text="fraud")))
    assert shelf["asleep"] in _ids(search(store, SearchQuery(text="fraud", include_inactive=True)))


def test_sort_by_newest_and_by_name(shelf, store):
    newest = search(store, SearchQuery(sort=SortKey.NEWEST, limit=2))
    by_name = search(store, SearchQuery(sort=SortKey.NAME))

    assert _ids(newest) == [shelf["torch"], shelf["iris"]]
    names = [h.name for h in by_name]
    assert names == sorted(names, key=str.lower)


def test_query_text_with_fts_operators_is_taken_as_plain_words(shelf, store):
    hits = search(store, SearchQuery(text='fraud" OR NEAR( * -'))

    assert shelf["card"] in _ids(hits)


def test_results_carry_creator_reputation_and_relayers(shelf, store, creator):
    [hit] = search(store, SearchQuery(text="credit card"))

    assert hit.reputation is not None
    assert (hit.reputation.creator, hit.reputation.rating_count) == (creator.address, 2)
    assert hit.relayers == ()


def test_a_query_is_validated_before_it_runs():
    with pytest.raises(ValidationError, match="currency"):
        SearchQuery(max_price=5)
    with pytest.raises(ValidationError, match="between 1 and 5"):
        SearchQuery(min_rating=6)
