"""Relayer registry, pay-per-use credit and reviews through the library."""

from __future__ import annotations

import pytest

from daimm.errors import (
    AllowanceError,
    NoLicenceError,
    NotOwnerError,
    OfferError,
    PreflightError,
    ValidationError,
)
from daimm.market import Authorisation, CreditDeposit, CreditReclaim, Review

KEY = b"\x11" * 32
CREDIT_TIMEOUT = 3600


@pytest.fixture
def registered(market, operator, relayer):
    market.relayers.approve_operator(operator, sender=relayer)
    market.relayers.register(relayer, KEY, "https://relayer.example", sender=operator)
    return relayer


@pytest.fixture
def authorised(market, registered, model_id, creator):
    market.relayers.authorise(model_id, registered, "bafkreienvelope", sender=creator)
    return registered


def test_register__byAnApprovedOperator__returnsTheRegistration(market, operator, relayer):
    assert market.relayers.approve_operator(operator, sender=relayer) == operator.address

    registration = market.relayers.register(relayer, KEY, "https://r.example", sender=operator)

    assert registration.relayer == relayer.address
    assert registration.operator == operator.address
    assert registration.x25519_public_key == KEY
    assert market.relayers.relayer(relayer).endpoint == "https://r.example"


def test_register__byItself__needsNoApproval(market, relayer):
    registration = market.relayers.register(relayer, KEY, "https://r.example", sender=relayer)

    assert registration.operator == relayer.address


def test_register__withoutTheRelayersConsent__raisesSayingHowToApprove(market, operator, relayer):
    nonce = operator.nonce

    with pytest.raises(PreflightError, match="daimm relayer approve-operator"):
        market.relayers.plan_register(relayer, KEY, "https://r.example", sender=operator)

    assert operator.nonce == nonce


def test_register__twice__raisesBeforeSending(market, registered, operator):
    with pytest.raises(PreflightError, match="already registered"):
        market.relayers.plan_register(registered, KEY, "https://x.example", sender=operator)


def test_register__badKeyOrEndpoint__raises(market, operator, relayer):
    with pytest.raises(ValidationError, match="32 non-zero bytes"):
        market.relayers.plan_register(relayer, b"\x00" * 32, "https://x", sender=operator)
    with pytest.raises(ValidationError, match="http"):
        market.relayers.plan_register(relayer, KEY, "ftp://x", sender=operator)


def test_authorise_thenAgain_replacesTheEnvelope(market, registered, model_id, creator):
    first = market.relayers.authorise(model_id, registered, "bafkreione", sender=creator)
    second = market.relayers.authorise(model_id, registered, "bafkreitwo", sender=creator)

    assert isinstance(first, Authorisation)
    assert [
        s.method
        for s in market.relayers.plan_authorise(
            model_id, registered, "bafkreithree", sender=creator
        ).steps
    ] == ["setEnvelope"]
    assert second.envelope_cid == "bafkreitwo"
    assert market.relayers.envelope_of(model_id, registered) == "bafkreitwo"
    assert market.relayers.is_authorised(model_id, registered)


def test_authorise__unregisteredRelayer__raises(market, model_id, creator, relayer):
    with pytest.raises(PreflightError, match="not registered"):
        market.relayers.plan_authorise(model_id, relayer, "bafkrei", sender=creator)


def test_authorise__notModelOwner__raises(market, registered, model_id, stranger):
    with pytest.raises(NotOwnerError):
        market.relayers.plan_authorise(model_id, registered, "bafkrei", sender=stranger)


def test_deposit_thenReclaimAfterTimeout_returnsTypedResults(
    market, authorised, model_id, newcomer, chain
):
    deposit = market.credit.deposit(model_id, authorised, 10**17, sender=newcomer, approve=True)

    assert isinstance(deposit, CreditDeposit)
    assert deposit.amount == 10**17
    assert deposit.currency == market.token.address
    with pytest.raises(PreflightError, match="live until"):
        market.credit.plan_reclaim(model_id, authorised, sender=newcomer)

    chain.pending_timestamp = deposit.expires_at + 1
    reclaim = market.credit.reclaim(model_id, authorised, sender=newcomer)

    assert isinstance(reclaim, CreditReclaim)
    assert reclaim.amount == 10**17
    assert market.credit.channel(newcomer, model_id, authorised).remaining == 0


def test_deposit__noAllowance__raisesAllowanceErrorNamingCredit(
    market, authorised, model_id, newcomer
):
    with pytest.raises(AllowanceError, match="--spender credit"):
        market.credit.plan_deposit(model_id, authorised, 10**17, sender=newcomer)


def test_deposit__relayerNotAuthorised__raises(market, registered, model_id, newcomer):
    with pytest.raises(PreflightError, match="not authorised for model"):
        market.credit.plan_deposit(model_id, registered, 10**17, sender=newcomer, approve=True)


def test_deposit__noPayPerUsePrice__raises(market, publish_model, put_offer, authorised, newcomer):
    model = publish_model()
    put_offer(model, price_per_call=0)

    with pytest.raises(OfferError, match="no pay-per-use price"):
        market.credit.plan_deposit(model, authorised, 10**17, sender=newcomer, approve=True)


def test_reclaim__nothingDeposited__raises(market, authorised, model_id, newcomer):
    with pytest.raises(PreflightError, match="no unspent credit"):
        market.credit.plan_reclaim(model_id, authorised, sender=newcomer)


def test_review_returnsTheReviewAndCountsIt(market, model_id, renter):
    rental = market.escrow.rent(model_id, 1, sender=renter)

    review = market.reviews.review(rental.licence_id, 4, "bafkreicomment", sender=renter)

    assert isinstance(review, Review)
    assert (review.model_id, review.rating, review.comment_cid) == (model_id, 4, "bafkreicomment")
    rating = market.reviews.rating_of(model_id)
    assert (rating.count, rating.total, rating.average) == (1, 4, 4.0)


def test_review__secondForOneLicence__raises(market, model_id, renter):
    rental = market.escrow.rent(model_id, 1, sender=renter)
    market.reviews.review(rental.licence_id, 5, sender=renter)

    with pytest.raises(PreflightError, match="already used for a review"):
        market.reviews.plan_review(rental.licence_id, 3, sender=renter)


def test_review__notHolder__raisesNoLicence(market, model_id, renter, stranger):
    rental = market.escrow.rent(model_id, 1, sender=renter)

    with pytest.raises(NoLicenceError, match="does not hold licence"):
        market.reviews.plan_review(rental.licence_id, 5, sender=stranger)


def test_review__ratingOutOfRange__raises(market, model_id, renter):
    rental = market.escrow.rent(model_id, 1, sender=renter)

    with pytest.raises(ValidationError, match="1 to 5 stars"):
        market.reviews.plan_review(rental.licence_id, 6, sender=renter)
