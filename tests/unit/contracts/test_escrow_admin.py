"""RentalEscrow: admin settings and the deployment's wiring."""

from __future__ import annotations

import ape
from tests.utils.chain import ETH, only
from tests.utils.market import DISPUTE_WINDOW, FEE_BPS, PRICE


def test_deployment__is_wired(escrow, licences, token, stablecoin, treasury, arbiter, registry):
    assert licences.marketplace() == escrow.address
    assert escrow.hasRole(escrow.ARBITER_ROLE(), arbiter)
    assert escrow.registry() == registry.address
    assert escrow.licences() == licences.address
    assert escrow.utilityToken() == token.address
    for currency in (ETH, token.address, stablecoin.address):
        assert escrow.isCurrencyAllowed(currency)
    assert escrow.feeBps() == FEE_BPS
    assert escrow.treasury() == treasury.address
    assert escrow.disputeWindow() == DISPUTE_WINDOW
    assert escrow.MAX_FEE_BPS() == 1_000
    assert escrow.MAX_PAYEES() == 8


def test_set_fee__applies_to_later_payments_only(
    escrow, aimt_model, renter, deployer, token, chain
):
    first = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)

    tx = escrow.setFee(1_000, sender=deployer)

    assert only(tx, escrow.FeeSet).feeBps == 1_000
    second = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)
    assert first.fee == PRICE * FEE_BPS // 10_000
    assert second.fee == PRICE // 10


def test_set_fee__above_cap__reverts(escrow, deployer):
    with ape.reverts(escrow.FeeTooHigh, bps=1_001, maxBps=1_000):
        escrow.setFee(1_001, sender=deployer)


def test_set_fee__not_admin__reverts(escrow, stranger):
    with ape.reverts(escrow.AccessControlUnauthorizedAccount, account=stranger.address):
        escrow.setFee(0, sender=stranger)


def test_set_treasury__changes_who_gets_fees(escrow, deployer, stranger):
    tx = escrow.setTreasury(stranger, sender=deployer)

    assert only(tx, escrow.TreasurySet).treasury == stranger.address
    assert escrow.treasury() == stranger.address


def test_set_treasury__zero__reverts(escrow, deployer):
    with ape.reverts(escrow.ZeroAddress):
        escrow.setTreasury(ETH, sender=deployer)


def test_set_currency_allowed__toggles_and_emits(escrow, deployer, stablecoin):
    tx = escrow.setCurrencyAllowed(stablecoin, False, sender=deployer)

    log = only(tx, escrow.CurrencyAllowed)
    assert (log.currency, log.allowed) == (stablecoin.address, False)
    assert not escrow.isCurrencyAllowed(stablecoin)


def test_set_currency_allowed__lists_each_currency_once_in_order(
    escrow, deployer, token, stablecoin
):
    escrow.setCurrencyAllowed(stablecoin, False, sender=deployer)

    escrow.setCurrencyAllowed(stablecoin, True, sender=deployer)

    assert list(escrow.currencies()) == [ETH, token.address, stablecoin.address]
    assert escrow.isCurrencyAllowed(stablecoin)


def test_set_currency_allowed__reallowed_currency__takes_payments_again(
    escrow, aimt_model, deployer, renter, token
):
    escrow.setCurrencyAllowed(token, False, sender=deployer)
    with ape.reverts(escrow.CurrencyNotAllowed, currency=token.address):
        escrow.rent(aimt_model, 1, PRICE, sender=renter)

    escrow.setCurrencyAllowed(token, True, sender=deployer)

    held = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.PaymentHeld)
    assert (held.currency, held.amount) == (token.address, PRICE)


def test_set_currency_allowed__beyond_max_currencies__reverts(escrow, deployer):
    # ETH, AIMT and mUSD are allowed at deployment; fill the list up to MAX_CURRENCIES.
    listed = len(escrow.currencies())
    maximum = escrow.MAX_CURRENCIES()
    for i in range(listed, maximum):
        escrow.setCurrencyAllowed(f"0x{i + 1:040x}", True, sender=deployer)

    with ape.reverts(escrow.TooManyCurrencies, max=maximum):
        escrow.setCurrencyAllowed(f"0x{maximum + 1:040x}", True, sender=deployer)
    assert len(escrow.currencies()) == maximum
    assert escrow.isCurrencyAllowed(f"0x{maximum:040x}")


def test_set_fee__reaches_every_allowed_currency_the_last_included(
    escrow, create_model, deployer, renter
):
    # The fee is copied into each currency's slot; a rental in each of `currencies()` reads it.
    currencies = list(escrow.currencies())
    assert len(currencies) == 3  # ETH, AIMT, mUSD: the last is the one a short loop would miss

    escrow.setFee(1_000, sender=deployer)

    for currency in currencies:
        model = create_model(currency=currency, price_per_period=10**16)
        value = 10**16 if currency == ETH else 0
        tx = escrow.rent(model, 1, 10**16, value=value, sender=renter)
        held = only(tx, escrow.PaymentHeld)
        assert (held.currency, held.amount, held.fee) == (currency, 10**16, 10**15)


def test_set_currency_allowed__not_admin__reverts(escrow, stranger, stablecoin):
    with ape.reverts(escrow.AccessControlUnauthorizedAccount, account=stranger.address):
        escrow.setCurrencyAllowed(stablecoin, True, sender=stranger)


def test_constructor__fee_above_cap__reverts(project, deployer, registry, licences, token):
    with ape.reverts(project.RentalEscrow.FeeTooHigh, bps=2_000, maxBps=1_000):
        project.RentalEscrow.deploy(
            registry, licences, token, deployer, deployer, 2_000, 60, sender=deployer
        )


def test_constructor__zero_treasury__reverts(project, deployer, registry, licences, token):
    with ape.reverts(project.RentalEscrow.ZeroAddress):
        project.RentalEscrow.deploy(
            registry, licences, token, deployer, ETH, 0, 60, sender=deployer
        )
