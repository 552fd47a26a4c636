"""Build a circuit for a provable model, prove, verify, and render its Solidity verifier.

Every ezkl step runs in a child process (:mod:`daimm.zk._worker`) with a timeout; at most one
proof runs at a time in a process that uses this module (a lock), since a proof takes hundreds
of megabytes (more for larger models) and both cores here.

Settings are frozen with the keys: :func:`build_circuit` writes ``circuit.json`` (the manifest)
with the SHA-256 of the settings, the compiled circuit and the keys, and every later step checks
them, because re-running calibration rewrites ``settings.json`` and breaks the existing keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from daimm.errors import ConfigError, ProofError, SrsError
from daimm.zk.binding import Proof, felt_to_int
from daimm.zk.circuit import check_provable
from daimm.zk.srs import check_srs, sha256_file

__all__ = [
    "DEFAULT_SCALE",
    "MANIFEST",
    "Circuit",
    "EvmVerifier",
    "StepResult",
    "build_circuit",
    "check_proof",
    "claim_instances",
    "compile_variant",
    "compile_verifier",
    "freeze_circuit",
    "generate_test_srs",
    "load_circuit",
    "prove",
    "render_verifier",
    "verify",
]

#: Fixed-point scale (bits) of inputs and weights: scale 13 keeps the sample's logits within
#: 0.02 of ONNX Runtime's; scale 7 was off by up to 3 (small-range features lose their digits).
DEFAULT_SCALE = 13
#: The manifest file of a circuit folder.
MANIFEST = "circuit.json"
#: Runtime code limit of a contract (EIP-170), bytes.
MAX_RUNTIME_BYTES = 24_576

_PROVE_LOCK = threading.Lock()


@dataclass(frozen=True)
class StepResult:
    """One worker step: its wall time in seconds, peak RSS in MiB and its answer."""

    seconds: float
    peak_rss_mib: float
    answer: dict[str, Any]


@dataclass(frozen=True)
class Circuit:
    """A built circuit (the manifest of its folder).

    Attributes:
        folder: Where ``settings.json``, ``network.ezkl``, ``vk.key`` and ``pk.key`` are.
        logrows: The circuit has ``2**logrows`` rows; the SRS must be for the same.
        scale: Fixed-point scale of inputs and weights, in bits.
        features: Inputs per row; outputs: outputs per row.
        weights_hash: The Poseidon hash of the weights (instance 0 of every honest proof).
        srs_sha256: The SRS the keys were made with.
        digests: SHA-256 of each file of the folder, frozen at setup.
    """

    folder: Path
    logrows: int
    scale: int
    features: int
    outputs: int
    weights_hash: int
    srs_sha256: str
    digests: dict[str, str]

    @property
    def settings(self) -> Path:
        return self.folder / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.folder / "network.ezkl"

    @property
    def vk(self) -> Path:
        return self.folder / "vk.key"

    @property
    def pk(self) -> Path:
        return self.folder / "pk.key"

    def check_frozen(self, *names: str) -> None:
        """Raise :class:`ProofError` if a named file changed since setup."""
        for name in names:
            if sha256_file(self.folder / name) != self.digests[name]:
                raise ProofError(
                    f"{self.folder / name} changed since the keys were made: the keys no longer"
                    " fit it; publish the circuit again"
                )


@dataclass(frozen=True)
class EvmVerifier:
    """A compiled Solidity verifier: its source, ABI, creation code, runtime size (bytes) and
    runtime code (what a deployed copy's code hash is compared with, to reuse it)."""

    source: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_bytes: int
    runtime_code: bytes = b""


def _run(step: str, job: dict[str, Any], timeout_s: float) -> StepResult:
    with tempfile.TemporaryDirectory(prefix="daimm-zk-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps({**job, "step": step, "result": str(result_path)}))
        started = time.perf_counter()
        try:
            subprocess.run(  # noqa: S603 - our own worker module, paths we wrote
                [sys.executable, "-m", "daimm.zk._worker", str(job_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProofError(f"ezkl step {step!r} took longer than {timeout_s:.0f} s") from None
        seconds = time.perf_counter() - started
        if not result_path.is_file():
            raise ProofError(f"ezkl step {step!r} crashed before answering")
        answer = json.loads(result_path.read_text())
    if "error" in answer:
        raise ProofError(f"ezkl step {step!r} failed: {answer['error']}")
    return StepResult(seconds, float(answer.pop("peak_rss_mib")), answer)


def _input_file(folder: Path, rows: Any) -> Path:
    path = folder / "input.json"
    flat = [float(v) for row in rows for v in row]
    path.write_text(json.dumps({"input_data": [flat]}))
    return path


def generate_test_srs(path: str | Path, logrows: int, *, timeout_s: float = 600) -> Path:
    """Generate an SRS locally: FOR TESTS ONLY (its maker can forge proofs; docs/ZK.md)."""
    _run("gen_srs", {"srs": str(path), "logrows": logrows}, timeout_s)
    return Path(path)


def build_circuit(
    model: str | Path,
    calibration: Sequence[Sequence[float]],
    folder: str | Path,
    srs: str | Path,
    *,
    allow_test_srs: bool = False,
    scale: int = DEFAULT_SCALE,
    max_logrows: int = 15,
    timeout_s: float = 900,
) -> Circuit:
    """Calibrate, compile and set up the circuit of ``model``; write the manifest.

    Args:
        model: A provable ONNX model (:func:`daimm.zk.circuit.check_provable`).
        calibration: Sample input rows the scales are calibrated on.
        folder: Output folder (created).
        srs: The SRS file for ``max_logrows`` (pinned hash, unless ``allow_test_srs``).
        allow_test_srs: Accept an SRS whose hash is not pinned (tests only).
        scale: Fixed-point scale in bits.
        max_logrows: The largest circuit accepted (and the SRS's size).

    Raises:
        ModelValidationError, CircuitTooLargeError: The model cannot be proven.
        SrsError: The SRS is not the pinned one.
        ProofError: An ezkl step failed or the circuit needs more rows than ``max_logrows``.
    """
    shape = check_provable(model)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    calibration_file = out / "calibration.json"
    # NOTE: all rows as one flat list: ezkl splits it into batches of the input's shape.
    calibration_file.write_text(
        json.dumps({"input_data": [[float(v) for row in calibration for v in row]]})
    )
    single = _input_file(out, [calibration[0]])
    paths = {
        "model": str(model),
        "settings": str(out / "settings.json"),
        "compiled": str(out / "network.ezkl"),
        "vk": str(out / "vk.key"),
        "pk": str(out / "pk.key"),
        "calibration": str(out / "calibration.json"),
        "input": str(single),
        "srs": str(srs),
    }
    settings = _run(
        "settings", {**paths, "scale": scale, "max_logrows": max_logrows}, timeout_s
    ).answer
    logrows = int(settings["logrows"])
    if logrows > max_logrows:
        raise ProofError(f"the circuit needs 2**{logrows} rows; at most 2**{max_logrows} here")
    srs_sha256 = check_srs(srs, logrows, allow_test_srs=allow_test_srs)
    weights_hash = felt_to_int(_run("setup", paths, timeout_s).answer["weights_hash"])
    return freeze_circuit(
        out, logrows, scale, shape.features, shape.outputs, weights_hash, srs_sha256
    )


def freeze_circuit(
    folder: Path,
    logrows: int,
    scale: int,
    features: int,
    outputs: int,
    weights_hash: int,
    srs_sha256: str,
) -> Circuit:
    """Hash the folder's settings, compiled circuit and keys, and write the manifest."""
    names = ("settings.json", "network.ezkl", "vk.key", "pk.key")
    circuit = Circuit(
        folder,
        logrows,
        scale,
        features,
        outputs,
        weights_hash,
        srs_sha256,
        {name: sha256_file(folder / name) for name in names},
    )
    manifest = {**asdict(circuit), "folder": None, "weights_hash": hex(weights_hash)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return circuit


def load_circuit(folder: str | Path) -> Circuit:
    """Read a circuit folder's manifest.

    Raises:
        ConfigError: No manifest (build the circuit first).
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"no circuit manifest at {path} ({exc}): build the circuit first"
        ) from None
    data["folder"] = Path(folder)
    data["weights_hash"] = int(data["weights_hash"], 16)
    return Circuit(**data)


def prove(
    circuit: Circuit,
    row: Sequence[float],
    srs: str | Path,
    out: str | Path,
    *,
    compiled: str | Path | None = None,
    timeout_s: float = 600,
) -> tuple[Proof, StepResult]:
    """Prove ``circuit`` on one input row; write the proof file ``out``.

    Args:
        compiled: Another compiled circuit proven with this circuit's key (tests: the swapped
            weights attack); this circuit's by default.

    Raises:
        ProofError: The circuit's files changed since setup, the SRS is not the one the keys were
            made with, or ezkl failed or timed out.
    """
    circuit.check_frozen("settings.json", "network.ezkl", "pk.key")
    if sha256_file(srs) != circuit.srs_sha256:
        raise ProofError(f"the SRS at {srs} is not the one this circuit's keys were made with")
    work = Path(out).parent
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=".witness-") as tmp:
        job = {
            "input": str(_input_file(Path(tmp), [row])),
            "compiled": str(compiled or circuit.compiled),
            "pk": str(circuit.pk),
            "witness": str(Path(tmp) / "witness.json"),
            "proof": str(out),
            "srs": str(srs),
        }
        with _PROVE_LOCK:
            step = _run("prove", job, timeout_s)
    return Proof.from_file(out), step


def compile_variant(
    circuit: Circuit, model: str | Path, out: str | Path, *, timeout_s: float = 300
) -> Path:
    """Compile another model of the same architecture with ``circuit``'s frozen settings.

    This is what a relayer that swaps the weights would do: :func:`prove` with ``compiled=`` the
    result gives a proof that verifies with ``circuit``'s key but carries another weights hash
    (instance 0). The tests use it to show that such a proof is refused.
    """
    circuit.check_frozen("settings.json")
    job = {"model": str(model), "compiled": str(out), "settings": str(circuit.settings)}
    _run("compile", job, timeout_s)
    return Path(out)


def claim_instances(
    circuit: Circuit, row: Sequence[float], *, timeout_s: float = 60
) -> tuple[int, ...]:
    """The public inputs and outputs the circuit gives on ``row`` (no proof; about a second).

    This is what a relayer signs in a ``ProofClaim`` beside the receipt, as
    ``binding.instances_hash`` of it: the exact fixed-point outputs come from the circuit, not
    from ONNX Runtime, so an honest proof made later carries exactly these instances.
    """
    circuit.check_frozen("settings.json", "network.ezkl")
    with tempfile.TemporaryDirectory(prefix="daimm-zk-") as tmp:
        job = {"input": str(_input_file(Path(tmp), [row])), "compiled": str(circuit.compiled)}
        answer = _run("witness", job, timeout_s).answer
    return tuple(felt_to_int(f) for f in [*answer["inputs"], *answer["outputs"]])


def verify(circuit: Circuit, proof: Proof, srs: str | Path, *, timeout_s: float = 120) -> bool:
    """Whether ``proof`` verifies against ``circuit``'s verification key (offline).

    NOTE: this checks the proof only; that it answers for a receipt and a model version is
    :mod:`daimm.zk.binding`'s and the chain's (instance 0 against the registered weights hash).
    """
    circuit.check_frozen("settings.json", "vk.key")
    with tempfile.TemporaryDirectory(prefix="daimm-zk-") as tmp:
        path = Path(tmp) / "proof.json"
        path.write_text(json.dumps(proof.document))
        job = {
            "proof": str(path),
            "settings": str(circuit.settings),
            "vk": str(circuit.vk),
            "srs": str(srs),
        }
        return bool(_run("verify", job, timeout_s).answer["valid"])


def check_proof(
    circuit: Circuit,
    proof: Proof,
    srs: str | Path,
    *,
    weights_hash: int,
    instances_hash: bytes | None = None,
    inputs: Sequence[float] | None = None,
    allow_test_srs: bool = False,
) -> None:
    """Check that ``proof`` answers for a model version and, optionally, a receipt (offline).

    Args:
        weights_hash: The weights hash registered on chain for the receipt's model version.
        instances_hash: The ``instancesHash`` of the relayer's signed ``ProofClaim``.
        inputs: The request's input row (its quantized values must be the proof's inputs).
        allow_test_srs: Accept an SRS whose hash is not pinned (tests only).

    Raises:
        SrsError: The SRS is not the pinned one (or not the one the keys were made with).
        ProofError: The proof carries another weights hash, other instances, other inputs, or does
            not verify.
    """
    from daimm.zk.binding import quantize

    digest = check_srs(srs, circuit.logrows, allow_test_srs=allow_test_srs)
    if digest != circuit.srs_sha256:
        raise SrsError(f"the SRS at {srs} is not the one the circuit's keys were made with")
    if proof.weights_hash != weights_hash:
        raise ProofError(
            f"the proof was made with other weights (hash {proof.weights_hash:#x}) than the"
            f" model version registered on chain ({weights_hash:#x})"
        )
    if instances_hash is not None and proof.instances_hash != instances_hash:
        raise ProofError(
            "the proof is for other inputs or outputs than the relayer's claim for this receipt"
        )
    if inputs is not None and list(proof.inputs(circuit.features)) != quantize(
        inputs, circuit.scale
    ):
        raise ProofError("the proof is for other inputs than the request's")
    if not verify(circuit, proof, srs):
        raise ProofError(
            "the proof does not verify: it was tampered with or is for another circuit"
        )


def _solc() -> list[str]:
    """The solc command: py-solc-x's ``solc-v0.8.28`` (our solcjs bridge) or ``solc`` on PATH."""
    folder = os.environ.get("SOLCX_BINARY_PATH")
    if folder and (Path(folder) / "solc-v0.8.28").is_file():
        return [str(Path(folder) / "solc-v0.8.28")]
    bridge = Path(__file__).resolve().parents[3] / "scripts" / "solc-bridge.mjs"
    if bridge.is_file():
        return ["node", str(bridge)]
    raise ConfigError("no solc: run `make setup` (it installs the solcjs bridge)")


def compile_verifier(source: str, *, timeout_s: float = 600) -> EvmVerifier:
    """Compile a generated verifier with our solc (never a downloaded one).

    Raises:
        ProofError: It does not compile, or its runtime code exceeds the 24,576-byte limit.
    """
    standard = {
        "language": "Solidity",
        "sources": {"Verifier.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 1},
            "evmVersion": "cancun",
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
            },
        },
    }
    done = subprocess.run(  # noqa: S603 - the project's solc, fixed arguments
        [*_solc(), "--standard-json"],
        input=json.dumps(standard),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ProofError(f"solc failed: {done.stderr[:500]}") from None
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise ProofError(f"the verifier does not compile: {errors[0][:500]}")
    (contract,) = output["contracts"]["Verifier.sol"].values()
    runtime = len(contract["evm"]["deployedBytecode"]["object"]) // 2
    if runtime > MAX_RUNTIME_BYTES:
        raise ProofError(
            f"the verifier's runtime code is {runtime:,} bytes, over the {MAX_RUNTIME_BYTES:,}"
            " limit: the circuit is too large for one verifier contract"
        )
    return EvmVerifier(
        source,
        contract["abi"],
        bytes.fromhex(contract["evm"]["bytecode"]["object"]),
        runtime,
        bytes.fromhex(contract["evm"]["deployedBytecode"]["object"]),
    )


def render_verifier(circuit: Circuit, srs: str | Path, *, timeout_s: float = 600) -> EvmVerifier:
    """Render ``circuit``'s Halo2 verifier in Solidity (``Verifier.sol``) and compile it."""
    circuit.check_frozen("settings.json", "vk.key")
    sol = circuit.folder / "Verifier.sol"
    job = {
        "vk": str(circuit.vk),
        "settings": str(circuit.settings),
        "sol": str(sol),
        "abi": str(circuit.folder / "Verifier.abi"),
        "srs": str(srs),
    }
    _run("evm_verifier", job, timeout_s)
    return compile_verifier(sol.read_text(), timeout_s=timeout_s)
