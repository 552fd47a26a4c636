"""The worst cases settle well under the block gas limit (30M): each transaction below must use
less than a tenth of it, so no growth of the market can make money unreachable."""

from __future__ import annotations

from tests.utils.chain import ETH, only

BLOCK_GAS_LIMIT = 30_000_000
BUDGET = BLOCK_GAS_LIMIT // 10
MAX_UINT16 = 2**16 - 1
MAX_UINT32 = 2**32 - 1


def test_rental_at_the_maximum_duration__rents_extends_settles_and_withdraws_under_budget(
    escrow, licences, create_model, token, renter, creator, payees, chain
):
    # The largest duration an offer can express: 65,535 periods of 2**32 - 1 seconds (~9 million
    # years) per rental, paid at the top of the price range, with the largest split.
    model = create_model(
        currency=token,
        price_per_period=10**14,
        period=MAX_UINT32,
        min_periods=1,
        max_periods=MAX_UINT16,
    )
    split = [creator, *payees, *payees, *payees[:1]]
    escrow.setSplit(model, split, [1_250] * 8, sender=creator)
    price = MAX_UINT16 * 10**14

    rent = escrow.rent(model, MAX_UINT16, price, sender=renter)
    extend = escrow.rent(model, MAX_UINT16, price, sender=renter)
    held = only(extend, escrow.PaymentHeld)
    chain.mine(timestamp=held.releaseAt)
    settle = escrow.settle(held.payeeSet, token, held.releaseAt, sender=renter)
    withdraw = escrow.withdraw(token, sender=creator)

    assert licences.userExpires(only(rent, escrow.Rented).licenceId) > 2 * MAX_UINT16 * MAX_UINT32
    for tx in (rent, extend, settle, withdraw):
        assert tx.gas_used < BUDGET, tx.gas_used


def test_dispute_at_the_last_second_of_the_window__opens_and_resolves_under_budget(
    escrow, eth_model, renter, arbiter, creator, payees, chain
):
    escrow.setSplit(
        eth_model, [creator, *payees, *payees, *payees[:1]], [1_250] * 8, sender=creator
    )
    held = only(
        escrow.rent(eth_model, 30, 30 * 10**16, value=30 * 10**16, sender=renter),
        escrow.PaymentHeld,
    )
    chain.pending_timestamp = held.releaseAt - 1  # the last second the window is open

    opened = escrow.openDispute(held.licenceId, sender=renter)
    resolved = escrow.resolveDispute(
        only(opened, escrow.DisputeOpened).disputeId, 2, 3_333, sender=arbiter
    )
    refund = escrow.withdraw(ETH, sender=renter)

    for tx in (opened, resolved, refund):
        assert tx.gas_used < BUDGET, tx.gas_used


def test_set_fee__with_the_most_currencies__stays_under_budget(project, escrow, deployer):
    allowed = len(escrow.currencies())
    for _ in range(escrow.MAX_CURRENCIES() - allowed):
        escrow.setCurrencyAllowed(
            project.MockERC20.deploy("T", "T", 6, sender=deployer), True, sender=deployer
        )

    tx = escrow.setFee(1_000, sender=deployer)

    assert len(escrow.currencies()) == escrow.MAX_CURRENCIES()
    assert tx.gas_used < BUDGET, tx.gas_used
