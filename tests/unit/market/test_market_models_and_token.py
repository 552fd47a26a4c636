"""Registry, licences, token and currencies through the library."""

from __future__ import annotations

import pytest

from daimm.errors import InsufficientBalanceError, NotOwnerError, ValidationError
from daimm.market import Approval, LicenceKind, Model, PublishedModel, PublishedVersion

AIMT = 10**18


def test_publish_returnsThePublishedModelFromItsEvent(market, creator):
    count = market.models.count()

    published = market.models.publish("bafyw", "bafym", royalty_bps=300, sender=creator)

    assert isinstance(published, PublishedModel)
    assert published.model_id == count + 1
    assert published.creator == creator.address
    assert (published.weights_cid, published.metadata_cid) == ("bafyw", "bafym")
    assert market.models.royalty(published.model_id, 10_000) == (creator.address, 300)


def test_publish__royaltyAboveCap__raisesBeforeSending(market, creator):
    nonce = creator.nonce

    with pytest.raises(ValidationError, match="above the cap of 1000 bps"):
        market.models.plan_publish("bafyw", "bafym", royalty_bps=1001, sender=creator)

    assert creator.nonce == nonce


def test_publish__emptyCid__raises(market, creator):
    with pytest.raises(ValidationError, match="CID is empty"):
        market.models.plan_publish("", "bafym", sender=creator)


def test_publishVersion_appendsAndModelShowsTheLatest(market, publish_model, creator):
    model_id = publish_model()

    version = market.models.publish_version(model_id, "bafyw2", "bafym2", sender=creator)
    model = market.models.model(model_id)

    assert isinstance(version, PublishedVersion)
    assert version.version == 1
    assert isinstance(model, Model)
    assert model.version_count == 2
    assert model.latest.weights_cid == "bafyw2"
    assert [v.weights_cid for v in market.models.versions(model_id)] == ["bafyweights", "bafyw2"]


def test_publishVersion__notOwner__raisesNotOwner(market, publish_model, stranger):
    model_id = publish_model()

    with pytest.raises(NotOwnerError, match="use the owner's account"):
        market.models.plan_publish_version(model_id, "w", "m", sender=stranger)


def test_model__unknownId__saysWhichIdsExist(market):
    with pytest.raises(ValidationError, match="model 999 does not exist"):
        market.models.model(999)


def test_licence_readsKindExpiryAndHolder(market, model_id, renter):
    rental = market.escrow.rent(model_id, 1, sender=renter)
    purchase = market.escrow.buy(model_id, sender=renter)

    licences = market.licences.licences_of(renter, model_id)

    assert {(lic.licence_id, lic.kind) for lic in licences} == {
        (rental.licence_id, LicenceKind.RENTAL),
        (purchase.licence_id, LicenceKind.PERPETUAL),
    }
    assert market.licences.rental_of(model_id, renter) == rental.licence_id


def test_approve_returnsTheApprovalFromItsEvent(market, newcomer):
    approval = market.token.approve(market.escrow.address, 5 * AIMT, sender=newcomer)

    assert approval == Approval(
        market.token.address, newcomer.address, market.escrow.address, 5 * AIMT, approval.tx_hash
    )
    assert market.token.allowance(newcomer, market.escrow.address) == 5 * AIMT


def test_transfer__moreThanHeld__raisesInsufficientBalance(market, stranger, creator):
    with pytest.raises(InsufficientBalanceError, match="holds 0 AIMT but needs 1 AIMT"):
        market.token.plan_transfer(creator, AIMT, sender=stranger)


def test_amount_usesTheDeploymentsCurrenciesAndTheirDecimals(market, stablecoin):
    assert market.amount("2.5 mUSD").value == 2_500_000
    assert market.amount("10 AIMT").value == 10 * AIMT
    assert market.amount("0.01 ether").value == 10**16
    assert market.currency("mUSD").address == stablecoin.address


def test_amount__otherCurrencyThanTheOffer__raises(market):
    with pytest.raises(ValidationError, match="is in ETH but this is priced in AIMT"):
        market.amount("1 ether", market.token.currency)


def test_currency__unknownSymbol__listsTheKnownOnes(market):
    with pytest.raises(ValidationError, match="use one of AIMT, ETH, mUSD"):
        market.currency("DOGE")
