"""Hostile tokens, payees and model owners: none of them takes or locks anyone else's money or
licence.

Hostile contracts: contracts/test/Hostile*.sol. The fee-on-transfer token is MockFeeToken (its
accounting is tested in test_escrow_rent.py and test_credit_escrow.py).
"""

from __future__ import annotations

import ape
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as selector
from tests.utils.chain import ETH, only
from tests.utils.market import METADATA_CID, WEIGHTS_CID, offer

ETH_PRICE = 10**16


def calldata(signature: str, *args) -> bytes:
    types = signature[signature.index("(") + 1 : -1].split(",")
    return selector(signature) + encode(types, list(args))


def settle_all(escrow, chain, held_logs, caller):
    chain.mine(timestamp=max(h.releaseAt for h in held_logs))
    for key in {(h.payeeSet, h.currency, h.releaseAt) for h in held_logs}:
        escrow.settle(*key, sender=caller)


# ------------------------------------------------------------------ a token that returns false
def test_false_token__payment_and_withdrawal_refused_with_safe_erc20_error_and_owed_kept(
    project, deployer, escrow, create_model, renter, creator, chain
):
    token = project.HostileFalseToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    token.mint(renter, 10**24, sender=deployer)
    token.approve(escrow, 2**256 - 1, sender=renter)
    model = create_model(currency=token)
    held = only(escrow.rent(model, 1, 10**18, sender=renter), escrow.PaymentHeld)
    settle_all(escrow, chain, [held], renter)
    owed = escrow.owed(creator, token)
    token.setFailing(True, sender=deployer)

    with ape.reverts(escrow.SafeERC20FailedOperation, token=token.address):
        escrow.rent(model, 1, 10**18, sender=renter)  # no free licence
    with ape.reverts(escrow.SafeERC20FailedOperation, token=token.address):
        escrow.withdraw(token, sender=creator)

    assert escrow.owed(creator, token) == owed  # still owed, can be withdrawn once the token works
    token.setFailing(False, sender=deployer)
    escrow.withdraw(token, sender=creator)
    assert token.balanceOf(creator) == owed


# ------------------------------------------------------------------ a payee that rejects ETH
def test_eth_rejecting_payee__cannot_block_the_other_payees_or_the_treasury(
    project, deployer, escrow, registry, renter, payees, treasury, chain
):
    rejecter = project.HostileEthRejecter.deploy(sender=deployer)
    tx = rejecter.execute(
        registry,
        calldata("publishModel(string,string,uint96)", WEIGHTS_CID, METADATA_CID, 500),
        sender=deployer,
    )
    model = only(tx, registry.ModelPublished).modelId
    terms = offer(ETH, price_per_period=ETH_PRICE)
    offer_type = "(address,uint96,uint32,uint16,uint16,bool,uint128,uint128)"
    set_offer = selector(f"setOffer(uint256,{offer_type})") + encode(
        ["uint256", offer_type], [model, terms]
    )
    rejecter.execute(escrow, set_offer, sender=deployer)
    split = selector("setSplit(uint256,address[],uint16[])") + encode(
        ["uint256", "address[]", "uint16[]"],
        [model, [rejecter.address, payees[0].address], [5_000, 5_000]],
    )
    rejecter.execute(escrow, split, sender=deployer)
    held = only(
        escrow.rent(model, 1, ETH_PRICE, value=ETH_PRICE, sender=renter), escrow.PaymentHeld
    )
    settle_all(escrow, chain, [held], renter)
    share = escrow.owed(rejecter, ETH)

    with ape.reverts(escrow.EthTransferFailed, to=rejecter.address, amount=share):
        rejecter.execute(escrow, calldata("withdraw(address)", ETH), sender=deployer)

    payee_share = escrow.owed(payees[0], ETH)
    tx = escrow.withdraw(ETH, sender=payees[0])
    assert only(tx, escrow.Withdrawn).amount == payee_share > 0
    escrow.withdraw(ETH, sender=treasury)
    assert escrow.owed(rejecter, ETH) == share
    assert escrow.balance == share  # exactly what the rejecter is still owed


# ------------------------------------------------------------------ a token that blacklists a payee
def test_blacklisting_token__a_blacklisted_payee_locks_no_one_elses_funds(
    project, deployer, escrow, create_model, renter, creator, payees, treasury, chain
):
    usdc = project.HostileBlacklistToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(usdc, True, sender=deployer)
    usdc.mint(renter, 10**24, sender=deployer)
    usdc.approve(escrow, 2**256 - 1, sender=renter)
    model = create_model(currency=usdc)
    escrow.setSplit(model, [creator, payees[0]], [6_000, 4_000], sender=creator)
    held = [only(escrow.rent(model, 1, 10**18, sender=renter), escrow.PaymentHeld)]
    usdc.setBlacklisted(creator, True, sender=deployer)
    held.append(only(escrow.rent(model, 2, 2 * 10**18, sender=renter), escrow.PaymentHeld))

    settle_all(escrow, chain, held, renter)  # settlement moves no tokens: never blocked

    with ape.reverts(usdc.Blacklisted, account=creator.address):
        escrow.withdraw(usdc, sender=creator)
    for account in (payees[0], treasury):
        owed = escrow.owed(account, usdc)
        escrow.withdraw(usdc, sender=account)
        assert usdc.balanceOf(account) == owed > 0
    assert usdc.balanceOf(escrow) == escrow.owed(creator, usdc)


# ------------------------------------------------------------------ a model owner against licences
def test_model_owner__cannot_revoke_burn_or_take_a_paid_licence(
    escrow, registry, licences, aimt_model, creator, renter, buyer, stranger, deployer
):
    rental = only(escrow.rent(aimt_model, 3, 3 * 10**18, sender=renter), escrow.Rented).licenceId
    perpetual = only(escrow.buy(aimt_model, 50 * 10**18, sender=buyer), escrow.Bought).licenceId

    for lid, holder in ((rental, renter), (perpetual, buyer)):
        with ape.reverts(licences.ERC721InsufficientApproval):
            licences.transferFrom(holder, creator, lid, sender=creator)
        with ape.reverts(licences.NotMarketplace, caller=creator.address):
            licences.terminate(lid, sender=creator)
        with ape.reverts(licences.NotMarketplace, caller=creator.address):
            licences.setLocked(lid, True, sender=creator)
    with ape.reverts(licences.NotMarketplace, caller=creator.address):
        licences.mintOrExtendRental(renter, aimt_model, 1, sender=creator)
    with ape.reverts(escrow.NotLicenceHolder):
        escrow.list(perpetual, ETH, 1, sender=creator)
    with ape.reverts(escrow.NotLicenceHolder):
        escrow.openDispute(rental, sender=creator)
    with ape.reverts(escrow.AccessControlUnauthorizedAccount):
        escrow.resolveDispute(1, 0, 0, sender=creator)
    # Deactivating the offer, repricing it, and selling the model take nothing from the holders.
    escrow.setOffer(aimt_model, offer(escrow.utilityToken(), active=False), sender=creator)
    registry.transferFrom(creator, stranger, aimt_model, sender=creator)

    assert licences.ownerOf(rental) == renter.address
    assert licences.ownerOf(perpetual) == buyer.address
    assert licences.hasAccess(aimt_model, renter) and licences.hasAccess(aimt_model, buyer)
