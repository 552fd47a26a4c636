"""Licence resales through the library (``Escrow.plan_list``, ``plan_delist``,
``plan_buy_listed``): pre-flight checks that send nothing, the escrow's approval as a step of its
own, and typed results from ``Listed`` and ``Resold``."""

from __future__ import annotations

import pytest

from daimm.errors import AllowanceError, NoLicenceError, OfferError, PreflightError
from daimm.market import ETH_ADDRESS, Listing, Resale

AIMT = 10**18
PRICE = 40 * AIMT


@pytest.fixture
def licence(market, model_id, buyer):
    """A perpetual licence of `buyer` for `model_id` (royalty 500 bps, default AIMT offer)."""
    return market.escrow.buy(model_id, sender=buyer).licence_id


def test_list__approve__approves_the_escrow_then_lists(market, licence, buyer):
    plan = market.escrow.plan_list(licence, PRICE, market.token.address, sender=buyer, approve=True)

    listing = plan.execute()

    assert [step.method for step in plan.steps] == ["approve", "list"]
    assert isinstance(listing, Listing)
    assert (listing.licence_id, listing.seller, listing.price) == (licence, buyer.address, PRICE)
    assert market.escrow.listing(licence) == Listing(
        licence, buyer.address, market.token.address, PRICE
    )


def test_list__escrow_not_approved__raises_and_sends_nothing(market, licence, buyer):
    nonce = buyer.nonce

    with pytest.raises(AllowanceError, match=f"may not transfer licence {licence}"):
        market.escrow.plan_list(licence, PRICE, market.token.address, sender=buyer)

    assert buyer.nonce == nonce


def test_list__not_the_holder__raises_no_licence(market, licence, stranger):
    with pytest.raises(NoLicenceError, match=f"does not hold licence {licence}"):
        market.escrow.plan_list(licence, PRICE, ETH_ADDRESS, sender=stranger, approve=True)


def test_buy_listed__pays_the_seller_the_royalty_and_the_fee_and_moves_the_licence(
    market, licence, buyer, renter, creator
):
    market.escrow.list_licence(licence, PRICE, market.token.address, sender=buyer, approve=True)

    resale = market.escrow.buy_listed(licence, sender=renter, approve=True)

    assert isinstance(resale, Resale)
    assert (resale.buyer, resale.seller, resale.price) == (renter.address, buyer.address, PRICE)
    assert resale.royalty == PRICE * 500 // 10_000
    assert resale.currency == market.token.address
    assert market.licences.holder(licence) == renter.address
    assert market.escrow.listing(licence) is None


def test_buy_listed__price_above_max__raises_offer_error(market, licence, buyer, renter):
    market.escrow.list_licence(licence, PRICE, market.token.address, sender=buyer, approve=True)

    with pytest.raises(OfferError, match="above your maximum"):
        market.escrow.plan_buy_listed(licence, sender=renter, max_price=PRICE - 1)


def test_buy_listed__not_listed__raises_offer_error(market, licence, renter):
    with pytest.raises(OfferError, match=f"licence {licence} is not for sale"):
        market.escrow.plan_buy_listed(licence, sender=renter)


def test_delist__by_the_seller__ends_the_listing(market, licence, buyer):
    market.escrow.list_licence(licence, PRICE, market.token.address, sender=buyer, approve=True)

    market.escrow.delist(licence, sender=buyer)

    assert market.escrow.listing(licence) is None
    with pytest.raises(PreflightError, match="is not listed"):
        market.escrow.plan_delist(licence, sender=buyer)
