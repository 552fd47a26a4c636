"""Zero-knowledge proofs of the provable sample: setup, proof, verification, on-chain gas.

Run from the repository root (once; ezkl is heavy and the machine is shared):

    .venv/bin/python bench/zk_bench.py [--proofs 3] [--work /tmp/daimm-zk-bench]

Writes ``bench/results/zk.json`` with, per model, ``setup_s`` (calibration, compilation and key
generation, the SRS excluded), ``prove_p50_s`` (witness and proof, in a worker process),
``prove_peak_rss_mib`` (the worker's peak resident memory), ``proof_bytes`` (what the Solidity
verifier takes), ``verify_s`` (offline, in a worker process, including its start-up) and
``verify_gas`` (``verifyProof`` estimated on ape's in-process chain). The SRS is generated
locally: fine for timings, never for real proofs (docs/ZK.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from daimm.zk import Circuit, build_circuit, generate_test_srs, prove, train_provable_sample, verify
from daimm.zk.prover import render_verifier

RESULTS = Path(__file__).parent / "results" / "zk.json"


def _gas(verifier_abi: list, bytecode: bytes, proof: bytes, instances: list[int]) -> int:
    from ape import accounts, networks
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    with networks.ethereum.local.use_provider("test"):
        account = accounts.test_accounts[0]
        contract_type = ContractType.model_validate(
            {
                "contractName": "Halo2Verifier",
                "abi": verifier_abi,
                "deploymentBytecode": {"bytecode": "0x" + bytecode.hex()},
            }
        )
        verifier = account.deploy(ContractContainer(contract_type))
        assert verifier.verifyProof.call(proof, instances)
        return int(verifier.verifyProof.estimate_gas_cost(proof, instances, sender=account))


def measure(
    circuit: Circuit,
    rows: Any,
    srs: Path,
    work: Path,
    setup_s: float,
    proofs: int,
    *,
    timeout_s: float = 600,
) -> dict[str, float | int]:
    """Prove ``rows[:proofs]``, verify the last proof offline, and estimate its gas on chain."""
    times, rss, proof = [], [], None
    for i in range(proofs):
        proof, step = prove(circuit, rows[i], srs, work / f"proof{i}.json", timeout_s=timeout_s)
        times.append(step.seconds)
        rss.append(step.peak_rss_mib)
        print(f"proof {i}: {step.seconds:.1f} s, {step.peak_rss_mib:.0f} MiB", flush=True)
    assert proof is not None
    started = time.perf_counter()
    assert verify(circuit, proof, srs, timeout_s=timeout_s)
    verify_s = time.perf_counter() - started
    evm = render_verifier(circuit, srs, timeout_s=timeout_s)
    return {
        "setup_s": round(setup_s, 2),
        "prove_p50_s": round(statistics.median(times), 2),
        "prove_peak_rss_mib": round(max(rss), 1),
        "proof_bytes": len(proof.proof),
        "verify_s": round(verify_s, 3),
        "verify_gas": _gas(evm.abi, evm.bytecode, *proof.calldata()),
        "verifier_runtime_bytes": evm.runtime_bytes,
        "logrows": circuit.logrows,
        "proofs": proofs,
    }


def tabular(work: Path, proofs: int) -> dict[str, float | int]:
    srs = work / "test.srs"
    if not srs.is_file():
        generate_test_srs(srs, 13)
    sample = train_provable_sample(work / "model")
    started = time.perf_counter()
    circuit = build_circuit(
        sample.path, sample.calibration, work / "circuit", srs, allow_test_srs=True
    )
    return measure(circuit, sample.x_test, srs, work, time.perf_counter() - started, proofs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/daimm-zk-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    # NOTE: merged into the file: bench/zk_image_bench.py writes the key "image" beside these.
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["machine"] = f"{platform.machine()}, {platform.system()}, shared 2 cores"
    # The machine is shared: its load when the run started says how much the timings mean.
    results["load_average_1m"] = round(os.getloadavg()[0], 1)
    results["tabular"] = tabular(args.work, args.proofs)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
