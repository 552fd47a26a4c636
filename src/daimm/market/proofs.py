"""ProofChallenges: provable model versions, and challenges of receipts answered by proofs.

One class per contract, as the rest of ``daimm.market``: pre-flight checks that raise a domain
error saying what to do, then a :class:`~daimm.market._tx.Plan` whose result is built from events.
The design (why disputes go through the escrow's dispute flow, what a relayer loses) is in
docs/ZK.md.

Example:
    >>> challenges = ProofChallenges(contract, registry=Models(core.registry))
    >>> challenges.set_circuit(model_id, 0, verifier, circuit.weights_hash, sender=creator)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from daimm.errors import ConfigError, PreflightError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, first_event, tx_hash
from daimm.market.deploy_extensions import DEFAULT_ANSWER_WINDOW
from daimm.market.registry import Models

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

    from daimm.eip712 import Receipt
    from daimm.market.deploy import Deployment
    from daimm.market.deploy_extensions import Extensions
    from daimm.zk.binding import Proof

__all__ = [
    "DEFAULT_ANSWER_WINDOW",
    "ChallengeStatus",
    "ProofChallenges",
    "RegisteredCircuit",
    "deploy_proof_challenges",
]

log = logging.getLogger(__name__)


class ChallengeStatus(IntEnum):
    """``IProofChallenges.Status``."""

    NONE = 0
    OPEN = 1
    ANSWERED = 2
    UPHELD = 3


@dataclass(frozen=True)
class RegisteredCircuit:
    """The circuit registered for a model version: its verifier and weights hash (instance 0)."""

    model_id: int
    version: int
    verifier: str
    weights_hash: int
    tx_hash: str


class ProofChallenges(ContractClient):
    """The ProofChallenges contract.

    Args:
        contract: The ape contract instance.
        registry: The model registry client (owner checks).
    """

    NAME = "ProofChallenges"

    def __init__(self, contract: ContractInstance, *, registry: Models) -> None:
        super().__init__(contract)
        self.registry = registry

    def circuit_of(self, model_id: int, weights_cid: str) -> tuple[str, int] | None:
        """The (verifier, weights hash) registered for the version with ``weights_cid``, or None."""
        verifier, weights_hash = self._call("circuitOf", model_id, weights_cid)
        if int(str(verifier), 16) == 0:
            return None
        return checksum(verifier), int(weights_hash)

    def strikes_of(self, relayer: str) -> int:
        """Unanswered challenges against ``relayer``."""
        return int(self._call("strikesOf", relayer))

    def status_of(self, challenge_id: int) -> ChallengeStatus:
        """The status of challenge ``challenge_id``."""
        return ChallengeStatus(int(self._call("challengeOf", challenge_id).status))

    def plan_set_circuit(
        self, model_id: int, version: int, verifier: str, weights_hash: int, *, sender: AccountAPI
    ) -> Plan[RegisteredCircuit]:
        """Plan registering the circuit of version ``version`` of ``model_id``.

        Raises:
            NotOwnerError: ``sender`` does not own the model.
            PreflightError: The verifier address has no code.
        """
        self.registry.require_owner(model_id, sender)
        if not sender.provider.get_code(checksum(verifier)):
            raise PreflightError(
                f"no contract at {verifier}: deploy the model's Halo2 verifier first (docs/ZK.md)"
            )
        step = self._step(
            f"register the circuit of model {model_id} version {version}",
            "setCircuit",
            model_id,
            version,
            checksum(verifier),
            weights_hash,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> RegisteredCircuit:
            event = first_event(receipts[-1], self.contract, "CircuitSet")
            return RegisteredCircuit(
                int(event.modelId),
                int(event.version),
                checksum(event.verifier),
                int(event.weightsHash),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def set_circuit(
        self, model_id: int, version: int, verifier: str, weights_hash: int, *, sender: AccountAPI
    ) -> RegisteredCircuit:
        """Register a model version's circuit; see :meth:`plan_set_circuit`."""
        return self.plan_set_circuit(
            model_id, version, verifier, weights_hash, sender=sender
        ).execute()

    def challenge(
        self,
        dispute_id: int,
        receipt: Receipt,
        relayer: str,
        instances_hash: bytes,
        claim_signature: bytes,
        *,
        sender: AccountAPI,
    ) -> int:
        """Challenge ``receipt`` under dispute ``dispute_id`` (opened by ``sender``); the id.

        Raises:
            TransactionError: The contract refused (the message names its custom error).
        """
        fields = (
            receipt.model_id,
            receipt.weights_cid,
            receipt.inputs_hash,
            receipt.outputs_hash,
            receipt.timestamp,
        )
        step = self._step(
            f"challenge a receipt of model {receipt.model_id}",
            "challenge",
            dispute_id,
            fields,
            checksum(relayer),
            instances_hash,
            claim_signature,
            sender=sender,
        )
        event = first_event(step.send(), self.contract, "Challenged")
        return int(event.challengeId)

    def answer(self, challenge_id: int, proof: Proof, *, sender: AccountAPI) -> str:
        """Answer challenge ``challenge_id`` with ``proof``; the transaction hash.

        Raises:
            PreflightError: The challenge is not open.
            TransactionError: The contract refused the proof (``WrongWeightsHash``,
                ``WrongInstances``, ``InvalidProof``, ``AnswerWindowClosed``).
        """
        if self.status_of(challenge_id) is not ChallengeStatus.OPEN:
            raise PreflightError(f"challenge {challenge_id} is not open: nothing to answer")
        step = self._step(
            f"answer challenge {challenge_id}", "answer", challenge_id, *proof.calldata(),
            sender=sender,
        )  # fmt: skip
        return tx_hash(step.send())


def deploy_proof_challenges(
    project: Any,
    deployer: AccountAPI,
    core: Deployment,
    ext: Extensions,
    *,
    answer_window: int = DEFAULT_ANSWER_WINDOW,
) -> ContractInstance:
    """Deploy ProofChallenges against ``core`` and ``ext`` and grant it the escrow's ARBITER_ROLE.

    Raises:
        ConfigError: ``answer_window`` is out of range, or the deployer cannot grant the role.
    """
    if not 0 < answer_window < 2**32:
        raise ConfigError(f"answer_window must be 1..2**32-1 seconds, got {answer_window}")
    escrow = core.escrow
    if not escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), deployer):
        raise ConfigError(
            f"{deployer.address} cannot grant ARBITER_ROLE on RentalEscrow {escrow.address}:"
            " deploy with the account that holds its DEFAULT_ADMIN_ROLE"
        )
    contract = project.ProofChallenges.deploy(
        escrow.address,
        core.licences.address,
        ext.relayer_registry.address,
        answer_window,
        sender=deployer,
    )
    escrow.grantRole(escrow.ARBITER_ROLE(), contract.address, sender=deployer)
    log.info("deployed ProofChallenges at %s", contract.address)
    return contract
