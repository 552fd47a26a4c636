"""ProofChallenges: a licence holder challenges a receipt of a provable model; a proof answers it.

Real proofs of the provable sample (tests/utils/zk.py, built once per session with a locally made
SRS and the explicit test flag) are checked by the real Halo2 verifier ezkl rendered for its
circuit, deployed here. The relayer's receipts and claims are signed with its real key.
"""

from __future__ import annotations

import ape
import pytest
from ape.contracts import ContractContainer
from ethpm_types import ContractType
from tests.utils.chain import only
from tests.utils.market import DISPUTE_WINDOW, PRICE, WEIGHTS_CID

from daimm import eip712
from daimm.errors import NotOwnerError, PreflightError, TransactionError
from daimm.market.proofs import ChallengeStatus, ProofChallenges, deploy_proof_challenges
from daimm.market.registry import Models
from daimm.zk.binding import instances_hash

ANSWER_WINDOW = 2 * 3600
REFUND, RELEASE = 0, 1
OPEN, ANSWERED, UPHELD = 1, 2, 3


@pytest.fixture(scope="session")
def verifier(zk_sample, deployer):
    contract_type = ContractType.model_validate(
        {
            "contractName": "Halo2Verifier",
            "abi": zk_sample.verifier.abi,
            "deploymentBytecode": {"bytecode": "0x" + zk_sample.verifier.bytecode.hex()},
        }
    )
    return deployer.deploy(ContractContainer(contract_type))


@pytest.fixture(scope="session")
def challenges(project, deployer, contracts, ext):
    return deploy_proof_challenges(project, deployer, contracts, ext, answer_window=ANSWER_WINDOW)


@pytest.fixture(scope="session")
def client(challenges, registry):
    return ProofChallenges(challenges, registry=Models(registry))


@pytest.fixture
def provable_model(
    create_model,
    token,
    relayer_registry,
    registered_relayer,
    creator,
    challenges,
    verifier,
    zk_sample,
):
    """A model with an AIMT offer, `relayer` authorised, its version 0 registered as provable."""
    model = create_model(currency=token)
    relayer_registry.authorise(model, registered_relayer, "bafkreienvelope1", sender=creator)
    challenges.setCircuit(model, 0, verifier, zk_sample.circuit.weights_hash, sender=creator)
    return model


@pytest.fixture
def dispute(escrow, provable_model, renter):
    """The renter rented the provable model and opened a dispute; returns the dispute id."""
    licence = only(escrow.rent(provable_model, 2, 2 * PRICE, sender=renter), escrow.PaymentHeld)
    return only(
        escrow.openDispute(licence.licenceId, sender=renter), escrow.DisputeOpened
    ).disputeId


@pytest.fixture
def make_receipt(chain, provable_model):
    def _make(*, model=None, timestamp=None, inputs_hash=b"\x01" * 32):
        return eip712.Receipt(
            model_id=provable_model if model is None else model,
            weights_cid=WEIGHTS_CID,
            inputs_hash=inputs_hash,
            outputs_hash=b"\x02" * 32,
            timestamp=chain.blocks.head.timestamp if timestamp is None else timestamp,
        )

    return _make


@pytest.fixture
def challenge(chain, challenges, relayer_registry, relayer, renter):
    """Challenge `receipt` under `dispute_id`, the relayer having claimed `io_instances`."""

    def _challenge(dispute_id, receipt, io_instances, *, signer=None, sender=None):
        digest = eip712.receipt_digest(receipt, chain.chain_id, relayer_registry.address)
        claimed = instances_hash(io_instances)
        key = (signer or relayer).private_key
        signature = eip712.sign_proof_claim(
            digest, claimed, chain.chain_id, relayer_registry.address, key
        )
        as_tuple = (
            receipt.model_id,
            receipt.weights_cid,
            receipt.inputs_hash,
            receipt.outputs_hash,
            receipt.timestamp,
        )
        tx = challenges.challenge(
            dispute_id, as_tuple, relayer, claimed, signature, sender=sender or renter
        )
        return only(tx, challenges.Challenged).challengeId

    return _challenge


# ------------------------------------------------------------------ the verifier itself
def test_verifier__honest_proof__accepted_on_chain(verifier, zk_sample):
    assert verifier.verifyProof.call(*zk_sample.honest.calldata())


def test_receipt_digest__equals_the_relayers(challenges, chain, relayer_registry, make_receipt):
    receipt = make_receipt()
    as_tuple = (
        receipt.model_id,
        receipt.weights_cid,
        receipt.inputs_hash,
        receipt.outputs_hash,
        receipt.timestamp,
    )

    assert challenges.receiptDigest(as_tuple) == eip712.receipt_digest(
        receipt, chain.chain_id, relayer_registry.address
    )


# ------------------------------------------------------------------ answers
def test_answer__honest_proof__releases_the_dispute_to_the_payees(
    challenges, escrow, dispute, make_receipt, challenge, zk_sample, stranger
):
    honest = zk_sample.honest
    challenge_id = challenge(dispute, make_receipt(), honest.io_instances)

    tx = challenges.answer(challenge_id, *honest.calldata(), sender=stranger)

    assert only(tx, challenges.Answered).prover == stranger.address
    assert only(tx, escrow.DisputeResolved).resolution == RELEASE
    assert challenges.challengeOf(challenge_id).status == ANSWERED
    assert not escrow.disputeOf(dispute).open


def test_answer__swapped_weights_proof__reverts_and_the_challenge_is_upheld(
    chain, challenges, escrow, dispute, make_receipt, challenge, zk_sample, relayer, renter
):
    # The relayer ran other weights: it signed the outputs they gave, and can only prove them with
    # the other weights, whose proof verifies but carries another weights hash.
    swapped = zk_sample.swapped
    challenge_id = challenge(dispute, make_receipt(), swapped.io_instances)

    with ape.reverts(
        challenges.WrongWeightsHash,
        expected=zk_sample.circuit.weights_hash,
        given=swapped.weights_hash,
    ):
        challenges.answer(challenge_id, *swapped.calldata(), sender=relayer)

    chain.pending_timestamp += ANSWER_WINDOW + 1
    tx = challenges.resolve(challenge_id, sender=renter)
    assert (only(tx, challenges.Upheld).relayer, only(tx, challenges.Upheld).strikes) == (
        relayer.address,
        1,
    )
    assert only(tx, escrow.DisputeResolved).resolution == REFUND
    assert challenges.strikesOf(relayer) == 1
    assert challenges.challengeOf(challenge_id).status == UPHELD


@pytest.mark.parametrize("changed", [0, -1], ids=["first_input", "last_output"])
def test_answer__proof_for_other_inputs_or_outputs__reverts_wrong_instances(
    challenges, dispute, make_receipt, challenge, zk_sample, relayer, changed
):
    honest = zk_sample.honest
    claimed = list(honest.io_instances)
    claimed[changed] += 1  # the relayer's claim names another value than the proof's
    challenge_id = challenge(dispute, make_receipt(), claimed)

    with ape.reverts(challenges.WrongInstances):
        challenges.answer(challenge_id, *honest.calldata(), sender=relayer)


def test_answer__tampered_proof__reverts_invalid_proof(
    challenges, dispute, make_receipt, challenge, zk_sample, relayer
):
    honest = zk_sample.honest
    challenge_id = challenge(dispute, make_receipt(), honest.io_instances)
    proof = bytearray(honest.proof)
    proof[100] ^= 1

    with ape.reverts(challenges.InvalidProof, challengeId=challenge_id):
        challenges.answer(challenge_id, bytes(proof), list(honest.instances), sender=relayer)


def test_answer__proof_of_another_model__reverts_wrong_weights_hash(
    challenges,
    create_model,
    token,
    relayer_registry,
    relayer,
    creator,
    verifier,
    escrow,
    renter,
    make_receipt,
    challenge,
    zk_sample,
):
    # Another model with the same architecture (same verifier), registered with its own weights.
    other = create_model(currency=token)
    relayer_registry.authorise(other, relayer, "bafkreienvelope1", sender=creator)
    challenges.setCircuit(other, 0, verifier, zk_sample.swapped.weights_hash, sender=creator)
    licence = only(escrow.rent(other, 2, 2 * PRICE, sender=renter), escrow.PaymentHeld)
    dispute = only(escrow.openDispute(licence.licenceId, sender=renter), escrow.DisputeOpened)
    honest = zk_sample.honest
    challenge_id = challenge(dispute.disputeId, make_receipt(model=other), honest.io_instances)

    with ape.reverts(challenges.WrongWeightsHash):
        challenges.answer(challenge_id, *honest.calldata(), sender=relayer)


def test_answer__after_the_answer_window__reverts(
    chain, challenges, dispute, make_receipt, challenge, zk_sample, relayer
):
    honest = zk_sample.honest
    challenge_id = challenge(dispute, make_receipt(), honest.io_instances)
    chain.pending_timestamp += ANSWER_WINDOW + 1

    with ape.reverts(challenges.AnswerWindowClosed):
        challenges.answer(challenge_id, *honest.calldata(), sender=relayer)


def test_resolve__before_the_deadline__reverts(
    challenges, dispute, make_receipt, challenge, zk_sample, renter
):
    challenge_id = challenge(dispute, make_receipt(), zk_sample.honest.io_instances)

    with ape.reverts(challenges.AnswerWindowOpen):
        challenges.resolve(challenge_id, sender=renter)


def test_resolve__answered_challenge__reverts_not_open(
    chain, challenges, dispute, make_receipt, challenge, zk_sample, renter
):
    honest = zk_sample.honest
    challenge_id = challenge(dispute, make_receipt(), honest.io_instances)
    challenges.answer(challenge_id, *honest.calldata(), sender=renter)
    chain.pending_timestamp += ANSWER_WINDOW + 1

    with ape.reverts(challenges.NotOpen, challengeId=challenge_id):
        challenges.resolve(challenge_id, sender=renter)


# ------------------------------------------------------------------ challenges
def test_challenge__receipt_older_than_the_dispute_window__reverts(
    chain, challenges, dispute, make_receipt, challenge, zk_sample
):
    old = chain.blocks.head.timestamp - DISPUTE_WINDOW - 10

    with ape.reverts(challenges.ReceiptTooOld):
        challenge(dispute, make_receipt(timestamp=old), zk_sample.honest.io_instances)


def test_challenge__same_receipt_twice__reverts(
    challenges, escrow, provable_model, buyer, dispute, make_receipt, challenge, zk_sample
):
    receipt = make_receipt()
    challenge(dispute, receipt, zk_sample.honest.io_instances)
    licence = only(escrow.rent(provable_model, 1, PRICE, sender=buyer), escrow.PaymentHeld)
    second = only(escrow.openDispute(licence.licenceId, sender=buyer), escrow.DisputeOpened)

    with ape.reverts(challenges.AlreadyChallenged):
        challenge(second.disputeId, receipt, zk_sample.honest.io_instances, sender=buyer)


def test_challenge__second_receipt_under_the_same_dispute__reverts(
    challenges, dispute, make_receipt, challenge, zk_sample
):
    challenge(dispute, make_receipt(), zk_sample.honest.io_instances)

    with ape.reverts(challenges.DisputeAlreadyChallenged, disputeId=dispute):
        challenge(dispute, make_receipt(inputs_hash=b"\x03" * 32), zk_sample.honest.io_instances)


def test_challenge__claim_not_signed_by_the_relayer__reverts(
    challenges, dispute, make_receipt, challenge, zk_sample, renter, relayer
):
    with ape.reverts(challenges.BadClaimSignature, relayer=relayer.address):
        challenge(dispute, make_receipt(), zk_sample.honest.io_instances, signer=renter)


def test_challenge__by_someone_else_than_the_disputes_payer__reverts(
    challenges, dispute, make_receipt, challenge, zk_sample, stranger
):
    with ape.reverts(challenges.NotDisputePayer):
        challenge(dispute, make_receipt(), zk_sample.honest.io_instances, sender=stranger)


def test_challenge__model_without_a_circuit__reverts(
    challenges, escrow, create_model, token, renter, make_receipt, challenge, zk_sample
):
    plain = create_model(currency=token)
    licence = only(escrow.rent(plain, 1, PRICE, sender=renter), escrow.PaymentHeld)
    dispute = only(escrow.openDispute(licence.licenceId, sender=renter), escrow.DisputeOpened)

    with ape.reverts(challenges.NoCircuit):
        challenge(dispute.disputeId, make_receipt(model=plain), zk_sample.honest.io_instances)


def test_set_circuit__not_the_model_owner__reverts(challenges, provable_model, verifier, stranger):
    with ape.reverts(challenges.NotModelOwner, modelId=provable_model, caller=stranger.address):
        challenges.setCircuit(provable_model, 0, verifier, 1, sender=stranger)


def test_set_circuit__records_verifier_and_weights_hash_per_version(
    challenges, provable_model, verifier, zk_sample
):
    circuit = challenges.circuitOf(provable_model, WEIGHTS_CID)

    assert (circuit.verifier, circuit.weightsHash) == (
        verifier.address,
        zk_sample.circuit.weights_hash,
    )


# ------------------------------------------------------------------ the Python library
def test_deploy_proof_challenges__grants_the_escrows_arbiter_role(challenges, escrow):
    assert escrow.hasRole(escrow.ARBITER_ROLE(), challenges)


def test_client_set_circuit__not_the_owner__refused_before_sending(
    client, provable_model, verifier, stranger
):
    with pytest.raises(NotOwnerError, match="does not own model"):
        client.set_circuit(provable_model, 0, verifier.address, 1, sender=stranger)


def test_client_set_circuit__no_verifier_code__refused_before_sending(
    client, provable_model, creator, stranger
):
    with pytest.raises(PreflightError, match="deploy the model's Halo2 verifier first"):
        client.set_circuit(provable_model, 0, stranger.address, 1, sender=creator)


def test_client__honest_answer__closes_the_challenge(
    chain, client, relayer_registry, relayer, dispute, make_receipt, zk_sample, renter
):
    honest, receipt = zk_sample.honest, make_receipt()
    digest = eip712.receipt_digest(receipt, chain.chain_id, relayer_registry.address)
    signature = eip712.sign_proof_claim(
        digest, honest.instances_hash, chain.chain_id, relayer_registry.address,
        relayer.private_key,
    )  # fmt: skip
    challenge_id = client.challenge(
        dispute, receipt, relayer.address, honest.instances_hash, signature, sender=renter
    )

    client.answer(challenge_id, honest, sender=relayer)

    assert client.status_of(challenge_id) is ChallengeStatus.ANSWERED
    with pytest.raises(PreflightError, match="not open"):
        client.answer(challenge_id, honest, sender=relayer)


def test_client_answer__swapped_weights__error_names_wrong_weights_hash(
    client, dispute, make_receipt, challenge, zk_sample, relayer
):
    swapped = zk_sample.swapped
    challenge_id = challenge(dispute, make_receipt(), swapped.io_instances)

    with pytest.raises(TransactionError, match="WrongWeightsHash"):
        client.answer(challenge_id, swapped, sender=relayer)
