"""Publishing a provable model: circuit by CID, verifier on chain, weights hash per version.

``daimm model publish --provable`` (:func:`publish_provable`) does, in order:

1. :func:`daimm.zk.check_provable`: a model with operators a proof cannot express, or more weights
   than :data:`daimm.zk.circuit.MAX_PARAMETERS`, is refused here, with the limit named, before
   anything is built, stored or sent;
2. calibrates, compiles and sets up the circuit (:func:`daimm.zk.build_circuit`, the SRS by path,
   pinned by hash unless ``allow_test_srs``);
3. stores ``settings.json``, ``vk.key`` and the circuit description (:func:`store_circuit`) by
   CID; the version's metadata names the description's CID (``daimm.circuit``);
4. mints the model (the usual publish plan);
5. renders the Solidity verifier and deploys it, or reuses one already registered with the same
   runtime code (:func:`deploy_verifier`: verifiers depend only on the settings and the
   verification key, so two versions with the same architecture share one);
6. registers, per model version, the verifier and the weights hash on ProofChallenges.

The proving key is NOT published: the relayer regenerates it from the decrypted model and the
published settings (:func:`regenerate_circuit`), and checks that its verification key hashes to
the published one. Why is in docs/ZK.md ("Keys and files").
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daimm.errors import ProofError, ValidationError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI

    from daimm.ipfs.backends import Backend
    from daimm.market.marketplace import Marketplace
    from daimm.market.proofs import ProofChallenges
    from daimm.market.publishing import PreparedPackage
    from daimm.market.types import PublishedModel
    from daimm.zk.prover import Circuit, EvmVerifier

__all__ = [
    "CIRCUIT_FORMAT",
    "CircuitDescription",
    "ProvablePublished",
    "deploy_verifier",
    "fetch_circuit",
    "publish_provable",
    "regenerate_circuit",
    "store_circuit",
]

log = logging.getLogger(__name__)

#: The ``format`` of a circuit description document.
CIRCUIT_FORMAT = "daimm-circuit-v1"
#: Largest published verification key accepted (the sample's is about 2 KB).
MAX_VK_BYTES = 4 << 20


@dataclass(frozen=True)
class CircuitDescription:
    """The published description of a model version's circuit (what the relayer proves with).

    Attributes:
        cid: The description document's CID.
        settings_cid: CID of ezkl's ``settings.json`` (frozen with the keys).
        vk_cid: CID of the verification key.
        logrows, scale, features, outputs: As :class:`daimm.zk.Circuit`.
        weights_hash: Instance 0 of every honest proof (also registered on chain).
        srs_sha256: The SRS the keys were made with.
        settings_sha256, vk_sha256: SHA-256 of the two files.
    """

    cid: str
    settings_cid: str
    vk_cid: str
    logrows: int
    scale: int
    features: int
    outputs: int
    weights_hash: int
    srs_sha256: str
    settings_sha256: str
    vk_sha256: str

    @classmethod
    def from_document(cls, cid: str, document: Any) -> CircuitDescription:
        """Parse a description document.

        Raises:
            ValidationError: Not a circuit description of this format.
        """
        try:
            if document["format"] != CIRCUIT_FORMAT:
                raise ValueError(f"format {document['format']!r}")
            return cls(
                cid,
                str(document["settings"]),
                str(document["vk"]),
                int(document["logrows"]),
                int(document["scale"]),
                int(document["features"]),
                int(document["outputs"]),
                int(document["weights_hash"], 16),
                str(document["srs_sha256"]),
                str(document["settings_sha256"]),
                str(document["vk_sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"{cid} is not a {CIRCUIT_FORMAT} circuit description ({exc})"
            ) from None


@dataclass(frozen=True)
class ProvablePublished:
    """What :func:`publish_provable` did.

    Attributes:
        published: The minted model.
        package: The stored package (weights, envelope, metadata CIDs).
        circuit: The circuit built (its folder holds the proving key, which is not published).
        circuit_cid: The circuit description's CID (named in the version's metadata).
        verifier: The verifier contract's address.
        verifier_reused: Whether an already deployed verifier with the same code was reused.
    """

    published: PublishedModel
    package: PreparedPackage
    circuit: Circuit
    circuit_cid: str
    verifier: str
    verifier_reused: bool


def _store(data: bytes, backend: Backend) -> str:
    from daimm.market.publishing import _store_bytes

    return _store_bytes(data, backend)


def store_circuit(circuit: Circuit, backend: Backend) -> str:
    """Store ``settings.json``, ``vk.key`` and the description; the description's CID.

    NOTE: the compiled circuit (``network.ezkl``) is never stored: it holds the weights in clear.
    """
    circuit.check_frozen("settings.json", "vk.key")
    document = {
        "format": CIRCUIT_FORMAT,
        "settings": _store(circuit.settings.read_bytes(), backend),
        "vk": _store(circuit.vk.read_bytes(), backend),
        "logrows": circuit.logrows,
        "scale": circuit.scale,
        "features": circuit.features,
        "outputs": circuit.outputs,
        "weights_hash": hex(circuit.weights_hash),
        "srs_sha256": circuit.srs_sha256,
        "settings_sha256": circuit.digests["settings.json"],
        "vk_sha256": circuit.digests["vk.key"],
    }
    return _store(json.dumps(document, indent=2, sort_keys=True).encode() + b"\n", backend)


def fetch_circuit(cid: str, backend: Backend, folder: str | Path) -> CircuitDescription:
    """Fetch a circuit description and its settings and verification key into ``folder``.

    Raises:
        ValidationError: Not a description, or a file does not hash to the described one.
    """
    from daimm.market.publishing import fetch_bytes
    from daimm.zk.srs import sha256_file

    description = CircuitDescription.from_document(cid, json.loads(fetch_bytes(cid, backend)))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, file_cid, digest, limit in (
        ("settings.json", description.settings_cid, description.settings_sha256, 1 << 20),
        ("vk.key", description.vk_cid, description.vk_sha256, MAX_VK_BYTES),
    ):
        (out / name).write_bytes(fetch_bytes(file_cid, backend, max_bytes=limit))
        if sha256_file(out / name) != digest:
            raise ValidationError(f"{name} of circuit {cid} does not hash to the described one")
    return description


def regenerate_circuit(
    model: str | Path,
    description: CircuitDescription,
    folder: str | Path,
    srs: str | Path,
    *,
    allow_test_srs: bool = False,
    timeout_s: float = 900,
) -> Circuit:
    """Rebuild a published circuit's proving key from the decrypted model (the relayer's side).

    ``folder`` must hold the published ``settings.json`` and ``vk.key`` (:func:`fetch_circuit`).
    The model is compiled with the published settings (never re-calibrated), the keys are set up
    with the SRS, and the result must match the publication: the verification key byte for byte
    (key generation is deterministic), the weights hash equal to the described one.

    Raises:
        SrsError: The SRS is not pinned (unless ``allow_test_srs``) or not the one described.
        ProofError: The regenerated keys or weights hash differ from the published ones (other
            weights or another SRS), or an ezkl step failed.
    """
    from daimm.zk.binding import felt_to_int
    from daimm.zk.circuit import check_provable
    from daimm.zk.prover import _input_file, _run, freeze_circuit
    from daimm.zk.srs import check_srs, sha256_file

    check_provable(model)
    out = Path(folder)
    if check_srs(srs, description.logrows, allow_test_srs=allow_test_srs) != description.srs_sha256:
        raise ProofError(
            f"the SRS at {srs} is not the one circuit {description.cid} was set up with"
        )
    published_vk = out / "vk.published"
    shutil.copyfile(out / "vk.key", published_vk)
    paths = {
        "model": str(model),
        "settings": str(out / "settings.json"),
        "compiled": str(out / "network.ezkl"),
        "vk": str(out / "vk.key"),
        "pk": str(out / "pk.key"),
        "input": str(_input_file(out, [[0.0] * description.features])),
        "srs": str(srs),
    }
    _run("compile", paths, timeout_s)
    weights_hash = felt_to_int(_run("setup", paths, timeout_s).answer["weights_hash"])
    if weights_hash != description.weights_hash:
        raise ProofError(
            f"the decrypted model's weights hash {weights_hash:#x} is not the published"
            f" {description.weights_hash:#x}: it is not the model version the circuit describes"
        )
    if sha256_file(out / "vk.key") != description.vk_sha256:
        raise ProofError(
            f"the regenerated verification key differs from circuit {description.cid}'s:"
            " the settings, ezkl version or SRS differ from the publisher's"
        )
    d = description
    return freeze_circuit(
        out, d.logrows, d.scale, d.features, d.outputs, weights_hash, d.srs_sha256
    )


def deploy_verifier(
    verifier: EvmVerifier, challenges: ProofChallenges, *, sender: AccountAPI, start_block: int = 0
) -> tuple[str, bool]:
    """Deploy ``verifier``, or reuse one registered on ``challenges`` with the same runtime code.

    A verifier depends only on the circuit's settings, verification key and SRS, so versions of
    the same architecture (or the same model republished) share one. Candidates are the verifiers
    of ``CircuitSet`` events; one is reused only if its code hash on chain equals the compiled
    runtime code's (no trust in the event itself).

    Returns:
        The verifier's address and whether it was reused.
    """
    from ape.contracts import ContractContainer
    from eth_utils import keccak
    from ethpm_types import ContractType

    from daimm.market._tx import checksum

    provider = sender.provider
    wanted = keccak(verifier.runtime_code)
    seen: set[str] = set()
    latest = int(provider.get_block("latest").number or 0)
    for event in challenges.contract.CircuitSet.range(start_block, latest + 1):
        address = checksum(event.verifier)
        if address in seen:
            continue
        seen.add(address)
        if keccak(bytes(provider.get_code(address))) == wanted:
            log.info("reusing the verifier at %s (same runtime code)", address)
            return address, True
    contract_type = ContractType.model_validate(
        {
            "contractName": "Halo2Verifier",
            "abi": verifier.abi,
            "deploymentBytecode": {"bytecode": "0x" + verifier.bytecode.hex()},
        }
    )
    instance = sender.deploy(ContractContainer(contract_type))
    log.info("deployed a Halo2 verifier at %s", instance.address)
    return checksum(instance.address), False


def publish_provable(
    market: Marketplace,
    model_path: str | Path,
    metadata: Any,
    *,
    backend: Backend,
    creator_key: Any,
    sender: AccountAPI,
    srs: str | Path,
    calibration: Sequence[Sequence[float]],
    folder: str | Path,
    allow_test_srs: bool = False,
    royalty_bps: int = 0,
    circuit: Circuit | None = None,
) -> ProvablePublished:
    """Publish a provable model: build its circuit, store it, mint, deploy the verifier, register.

    Args:
        market: The marketplace (its deployment must have ProofChallenges).
        model_path: The ONNX model, in standard operators (:data:`daimm.zk.circuit.PROVABLE_OPS`).
        metadata: Its model card.
        backend: Where the package and the circuit are stored.
        creator_key: The creator's X25519 key (wraps the content key).
        sender: The creator's account (mints, deploys the verifier, registers the circuit).
        srs: The SRS file (the public ceremony's, pinned by hash; a test SRS with
            ``allow_test_srs``).
        calibration: Input rows the circuit's scales are calibrated on.
        folder: Where the circuit (and its proving key, which stays here) is built.
        circuit: A circuit already built from this very model with this SRS (the tests share
            one setup); built here when None.

    Raises:
        ModelValidationError, CircuitTooLargeError: The model cannot be proven (named limit);
            raised before anything is built, stored or sent.
        SrsError: The SRS is not pinned (and ``allow_test_srs`` is not set).
        DeploymentNotFoundError: The deployment has no ProofChallenges.
        ProofError: An ezkl step failed, or the verifier is over the code size limit.
    """
    from daimm.market import publishing
    from daimm.zk import build_circuit, check_provable, render_verifier

    check_provable(model_path)
    challenges = market.proofs  # refused before any work if the deployment has none
    publishing.validate_model(publishing.read_model_bytes(model_path), metadata)
    if circuit is None:
        circuit = build_circuit(model_path, calibration, folder, srs, allow_test_srs=allow_test_srs)
    circuit_cid = store_circuit(circuit, backend)
    package, plan = publishing.plan_publish(
        market,
        model_path,
        metadata,
        backend=backend,
        creator_key=creator_key,
        sender=sender,
        royalty_bps=royalty_bps,
        circuit_cid=circuit_cid,
    )
    published = plan.execute()
    publishing.check_minted_id(package, published)
    evm = render_verifier(circuit, srs)
    verifier, reused = deploy_verifier(
        evm, challenges, sender=sender, start_block=market.deployment.block
    )
    challenges.set_circuit(published.model_id, 0, verifier, circuit.weights_hash, sender=sender)
    return ProvablePublished(published, package, circuit, circuit_cid, verifier, reused)


def provable_sample_card(card: Any) -> dict[str, Any]:
    """The shipped tabular sample's card, re-expressed for its provable (Gemm) form.

    The circuit proves one row's logits; the relayer applies Softmax outside it (docs/ZK.md).
    """
    document = dict(card)
    row = list(document["sample_input"]["input"])[:1]
    document.update(
        name=f"{document['name']} (provable)",
        description=f"{document['description']} Every prediction can be proven (zero-knowledge"
        " proof of the published weights, docs/ZK.md).",
        tags=[*document.get("tags", []), "provable", "zk"],
        inputs=[{"name": "input", "dtype": "float32", "shape": [1, 30]}],
        outputs=[{"name": "logits", "dtype": "float32", "shape": [1, 2]}],
        postprocessing={"scores_output": "logits", "function": "softmax"},
        sample_input={"input": row},
    )
    return document


def publish_provable_sample(
    market: Marketplace,
    *,
    backend: Backend,
    creator_key: Any,
    sender: AccountAPI,
    folder: str | Path,
    srs: str | Path,
    allow_test_srs: bool = False,
) -> ProvablePublished:
    """Publish the tabular sample as a provable model (what `daimm up` does).

    ``folder`` receives the model, its circuit (with the proving key) and nothing else.
    """
    from daimm.market.publishing import parse_metadata
    from daimm.samples import shipped_samples
    from daimm.zk import train_provable_sample

    out = Path(folder)
    sample = train_provable_sample(out)
    tabular = shipped_samples()[0]
    return publish_provable(
        market,
        sample.path,
        parse_metadata(provable_sample_card(tabular.card)),
        backend=backend,
        creator_key=creator_key,
        sender=sender,
        srs=srs,
        calibration=sample.calibration.tolist(),
        folder=out / "circuit",
        allow_test_srs=allow_test_srs,
    )
