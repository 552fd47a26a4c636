"""One provisioning path (daimm.market.provision): publish, authorise relayers and offer in one
call; every check before anything is stored; a failure after the mint leaves the model listed
with its blocks but not for sale; relayer registration that is idempotent."""

from __future__ import annotations

import io
import json

import pytest

from daimm.crypto import (
    KeyEnvelope,
    decrypt_stream,
    model_associated_data,
    public_key_of,
    unwrap_key,
)
from daimm.errors import (
    ConfigError,
    OfferError,
    PartialProvisionError,
    PreflightError,
    ValidationError,
)
from daimm.ipfs import CID, fetch_file
from daimm.market.provision import (
    ensure_relayer,
    plan_provision,
    publish_model,
    sample_offer,
)
from daimm.market.publishing import parse_metadata

UNREGISTERED = "0x000000000000000000000000000000000000dEaD"
#: u = 1 is a point of low order on Curve25519: a key nobody can wrap for (the registry takes it).
LOW_ORDER_KEY = b"\x01" + b"\x00" * 31


def _fetch(store, cid):
    out = io.BytesIO()
    fetch_file(CID.parse(cid), store, out)
    return out.getvalue()


def _register(market, relayer, key, endpoint="https://relayer.example"):
    raw = key if isinstance(key, bytes) else public_key_of(key).raw
    market.relayers.register(relayer, raw, endpoint, sender=relayer)


@pytest.fixture
def provision(market, iris, store, creator_key, creator):
    """plan_provision of the iris model as the creator, with keywords to change."""

    def plan(**kwargs):
        path, document = iris
        return plan_provision(
            market,
            path,
            parse_metadata(document),
            backend=store,
            creator_key=creator_key[0],
            sender=creator,
            **kwargs,
        )

    return plan


def test_publish_model__offer_and_two_relayers__mints_authorises_and_offers_in_one_call(
    market, iris, store, creator_key, creator, relayer, operator, relayer_key
):
    from daimm.crypto import generate_private_key

    second_key = generate_private_key()
    _register(market, relayer, relayer_key[0])
    _register(market, operator, second_key)
    offer = sample_offer(market.token.address)
    path, document = iris

    result = publish_model(
        market,
        path,
        parse_metadata(document),
        backend=store,
        creator_key=creator_key[0],
        sender=creator,
        royalty_bps=500,
        offer=offer,
        relayers=[relayer.address, operator.address.lower()],
    )

    assert result.model_id == market.models.count()
    assert market.models.owner_of(result.model_id) == creator.address
    assert result.offer == offer
    assert market.escrow.offer(result.model_id) == offer
    assert result.relayers == (relayer.address, operator.address)
    for authorisation, key in zip(result.authorisations, (relayer_key[0], second_key), strict=True):
        assert market.relayers.is_authorised(result.model_id, authorisation.relayer)
        assert market.relayers.envelope_of(result.model_id, authorisation.relayer) == (
            authorisation.envelope_cid
        )
        content_key = unwrap_key(
            KeyEnvelope.from_json(_fetch(store, authorisation.envelope_cid)), key
        )
        plain = io.BytesIO()
        decrypt_stream(
            io.BytesIO(_fetch(store, result.weights_cid)),
            plain,
            content_key,
            model_associated_data(result.model_id, 0),
        )
        assert plain.getvalue() == path.read_bytes()


def test_plan_provision__lists_the_mint_the_authorisations_and_the_offer_last(
    provision, market, relayer, relayer_key
):
    _register(market, relayer, relayer_key[0])

    plan = provision(offer=sample_offer(market.token.address), relayers=[relayer.address])

    assert [step.method for step in plan.steps] == ["publishModel", "authorise", "setOffer"]


@pytest.mark.parametrize(
    ("relayer", "error", "message"),
    [
        ("0x1234", ValidationError, "relayer '0x1234' is not an Ethereum address"),
        ("0x" + "zz" * 20, ValidationError, "is not an Ethereum address \\(not hex\\)"),
        (
            "0x000000000000000000000000000000000000dEAd",
            ValidationError,
            "fails its checksum",
        ),
        (UNREGISTERED, PreflightError, f"relayer {UNREGISTERED} is not registered"),
    ],
)
def test_plan_provision__bad_or_unregistered_relayer__refused_before_anything_is_stored(
    provision, market, store, relayer, error, message
):
    models, blocks = market.models.count(), store.count()

    with pytest.raises(error, match=message):
        provision(offer=sample_offer(market.token.address), relayers=[relayer])

    assert store.count() == blocks
    assert market.models.count() == models


def test_plan_provision__relayer_with_a_malformed_registered_key__refused_before_storing(
    provision, market, store, relayer
):
    _register(market, relayer, LOW_ORDER_KEY)
    blocks = store.count()

    with pytest.raises(PreflightError, match="registered with a malformed X25519 key"):
        provision(relayers=[relayer.address])

    assert store.count() == blocks


def test_plan_provision__retired_relayer__refused_before_storing(
    provision, market, store, relayer, relayer_key
):
    _register(market, relayer, relayer_key[0])
    market.relayers.contract.retire(relayer, sender=relayer)
    blocks = store.count()

    with pytest.raises(PreflightError, match="is retired"):
        provision(relayers=[relayer.address])

    assert store.count() == blocks


def test_plan_provision__offer_in_a_currency_not_allowed__refused_before_storing(
    provision, market, store, stranger
):
    offer = sample_offer(stranger.address)
    blocks = store.count()

    with pytest.raises(OfferError, match="is not allowed by this marketplace"):
        provision(offer=offer)

    assert store.count() == blocks


def test_provision__relayer_retired_after_planning__model_listed_with_its_blocks_not_for_sale(
    provision, market, store, relayer, relayer_key
):
    _register(market, relayer, relayer_key[0])
    plan = provision(offer=sample_offer(market.token.address), relayers=[relayer.address])
    market.relayers.contract.retire(relayer, sender=relayer)  # between planning and sending

    with pytest.raises(PartialProvisionError) as failed:
        plan.execute()

    model_id = failed.value.model_id
    assert model_id == market.models.count()
    assert f"daimm relayer authorise {model_id} {relayer.address}" in str(failed.value)
    assert f"daimm offer set {model_id}" in str(failed.value)
    assert market.escrow.offer(model_id).active is False
    latest = market.models.model(model_id).latest
    card = json.loads(_fetch(store, latest.metadata_cid))
    assert card["daimm"]["weights"]["cid"] == latest.weights_cid
    assert store.has_block(CID.parse(latest.weights_cid))


def test_provision__another_model_takes_the_id_first__stops_after_the_mint(
    provision, market, relayer, relayer_key, creator
):
    _register(market, relayer, relayer_key[0])
    plan = provision(offer=sample_offer(market.token.address), relayers=[relayer.address])
    market.models.publish("bafyw", "bafym", sender=creator)  # someone mints first

    with pytest.raises(ValidationError, match="another model took id"):
        plan.execute()

    assert market.relayers.relayers_of(market.models.count()) == []
    assert market.escrow.offer(market.models.count()).active is False


def test_ensure_relayer__registers_once_then_reuses_the_key_file(market, relayer, tmp_path):
    key_file = tmp_path / "relayer.x25519"

    first = ensure_relayer(market, relayer, "http://127.0.0.1:8700", key_file)
    second = ensure_relayer(market, relayer, "http://127.0.0.1:9999", key_file)

    assert (first.registered_now, second.registered_now) == (True, False)
    assert second.endpoint == "http://127.0.0.1:8700"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert market.relayers.relayer(relayer).endpoint == "http://127.0.0.1:8700"


def test_ensure_relayer__registered_with_another_key__says_to_restore_the_key_file(
    market, relayer, relayer_key, tmp_path
):
    from daimm.crypto import generate_private_key, save_private_key

    _register(market, relayer, relayer_key[0])
    other = tmp_path / "other.x25519"
    save_private_key(other, generate_private_key())

    with pytest.raises(ConfigError, match="registered with another X25519 key than .*restore"):
        ensure_relayer(market, relayer, "http://127.0.0.1:8700", other)


def test_ensure_relayer__registered_but_key_file_missing__config_error(
    market, relayer, relayer_key, tmp_path
):
    _register(market, relayer, relayer_key[0])

    with pytest.raises(ConfigError, match="key file .* is missing"):
        ensure_relayer(market, relayer, "http://127.0.0.1:8700", tmp_path / "gone.x25519")
