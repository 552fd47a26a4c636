"""``daimm verify-proof``: the offline check of a proof against a model version and a receipt."""

from __future__ import annotations

import json

import pytest

from daimm.cli import main


@pytest.fixture
def run(capsys):
    def invoke(*argv):
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def files(zk_sample, tmp_path):
    """The honest and swapped proofs and the request body, as files."""
    paths = {}
    for name in ("honest", "swapped"):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(getattr(zk_sample, name).document))
    paths["body"] = tmp_path / "request.json"
    paths["body"].write_text(
        json.dumps({"inputs": {"input": [zk_sample.sample.x_test[0].tolist()]}})
    )
    paths["other_body"] = tmp_path / "other.json"
    paths["other_body"].write_text(
        json.dumps({"inputs": {"input": [zk_sample.sample.x_test[1].tolist()]}})
    )
    return paths


def _args(zk_sample, proof, *extra):
    return (
        "verify-proof", proof, "--circuit", zk_sample.circuit.folder, "--srs", zk_sample.srs,
        "--weights-hash", hex(zk_sample.circuit.weights_hash), *extra,
    )  # fmt: skip


def test_verify_proof__honest_proof_claim_and_inputs__ok(run, zk_sample, files):
    claim = "0x" + zk_sample.honest.instances_hash.hex()

    code, out, err = run(
        *_args(zk_sample, files["honest"], "--instances-hash", claim, "--input", files["body"]),
        "--allow-test-srs",
    )

    assert (code, err) == (0, "")
    assert "OK: the proof verifies" in out and "claim" in out and "inputs" in out


def test_verify_proof__swapped_weights__refused(run, zk_sample, files):
    code, _, err = run(*_args(zk_sample, files["swapped"]), "--allow-test-srs")

    assert code == 1
    assert err.startswith("Error: the proof was made with other weights")


def test_verify_proof__other_inputs_than_the_request__refused(run, zk_sample, files):
    code, _, err = run(*_args(zk_sample, files["honest"], "--input", files["other_body"]),
                       "--allow-test-srs")  # fmt: skip

    assert (code, err.strip()) == (1, "Error: the proof is for other inputs than the request's")


def test_verify_proof__claim_for_other_instances__refused(run, zk_sample, files):
    code, _, err = run(
        *_args(zk_sample, files["honest"], "--instances-hash", "0x" + "00" * 32),
        "--allow-test-srs",
    )

    assert code == 1
    assert "other inputs or outputs than the relayer's claim" in err


def test_verify_proof__srs_not_pinned_without_the_test_flag__refused(run, zk_sample, files):
    code, _, err = run(*_args(zk_sample, files["honest"]))

    assert code == 1
    assert err.startswith("Error: no pinned SRS hash for logrows 13")


def test_verify_proof__tampered_proof__refused(run, zk_sample, files, tmp_path):
    document = json.loads(files["honest"].read_text())
    raw = bytearray(document["proof"])
    raw[200] ^= 1
    document["proof"], document["hex_proof"] = list(raw), "0x" + bytes(raw).hex()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document))

    code, _, err = run(*_args(zk_sample, tampered), "--allow-test-srs")

    assert code == 1
    assert "does not verify" in err
