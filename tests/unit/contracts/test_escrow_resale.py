"""RentalEscrow: licence resale (list, delist, buyListed) with the model owner's royalty."""

from __future__ import annotations

import ape
import pytest
from tests.utils.chain import ETH, only, single
from tests.utils.market import FEE_BPS, PERPETUAL, ROYALTY_BPS

RESALE = 20 * 10**18 + 7  # odd on purpose
REFUND = 0  # IRentalEscrow.Resolution.Refund


@pytest.fixture
def licence(escrow, licences, aimt_model, buyer):
    """The buyer's perpetual licence of `aimt_model`, approved to the escrow."""
    licence_id = only(escrow.buy(aimt_model, PERPETUAL, sender=buyer), escrow.Bought).licenceId
    licences.approve(escrow, licence_id, sender=buyer)
    return licence_id


@pytest.fixture
def listed(escrow, licence, buyer, token):
    escrow.list(licence, token, RESALE, sender=buyer)
    return licence


def test_list__records_the_listing(escrow, licence, buyer, token):
    tx = escrow.list(licence, token, RESALE, sender=buyer)

    log = only(tx, escrow.Listed)
    assert (log.licenceId, log.seller, log.currency, log.price) == (
        licence,
        buyer.address,
        token.address,
        RESALE,
    )
    assert escrow.listingOf(licence) == (buyer.address, token.address, RESALE)


def test_list__not_holder__reverts(escrow, licence, renter, token):
    with ape.reverts(escrow.NotLicenceHolder, licenceId=licence, caller=renter.address):
        escrow.list(licence, token, RESALE, sender=renter)


def test_list__not_approved__reverts(escrow, licences, licence, buyer, token):
    licences.approve(ETH, licence, sender=buyer)

    with ape.reverts(escrow.NotApproved, licenceId=licence):
        escrow.list(licence, token, RESALE, sender=buyer)


def test_list__disallowed_currency__reverts(escrow, licence, buyer, project, deployer):
    other = project.MockERC20.deploy("Other", "OTH", 18, sender=deployer)

    with ape.reverts(escrow.CurrencyNotAllowed, currency=other.address):
        escrow.list(licence, other, RESALE, sender=buyer)


def test_delist__removes_the_listing(escrow, listed, buyer, renter):
    tx = escrow.delist(listed, sender=buyer)

    assert only(tx, escrow.Delisted).licenceId == listed
    with ape.reverts(escrow.NotListed, licenceId=listed):
        escrow.buyListed(listed, RESALE, sender=renter)


def test_delist__stranger__reverts(escrow, listed, stranger):
    with ape.reverts(escrow.NotLicenceHolder, licenceId=listed, caller=stranger.address):
        escrow.delist(listed, sender=stranger)


def test_delist__not_listed__reverts(escrow, licence, buyer):
    with ape.reverts(escrow.NotListed, licenceId=licence):
        escrow.delist(licence, sender=buyer)


def test_buy_listed__pays_royalty_to_the_model_owner_and_the_rest_to_the_seller(
    escrow, licences, listed, aimt_model, buyer, renter, creator, treasury, token, chain
):
    tx = escrow.buyListed(listed, RESALE, sender=renter)

    royalty = RESALE * ROYALTY_BPS // 10_000
    fee = RESALE * FEE_BPS // 10_000
    resold = only(tx, escrow.Resold)
    assert (resold.licenceId, resold.modelId, resold.buyer, resold.seller) == (
        listed,
        aimt_model,
        renter.address,
        buyer.address,
    )
    assert (resold.price, resold.royalty) == (RESALE, royalty)
    held = {log.payeeSet: (log.amount, log.fee) for log in tx.events.filter(escrow.PaymentHeld)}
    assert held == {single(buyer): (RESALE - royalty, fee), single(creator): (royalty, 0)}
    assert licences.ownerOf(listed) == renter.address
    assert licences.hasAccess(aimt_model, renter)
    assert escrow.listingOf(listed) == (ETH, ETH, 0)
    release = tx.events.filter(escrow.PaymentHeld)[0].releaseAt
    chain.mine(timestamp=release)
    escrow.settle(single(buyer), token, release, sender=renter)
    escrow.settle(single(creator), token, release, sender=renter)
    assert escrow.owed(buyer, token) == RESALE - royalty - fee
    # The royalty shares the creator's bucket with the original sale of the same hour.
    sale_fee = PERPETUAL * FEE_BPS // 10_000
    assert escrow.owed(creator, token) == PERPETUAL - sale_fee + royalty
    assert escrow.owed(treasury, token) == fee + sale_fee


def test_buy_listed__in_eth(escrow, licences, listed, buyer, renter):
    escrow.delist(listed, sender=buyer)
    escrow.list(listed, ETH, 10**15, sender=buyer)

    escrow.buyListed(listed, 10**15, value=10**15, sender=renter)

    assert licences.ownerOf(listed) == renter.address


def test_buy_listed__price_above_max__reverts(escrow, listed, renter):
    with ape.reverts(escrow.PriceAboveMax, price=RESALE, maxPrice=RESALE - 1):
        escrow.buyListed(listed, RESALE - 1, sender=renter)


def test_buy_listed__stale_listing_after_a_plain_transfer__reverts(
    escrow, licences, listed, buyer, stranger, renter
):
    # A plain ERC-721 transfer moves the licence without royalty; the old listing dies with it.
    licences.transferFrom(buyer, stranger, listed, sender=buyer)

    assert escrow.listingOf(listed) == (ETH, ETH, 0)
    with ape.reverts(escrow.NotListed, licenceId=listed):
        escrow.buyListed(listed, RESALE, sender=renter)


def test_buy_listed__after_the_licence_left_and_came_back__reverts(
    escrow, licences, listed, buyer, stranger, renter
):
    # The seller approved the escrow for all its licences, so the approval survives the round trip:
    # only the listing's record of the holding (`transfersOf`) tells that this is a new holding.
    licences.setApprovalForAll(escrow, True, sender=buyer)
    licences.transferFrom(buyer, stranger, listed, sender=buyer)
    licences.transferFrom(stranger, buyer, listed, sender=stranger)

    assert licences.ownerOf(listed) == buyer.address
    assert escrow.listingOf(listed) == (ETH, ETH, 0)
    with ape.reverts(escrow.NotListed, licenceId=listed):
        escrow.buyListed(listed, RESALE, sender=renter)
    assert licences.ownerOf(listed) == buyer.address


def test_list__again_after_the_licence_came_back__sells_at_the_new_price(
    escrow, licences, listed, buyer, stranger, renter, token
):
    licences.transferFrom(buyer, stranger, listed, sender=buyer)
    licences.transferFrom(stranger, buyer, listed, sender=stranger)
    licences.approve(escrow, listed, sender=buyer)

    escrow.list(listed, token, RESALE + 1, sender=buyer)

    assert escrow.listingOf(listed) == (buyer.address, token.address, RESALE + 1)
    tx = escrow.buyListed(listed, RESALE + 1, sender=renter)
    assert only(tx, escrow.Resold).price == RESALE + 1
    assert licences.ownerOf(listed) == renter.address


def test_buy_listed__terminated_licence__reverts(escrow, licences, listed, buyer, renter, arbiter):
    # A full refund ends the licence (its record is deleted); the listing cannot sell it.
    dispute = only(escrow.openDispute(listed, sender=buyer), escrow.DisputeOpened).disputeId
    escrow.resolveDispute(dispute, REFUND, 0, sender=arbiter)

    assert escrow.listingOf(listed) == (ETH, ETH, 0)
    with ape.reverts(escrow.NotListed, licenceId=listed):
        escrow.buyListed(listed, RESALE, sender=renter)


def test_buy_listed__not_listed__reverts(escrow, licence, renter):
    with ape.reverts(escrow.NotListed, licenceId=licence):
        escrow.buyListed(licence, RESALE, sender=renter)


def test_resale__is_not_disputable_by_the_new_holder(escrow, listed, renter):
    escrow.buyListed(listed, RESALE, sender=renter)

    with ape.reverts(escrow.NothingToDispute, licenceId=listed):
        escrow.openDispute(listed, sender=renter)
