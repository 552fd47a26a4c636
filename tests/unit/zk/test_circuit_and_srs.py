"""Which models can be proven, and which SRS files are accepted (no ezkl run needed)."""

from __future__ import annotations

import hashlib

import pytest

from daimm.errors import CircuitTooLargeError, ModelValidationError, SrsError
from daimm.samples.build import train_sample_model
from daimm.zk.circuit import check_provable, train_provable_sample
from daimm.zk.srs import check_srs


def test_check_provable__gemm_sample__reports_its_shape(tmp_path):
    sample = train_provable_sample(tmp_path)

    shape = check_provable(sample.path)

    assert (shape.input_name, shape.features, shape.outputs, shape.parameters) == (
        "input",
        30,
        2,
        30 + 30 + 60 + 2,
    )


def test_check_provable__ml_domain_operators__refused_naming_them(tmp_path):
    sklearn_export = train_sample_model(tmp_path).path  # LinearClassifier (ai.onnx.ml)

    with pytest.raises(ModelValidationError, match="LinearClassifier"):
        check_provable(sklearn_export)


def test_check_provable__too_many_weights__refused_with_the_limit_named(tmp_path):
    sample = train_provable_sample(tmp_path)

    with pytest.raises(CircuitTooLargeError, match="122 weights.*at most 100"):
        check_provable(sample.path, max_parameters=100)


def test_check_srs__hash_not_pinned__refused(tmp_path):
    srs = tmp_path / "kzg15.srs"
    srs.write_bytes(b"a locally made srs")

    with pytest.raises(SrsError, match="no pinned SRS hash for logrows 15"):
        check_srs(srs, 15)


def test_check_srs__other_file_than_the_pinned_one__refused(tmp_path):
    srs = tmp_path / "kzg15.srs"
    srs.write_bytes(b"a locally made srs")

    with pytest.raises(SrsError, match="not the pinned public ceremony file"):
        check_srs(srs, 15, pinned={15: hashlib.sha256(b"the ceremony's").hexdigest()})


def test_check_srs__pinned_file__accepted(tmp_path):
    srs = tmp_path / "kzg15.srs"
    srs.write_bytes(b"the ceremony's")
    digest = hashlib.sha256(b"the ceremony's").hexdigest()

    assert check_srs(srs, 15, pinned={15: digest}) == digest


def test_check_srs__unpinned_with_the_test_flag__accepted(tmp_path):
    srs = tmp_path / "kzg15.srs"
    srs.write_bytes(b"a locally made srs")

    assert (
        check_srs(srs, 15, allow_test_srs=True) == hashlib.sha256(b"a locally made srs").hexdigest()
    )


def test_check_srs__missing_file__refused(tmp_path):
    with pytest.raises(SrsError, match="no SRS file"):
        check_srs(tmp_path / "absent.srs", 15, allow_test_srs=True)
