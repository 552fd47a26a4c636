"""Verifiable inference end to end on anvil (issue 19's "Done when"; docs/ZK.md).

A provable sample is published (circuit by CID, verifier deployed, weights hash registered); a
user rents it, predicts through the relayer daemon, asks for a proof and verifies it (offline and
with the on-chain verifier). A challenge of that honest receipt is answered by the relayer's own
claim worker and fails; a challenge of a relayer that served swapped weights cannot be answered
and succeeds on chain: the challenger's payment is refunded and the relayer gets a strike.

Runs only on a real local node (``--network ethereum:local:foundry``): the daemon reads the chain
over HTTP. ezkl is real throughout; the circuit's setup is the session's (tests/utils/zk.py), and
the relayer regenerates its own proving key from the decrypted model (about 15 s), then proves
twice (about 10-30 s each here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import ape
import pytest
from ape.contracts import ContractInstance
from ethpm_types import ContractType
from tests.utils.chain import only
from tests.utils.relayer import (
    free_port,
    new_relayer,
    node_url_or_skip,
    relayer_daemon,
    wait_until_current,
)

from daimm import eip712
from daimm.client import ApeAccountSigner, RelayerClient, fetch_proof
from daimm.deployments import Deployment, provider_key
from daimm.market import ETH_ADDRESS, Marketplace
from daimm.market.proofs import ChallengeStatus
from daimm.zk import Proof
from daimm.zk.prover import check_proof

pytestmark = [pytest.mark.chain]

PERIOD = 3600
PRICE = 10**17
#: Seconds a challenge may be answered: long enough for the claim worker's first proof here.
ANSWER_WINDOW = 900


@pytest.fixture(scope="module")
def story(
    chain: Any,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    zk_sample: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """ProofChallenges deployed by the normal path; the provable sample published; a relayer."""
    from daimm.crypto import generate_private_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market.deploy_extensions import deploy_extensions
    from daimm.market.provable import provable_sample_card, publish_provable
    from daimm.market.publishing import parse_metadata, plan_authorise_relayer
    from daimm.market.types import Offer
    from daimm.samples import shipped_samples

    node_url_or_skip(chain, "the relayer daemon reads the chain over HTTP")
    work = tmp_path_factory.mktemp("zk-story")
    ext = deploy_extensions(project, deployer, contracts, answer_window=ANSWER_WINDOW)
    deployment = Deployment(
        network=provider_key(chain.provider),
        chain_id=chain.chain_id,
        block=0,
        contracts={**contracts.addresses(), **ext.addresses()},
        currencies={"ETH": ETH_ADDRESS, "AIMT": str(contracts.token.address)},
    )
    market = Marketplace(deployment)
    port = free_port()
    relayer, x25519 = new_relayer(work, ext.relayer_registry, deployer, port)
    backend = LocalBlockstore(work / "blocks")
    creator_key = generate_private_key()
    sample = zk_sample.sample
    published = publish_provable(
        market,
        sample.path,
        parse_metadata(provable_sample_card(shipped_samples()[0].card)),
        backend=backend,
        creator_key=creator_key,
        sender=creator,
        srs=zk_sample.srs,
        calibration=sample.calibration.tolist(),
        folder=zk_sample.circuit.folder,
        allow_test_srs=True,
        circuit=zk_sample.circuit,
    )
    model_id = published.published.model_id
    market.escrow.set_offer(
        model_id, Offer(ETH_ADDRESS, PRICE, PERIOD, 1, 30, True, 0, 0), sender=creator
    )
    _, plan = plan_authorise_relayer(
        market, model_id, relayer.address, backend=backend, creator_key=creator_key,
        sender=creator,
    )  # fmt: skip
    plan.execute()
    config = work / "relayer.toml"
    lines = [
        "[relayer]",
        f'rpc_url = "{node_url_or_skip(chain, "")}"',
        f'account_key_file = "{work / "relayer.eth"}"',
        f'x25519_key_file = "{work / "relayer.x25519"}"',
        'storage = "local"',
        f'storage_path = "{work / "blocks"}"',
        f'db_path = "{work / "relayer.sqlite3"}"',
        f"port = {port}",
        "access_ttl_s = 1.0",
        "log_poll_s = 0.5",
        f'zk_srs = "{zk_sample.srs}"',
        "zk_allow_test_srs = true",
        f'zk_folder = "{work / "zk"}"',
        "[relayer.contracts]",
        *(f'{name} = "{address}"' for name, address in deployment.contracts.items()),
    ]
    config.write_text("\n".join(lines) + "\n")
    with relayer_daemon(config, port, work / "relayer.log") as url:
        yield {
            "url": url,
            "market": market,
            "ext": ext,
            "model_id": model_id,
            "relayer": relayer,
            "published": published,
            "log": work / "relayer.log",
        }


def _rent(story: dict[str, Any], account: Any) -> int:
    """Rent the provable model for one period; the licence id."""
    escrow = story["market"].escrow.contract
    tx = escrow.rent(story["model_id"], 1, PRICE, value=PRICE, sender=account)
    return int(only(tx, escrow.PaymentHeld).licenceId)


def _dispute(story: dict[str, Any], licence_id: int, account: Any) -> int:
    escrow = story["market"].escrow.contract
    return int(only(escrow.openDispute(licence_id, sender=account), escrow.DisputeOpened).disputeId)


def _predict_with_claim(client: RelayerClient, model_id: int, row: list[float]) -> Any:
    """Predict until the answer carries a claim (the relayer prepares the circuit on first use)."""
    deadline = time.monotonic() + 300
    while True:
        prediction = client.predict(model_id, {"input": [row]})
        if prediction.proof_claim is not None:
            return prediction
        assert time.monotonic() < deadline, "the relayer never made the model provable"
        time.sleep(3)


def test_zk_story__rent_predict_prove_and_challenges__verified_answered_and_upheld(
    story: Any,
    chain: Any,
    renter: Any,
    stranger: Any,
    creator: Any,
    deployer: Any,
    zk_sample: Any,
) -> None:
    market, model_id = story["market"], story["model_id"]
    challenges = market.proofs.contract
    row = [float(v) for v in zk_sample.sample.x_test[0]]

    # The provable version is registered on chain: verifier and weights hash.
    verifier, weights_hash = market.proofs.circuit_of(
        model_id, market.models.version(model_id, 0).weights_cid
    )
    assert weights_hash == zk_sample.circuit.weights_hash
    assert verifier == story["published"].verifier

    # A user rents, predicts, asks for a proof and sees it verified.
    licence = _rent(story, renter)
    wait_until_current(story["url"], chain)
    client = RelayerClient(
        story["url"], ApeAccountSigner(renter), expected_relayer=story["relayer"].address
    )
    prediction = _predict_with_claim(client, model_id, row)
    claim = prediction.proof_claim
    proof = Proof.from_document(fetch_proof(story["url"], claim["receipt"], poll_s=1.0))
    check_proof(
        zk_sample.circuit,
        proof,
        zk_sample.srs,
        weights_hash=weights_hash,
        instances_hash=bytes.fromhex(claim["instancesHash"][2:]),
        inputs=row,
        allow_test_srs=True,
    )
    on_chain = ContractInstance(
        verifier, contract_type=ContractType.model_validate({"abi": zk_sample.verifier.abi})
    )
    assert on_chain.verifyProof.call(*proof.calldata())

    # A challenge of the honest receipt: the relayer's claim worker answers it; it fails.
    receipt = eip712.Receipt(
        model_id=int(prediction.receipt["modelId"]),
        weights_cid=prediction.receipt["weightsCid"],
        inputs_hash=bytes.fromhex(prediction.receipt["inputsHash"][2:]),
        outputs_hash=bytes.fromhex(prediction.receipt["outputsHash"][2:]),
        timestamp=int(prediction.receipt["timestamp"]),
    )
    fields = (receipt.model_id, receipt.weights_cid, receipt.inputs_hash, receipt.outputs_hash,
              receipt.timestamp)  # fmt: skip
    # The relayer stamps a receipt with its own clock; after earlier tests' snapshot reverts on
    # the shared anvil, the chain's clock can trail it, and the contract refuses a receipt from
    # its future (ReceiptInFuture): mine from the receipt's second on.
    if chain.pending_timestamp <= receipt.timestamp:
        chain.pending_timestamp = receipt.timestamp + 1
    dispute = _dispute(story, licence, renter)
    tx = challenges.challenge(
        dispute,
        fields,
        story["relayer"].address,
        bytes.fromhex(claim["instancesHash"][2:]),
        bytes.fromhex(claim["signature"][2:]),
        sender=renter,
    )
    honest = int(only(tx, challenges.Challenged).challengeId)
    deadline = time.monotonic() + 600
    while market.proofs.status_of(honest) is ChallengeStatus.OPEN:
        assert time.monotonic() < deadline, story["log"].read_text()[-3000:]
        time.sleep(2)
    assert market.proofs.status_of(honest) is ChallengeStatus.ANSWERED
    assert market.proofs.strikes_of(story["relayer"].address) == 0

    # A relayer that served swapped weights: its signed claim is for the swapped outputs, which no
    # proof with the registered weights gives; its own proof carries another weights hash.
    ext = story["ext"]
    (story["log"].parent / "cheater").mkdir()
    cheater, _ = new_relayer(
        story["log"].parent / "cheater", ext.relayer_registry, deployer, free_port()
    )
    ext.relayer_registry.authorise(model_id, cheater.address, "bafkreienvelope", sender=creator)
    swapped = zk_sample.swapped
    claimed = swapped.instances_hash
    cheat_receipt = eip712.Receipt(
        model_id, receipt.weights_cid, b"\x01" * 32, b"\x02" * 32, chain.blocks.head.timestamp
    )
    digest = eip712.receipt_digest(cheat_receipt, chain.chain_id, ext.relayer_registry.address)
    signature = eip712.sign_proof_claim(
        digest, claimed, chain.chain_id, ext.relayer_registry.address, cheater.private_key
    )
    escrow = market.escrow.contract
    stranger_licence = _rent(story, stranger)
    dispute = _dispute(story, stranger_licence, stranger)
    tx = challenges.challenge(
        dispute,
        (model_id, receipt.weights_cid, b"\x01" * 32, b"\x02" * 32, cheat_receipt.timestamp),
        cheater.address,
        claimed,
        signature,
        sender=stranger,
    )
    cheated = int(only(tx, challenges.Challenged).challengeId)
    with ape.reverts(challenges.WrongWeightsHash):
        challenges.answer(cheated, *swapped.calldata(), sender=cheater)
    with ape.reverts(challenges.WrongInstances):
        challenges.answer(cheated, *proof.calldata(), sender=cheater)
    owed = escrow.owed(stranger, ETH_ADDRESS)
    chain.pending_timestamp += ANSWER_WINDOW + 1
    challenges.resolve(cheated, sender=stranger)

    assert market.proofs.status_of(cheated) is ChallengeStatus.UPHELD
    assert market.proofs.strikes_of(cheater.address) == 1
    assert escrow.owed(stranger, ETH_ADDRESS) - owed == PRICE  # the whole payment back
    assert not story["market"].licences.contract.hasAccess(model_id, stranger)
