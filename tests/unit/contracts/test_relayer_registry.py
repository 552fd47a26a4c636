"""RelayerRegistry: operators register relayers, model owners authorise them per model."""

from __future__ import annotations

import ape
import pytest
from tests.utils.chain import ZERO_ADDRESS, only

KEY = bytes.fromhex("11" * 32)
KEY2 = bytes.fromhex("22" * 32)
ENDPOINT = "https://relayer.example:8443"
ENVELOPE = "bafkreienvelope1"
ENVELOPE2 = "bafkreienvelope2"


@pytest.fixture(scope="session")
def consenting(accounts, deployer, relayer_registry, operator):
    """Seventeen relayer accounts, each of which approved `operator` to register it."""
    relayers = []
    for _ in range(17):
        account = accounts.generate_test_account()
        deployer.transfer(account, 10**17)
        relayer_registry.approveOperator(operator, sender=account)
        relayers.append(account.address)
    return relayers


# ------------------------------------------------------------------ register
def test_register__records_the_relayer_with_the_caller_as_operator(
    relayer_registry, operator, relayer
):
    relayer_registry.approveOperator(operator, sender=relayer)

    tx = relayer_registry.register(relayer, KEY, ENDPOINT, sender=operator)

    log = only(tx, relayer_registry.RelayerRegistered)
    assert log.relayer == relayer.address
    assert log.operator == operator.address
    assert bytes(log.x25519PublicKey) == KEY
    assert log.endpoint == ENDPOINT
    record = relayer_registry.relayerOf(relayer)
    assert record.operator == operator.address
    assert bytes(record.x25519PublicKey) == KEY
    assert record.endpoint == ENDPOINT
    assert record.active is True


def test_register__by_the_relayer_itself__needs_no_approval(relayer_registry, relayer):
    tx = relayer_registry.register(relayer, KEY, ENDPOINT, sender=relayer)

    log = only(tx, relayer_registry.RelayerRegistered)
    assert log.operator == relayer.address
    assert relayer_registry.relayerOf(relayer).operator == relayer.address


def test_register__without_the_relayers_consent__reverts(relayer_registry, operator, relayer):
    with ape.reverts(
        relayer_registry.NoRelayerConsent, relayer=relayer.address, caller=operator.address
    ):
        relayer_registry.register(relayer, KEY, ENDPOINT, sender=operator)


def test_register__after_consent_is_withdrawn__reverts(relayer_registry, operator, relayer):
    relayer_registry.approveOperator(operator, sender=relayer)
    tx = relayer_registry.approveOperator(ZERO_ADDRESS, sender=relayer)

    log = only(tx, relayer_registry.OperatorApproved)
    assert (log.relayer, log.operator) == (relayer.address, ZERO_ADDRESS)
    assert relayer_registry.approvedOperatorOf(relayer) == ZERO_ADDRESS
    with ape.reverts(relayer_registry.NoRelayerConsent):
        relayer_registry.register(relayer, KEY, ENDPOINT, sender=operator)


def test_approve_operator__records_and_emits_the_consent(relayer_registry, operator, relayer):
    tx = relayer_registry.approveOperator(operator, sender=relayer)

    log = only(tx, relayer_registry.OperatorApproved)
    assert (log.relayer, log.operator) == (relayer.address, operator.address)
    assert relayer_registry.approvedOperatorOf(relayer) == operator.address


def test_relayer_of__unknown_relayer__reads_as_the_zero_record(relayer_registry, relayer):
    record = relayer_registry.relayerOf(relayer)

    assert record.operator == ZERO_ADDRESS
    assert record.active is False


def test_register__zero_address__reverts(relayer_registry, operator):
    with ape.reverts(relayer_registry.ZeroAddress):
        relayer_registry.register(ZERO_ADDRESS, KEY, ENDPOINT, sender=operator)


def test_register__already_registered__reverts(relayer_registry, registered_relayer):
    with ape.reverts(relayer_registry.RelayerExists, relayer=registered_relayer.address):
        relayer_registry.register(registered_relayer, KEY2, ENDPOINT, sender=registered_relayer)


def test_register__retired_relayer__cannot_be_registered_again(
    relayer_registry, registered_relayer, operator
):
    relayer_registry.retire(registered_relayer, sender=operator)

    with ape.reverts(relayer_registry.RelayerExists, relayer=registered_relayer.address):
        relayer_registry.register(registered_relayer, KEY, ENDPOINT, sender=operator)


def test_register__zero_key__reverts(relayer_registry, operator, relayer):
    relayer_registry.approveOperator(operator, sender=relayer)
    with ape.reverts(relayer_registry.ZeroKey):
        relayer_registry.register(relayer, b"\x00" * 32, ENDPOINT, sender=operator)


def test_register__empty_endpoint__reverts(relayer_registry, operator, relayer):
    relayer_registry.approveOperator(operator, sender=relayer)
    with ape.reverts(relayer_registry.EmptyEndpoint):
        relayer_registry.register(relayer, KEY, "", sender=operator)


# ------------------------------------------------------------------ update
def test_update__changes_key_and_endpoint(relayer_registry, registered_relayer, operator):
    tx = relayer_registry.update(registered_relayer, KEY2, "https://new.example", sender=operator)

    log = only(tx, relayer_registry.RelayerUpdated)
    assert log.relayer == registered_relayer.address
    assert bytes(log.x25519PublicKey) == KEY2
    assert log.endpoint == "https://new.example"
    record = relayer_registry.relayerOf(registered_relayer)
    assert bytes(record.x25519PublicKey) == KEY2
    assert record.endpoint == "https://new.example"
    assert record.operator == operator.address


def test_update__not_operator__reverts(relayer_registry, registered_relayer, creator):
    with ape.reverts(
        relayer_registry.NotOperator, relayer=registered_relayer.address, caller=creator.address
    ):
        relayer_registry.update(registered_relayer, KEY2, ENDPOINT, sender=creator)


def test_update__by_the_relayer_itself_when_not_operator__reverts(
    relayer_registry, registered_relayer
):
    with ape.reverts(relayer_registry.NotOperator):
        relayer_registry.update(registered_relayer, KEY2, ENDPOINT, sender=registered_relayer)


def test_update__unknown_relayer__reverts(relayer_registry, operator, relayer):
    with ape.reverts(relayer_registry.UnknownRelayer, relayer=relayer.address):
        relayer_registry.update(relayer, KEY2, ENDPOINT, sender=operator)


def test_update__retired_relayer__reverts(relayer_registry, registered_relayer, operator):
    relayer_registry.retire(registered_relayer, sender=operator)

    with ape.reverts(relayer_registry.RelayerRetired, relayer=registered_relayer.address):
        relayer_registry.update(registered_relayer, KEY2, ENDPOINT, sender=operator)


def test_update__zero_key__reverts(relayer_registry, registered_relayer, operator):
    with ape.reverts(relayer_registry.ZeroKey):
        relayer_registry.update(registered_relayer, b"\x00" * 32, ENDPOINT, sender=operator)


def test_update__empty_endpoint__reverts(relayer_registry, registered_relayer, operator):
    with ape.reverts(relayer_registry.EmptyEndpoint):
        relayer_registry.update(registered_relayer, KEY2, "", sender=operator)


# ------------------------------------------------------------------ retire
def test_retire__deactivates_the_relayer_and_its_authorisations(
    relayer_registry, authorised_relayer, model_id, operator
):
    assert relayer_registry.isAuthorised(model_id, authorised_relayer)

    tx = relayer_registry.retire(authorised_relayer, sender=operator)

    assert only(tx, relayer_registry.RelayerRetiredEvent).relayer == authorised_relayer.address
    assert relayer_registry.relayerOf(authorised_relayer).active is False
    assert relayer_registry.isAuthorised(model_id, authorised_relayer) is False
    assert relayer_registry.envelopeOf(model_id, authorised_relayer) == ""
    # The slot stays until the owner frees it.
    assert relayer_registry.relayersOf(model_id) == [authorised_relayer.address]


def test_retire__not_operator__reverts(relayer_registry, registered_relayer, creator):
    with ape.reverts(
        relayer_registry.NotOperator, relayer=registered_relayer.address, caller=creator.address
    ):
        relayer_registry.retire(registered_relayer, sender=creator)


def test_retire__unknown_relayer__reverts(relayer_registry, operator, relayer):
    with ape.reverts(relayer_registry.UnknownRelayer, relayer=relayer.address):
        relayer_registry.retire(relayer, sender=operator)


def test_retire__twice__reverts(relayer_registry, registered_relayer, operator):
    relayer_registry.retire(registered_relayer, sender=operator)

    with ape.reverts(relayer_registry.RelayerRetired, relayer=registered_relayer.address):
        relayer_registry.retire(registered_relayer, sender=operator)


# ------------------------------------------------------------------ authorise
def test_authorise__model_owner_authorises_a_relayer_with_its_envelope(
    relayer_registry, registered_relayer, model_id, creator
):
    tx = relayer_registry.authorise(model_id, registered_relayer, ENVELOPE, sender=creator)

    log = only(tx, relayer_registry.RelayerAuthorised)
    assert log.modelId == model_id
    assert log.relayer == registered_relayer.address
    assert log.envelopeCid == ENVELOPE
    assert relayer_registry.isAuthorised(model_id, registered_relayer) is True
    assert relayer_registry.envelopeOf(model_id, registered_relayer) == ENVELOPE
    assert relayer_registry.relayersOf(model_id) == [registered_relayer.address]


def test_is_authorised__never_authorised__is_false(relayer_registry, registered_relayer, model_id):
    assert relayer_registry.isAuthorised(model_id, registered_relayer) is False
    assert relayer_registry.isAuthorised(999, registered_relayer) is False
    assert relayer_registry.envelopeOf(model_id, registered_relayer) == ""


def test_authorise__not_model_owner__reverts(
    relayer_registry, registered_relayer, model_id, renter
):
    with ape.reverts(relayer_registry.NotModelOwner, modelId=model_id, caller=renter.address):
        relayer_registry.authorise(model_id, registered_relayer, ENVELOPE, sender=renter)


def test_authorise__unminted_model__reverts_not_model_owner(
    relayer_registry, registered_relayer, creator
):
    with ape.reverts(relayer_registry.NotModelOwner, modelId=999, caller=creator.address):
        relayer_registry.authorise(999, registered_relayer, ENVELOPE, sender=creator)


def test_authorise__unknown_relayer__reverts(relayer_registry, model_id, creator, relayer):
    with ape.reverts(relayer_registry.UnknownRelayer, relayer=relayer.address):
        relayer_registry.authorise(model_id, relayer, ENVELOPE, sender=creator)


def test_authorise__retired_relayer__reverts(
    relayer_registry, registered_relayer, model_id, creator, operator
):
    relayer_registry.retire(registered_relayer, sender=operator)

    with ape.reverts(relayer_registry.RelayerRetired, relayer=registered_relayer.address):
        relayer_registry.authorise(model_id, registered_relayer, ENVELOPE, sender=creator)


def test_authorise__empty_cid__reverts(relayer_registry, registered_relayer, model_id, creator):
    with ape.reverts(relayer_registry.EmptyCid):
        relayer_registry.authorise(model_id, registered_relayer, "", sender=creator)


def test_authorise__twice__reverts(relayer_registry, authorised_relayer, model_id, creator):
    with ape.reverts(
        relayer_registry.AlreadyAuthorised, modelId=model_id, relayer=authorised_relayer.address
    ):
        relayer_registry.authorise(model_id, authorised_relayer, ENVELOPE2, sender=creator)


def test_authorise__beyond_max_relayers_per_model__reverts(
    relayer_registry, model_id, creator, operator, consenting
):
    maximum = relayer_registry.MAX_RELAYERS_PER_MODEL()
    assert maximum == 16
    for i in range(maximum + 1):
        relayer_registry.register(consenting[i], KEY, ENDPOINT, sender=operator)
    for i in range(maximum):
        relayer_registry.authorise(model_id, consenting[i], ENVELOPE, sender=creator)

    with ape.reverts(relayer_registry.TooManyRelayers, modelId=model_id, max=maximum):
        relayer_registry.authorise(model_id, consenting[maximum], ENVELOPE, sender=creator)

    # Freeing one slot makes room again.
    relayer_registry.deauthorise(model_id, consenting[3], sender=creator)
    relayer_registry.authorise(model_id, consenting[maximum], ENVELOPE, sender=creator)
    assert len(relayer_registry.relayersOf(model_id)) == maximum


# ------------------------------------------------------------------ model changes hands
def test_is_authorised__after_the_model_is_sold__is_false_until_the_new_owner_authorises(
    relayer_registry, registry, authorised_relayer, model_id, creator, renter
):
    registry.transferFrom(creator, renter, model_id, sender=creator)

    assert relayer_registry.isAuthorised(model_id, authorised_relayer) is False
    assert relayer_registry.envelopeOf(model_id, authorised_relayer) == ""
    with ape.reverts(relayer_registry.NotModelOwner, modelId=model_id, caller=creator.address):
        relayer_registry.deauthorise(model_id, authorised_relayer, sender=creator)

    tx = relayer_registry.authorise(model_id, authorised_relayer, ENVELOPE2, sender=renter)

    assert only(tx, relayer_registry.RelayerAuthorised).envelopeCid == ENVELOPE2
    assert relayer_registry.isAuthorised(model_id, authorised_relayer) is True
    assert relayer_registry.envelopeOf(model_id, authorised_relayer) == ENVELOPE2
    # The stale slot was taken over, not duplicated.
    assert relayer_registry.relayersOf(model_id) == [authorised_relayer.address]


def test_is_authorised__model_sold_and_bought_back__is_true_again(
    relayer_registry, registry, authorised_relayer, model_id, creator, renter
):
    registry.transferFrom(creator, renter, model_id, sender=creator)
    registry.transferFrom(renter, creator, model_id, sender=renter)

    # The authorisation was given by the owner who owns the model again.
    assert relayer_registry.isAuthorised(model_id, authorised_relayer) is True


def test_set_envelope__authorisation_from_a_previous_owner__reverts(
    relayer_registry, registry, authorised_relayer, model_id, creator, renter
):
    registry.transferFrom(creator, renter, model_id, sender=creator)

    with ape.reverts(
        relayer_registry.NotAuthorised, modelId=model_id, relayer=authorised_relayer.address
    ):
        relayer_registry.setEnvelope(model_id, authorised_relayer, ENVELOPE2, sender=renter)


def test_deauthorise__new_owner_frees_a_slot_left_by_the_previous_owner(
    relayer_registry, registry, authorised_relayer, model_id, creator, renter
):
    registry.transferFrom(creator, renter, model_id, sender=creator)

    relayer_registry.deauthorise(model_id, authorised_relayer, sender=renter)

    assert relayer_registry.relayersOf(model_id) == []


# ------------------------------------------------------------------ setEnvelope
def test_set_envelope__publishes_a_new_envelope(
    relayer_registry, authorised_relayer, model_id, creator
):
    tx = relayer_registry.setEnvelope(model_id, authorised_relayer, ENVELOPE2, sender=creator)

    log = only(tx, relayer_registry.EnvelopeUpdated)
    assert log.modelId == model_id
    assert log.relayer == authorised_relayer.address
    assert log.envelopeCid == ENVELOPE2
    assert relayer_registry.envelopeOf(model_id, authorised_relayer) == ENVELOPE2


def test_set_envelope__not_model_owner__reverts(
    relayer_registry, authorised_relayer, model_id, renter
):
    with ape.reverts(relayer_registry.NotModelOwner, modelId=model_id, caller=renter.address):
        relayer_registry.setEnvelope(model_id, authorised_relayer, ENVELOPE2, sender=renter)


def test_set_envelope__relayer_not_authorised__reverts(
    relayer_registry, registered_relayer, model_id, creator
):
    with ape.reverts(
        relayer_registry.NotAuthorised, modelId=model_id, relayer=registered_relayer.address
    ):
        relayer_registry.setEnvelope(model_id, registered_relayer, ENVELOPE2, sender=creator)


def test_set_envelope__retired_relayer__reverts(
    relayer_registry, authorised_relayer, model_id, creator, operator
):
    relayer_registry.retire(authorised_relayer, sender=operator)

    with ape.reverts(relayer_registry.RelayerRetired, relayer=authorised_relayer.address):
        relayer_registry.setEnvelope(model_id, authorised_relayer, ENVELOPE2, sender=creator)


def test_set_envelope__empty_cid__reverts(relayer_registry, authorised_relayer, model_id, creator):
    with ape.reverts(relayer_registry.EmptyCid):
        relayer_registry.setEnvelope(model_id, authorised_relayer, "", sender=creator)


# ------------------------------------------------------------------ deauthorise
def test_deauthorise__removes_the_authorisation(
    relayer_registry, authorised_relayer, model_id, creator
):
    tx = relayer_registry.deauthorise(model_id, authorised_relayer, sender=creator)

    log = only(tx, relayer_registry.RelayerDeauthorised)
    assert log.modelId == model_id
    assert log.relayer == authorised_relayer.address
    assert relayer_registry.isAuthorised(model_id, authorised_relayer) is False
    assert relayer_registry.envelopeOf(model_id, authorised_relayer) == ""
    assert relayer_registry.relayersOf(model_id) == []


def test_deauthorise__swaps_the_last_relayer_into_the_freed_slot(
    relayer_registry, model_id, creator, operator, consenting
):
    a, b, c = consenting[0], consenting[1], consenting[2]
    for r in (a, b, c):
        relayer_registry.register(r, KEY, ENDPOINT, sender=operator)
        relayer_registry.authorise(model_id, r, ENVELOPE, sender=creator)

    relayer_registry.deauthorise(model_id, a, sender=creator)
    assert relayer_registry.relayersOf(model_id) == [c, b]

    # The moved relayer's position was updated: removing it leaves the right one behind.
    relayer_registry.deauthorise(model_id, c, sender=creator)
    assert relayer_registry.relayersOf(model_id) == [b]
    assert relayer_registry.isAuthorised(model_id, b) is True
    relayer_registry.deauthorise(model_id, b, sender=creator)
    assert relayer_registry.relayersOf(model_id) == []
    relayer_registry.authorise(model_id, a, ENVELOPE2, sender=creator)
    assert relayer_registry.relayersOf(model_id) == [a]


def test_deauthorise__retired_relayer__frees_its_slot(
    relayer_registry, authorised_relayer, model_id, creator, operator
):
    relayer_registry.retire(authorised_relayer, sender=operator)

    relayer_registry.deauthorise(model_id, authorised_relayer, sender=creator)

    assert relayer_registry.relayersOf(model_id) == []


def test_deauthorise__not_authorised__reverts(
    relayer_registry, registered_relayer, model_id, creator
):
    with ape.reverts(
        relayer_registry.NotAuthorised, modelId=model_id, relayer=registered_relayer.address
    ):
        relayer_registry.deauthorise(model_id, registered_relayer, sender=creator)


def test_deauthorise__not_model_owner__reverts(
    relayer_registry, authorised_relayer, model_id, renter
):
    with ape.reverts(relayer_registry.NotModelOwner, modelId=model_id, caller=renter.address):
        relayer_registry.deauthorise(model_id, authorised_relayer, sender=renter)


# ------------------------------------------------------------------ wiring
def test_model_registry__is_the_core_model_registry(relayer_registry, registry):
    assert relayer_registry.modelRegistry() == registry.address


def test_constructor__zero_model_registry__reverts(project, fresh_deployer):
    with ape.reverts(project.RelayerRegistry.ZeroAddress):
        project.RelayerRegistry.deploy(ZERO_ADDRESS, sender=fresh_deployer)


@pytest.mark.parametrize("count", [1, 16])
def test_deauthorise__costs_about_the_same_for_one_or_sixteen_relayers(
    relayer_registry, model_id, creator, operator, consenting, count
):
    for i in range(count):
        relayer_registry.register(consenting[i], KEY, ENDPOINT, sender=operator)
        relayer_registry.authorise(model_id, consenting[i], ENVELOPE, sender=creator)

    tx = relayer_registry.deauthorise(model_id, consenting[0], sender=creator)

    # Swap-and-pop: removal costs the same whatever the list length.
    assert tx.gas_used < 60_000
