"""Proofs of the provable sample: made in a worker, verified offline, bound to inputs and weights.

The circuit, keys and proofs are built once per session (tests/utils/zk.py) with a locally made
SRS and the explicit test flag.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from daimm.errors import ProofError
from daimm.zk import Proof, prove, quantize, verify
from daimm.zk.binding import dequantize, instances_hash
from daimm.zk.prover import claim_instances


def test_prove__honest_row__verifies_offline(zk_sample):
    assert verify(zk_sample.circuit, zk_sample.honest, zk_sample.srs)


def test_prove__honest_row__instances_are_weights_hash_inputs_and_outputs(zk_sample):
    proof, circuit, row = zk_sample.honest, zk_sample.circuit, zk_sample.sample.x_test[0]

    assert proof.weights_hash == circuit.weights_hash
    assert list(proof.inputs(circuit.features)) == quantize(row, circuit.scale)
    assert len(proof.outputs(circuit.features)) == circuit.outputs
    assert proof.instances_hash == instances_hash(proof.instances[1:])


def test_prove__honest_row__outputs_match_onnx_runtime(zk_sample):
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(zk_sample.sample.path))
    row = zk_sample.sample.x_test[:1].astype(np.float32)
    (logits,) = session.run(None, {"input": row})
    proven = dequantize(
        zk_sample.honest.outputs(zk_sample.circuit.features), zk_sample.circuit.scale
    )

    assert np.allclose(proven, logits[0], atol=0.05)


def test_claim_instances__at_answer_time__equal_the_later_proofs(zk_sample):
    claimed = claim_instances(zk_sample.circuit, zk_sample.sample.x_test[0])

    assert claimed == zk_sample.honest.io_instances
    assert instances_hash(claimed) == zk_sample.honest.instances_hash


def test_verify__tampered_proof__refused(zk_sample):
    document = copy.deepcopy(zk_sample.honest.document)
    raw = bytearray(document["proof"])
    raw[100] ^= 1
    document["proof"] = list(raw)
    document["hex_proof"] = "0x" + bytes(raw).hex()

    assert not verify(zk_sample.circuit, Proof.from_document(document), zk_sample.srs)


def test_prove__swapped_weights__verifies_but_carries_another_weights_hash(zk_sample):
    # NOTE: the security trap of hashed weights: the key does not fix the weights, so this proof
    # verifies; only comparing instance 0 with the registered hash refuses it (the chain does).
    swapped = zk_sample.swapped

    assert verify(zk_sample.circuit, swapped, zk_sample.srs)
    assert swapped.weights_hash != zk_sample.circuit.weights_hash
    assert swapped.inputs(30) == zk_sample.honest.inputs(30)
    assert swapped.outputs(30) != zk_sample.honest.outputs(30)


def test_prove__settings_changed_since_setup__refused(zk_sample, tmp_path):
    digests = {**zk_sample.circuit.digests, "settings.json": "0" * 64}
    changed = dataclasses.replace(zk_sample.circuit, digests=digests)

    with pytest.raises(ProofError, match="changed since the keys were made"):
        prove(changed, zk_sample.sample.x_test[0], zk_sample.srs, tmp_path / "p.json")


def test_prove__other_srs_than_the_keys__refused(zk_sample, tmp_path):
    other = tmp_path / "other.srs"
    other.write_bytes(b"another srs")

    with pytest.raises(ProofError, match="not the one this circuit's keys were made with"):
        prove(zk_sample.circuit, zk_sample.sample.x_test[0], other, tmp_path / "p.json")


def test_render_verifier__fits_the_contract_size_limit(zk_sample):
    assert 0 < zk_sample.verifier.runtime_bytes <= 24_576
