"""RentalEscrow: splits, fee and dust, settlement, withdrawal, model transfers, revenue."""

from __future__ import annotations

import ape
import pytest
from tests.utils.chain import ETH, logs_of, only, single, split_id
from tests.utils.market import FEE_BPS, PRICE


def rent_and_mature(escrow, chain, model, renter, periods=1, price=PRICE):
    held = only(escrow.rent(model, periods, periods * price, sender=renter), escrow.PaymentHeld)
    chain.mine(timestamp=held.releaseAt)
    return held


# ------------------------------------------------------------------ setSplit
def test_set_split__stores_an_immutable_payee_set(escrow, aimt_model, creator, payees):
    tx = escrow.setSplit(aimt_model, payees, [5_000, 3_000, 2_000], sender=creator)

    log = only(tx, escrow.SplitSet)
    assert log.modelId == aimt_model
    assert log.payeeSet == split_id(aimt_model, 1)
    assert [p.lower() for p in log.payees] == [p.address.lower() for p in payees]
    assert list(log.bps) == [5_000, 3_000, 2_000]
    assert escrow.payeeSetOf(aimt_model) == split_id(aimt_model, 1)
    got_payees, got_bps = escrow.payeesOf(split_id(aimt_model, 1))
    assert list(got_payees) == [p.address for p in payees]
    assert list(got_bps) == [5_000, 3_000, 2_000]


def test_set_split__empty__returns_revenue_to_the_owner(escrow, aimt_model, creator, payees):
    escrow.setSplit(aimt_model, payees, [5_000, 3_000, 2_000], sender=creator)

    tx = escrow.setSplit(aimt_model, [], [], sender=creator)

    assert only(tx, escrow.SplitSet).payeeSet == single(creator)
    assert escrow.payeeSetOf(aimt_model) == single(creator)
    # The old split stays readable for payments it already holds.
    assert len(escrow.payeesOf(split_id(aimt_model, 1))[0]) == 3


@pytest.mark.parametrize(
    "bps", [[5_000, 3_000, 1_999], [5_000, 5_000, 1], [10_000, 0, 0], [5_000, 5_000]]
)
def test_set_split__bps_not_summing_to_10000_or_mismatched__reverts(
    escrow, aimt_model, creator, payees, bps
):
    with ape.reverts(escrow.InvalidSplit):
        escrow.setSplit(aimt_model, payees, bps, sender=creator)


def test_set_split__too_many_payees__reverts(escrow, aimt_model, creator, accounts):
    nine = [accounts[i % 10] for i in range(9)]

    with ape.reverts(escrow.TooManyPayees, count=9, max=8):
        escrow.setSplit(aimt_model, nine, [1_000] * 8 + [2_000], sender=creator)


def test_set_split__zero_payee__reverts(escrow, aimt_model, creator, payees):
    with ape.reverts(escrow.ZeroAddress):
        escrow.setSplit(aimt_model, [payees[0], ETH], [5_000, 5_000], sender=creator)


def test_set_split__not_owner__reverts(escrow, aimt_model, stranger, payees):
    with ape.reverts(escrow.NotModelOwner, modelId=aimt_model, caller=stranger.address):
        escrow.setSplit(aimt_model, payees[:1], [10_000], sender=stranger)


# ------------------------------------------------------------------ settle: fee, split and dust
def test_settle__odd_amount__fee_to_treasury_shares_to_payees_dust_to_the_first(
    escrow, create_model, stablecoin, creator, payees, renter, treasury, chain
):
    amount = 1_000_003  # odd on purpose
    model = create_model(currency=stablecoin, price_per_period=amount)
    escrow.setSplit(model, payees, [3_333, 3_333, 3_334], sender=creator)
    held = rent_and_mature(escrow, chain, model, renter, price=amount)
    fee = amount * FEE_BPS // 10_000  # 25,000
    net = amount - fee  # 975,003
    second, third = net * 3_333 // 10_000, net * 3_334 // 10_000
    first = net - second - third

    tx = escrow.settle(held.payeeSet, stablecoin, held.releaseAt, sender=renter)

    settled = only(tx, escrow.Settled)
    assert (settled.payeeSet, settled.currency, settled.releaseAt) == (
        split_id(model, 1),
        stablecoin.address,
        held.releaseAt,
    )
    assert (settled.amount, settled.fee) == (amount, fee)
    credited = {(log.account, log.amount) for log in logs_of(tx, escrow.Credited)}
    assert credited == {
        (treasury.address, fee),
        (payees[0].address, first),
        (payees[1].address, second),
        (payees[2].address, third),
    }
    assert escrow.owed(treasury, stablecoin) == fee
    assert escrow.owed(payees[0], stablecoin) == first
    assert first + second + third + fee == amount  # nothing lost
    assert first > second  # the first payee took the dust
    assert escrow.held(held.payeeSet, stablecoin, held.releaseAt) == (0, 0)


def test_settle__before_release__reverts(escrow, aimt_model, renter, creator, token, chain):
    held = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)
    now = chain.pending_timestamp + 10
    chain.pending_timestamp = now  # the settle transaction is mined exactly then

    with ape.reverts(escrow.NotMatured, releaseAt=held.releaseAt, nowSeconds=now):
        escrow.settle(single(creator), token, held.releaseAt, sender=renter)


def test_settle__twice__reverts_nothing_held(escrow, aimt_model, renter, creator, token, chain):
    held = rent_and_mature(escrow, chain, aimt_model, renter)
    escrow.settle(single(creator), token, held.releaseAt, sender=renter)

    with ape.reverts(
        escrow.NothingHeld,
        payeeSet=single(creator),
        currency=token.address,
        releaseAt=held.releaseAt,
    ):
        escrow.settle(single(creator), token, held.releaseAt, sender=renter)


# ------------------------------------------------------------------ withdraw
def test_withdraw__pays_what_is_owed_once_then_reverts(
    escrow, aimt_model, renter, creator, token, chain
):
    held = rent_and_mature(escrow, chain, aimt_model, renter)
    escrow.settle(single(creator), token, held.releaseAt, sender=renter)
    expected = PRICE - PRICE * FEE_BPS // 10_000
    before = token.balanceOf(creator)

    tx = escrow.withdraw(token, sender=creator)

    log = only(tx, escrow.Withdrawn)
    assert (log.account, log.currency, log.amount) == (creator.address, token.address, expected)
    assert token.balanceOf(creator) - before == expected
    assert escrow.owed(creator, token) == 0
    with ape.reverts(escrow.NothingOwed, account=creator.address, currency=token.address):
        escrow.withdraw(token, sender=creator)


def test_withdraw__eth_to_the_treasury(escrow, eth_model, renter, treasury, creator, chain):
    held = only(escrow.rent(eth_model, 1, 10**16, value=10**16, sender=renter), escrow.PaymentHeld)
    chain.mine(timestamp=held.releaseAt)
    escrow.settle(single(creator), ETH, held.releaseAt, sender=renter)
    before = treasury.balance

    tx = escrow.withdraw(ETH, sender=treasury)

    assert only(tx, escrow.Withdrawn).amount == held.fee
    assert treasury.balance - before == held.fee - tx.total_fees_paid


def test_withdraw__reentrant_eth_receiver__cannot_withdraw_twice(
    escrow, eth_model, renter, chain, project, deployer, registry, creator
):
    hostile = project.HostileReceiver.deploy(escrow, sender=deployer)
    registry.transferFrom(creator, hostile, eth_model, sender=creator)
    held = only(escrow.rent(eth_model, 1, 10**16, value=10**16, sender=renter), escrow.PaymentHeld)
    chain.mine(timestamp=held.releaseAt)
    escrow.settle(single(hostile), ETH, held.releaseAt, sender=renter)

    # The receiver re-enters withdraw from `receive`; the guard reverts, so the ETH send fails.
    with ape.reverts(escrow.EthTransferFailed, to=hostile.address, amount=held.amount - held.fee):
        hostile.withdraw(ETH, sender=renter)
    assert escrow.owed(hostile, ETH) == held.amount - held.fee


# ------------------------------------------------------------------ the model changes hands
def test_model_transferred_mid_rental__held_payments_keep_their_payees_new_ones_go_to_the_new_owner(
    escrow, registry, licences, aimt_model, creator, buyer, payees, renter, token, chain
):
    escrow.setSplit(aimt_model, payees[:2], [6_000, 4_000], sender=creator)
    before = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)

    registry.transferFrom(creator, buyer, aimt_model, sender=creator)

    assert licences.hasAccess(aimt_model, renter)  # the renter keeps the rental
    assert escrow.payeeSetOf(aimt_model) == single(buyer)  # the old owner's split lapsed
    after = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)
    assert before.payeeSet == split_id(aimt_model, 1)
    assert after.payeeSet == single(buyer)
    chain.mine(timestamp=after.releaseAt)
    escrow.settle(before.payeeSet, token, before.releaseAt, sender=renter)
    escrow.settle(after.payeeSet, token, after.releaseAt, sender=renter)
    net = PRICE - PRICE * FEE_BPS // 10_000
    assert escrow.owed(payees[0], token) == net - net * 4_000 // 10_000
    assert escrow.owed(payees[1], token) == net * 4_000 // 10_000
    assert escrow.owed(buyer, token) == net
    assert escrow.owed(creator, token) == 0


def test_model_transferred_back__the_old_split_does_not_revive(
    escrow, registry, aimt_model, creator, buyer, payees
):
    escrow.setSplit(aimt_model, payees[:2], [6_000, 4_000], sender=creator)
    registry.transferFrom(creator, buyer, aimt_model, sender=creator)
    registry.transferFrom(buyer, creator, aimt_model, sender=buyer)

    # The split was set by the creator, who owns the model again: it applies again by design
    # (the split belongs to the owner who set it).
    assert escrow.payeeSetOf(aimt_model) == split_id(aimt_model, 1)
    escrow.setSplit(aimt_model, payees[:1], [10_000], sender=creator)
    assert escrow.payeeSetOf(aimt_model) == split_id(aimt_model, 2)


# ------------------------------------------------------------------ depositRevenue
@pytest.fixture
def source(escrow, deployer, stranger):
    escrow.grantRole(escrow.REVENUE_SOURCE_ROLE(), stranger, sender=deployer)
    return stranger


def test_deposit_revenue__books_eth_with_fee_and_split(escrow, eth_model, source, creator, renter):
    tx = escrow.depositRevenue(eth_model, renter, ETH, 10_001, value=10_001, sender=source)

    log = only(tx, escrow.RevenueDeposited)
    assert (log.modelId, log.source, log.currency, log.amount, log.fee) == (
        eth_model,
        source.address,
        ETH,
        10_001,
        250,
    )
    held = only(tx, escrow.PaymentHeld)
    assert (held.licenceId, held.payer, held.payeeSet) == (0, renter.address, single(creator))
    assert escrow.held(single(creator), ETH, held.releaseAt) == (10_001, 250)


def test_deposit_revenue__erc20_already_transferred(escrow, aimt_model, source, token, treasury):
    token.transfer(escrow, 500, sender=treasury)

    tx = escrow.depositRevenue(aimt_model, treasury, token, 500, sender=source)

    assert only(tx, escrow.PaymentHeld).amount == 500


def test_deposit_revenue__wrong_eth_value__reverts(escrow, eth_model, source, renter):
    with ape.reverts(escrow.WrongPayment, expected=10, received=9):
        escrow.depositRevenue(eth_model, renter, ETH, 10, value=9, sender=source)


def test_deposit_revenue__currency_never_allowed__reverts(
    escrow, aimt_model, source, renter, project, deployer
):
    other = project.MockERC20.deploy("Other", "OTH", 18, sender=deployer)

    with ape.reverts(escrow.CurrencyNotAllowed, currency=other.address):
        escrow.depositRevenue(aimt_model, renter, other, 10, sender=source)


def test_deposit_revenue__unknown_model__reverts(escrow, source, renter):
    with ape.reverts(escrow.UnknownModel, modelId=99):
        escrow.depositRevenue(99, renter, ETH, 10, value=10, sender=source)


def test_deposit_revenue__without_role__reverts(escrow, eth_model, renter):
    role = escrow.REVENUE_SOURCE_ROLE()
    with ape.reverts(
        escrow.AccessControlUnauthorizedAccount, account=renter.address, neededRole=role
    ):
        escrow.depositRevenue(eth_model, renter, ETH, 10, value=10, sender=renter)
