"""The admin cannot block money already owed: fee changes and delisting a currency never stop a
settlement or a withdrawal, and a payment keeps the fee it was made under. RentalEscrow has no pause
switch (nothing to test there; see docs/SECURITY.md)."""

from __future__ import annotations

from tests.unit.contracts.conftest import PRICE_PER_CALL
from tests.utils.chain import ETH, only

from daimm.eip712 import Voucher, sign_voucher


def test_fee_raised_and_currency_delisted__settlement_and_withdrawals_still_pay_the_old_terms(
    escrow, stablecoin, create_model, renter, creator, treasury, deployer, chain
):
    model = create_model(currency=stablecoin, price_per_period=1_000_001)
    held = only(escrow.rent(model, 1, 1_000_001, sender=renter), escrow.PaymentHeld)
    escrow.setFee(escrow.MAX_FEE_BPS(), sender=deployer)
    escrow.setCurrencyAllowed(stablecoin, False, sender=deployer)
    chain.mine(timestamp=held.releaseAt)

    escrow.settle(held.payeeSet, stablecoin, held.releaseAt, sender=renter)
    fee, net = held.fee, held.amount - held.fee
    escrow.withdraw(stablecoin, sender=creator)
    escrow.withdraw(stablecoin, sender=treasury)

    assert held.fee == held.amount * 250 // 10_000  # charged at the fee of the payment's time
    assert escrow.owed(creator, stablecoin) == escrow.owed(treasury, stablecoin) == 0
    assert stablecoin.balanceOf(escrow) == 0
    assert (fee, net) == (25_000, 975_001)


def test_delisted_currency__disputes_still_open_and_refund(
    escrow, eth_model, renter, arbiter, deployer
):
    held = only(escrow.rent(eth_model, 1, 10**16, value=10**16, sender=renter), escrow.PaymentHeld)
    escrow.setCurrencyAllowed(ETH, False, sender=deployer)

    dispute = only(
        escrow.openDispute(held.licenceId, held.payeeSet, ETH, sender=renter), escrow.DisputeOpened
    ).disputeId
    escrow.resolveDispute(dispute, 0, 0, sender=arbiter)
    escrow.withdraw(ETH, sender=renter)

    assert escrow.owed(renter, ETH) == 0
    assert escrow.balance == 0


def test_delisted_currency__vouchers_for_calls_already_served_still_redeem(
    escrow, credit_escrow, eth_ppu_model, authorised_relayer, renter, deployer, chain
):
    credit_escrow.deposit(
        eth_ppu_model,
        authorised_relayer,
        10 * PRICE_PER_CALL,
        value=10 * PRICE_PER_CALL,
        sender=renter,
    )
    voucher = Voucher(
        model_id=eth_ppu_model,
        relayer=authorised_relayer.address,
        cumulative_amount=3 * PRICE_PER_CALL,
        chain_id=chain.chain_id,
        escrow=credit_escrow.address,
    )
    signature = sign_voucher(voucher, renter.private_key)  # three calls served
    escrow.setCurrencyAllowed(ETH, False, sender=deployer)

    credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)

    assert (
        credit_escrow.channelOf(renter, eth_ppu_model, authorised_relayer).redeemed
        == 3 * PRICE_PER_CALL
    )
