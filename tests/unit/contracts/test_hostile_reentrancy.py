"""Hostile parties that try to re-enter the escrows: ERC-721 receivers, ETH payees and ERC-20
tokens.

Each attack is either impossible (no callback runs in a paid flow) or refused by the reentrancy
guard, and the accounts stay exact afterwards. Hostile contracts: contracts/test/Hostile*.sol.
"""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector
from tests.unit.contracts.conftest import PRICE_PER_CALL
from tests.utils.chain import ETH, HOUR, only, single

from daimm.eip712 import Voucher, sign_voucher

ETH_PRICE = 10**16  # the eth_model's price per day
REENTRANT = selector("ReentrancyGuardReentrantCall()")


def calldata(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1 : -1].split(",")
    return selector(signature) + encode(types, list(args))


@pytest.fixture
def hostile(project, deployer):
    return project.HostileReentrantReceiver.deploy(sender=deployer)


@pytest.fixture
def reentrant_token(project, deployer, escrow, renter):
    token = project.HostileReentrantToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    token.mint(renter, 10**24, sender=deployer)
    token.approve(escrow, 2**256 - 1, sender=renter)
    return token


def test_rent_buy__hostile_erc721_receiver__gets_no_callback_to_reenter(
    escrow, licences, eth_model, hostile, renter
):
    """Licences are minted with `_mint` (no receiver hook): a receiver cannot re-enter rent/buy."""
    hostile.arm(escrow, calldata("buy(uint256,uint256)", eth_model, 5 * 10**17), 0, sender=renter)

    hostile.execute(
        escrow,
        calldata("rent(uint256,uint256,uint256)", eth_model, 1, ETH_PRICE),
        ETH_PRICE,
        value=ETH_PRICE,
        sender=renter,
    )
    hostile.execute(
        escrow,
        calldata("buy(uint256,uint256)", eth_model, 5 * 10**17),
        5 * 10**17,
        value=5 * 10**17,
        sender=renter,
    )

    assert hostile.attempts() == 0
    assert licences.balanceOf(hostile) == 2
    assert escrow.balance == ETH_PRICE + 5 * 10**17


def test_buy_listed__hostile_erc721_receiver__gets_no_callback_to_reenter(
    escrow, licences, eth_model, hostile, buyer, renter
):
    lid = only(
        escrow.buy(eth_model, 5 * 10**17, value=5 * 10**17, sender=buyer), escrow.Bought
    ).licenceId
    licences.approve(escrow, lid, sender=buyer)
    escrow.list(lid, ETH, 10**17, sender=buyer)
    hostile.arm(escrow, calldata("buyListed(uint256,uint256)", lid, 10**17), 10**17, sender=renter)

    hostile.execute(
        escrow,
        calldata("buyListed(uint256,uint256)", lid, 10**17),
        10**17,
        value=10**17,
        sender=renter,
    )

    assert hostile.attempts() == 0  # `transferFrom`, not `safeTransferFrom`: no hook ran
    assert licences.ownerOf(lid) == hostile.address


@pytest.mark.parametrize(
    "reentry",
    [
        "withdraw(address)",
        "rent(uint256,uint256,uint256)",
        "buy(uint256,uint256)",
        "buyListed(uint256,uint256)",
    ],
)
def test_withdraw__eth_payee_reentering_from_receive__is_refused_and_owes_stay_exact(
    escrow, registry, eth_model, hostile, creator, renter, treasury, chain, reentry
):
    registry.transferFrom(creator, hostile, eth_model, sender=creator)
    held = only(
        escrow.rent(eth_model, 1, ETH_PRICE, value=ETH_PRICE, sender=renter), escrow.PaymentHeld
    )
    chain.mine(timestamp=held.releaseAt)
    escrow.settle(single(hostile), ETH, held.releaseAt, sender=renter)
    owed = escrow.owed(hostile, ETH)
    args = {
        "withdraw(address)": (ETH,),
        "rent(uint256,uint256,uint256)": (eth_model, 1, ETH_PRICE),
        "buy(uint256,uint256)": (eth_model, 5 * 10**17),
        "buyListed(uint256,uint256)": (1, 0),
    }
    hostile.arm(escrow, calldata(reentry, *args[reentry]), 0, sender=renter)

    hostile.execute(escrow, calldata("withdraw(address)", ETH), 0, sender=renter)

    assert hostile.attempts() == 1
    assert not hostile.reentered()
    assert bytes(hostile.lastRevert())[:4] == REENTRANT
    assert escrow.owed(hostile, ETH) == 0
    assert hostile.balance == owed
    assert escrow.balance == escrow.owed(treasury, ETH)  # only the fee is still owed


def two_buckets(escrow, model, renter, chain, value=0):
    """Two rentals an hour apart (two buckets of the model's owner), both matured; their logs."""
    first = only(escrow.rent(model, 1, 10**16, value=value, sender=renter), escrow.PaymentHeld)
    chain.pending_timestamp += HOUR
    second = only(escrow.rent(model, 1, 10**16, value=value, sender=renter), escrow.PaymentHeld)
    assert second.releaseAt > first.releaseAt
    chain.mine(timestamp=second.releaseAt)
    return first, second


def test_withdraw__eth_payee_settling_another_bucket_during_the_payout__keeps_it_owed(
    escrow, registry, eth_model, hostile, creator, renter, treasury, chain
):
    # `owed` is cleared before the payout, so what `settle` credits during it is not wiped after.
    registry.transferFrom(creator, hostile, eth_model, sender=creator)
    first, second = two_buckets(escrow, eth_model, renter, chain, value=10**16)
    escrow.settle(single(hostile), ETH, first.releaseAt, sender=renter)
    payload = calldata("settle(uint256,address,uint64)", single(hostile), ETH, second.releaseAt)
    hostile.arm(escrow, payload, 0, sender=renter)

    hostile.execute(escrow, calldata("withdraw(address)", ETH), 0, sender=renter)

    assert hostile.attempts() == 1 and hostile.reentered()  # `settle` is open to anyone, anytime
    assert hostile.balance == first.amount - first.fee
    assert escrow.owed(hostile, ETH) == second.amount - second.fee
    assert escrow.balance == escrow.owed(hostile, ETH) + escrow.owed(treasury, ETH)


def test_withdraw__token_settling_another_bucket_during_the_payout__keeps_it_owed(
    escrow, create_model, reentrant_token, creator, renter, chain
):
    model = create_model(currency=reentrant_token, price_per_period=10**16)
    first, second = two_buckets(escrow, model, renter, chain)
    escrow.settle(single(creator), reentrant_token, first.releaseAt, sender=renter)
    payload = calldata(
        "settle(uint256,address,uint64)", single(creator), reentrant_token.address, second.releaseAt
    )
    reentrant_token.arm(escrow, payload, sender=renter)

    escrow.withdraw(reentrant_token, sender=creator)

    assert reentrant_token.attempts() == 1 and reentrant_token.reentered()
    assert reentrant_token.balanceOf(creator) == first.amount - first.fee
    assert escrow.owed(creator, reentrant_token) == second.amount - second.fee


def test_reclaim__payer_reentering_from_receive__is_refused(
    credit_escrow, eth_ppu_model, authorised_relayer, hostile, renter, chain
):
    deposit = 10 * PRICE_PER_CALL
    hostile.execute(
        credit_escrow,
        calldata(
            "deposit(uint256,address,uint256)", eth_ppu_model, authorised_relayer.address, deposit
        ),
        deposit,
        value=deposit,
        sender=renter,
    )
    chain.mine(
        timestamp=credit_escrow.channelOf(hostile, eth_ppu_model, authorised_relayer).expiresAt
    )
    hostile.arm(
        credit_escrow,
        calldata("reclaim(uint256,address)", eth_ppu_model, authorised_relayer.address),
        0,
        sender=renter,
    )

    hostile.execute(
        credit_escrow,
        calldata("reclaim(uint256,address)", eth_ppu_model, authorised_relayer.address),
        0,
        sender=renter,
    )

    assert hostile.attempts() == 1 and not hostile.reentered()
    assert bytes(hostile.lastRevert())[:4] == REENTRANT
    assert hostile.balance == deposit  # paid once
    assert credit_escrow.balance == 0


@pytest.mark.parametrize("reentry", ["rent", "withdraw"])
def test_rent__token_reentering_on_transfer__is_refused(
    escrow, create_model, reentrant_token, renter, reentry
):
    model = create_model(currency=reentrant_token)
    payload = (
        calldata("rent(uint256,uint256,uint256)", model, 1, 10**18)
        if reentry == "rent"
        else calldata("withdraw(address)", reentrant_token.address)
    )
    reentrant_token.arm(escrow, payload, sender=renter)

    escrow.rent(model, 1, 10**18, sender=renter)

    assert reentrant_token.attempts() == 1 and not reentrant_token.reentered()
    assert bytes(reentrant_token.lastRevert())[:4] == REENTRANT
    assert reentrant_token.balanceOf(escrow) == 10**18  # one rent, paid once


def test_withdraw__token_reentering_on_transfer__pays_once(
    escrow, create_model, reentrant_token, renter, creator, chain
):
    model = create_model(currency=reentrant_token)
    held = only(escrow.rent(model, 1, 10**18, sender=renter), escrow.PaymentHeld)
    chain.mine(timestamp=held.releaseAt)
    escrow.settle(held.payeeSet, reentrant_token, held.releaseAt, sender=renter)
    owed = escrow.owed(creator, reentrant_token)
    reentrant_token.arm(
        escrow, calldata("withdraw(address)", reentrant_token.address), sender=creator
    )

    escrow.withdraw(reentrant_token, sender=creator)

    assert not reentrant_token.reentered()
    assert reentrant_token.balanceOf(creator) == owed
    assert escrow.owed(creator, reentrant_token) == 0


def test_redeem__token_reentering_on_transfer__is_refused(
    project,
    deployer,
    escrow,
    credit_escrow,
    relayer_registry,
    model_id,
    set_offer,
    authorised_relayer,
    renter,
    chain,
):
    token = project.HostileReentrantToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    set_offer(model_id, token)
    token.mint(renter, 10**20, sender=deployer)
    token.approve(credit_escrow, 2**256 - 1, sender=renter)
    credit_escrow.deposit(model_id, authorised_relayer, 10**6, sender=renter)
    voucher = Voucher(
        model_id=model_id,
        relayer=authorised_relayer.address,
        cumulative_amount=10**5,
        chain_id=chain.chain_id,
        escrow=credit_escrow.address,
    )
    signature = sign_voucher(voucher, renter.private_key)
    # During the redemption's transfer, the token replays the same redemption.
    replay = selector("redeem(address,(uint256,address,uint256,uint256,address),bytes)") + encode(
        ["address", "(uint256,address,uint256,uint256,address)", "bytes"],
        [renter.address, voucher.as_tuple(), signature],
    )
    token.arm(credit_escrow, replay, sender=renter)

    credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)

    assert token.attempts() == 1 and not token.reentered()
    assert bytes(token.lastRevert())[:4] == REENTRANT
    assert credit_escrow.channelOf(renter, model_id, authorised_relayer).redeemed == 10**5
    assert token.balanceOf(credit_escrow) == 10**6 - 10**5
    assert token.balanceOf(escrow) == 10**5


def test_deposit__token_reentering_on_transfer__is_refused(
    project, deployer, escrow, credit_escrow, model_id, set_offer, authorised_relayer, renter
):
    token = project.HostileReentrantToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    set_offer(model_id, token)
    token.mint(renter, 10**20, sender=deployer)
    token.approve(credit_escrow, 2**256 - 1, sender=renter)
    token.arm(
        credit_escrow,
        calldata("deposit(uint256,address,uint256)", model_id, authorised_relayer.address, 10**6),
        sender=renter,
    )

    credit_escrow.deposit(model_id, authorised_relayer, 10**6, sender=renter)

    assert not token.reentered()
    assert bytes(token.lastRevert())[:4] == REENTRANT
    assert credit_escrow.channelOf(renter, model_id, authorised_relayer).deposited == 10**6
    assert token.balanceOf(credit_escrow) == 10**6
