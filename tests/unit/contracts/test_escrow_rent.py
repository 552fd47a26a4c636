"""RentalEscrow: offers, rentals, extension, expiry, perpetual purchases and currencies."""

from __future__ import annotations

import ape
from tests.utils.chain import DAY, ETH, block_time, logs_of, only, release_at, single
from tests.utils.market import DISPUTE_WINDOW, FEE_BPS, PERPETUAL, PRICE, offer


# ------------------------------------------------------------------ setOffer
def test_set_offer__stores_the_terms_and_emits_them(escrow, create_model, creator, token):
    model = create_model()
    terms = offer(token, price_per_period=7, period=HOUR_30, min_periods=2, max_periods=9)

    tx = escrow.setOffer(model, terms, sender=creator)

    log = only(tx, escrow.OfferSet)
    assert log.modelId == model
    assert log.offer[0].lower() == token.address.lower()
    assert tuple(log.offer)[1:] == terms[1:]
    assert tuple(escrow.offerOf(model)) == terms


HOUR_30 = 30 * 60


def test_set_offer__changing_the_terms_keeps_the_models_split(
    escrow, aimt_model, creator, payees, token, renter
):
    # The offer and the split reference share the slot a rental reads; a new offer keeps the split.
    split = only(
        escrow.setSplit(aimt_model, payees, [5_000, 3_000, 2_000], sender=creator), escrow.SplitSet
    )

    escrow.setOffer(aimt_model, offer(token, price_per_period=2 * PRICE), sender=creator)

    assert escrow.payeeSetOf(aimt_model) == split.payeeSet
    held = only(escrow.rent(aimt_model, 1, 2 * PRICE, sender=renter), escrow.PaymentHeld)
    assert (held.payeeSet, held.amount) == (split.payeeSet, 2 * PRICE)
    assert escrow.offerOf(aimt_model).pricePerPeriod == 2 * PRICE


def test_set_offer__not_owner__reverts(escrow, create_model, stranger, token):
    model = create_model()

    with ape.reverts(escrow.NotModelOwner, modelId=model, caller=stranger.address):
        escrow.setOffer(model, offer(token), sender=stranger)


def test_set_offer__unknown_model__reverts(escrow, creator, token):
    with ape.reverts(escrow.UnknownModel, modelId=42):
        escrow.setOffer(42, offer(token), sender=creator)


def test_set_offer__disallowed_currency__reverts(escrow, create_model, creator, project, deployer):
    other = project.MockERC20.deploy("Other", "OTH", 18, sender=deployer)
    model = create_model()

    with ape.reverts(escrow.CurrencyNotAllowed, currency=other.address):
        escrow.setOffer(model, offer(other), sender=creator)


def test_set_offer__min_above_max__reverts(escrow, create_model, creator, token):
    model = create_model()

    with ape.reverts(escrow.InvalidOffer, modelId=model):
        escrow.setOffer(model, offer(token, min_periods=5, max_periods=4), sender=creator)


def test_set_offer__zero_period__reverts(escrow, create_model, creator, token):
    model = create_model()

    with ape.reverts(escrow.InvalidOffer, modelId=model):
        escrow.setOffer(model, offer(token, period=0), sender=creator)


# ------------------------------------------------------------------ rent
def test_rent__first__mints_a_rental_and_holds_the_payment(
    escrow, licences, token, aimt_model, renter, creator, chain
):
    before = token.balanceOf(escrow)

    tx = escrow.rent(aimt_model, 3, 3 * PRICE, sender=renter)

    now = block_time(chain, tx)
    rented = only(tx, escrow.Rented)
    assert rented.modelId == aimt_model
    assert rented.licenceId == 1
    assert rented.renter == renter.address
    assert rented.periods == 3
    assert rented.expires == now + 3 * DAY
    assert rented.price == 3 * PRICE
    held = only(tx, escrow.PaymentHeld)
    assert held.modelId == aimt_model
    assert held.licenceId == 1
    assert held.payer == renter.address
    assert held.currency == token.address
    assert held.amount == 3 * PRICE
    assert held.fee == 3 * PRICE * FEE_BPS // 10_000
    assert held.payeeSet == single(creator)
    assert held.releaseAt == release_at(now, DISPUTE_WINDOW)
    assert token.balanceOf(escrow) - before == 3 * PRICE
    assert licences.hasAccess(aimt_model, renter)
    assert licences.ownerOf(1) == renter.address
    assert escrow.held(single(creator), token, held.releaseAt) == (
        3 * PRICE,
        3 * PRICE * FEE_BPS // 10_000,
    )
    assert escrow.receiptOf(1, renter, single(creator), token) == (
        3 * PRICE,
        3 * PRICE * FEE_BPS // 10_000,
        held.releaseAt,
    )


def test_rent__again__extends_the_same_licence_and_shares_the_bucket(
    escrow, licences, token, aimt_model, renter, creator
):
    first = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.Rented)

    tx = escrow.rent(aimt_model, 2, 2 * PRICE, sender=renter)

    rented = only(tx, escrow.Rented)
    assert rented.licenceId == first.licenceId
    assert rented.expires == first.expires + 2 * DAY
    assert licences.balanceOf(renter) == 1
    release = only(tx, escrow.PaymentHeld).releaseAt
    assert escrow.held(single(creator), token, release)[0] == 3 * PRICE
    assert escrow.receiptOf(1, renter, single(creator), token).amount == 3 * PRICE


def test_rent__extension_in_eth__emits_rented_with_every_field(
    escrow, licences, eth_model, renter, chain
):
    first = only(escrow.rent(eth_model, 1, 10**16, value=10**16, sender=renter), escrow.Rented)
    chain.pending_timestamp += 3 * DAY  # the first day has lapsed: the extension starts now

    tx = escrow.rent(eth_model, 4, 4 * 10**16, value=4 * 10**16, sender=renter)

    rented = only(tx, escrow.Rented)
    assert rented.modelId == eth_model
    assert rented.licenceId == first.licenceId == licences.rentalOf(eth_model, renter)
    assert rented.renter == renter.address
    assert rented.periods == 4
    assert rented.expires == block_time(chain, tx) + 4 * DAY
    assert rented.expires == licences.userExpires(first.licenceId)
    assert rented.price == 4 * 10**16


def test_rent__access_ends_at_expiry_and_a_lapsed_rental_extends_from_now(
    escrow, licences, aimt_model, renter, chain
):
    rented = only(escrow.rent(aimt_model, 1, PRICE, sender=renter), escrow.Rented)
    chain.mine(timestamp=rented.expires - 1)
    assert licences.hasAccess(aimt_model, renter)
    chain.mine(timestamp=rented.expires)
    assert not licences.hasAccess(aimt_model, renter)

    tx = escrow.rent(aimt_model, 1, PRICE, sender=renter)

    assert only(tx, escrow.Rented).expires == block_time(chain, tx) + DAY
    assert licences.hasAccess(aimt_model, renter)


def test_rent__in_eth__takes_exactly_the_price(escrow, licences, eth_model, renter):
    before = escrow.balance

    tx = escrow.rent(eth_model, 2, 2 * 10**16, value=2 * 10**16, sender=renter)

    assert only(tx, escrow.PaymentHeld).currency == ETH
    assert escrow.balance - before == 2 * 10**16
    assert licences.hasAccess(eth_model, renter)


def test_rent__eth_wrong_value__reverts(escrow, eth_model, renter):
    with ape.reverts(escrow.WrongPayment, expected=10**16, received=10**15):
        escrow.rent(eth_model, 1, 10**16, value=10**15, sender=renter)


def test_rent__erc20_with_eth_value__reverts(escrow, aimt_model, renter):
    with ape.reverts(escrow.WrongPayment, expected=0, received=1):
        escrow.rent(aimt_model, 1, PRICE, value=1, sender=renter)


def test_rent__in_another_allowed_erc20(escrow, licences, stablecoin, create_model, renter):
    model = create_model(currency=stablecoin, price_per_period=1_500_000)  # 1.5 mUSD a day
    before = stablecoin.balanceOf(escrow)

    tx = escrow.rent(model, 1, 1_500_000, sender=renter)

    held = only(tx, escrow.PaymentHeld)
    assert (held.currency, held.amount, held.fee) == (stablecoin.address, 1_500_000, 37_500)
    assert stablecoin.balanceOf(escrow) - before == 1_500_000
    assert licences.hasAccess(model, renter)


def test_rent__fee_on_transfer_token__books_what_arrived(
    escrow, project, deployer, create_model, renter
):
    fee_token = project.MockFeeToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(fee_token, True, sender=deployer)
    fee_token.mint(renter, 10**21, sender=deployer)
    fee_token.approve(escrow, 2**256 - 1, sender=renter)
    model = create_model(currency=fee_token, price_per_period=10_000)

    tx = escrow.rent(model, 1, 10_000, sender=renter)

    held = only(tx, escrow.PaymentHeld)
    assert held.amount == 9_900  # the token burnt 1% in transit
    assert held.fee == 9_900 * FEE_BPS // 10_000
    assert fee_token.balanceOf(escrow) == 9_900
    assert only(tx, escrow.Rented).price == 10_000


def test_rent__currency_disallowed_after_the_offer__reverts(
    escrow, stablecoin, create_model, renter, deployer
):
    model = create_model(currency=stablecoin, price_per_period=10)
    escrow.setCurrencyAllowed(stablecoin, False, sender=deployer)

    with ape.reverts(escrow.CurrencyNotAllowed, currency=stablecoin.address):
        escrow.rent(model, 1, 10, sender=renter)


def test_rent__price_above_max__reverts(escrow, aimt_model, renter):
    with ape.reverts(escrow.PriceAboveMax, price=2 * PRICE, maxPrice=2 * PRICE - 1):
        escrow.rent(aimt_model, 2, 2 * PRICE - 1, sender=renter)


def test_rent__offer_raised_after_the_buyer_looked__reverts_price_above_max(
    escrow, aimt_model, renter, creator, token
):
    escrow.setOffer(aimt_model, offer(token, price_per_period=2 * PRICE), sender=creator)

    with ape.reverts(escrow.PriceAboveMax, price=2 * PRICE, maxPrice=PRICE):
        escrow.rent(aimt_model, 1, PRICE, sender=renter)


def test_rent__too_few_or_too_many_periods__reverts(escrow, aimt_model, renter):
    with ape.reverts(
        escrow.DurationOutOfRange, modelId=aimt_model, periods=0, minPeriods=1, maxPeriods=30
    ):
        escrow.rent(aimt_model, 0, PRICE, sender=renter)
    with ape.reverts(
        escrow.DurationOutOfRange, modelId=aimt_model, periods=31, minPeriods=1, maxPeriods=30
    ):
        escrow.rent(aimt_model, 31, 31 * PRICE, sender=renter)


def test_rent__inactive_offer__reverts(escrow, aimt_model, renter, creator, token):
    escrow.setOffer(aimt_model, offer(token, active=False), sender=creator)

    with ape.reverts(escrow.OfferInactive, modelId=aimt_model):
        escrow.rent(aimt_model, 1, PRICE, sender=renter)


def test_rent__no_offer__reverts_offer_inactive(escrow, create_model, renter):
    model = create_model()

    with ape.reverts(escrow.OfferInactive, modelId=model):
        escrow.rent(model, 1, PRICE, sender=renter)


def test_rent__no_rental_price__reverts_not_for_sale(escrow, create_model, renter, token):
    model = create_model(currency=token, price_per_period=0)

    with ape.reverts(escrow.NotForSale, modelId=model):
        escrow.rent(model, 1, PRICE, sender=renter)


def test_rent__access_survives_the_owner_deactivating_or_repricing_the_offer(
    escrow, licences, aimt_model, renter, creator, token
):
    escrow.rent(aimt_model, 1, PRICE, sender=renter)

    escrow.setOffer(aimt_model, offer(token, active=False), sender=creator)
    assert licences.hasAccess(aimt_model, renter)
    escrow.setOffer(aimt_model, offer(token, price_per_period=5 * PRICE), sender=creator)

    assert licences.hasAccess(aimt_model, renter)
    # Extending now costs the new price.
    assert only(escrow.rent(aimt_model, 1, 5 * PRICE, sender=renter), escrow.Rented).price == (
        5 * PRICE
    )


# ------------------------------------------------------------------ buy
def test_buy__mints_a_perpetual_licence_and_holds_the_payment(
    escrow, licences, token, aimt_model, buyer, creator, chain
):
    tx = escrow.buy(aimt_model, PERPETUAL, sender=buyer)

    bought = only(tx, escrow.Bought)
    assert (bought.modelId, bought.licenceId, bought.buyer, bought.price) == (
        aimt_model,
        1,
        buyer.address,
        PERPETUAL,
    )
    held = only(tx, escrow.PaymentHeld)
    assert (held.amount, held.fee, held.payeeSet) == (
        PERPETUAL,
        PERPETUAL * FEE_BPS // 10_000,
        single(creator),
    )
    assert licences.licenceOf(1).kind == 1
    chain.pending_timestamp += 1000 * DAY
    chain.mine()
    assert licences.hasAccess(aimt_model, buyer)


def test_buy__in_eth(escrow, licences, eth_model, buyer):
    escrow.buy(eth_model, 5 * 10**17, value=5 * 10**17, sender=buyer)

    assert licences.hasAccess(eth_model, buyer)


def test_buy__price_above_max__reverts(escrow, aimt_model, buyer):
    with ape.reverts(escrow.PriceAboveMax, price=PERPETUAL, maxPrice=PERPETUAL - 1):
        escrow.buy(aimt_model, PERPETUAL - 1, sender=buyer)


def test_buy__not_for_sale__reverts(escrow, create_model, buyer, token):
    model = create_model(currency=token, perpetual_price=0)

    with ape.reverts(escrow.NotForSale, modelId=model):
        escrow.buy(model, PERPETUAL, sender=buyer)


def test_buy__inactive_offer__reverts(escrow, create_model, buyer, token):
    model = create_model(currency=token, active=False)

    with ape.reverts(escrow.OfferInactive, modelId=model):
        escrow.buy(model, PERPETUAL, sender=buyer)


def test_buy__twice__gives_two_licences(escrow, licences, aimt_model, buyer):
    escrow.buy(aimt_model, PERPETUAL, sender=buyer)
    escrow.buy(aimt_model, PERPETUAL, sender=buyer)

    assert licences.perpetualCountOf(aimt_model, buyer) == 2
    assert len(logs_of(escrow.buy(aimt_model, PERPETUAL, sender=buyer), escrow.Bought)) == 1
