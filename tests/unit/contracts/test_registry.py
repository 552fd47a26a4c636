"""ModelRegistry: models as ERC-721 tokens, append-only versions, ERC-2981 royalty to the owner."""

from __future__ import annotations

import ape
from tests.utils.chain import block_time, only
from tests.utils.market import METADATA_CID, WEIGHTS_CID

OTHER_CID = "bafybeihkoviema7g3gxyt6la7vd5ho32ictqbilu3wnlo3rs7ewhnp7lly"


def publish(registry, owner, royalty=500):
    return registry.publishModel(WEIGHTS_CID, METADATA_CID, royalty, sender=owner)


def model_id(tx, registry):
    return only(tx, registry.ModelPublished).modelId


# ------------------------------------------------------------------ publishModel
def test_publish_model__mints_the_next_id_to_the_creator_with_version_0(registry, creator, chain):
    # Other suites' session fixtures may have published models already: ids continue from there.
    model = registry.modelCount() + 1

    tx = publish(registry, creator)

    log = only(tx, registry.ModelPublished)
    assert log.modelId == model
    assert log.creator == creator.address
    assert log.weightsCid == WEIGHTS_CID
    assert log.metadataCid == METADATA_CID
    royalty = only(tx, registry.RoyaltySet)
    assert royalty.modelId == model
    assert royalty.bps == 500
    assert registry.ownerOf(model) == creator.address
    assert registry.modelCount() == model
    assert registry.exists(model)
    assert registry.versionCount(model) == 1
    assert registry.versionOf(model, 0) == (WEIGHTS_CID, METADATA_CID, block_time(chain, tx))
    assert registry.tokenURI(model) == f"ipfs://{METADATA_CID}"


def test_publish_model__ids_count_up(registry, creator, buyer):
    first = only(publish(registry, creator), registry.ModelPublished).modelId
    tx = publish(registry, buyer)

    assert only(tx, registry.ModelPublished).modelId == first + 1
    assert registry.ownerOf(first + 1) == buyer.address


def test_publish_model__empty_weights_cid__reverts(registry, creator):
    with ape.reverts(registry.EmptyCid):
        registry.publishModel("", METADATA_CID, 0, sender=creator)


def test_publish_model__empty_metadata_cid__reverts(registry, creator):
    with ape.reverts(registry.EmptyCid):
        registry.publishModel(WEIGHTS_CID, "", 0, sender=creator)


def test_publish_model__royalty_above_cap__reverts(registry, creator):
    with ape.reverts(registry.RoyaltyTooHigh, bps=1_001, maxBps=1_000):
        publish(registry, creator, royalty=1_001)


# ------------------------------------------------------------------ publishVersion
def test_publish_version__appends_and_moves_the_token_uri(registry, creator, chain):
    model = model_id(publish(registry, creator), registry)

    tx = registry.publishVersion(model, OTHER_CID, OTHER_CID, sender=creator)

    log = only(tx, registry.VersionPublished)
    assert log.modelId == model
    assert log.version == 1
    assert log.weightsCid == OTHER_CID
    assert log.metadataCid == OTHER_CID
    assert registry.versionCount(model) == 2
    assert registry.versionOf(model, 0).weightsCid == WEIGHTS_CID
    assert registry.latestVersion(model) == (OTHER_CID, OTHER_CID, block_time(chain, tx))
    assert registry.tokenURI(model) == f"ipfs://{OTHER_CID}"


def test_publish_version__not_owner__reverts(registry, creator, stranger):
    model = model_id(publish(registry, creator), registry)

    with ape.reverts(registry.NotModelOwner, modelId=model, caller=stranger.address):
        registry.publishVersion(model, OTHER_CID, OTHER_CID, sender=stranger)


def test_publish_version__unknown_model__reverts(registry, creator):
    with ape.reverts(registry.UnknownModel, modelId=7):
        registry.publishVersion(7, OTHER_CID, OTHER_CID, sender=creator)


def test_publish_version__empty_cid__reverts(registry, creator):
    model = model_id(publish(registry, creator), registry)

    with ape.reverts(registry.EmptyCid):
        registry.publishVersion(model, OTHER_CID, "", sender=creator)


def test_publish_version__new_owner_may_after_a_transfer(registry, creator, buyer):
    model = model_id(publish(registry, creator), registry)
    registry.transferFrom(creator, buyer, model, sender=creator)

    registry.publishVersion(model, OTHER_CID, OTHER_CID, sender=buyer)

    assert registry.versionCount(model) == 2
    with ape.reverts(registry.NotModelOwner, modelId=model, caller=creator.address):
        registry.publishVersion(model, OTHER_CID, OTHER_CID, sender=creator)


# ------------------------------------------------------------------ royalty
def test_set_royalty__changes_the_royalty(registry, creator):
    model = model_id(publish(registry, creator), registry)

    tx = registry.setRoyalty(model, 1_000, sender=creator)

    log = only(tx, registry.RoyaltySet)
    assert log.modelId == model
    assert log.bps == 1_000
    assert registry.royaltyBpsOf(model) == 1_000
    assert registry.royaltyInfo(model, 12_345) == (creator.address, 1_234)


def test_set_royalty__not_owner__reverts(registry, creator, stranger):
    model = model_id(publish(registry, creator), registry)

    with ape.reverts(registry.NotModelOwner, modelId=model, caller=stranger.address):
        registry.setRoyalty(model, 100, sender=stranger)


def test_set_royalty__above_cap__reverts(registry, creator):
    model = model_id(publish(registry, creator), registry)

    with ape.reverts(registry.RoyaltyTooHigh, bps=5_000, maxBps=1_000):
        registry.setRoyalty(model, 5_000, sender=creator)


def test_royalty_info__receiver_is_the_current_owner(registry, creator, buyer):
    model = model_id(publish(registry, creator), registry)
    registry.transferFrom(creator, buyer, model, sender=creator)

    assert registry.royaltyInfo(model, 1_000) == (buyer.address, 50)


def test_royalty_info__unknown_model__reverts(registry):
    unknown = registry.modelCount() + 1
    with ape.reverts(registry.UnknownModel, modelId=unknown):
        registry.royaltyInfo(unknown, 1_000)


# ------------------------------------------------------------------ views
def test_views__unknown_model__revert_unknown_model(registry):
    unknown = registry.modelCount() + 1
    assert not registry.exists(unknown)
    for view in (registry.versionCount, registry.latestVersion, registry.tokenURI):
        with ape.reverts(registry.UnknownModel, modelId=unknown):
            view(unknown)


def test_version_of__unknown_version__reverts(registry, creator):
    model = model_id(publish(registry, creator), registry)

    with ape.reverts(registry.UnknownVersion, modelId=model, version=1):
        registry.versionOf(model, 1)


def test_supports_interface__erc721_erc2981(registry):
    assert registry.supportsInterface("0x80ac58cd")  # ERC-721
    assert registry.supportsInterface("0x2a55205a")  # ERC-2981
    assert not registry.supportsInterface("0xffffffff")


def test_max_royalty_bps__is_10_percent(registry):
    assert registry.MAX_ROYALTY_BPS() == 1_000
