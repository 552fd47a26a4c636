"""What a proof says, and how it is bound to a receipt and to a model version.

A proof's public instances are, in order: the Poseidon hash of the weights (instance 0), the
quantized inputs, then the quantized outputs, each a BN254 field element. The relayer signs,
beside a receipt of a provable model, a ``ProofClaim(receiptDigest, instancesHash)`` where
``instancesHash`` is the keccak256 of the inputs and outputs as packed uint256
(:func:`instances_hash`). A proof then answers for that receipt if:

- instance 0 equals the weights hash registered on chain for the receipt's model version
  (a proof made with other weights verifies with the same key, carrying another instance 0);
- the other instances hash to the signed ``instancesHash`` (a proof for other inputs or outputs);
- the verifier accepts it (a tampered proof, or one for another circuit).

The user checks the claim against its own request when the answer arrives (:func:`quantize`
the body's inputs and compare; the outputs, dequantized, match the answer's logits), since the chain
cannot parse the JSON bodies the receipt's hashes cover.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daimm.eip712 import keccak256
from daimm.errors import ProofError

__all__ = [
    "FIELD_MODULUS",
    "Proof",
    "dequantize",
    "felt_to_int",
    "instances_hash",
    "quantize",
]

#: The BN254 scalar field's modulus (ezkl's field elements).
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617


def felt_to_int(felt: str) -> int:
    """An ezkl field element (64 hex digits, little-endian) as an integer below the modulus."""
    value = int.from_bytes(bytes.fromhex(felt.removeprefix("0x")), "little")
    if value >= FIELD_MODULUS:
        raise ProofError(f"not a field element: {felt}")
    return value


def quantize(values: Sequence[float], scale: int) -> list[int]:
    """Values as the circuit sees them: ``round(x * 2**scale)``, negatives as ``p - |x|``."""
    return [round(float(v) * (1 << scale)) % FIELD_MODULUS for v in values]


def dequantize(felts: Sequence[int], scale: int) -> list[float]:
    """Field elements back to floats (values above ``p/2`` are negative)."""
    half = FIELD_MODULUS // 2
    return [(f - FIELD_MODULUS if f > half else f) / (1 << scale) for f in felts]


def instances_hash(io_instances: Sequence[int]) -> bytes:
    """keccak256 of the inputs and outputs as packed uint256 (what the relayer's claim signs)."""
    return keccak256(b"".join(int(i).to_bytes(32, "big") for i in io_instances))


@dataclass(frozen=True)
class Proof:
    """One ezkl proof.

    Attributes:
        instances: All public instances (weights hash, inputs, outputs) as integers.
        proof: The proof bytes the Solidity verifier takes.
        document: The proof file's JSON (what the Python verifier reads).
    """

    instances: tuple[int, ...]
    proof: bytes
    document: dict[str, Any]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Proof:
        """Parse an ezkl proof JSON document.

        Raises:
            ProofError: Not an ezkl proof of one circuit.
        """
        try:
            (column,) = document["instances"]
            instances = tuple(felt_to_int(f) for f in column)
            proof = bytes.fromhex(document["hex_proof"].removeprefix("0x"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(f"not an ezkl proof document: {exc}") from None
        if not instances:
            raise ProofError("the proof has no public instances")
        return cls(instances, proof, document)

    @classmethod
    def from_file(cls, path: str | Path) -> Proof:
        """Read a proof file (see :meth:`from_document`)."""
        try:
            return cls.from_document(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ProofError(f"cannot read the proof at {path}: {exc}") from None

    @property
    def weights_hash(self) -> int:
        """Instance 0: the Poseidon hash of the weights the proof was made with."""
        return self.instances[0]

    @property
    def io_instances(self) -> tuple[int, ...]:
        """The inputs then the outputs (everything after the weights hash)."""
        return self.instances[1:]

    def inputs(self, features: int) -> tuple[int, ...]:
        """The quantized inputs (the first ``features`` after the weights hash)."""
        return self.instances[1 : 1 + features]

    def outputs(self, features: int) -> tuple[int, ...]:
        """The quantized outputs (what follows the inputs)."""
        return self.instances[1 + features :]

    @property
    def instances_hash(self) -> bytes:
        """:func:`instances_hash` of :attr:`io_instances`."""
        return instances_hash(self.io_instances)

    def calldata(self) -> tuple[bytes, list[int]]:
        """The arguments of ``verifyProof(bytes, uint256[])`` and ``ProofChallenges.answer``."""
        return self.proof, list(self.instances)
