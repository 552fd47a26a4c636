"""RentalEscrow: opening disputes during the window and each resolution."""

from __future__ import annotations

import ape
import pytest
from tests.utils.chain import logs_of, only, single
from tests.utils.market import PERPETUAL, PRICE

REFUND, RELEASE, SPLIT = 0, 1, 2


@pytest.fixture
def rental(escrow, aimt_model, renter):
    """The renter rented `aimt_model` for 2 days; returns its PaymentHeld log."""
    return only(escrow.rent(aimt_model, 2, 2 * PRICE, sender=renter), escrow.PaymentHeld)


@pytest.fixture
def dispute(escrow, rental, renter):
    tx = escrow.openDispute(rental.licenceId, sender=renter)
    return only(tx, escrow.DisputeOpened).disputeId


# ------------------------------------------------------------------ openDispute
def test_open_dispute__moves_the_payment_out_of_its_bucket_and_locks_the_licence(
    escrow, licences, rental, renter, creator, token
):
    tx = escrow.openDispute(rental.licenceId, sender=renter)

    opened = only(tx, escrow.DisputeOpened)
    assert (opened.disputeId, opened.licenceId, opened.payer, opened.amount) == (
        1,
        rental.licenceId,
        renter.address,
        2 * PRICE,
    )
    moved = only(tx, escrow.PaymentDisputed)
    assert (moved.disputeId, moved.payeeSet, moved.currency, moved.releaseAt) == (
        1,
        single(creator),
        token.address,
        rental.releaseAt,
    )
    assert (moved.amount, moved.fee) == (rental.amount, rental.fee)
    assert escrow.held(single(creator), token, rental.releaseAt) == (0, 0)
    assert escrow.disputeOf(1) == (
        rental.licenceId,
        renter.address,
        token.address,
        single(creator),
        rental.amount,
        rental.fee,
        True,
    )
    assert licences.isLocked(rental.licenceId)
    assert licences.hasAccess(rental.modelId, renter)  # access continues during the dispute


def test_open_dispute__covers_earlier_payments_in_the_same_bucket(
    escrow, aimt_model, rental, renter
):
    escrow.rent(aimt_model, 1, PRICE, sender=renter)

    tx = escrow.openDispute(rental.licenceId, sender=renter)

    assert only(tx, escrow.DisputeOpened).amount == 3 * PRICE


def test_open_dispute__after_the_window__reverts(escrow, rental, renter, chain):
    chain.mine(timestamp=rental.releaseAt)

    with ape.reverts(escrow.DisputeWindowClosed, licenceId=rental.licenceId):
        escrow.openDispute(rental.licenceId, sender=renter)


def test_open_dispute__in_the_block_its_bucket_becomes_settleable__reverts(
    escrow, rental, renter, chain
):
    # At `releaseAt` the bucket may settle, so the receipt can no longer leave it.
    chain.pending_timestamp = rental.releaseAt

    with ape.reverts(escrow.DisputeWindowClosed, licenceId=rental.licenceId):
        escrow.openDispute(rental.licenceId, sender=renter)


def test_open_dispute__one_second_before_release__opens(escrow, rental, renter, chain):
    chain.pending_timestamp = rental.releaseAt - 1

    tx = escrow.openDispute(rental.licenceId, sender=renter)

    assert only(tx, escrow.DisputeOpened).amount == rental.amount


def test_open_dispute__not_the_holder__reverts(escrow, rental, stranger):
    with ape.reverts(escrow.NotLicenceHolder, licenceId=rental.licenceId, caller=stranger.address):
        escrow.openDispute(rental.licenceId, sender=stranger)


def test_open_dispute__holder_who_did_not_pay__reverts_nothing_to_dispute(
    escrow, licences, rental, renter, buyer
):
    licences.transferFrom(renter, buyer, rental.licenceId, sender=renter)

    with ape.reverts(escrow.NothingToDispute, licenceId=rental.licenceId):
        escrow.openDispute(rental.licenceId, sender=buyer)
    # ... and the payer no longer holds it.
    with ape.reverts(escrow.NotLicenceHolder, licenceId=rental.licenceId, caller=renter.address):
        escrow.openDispute(rental.licenceId, sender=renter)
    # ... not even naming its payment's payee set and currency, though its receipt is still there.
    with ape.reverts(escrow.NotLicenceHolder, licenceId=rental.licenceId, caller=renter.address):
        escrow.openDispute(rental.licenceId, rental.payeeSet, rental.currency, sender=renter)


def test_open_dispute__twice__reverts(escrow, dispute, rental, renter):
    with ape.reverts(escrow.NothingToDispute, licenceId=rental.licenceId):
        escrow.openDispute(rental.licenceId, sender=renter)


def test_open_dispute__after_the_model_moved__uses_the_explicit_form(
    escrow, registry, rental, renter, creator, buyer, token
):
    registry.transferFrom(creator, buyer, rental.modelId, sender=creator)
    with ape.reverts(escrow.NothingToDispute, licenceId=rental.licenceId):
        escrow.openDispute(rental.licenceId, sender=renter)

    tx = escrow.openDispute(rental.licenceId, single(creator), token, sender=renter)

    assert only(tx, escrow.DisputeOpened).amount == rental.amount


def test_locked_licence__cannot_be_extended_or_transferred(
    escrow, licences, dispute, aimt_model, rental, renter, buyer
):
    with ape.reverts(licences.LicenceLocked, licenceId=rental.licenceId):
        escrow.rent(aimt_model, 1, PRICE, sender=renter)
    with ape.reverts(licences.LicenceLocked, licenceId=rental.licenceId):
        licences.transferFrom(renter, buyer, rental.licenceId, sender=renter)


# ------------------------------------------------------------------ resolveDispute
def test_resolve__refund__returns_everything_and_terminates_the_licence(
    escrow, licences, dispute, rental, renter, arbiter, token
):
    tx = escrow.resolveDispute(dispute, REFUND, 0, sender=arbiter)

    log = only(tx, escrow.DisputeResolved)
    assert (log.disputeId, log.resolution, log.refunded, log.released) == (
        dispute,
        REFUND,
        rental.amount,
        0,
    )
    assert only(tx, licences.LicenceTerminated).licenceId == rental.licenceId
    assert escrow.owed(renter, token) == rental.amount
    assert not licences.hasAccess(rental.modelId, renter)
    assert not escrow.disputeOf(dispute).open
    before = token.balanceOf(renter)
    escrow.withdraw(token, sender=renter)
    assert token.balanceOf(renter) - before == rental.amount


def test_resolve__release__credits_payees_and_treasury_and_unlocks(
    escrow, licences, dispute, rental, renter, creator, treasury, arbiter, token
):
    tx = escrow.resolveDispute(dispute, RELEASE, 0, sender=arbiter)

    log = only(tx, escrow.DisputeResolved)
    assert (log.refunded, log.released) == (0, rental.amount)
    credited = {(c.account, c.amount) for c in logs_of(tx, escrow.Credited)}
    assert credited == {
        (treasury.address, rental.fee),
        (creator.address, rental.amount - rental.fee),
    }
    assert escrow.owed(renter, token) == 0
    assert not licences.isLocked(rental.licenceId)
    assert licences.hasAccess(rental.modelId, renter)


def test_resolve__split__refunds_the_share_and_releases_the_rest(
    escrow, licences, dispute, rental, renter, creator, treasury, arbiter, token
):
    tx = escrow.resolveDispute(dispute, SPLIT, 3_333, sender=arbiter)

    refund = rental.amount * 3_333 // 10_000
    refund_fee = rental.fee * 3_333 // 10_000
    log = only(tx, escrow.DisputeResolved)
    assert (log.refunded, log.released) == (refund, rental.amount - refund)
    assert escrow.owed(renter, token) == refund
    assert escrow.owed(treasury, token) == rental.fee - refund_fee
    assert escrow.owed(creator, token) == (rental.amount - refund) - (rental.fee - refund_fee)
    total = sum(escrow.owed(a, token) for a in (renter, treasury, creator))
    assert total == rental.amount  # every unit accounted for
    assert not licences.isLocked(rental.licenceId)


@pytest.mark.parametrize("bps", [0, 10_000, 10_001])
def test_resolve__split_out_of_range__reverts(escrow, dispute, arbiter, bps):
    with ape.reverts(escrow.InvalidRefund, refundBps=bps):
        escrow.resolveDispute(dispute, SPLIT, bps, sender=arbiter)


def test_resolve__twice__reverts(escrow, dispute, arbiter):
    escrow.resolveDispute(dispute, RELEASE, 0, sender=arbiter)

    with ape.reverts(escrow.DisputeNotOpen, disputeId=dispute):
        escrow.resolveDispute(dispute, REFUND, 0, sender=arbiter)


def test_resolve__not_arbiter__reverts(escrow, dispute, creator):
    role = escrow.ARBITER_ROLE()
    with ape.reverts(
        escrow.AccessControlUnauthorizedAccount, account=creator.address, neededRole=role
    ):
        escrow.resolveDispute(dispute, RELEASE, 0, sender=creator)


def test_dispute__perpetual_purchase_refund(escrow, licences, aimt_model, buyer, arbiter, token):
    held = only(escrow.buy(aimt_model, PERPETUAL, sender=buyer), escrow.PaymentHeld)
    dispute_id = only(
        escrow.openDispute(held.licenceId, sender=buyer), escrow.DisputeOpened
    ).disputeId

    escrow.resolveDispute(dispute_id, REFUND, 0, sender=arbiter)

    assert escrow.owed(buyer, token) == PERPETUAL
    assert not licences.hasAccess(aimt_model, buyer)
