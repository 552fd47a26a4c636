"""The provable sample, its circuit and proofs: built once per test session (ezkl is slow).

Set ``DAIMM_ZK_TEST_CACHE`` to a folder to keep them between sessions while developing; by default
they live in the session's temporary folder. The SRS is generated locally with the explicit test
flag (a local SRS is for tests only: docs/ZK.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daimm.zk import Circuit, Proof, build_circuit, generate_test_srs, load_circuit, prove
from daimm.zk.circuit import ProvableSample, train_provable_sample
from daimm.zk.prover import EvmVerifier, compile_variant, render_verifier

LOGROWS = 13


@dataclass(frozen=True)
class ZkSample:
    sample: ProvableSample
    srs: Path
    circuit: Circuit
    honest: Proof
    swapped: Proof
    verifier: EvmVerifier


def _swapped_model(source: Path, out: Path) -> Path:
    """The sample with its linear layer negated: same architecture, other weights."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    for i, init in enumerate(model.graph.initializer):
        if init.name == "weights":
            model.graph.initializer[i].CopyFrom(
                numpy_helper.from_array(-numpy_helper.to_array(init), "weights")
            )
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="session")
def zk_sample(tmp_path_factory: Any) -> ZkSample:
    cached = os.environ.get("DAIMM_ZK_TEST_CACHE")
    root = Path(cached) if cached else tmp_path_factory.mktemp("zk")
    root.mkdir(parents=True, exist_ok=True)
    srs = root / "test.srs"
    if not srs.is_file():
        generate_test_srs(srs, LOGROWS)
    sample = train_provable_sample(root / "model")
    folder = root / "circuit"
    if (folder / "circuit.json").is_file():
        circuit = load_circuit(folder)
    else:
        circuit = build_circuit(sample.path, sample.calibration, folder, srs, allow_test_srs=True)

    def proof(name: str, row: Any, compiled: Path | None = None) -> Proof:
        path = root / f"{name}.json"
        if path.is_file():
            return Proof.from_file(path)
        return prove(circuit, row, srs, path, compiled=compiled)[0]

    swapped = compile_variant(
        circuit, _swapped_model(sample.path, root / "swapped.onnx"), root / "swapped.ezkl"
    )
    verifier = render_verifier(circuit, srs)
    return ZkSample(
        sample,
        srs,
        circuit,
        proof("honest", sample.x_test[0]),
        proof("swapped", sample.x_test[0], swapped),
        verifier,
    )
