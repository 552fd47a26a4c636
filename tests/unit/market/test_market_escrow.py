"""Escrow through the library: pre-flight checks that send nothing, typed results from events,
reverts named by their custom error."""

from __future__ import annotations

import pytest

from daimm.errors import (
    AllowanceError,
    ContractRevertError,
    InsufficientBalanceError,
    NotOwnerError,
    OfferError,
    PreflightError,
)
from daimm.market import ETH_ADDRESS, Offer, Rental, Resolution

AIMT = 10**18
PERIOD = 24 * 3600


def test_rent_withApprove_returnsTheRentalFromItsEvents(market, model_id, renter, chain):
    start = chain.pending_timestamp

    rental = market.escrow.rent(model_id, 3, sender=renter, approve=True)

    assert isinstance(rental, Rental)
    assert rental.model_id == model_id
    assert rental.renter == renter.address
    assert rental.periods == 3
    assert rental.price == 6 * AIMT
    assert rental.currency == market.token.address
    assert start + 3 * PERIOD <= rental.expires <= start + 3 * PERIOD + 5
    assert rental.release_at >= start + market.escrow.dispute_window()
    assert market.licences.has_access(model_id, renter)
    assert market.licences.licence(rental.licence_id).holder == renter.address


def test_rent__allowanceShort__raisesWithTheApproveCommandAndSendsNothing(
    market, model_id, newcomer
):
    nonce = newcomer.nonce

    with pytest.raises(AllowanceError, match=r"daimm token approve \"6 AIMT\" --spender escrow"):
        market.escrow.plan_rent(model_id, 3, sender=newcomer)

    assert newcomer.nonce == nonce


def test_rent__allowanceShortWithApprove__approvesThenRents(market, model_id, newcomer):
    plan = market.escrow.plan_rent(model_id, 3, sender=newcomer, approve=True)

    rental = plan.execute()

    assert [step.method for step in plan.steps] == ["approve", "rent"]
    assert rental.price == 6 * AIMT
    assert market.token.allowance(newcomer, market.escrow.address) == 0


def test_rent__balanceShort__raisesInsufficientBalance(market, model_id, stranger):
    with pytest.raises(InsufficientBalanceError, match="holds 0 AIMT but needs 2 AIMT"):
        market.escrow.plan_rent(model_id, 1, sender=stranger, approve=True)


def test_rent__offerInactive__raisesOfferError(market, publish_model, put_offer, renter):
    model = publish_model()
    put_offer(model, active=False)

    with pytest.raises(OfferError, match="no active offer"):
        market.escrow.plan_rent(model, 1, sender=renter, approve=True)


def test_rent__periodsOutOfRange__raisesOfferError(market, model_id, renter):
    with pytest.raises(OfferError, match="rents for 1 to 30 periods"):
        market.escrow.plan_rent(model_id, 31, sender=renter, approve=True)


def test_rent__priceAboveMax__raisesOfferError(market, model_id, renter):
    with pytest.raises(OfferError, match="above your maximum of 1 AIMT"):
        market.escrow.plan_rent(model_id, 1, sender=renter, max_price=AIMT, approve=True)


def test_rent__offerRaisedAfterPlanning__revertsNamingPriceAboveMax(
    market, model_id, put_offer, renter
):
    plan = market.escrow.plan_rent(model_id, 1, sender=renter, approve=True)
    put_offer(model_id, price_per_period=3 * AIMT)

    with pytest.raises(ContractRevertError) as info:
        plan.execute()

    assert info.value.contract == "RentalEscrow"
    assert info.value.error_name == "PriceAboveMax"
    assert info.value.error_args == {"price": 3 * AIMT, "maxPrice": 2 * AIMT}
    assert str(info.value) == (
        f"RentalEscrow reverted with PriceAboveMax(price={3 * AIMT}, maxPrice={2 * AIMT})"
    )


def test_planCost_pricesTheAction(market, model_id, renter):
    plan = market.escrow.plan_rent(model_id, 1, sender=renter)

    cost = plan.cost()

    assert cost.payment == 2 * AIMT
    assert cost.currency.symbol == "AIMT"
    assert cost.gas is not None and 50_000 < cost.gas < 1_000_000
    assert "pays 2 AIMT + gas ~" in cost.describe()


def test_buy_inEth_returnsThePurchase(market, publish_model, put_offer, buyer):
    model = publish_model()
    put_offer(model, currency=ETH_ADDRESS, perpetual_price=10**16)

    purchase = market.escrow.buy(model, sender=buyer)

    assert purchase.price == 10**16
    assert purchase.currency == ETH_ADDRESS
    assert purchase.buyer == buyer.address
    assert market.licences.licence(purchase.licence_id).expires == 2**64 - 1


def test_setOffer__notOwner__raisesNotOwner(market, model_id, stranger, core):
    offer = market.escrow.offer(model_id)

    with pytest.raises(NotOwnerError, match=f"does not own model {model_id}"):
        market.escrow.plan_set_offer(model_id, offer, sender=stranger)


def test_setOffer__disallowedCurrency__raisesOfferError(market, model_id, creator, stranger):
    offer = Offer(stranger.address, 1, PERIOD, 1, 2, True, 0, 0)

    with pytest.raises(OfferError, match="not allowed"):
        market.escrow.plan_set_offer(model_id, offer, sender=creator)


def test_withdraw__beforeTheWindow__raisesNothingToWithdraw(market, model_id, creator, renter):
    market.escrow.rent(model_id, 1, sender=renter, approve=True)

    with pytest.raises(PreflightError, match="nothing to withdraw in AIMT"):
        market.escrow.plan_withdraw(market.token.address, sender=creator)


def test_withdraw__afterTheWindow__settlesAndPaysTheCreator(
    market, model_id, creator, renter, chain
):
    rental = market.escrow.rent(model_id, 2, sender=renter, approve=True)
    chain.pending_timestamp = rental.release_at + 1
    before = market.token.balance_of(creator)

    withdrawal = market.escrow.withdraw(market.token.address, sender=creator)

    fee = rental.price * market.escrow.fee_bps() // 10_000
    assert withdrawal.amount == rental.price - fee
    assert len(withdrawal.settlements) == 1
    assert withdrawal.settlements[0].amount == rental.price
    assert market.token.balance_of(creator) - before == rental.price - fee


def test_dispute_openAndRefund_returnsTypedResults(market, model_id, renter, arbiter):
    rental = market.escrow.rent(model_id, 1, sender=renter, approve=True)

    opened = market.escrow.open_dispute(rental.licence_id, sender=renter)
    resolved = market.escrow.resolve_dispute(opened.dispute_id, Resolution.REFUND, sender=arbiter)

    assert opened.licence_id == rental.licence_id
    assert opened.amount == rental.price
    assert resolved.resolution is Resolution.REFUND
    assert resolved.refunded == rental.price
    assert resolved.released == 0


def test_resolveDispute__notArbiter__raisesNotOwner(market, model_id, renter):
    rental = market.escrow.rent(model_id, 1, sender=renter, approve=True)
    opened = market.escrow.open_dispute(rental.licence_id, sender=renter)

    with pytest.raises(NotOwnerError, match="not an arbiter"):
        market.escrow.plan_resolve_dispute(opened.dispute_id, Resolution.RELEASE, sender=renter)
