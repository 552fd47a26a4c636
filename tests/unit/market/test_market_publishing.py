"""Publishing: the model is validated against its metadata, encrypted, stored by CID and minted;
the creator's envelope lets the creator wrap the key for a relayer and encrypt new versions."""

from __future__ import annotations

import copy
import io
import json

import pytest

from daimm.crypto import (
    KeyEnvelope,
    decrypt_stream,
    model_associated_data,
    public_key_of,
    unwrap_key,
)
from daimm.errors import ModelValidationError, NotOwnerError, ValidationError
from daimm.ipfs import CID, fetch_file
from daimm.market import publishing


def _fetch(store, cid):
    out = io.BytesIO()
    fetch_file(CID.parse(cid), store, out)
    return out.getvalue()


def _decrypt(store, cid, key, model_id, version):
    out = io.BytesIO()
    decrypt_stream(
        io.BytesIO(_fetch(store, cid)), out, key, model_associated_data(model_id, version)
    )
    return out.getvalue()


def test_validateModel_runsTheSampleAndReturnsItsOutputs(iris):
    path, document = iris

    outputs = publishing.validate_model(path.read_bytes(), publishing.parse_metadata(document))

    assert set(outputs) == {"label", "probabilities"}
    assert len(outputs["label"]) == 2
    assert all(abs(sum(row) - 1) < 1e-4 for row in outputs["probabilities"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: (
                d["inputs"][0].update(name="features"),
                d.update(sample_input={"features": d["sample_input"]["input"]}),
            ),
            "inputs are \\['input'\\]",
        ),
        (lambda d: d["inputs"][0].update(dtype="float64"), "tensor\\(float\\) in the model"),
        (lambda d: d["inputs"][0].update(shape=[None, 5]), "has shape \\[None, 4\\] in the model"),
        (lambda d: d["outputs"].pop(), "outputs are"),
        (
            lambda d: d["sample_input"].update(input=[[1.0, 2.0]]),
            "sample_input.input: expected shape",
        ),
    ],
)
def test_validateModel__metadataDisagrees__raisesNamingTheTensor(iris, change, message):
    path, document = iris
    document = copy.deepcopy(document)
    change(document)

    with pytest.raises(ModelValidationError, match=message):
        publishing.validate_model(path.read_bytes(), publishing.parse_metadata(document))


def test_validateModel__notAModel__saysItDoesNotLoad(iris):
    _, document = iris

    with pytest.raises(ModelValidationError, match="not an ONNX model"):
        publishing.validate_model(b"not an onnx file", publishing.parse_metadata(document))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("name"), "card field 'name': is required"),
        (
            lambda d: d.update(framework="pytorch"),
            "card field 'framework': 'pytorch' is not one of",
        ),
        (lambda d: d["inputs"][0].update(dtype="complex64"), "'inputs\\[0\\].dtype': 'complex64'"),
        (lambda d: d["inputs"][0].update(shape="N,4"), "'inputs\\[0\\].shape': 'N,4' is not of"),
        (lambda d: d.pop("sample_input"), "'sample_input'"),
        (lambda d: d.update(outputs=[]), "'outputs': \\[\\] should be non-empty"),
        (lambda d: d.update(daimm={}), "'daimm': must not be written by the creator"),
    ],
)
def test_parseMetadata__badField__raisesNamingIt(iris, change, message):
    document = copy.deepcopy(iris[1])
    change(document)

    with pytest.raises(ValidationError, match=message):
        publishing.parse_metadata(document)


def test_loadMetadata__notJson__raises(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("{")

    with pytest.raises(ValidationError, match="is not JSON"):
        publishing.load_metadata(path)


def test_publish_storesCiphertextEnvelopeAndMetadataThenMints(
    market, iris, store, creator_key, creator
):
    path, document = iris
    private, _ = creator_key

    package, plan = publishing.plan_publish(
        market,
        path,
        publishing.parse_metadata(document),
        backend=store,
        creator_key=private,
        sender=creator,
        royalty_bps=250,
    )
    published = plan.execute()
    publishing.check_minted_id(package, published)

    assert published.model_id == package.model_id
    assert published.weights_cid == package.weights_cid
    stored = json.loads(_fetch(store, published.metadata_cid))
    assert stored["name"] == "Iris classifier"
    assert stored["daimm"]["weights"]["cid"] == package.weights_cid
    assert stored["daimm"]["key_envelope"] == package.envelope_cid
    envelope = KeyEnvelope.from_json(_fetch(store, package.envelope_cid))
    key = unwrap_key(envelope, private)
    assert _decrypt(store, package.weights_cid, key, published.model_id, 0) == path.read_bytes()


def test_checkMintedId__anotherModelTookTheId__saysToPublishAVersion(
    market, iris, store, creator_key, creator
):
    path, document = iris
    package, plan = publishing.plan_publish(
        market,
        path,
        publishing.parse_metadata(document),
        backend=store,
        creator_key=creator_key[0],
        sender=creator,
    )
    market.models.publish("bafyw", "bafym", sender=creator)  # someone mints first
    published = plan.execute()

    with pytest.raises(ValidationError, match=f"daimm model version {published.model_id}"):
        publishing.check_minted_id(package, published)


def test_authoriseRelayer_wrapsTheModelKeyForTheRelayersRegisteredKey(
    market, iris, store, creator_key, relayer_key, creator, operator, relayer
):
    path, document = iris
    package, plan = publishing.plan_publish(
        market,
        path,
        publishing.parse_metadata(document),
        backend=store,
        creator_key=creator_key[0],
        sender=creator,
    )
    model_id = plan.execute().model_id
    market.relayers.approve_operator(operator, sender=relayer)
    market.relayers.register(
        relayer, public_key_of(relayer_key[0]).raw, "https://relayer.example", sender=operator
    )

    envelope_cid, auth_plan = publishing.plan_authorise_relayer(
        market,
        model_id,
        relayer.address,
        backend=store,
        creator_key=creator_key[0],
        sender=creator,
    )
    authorisation = auth_plan.execute()

    assert authorisation.envelope_cid == envelope_cid
    assert market.relayers.envelope_of(model_id, relayer) == envelope_cid
    key = unwrap_key(KeyEnvelope.from_json(_fetch(store, envelope_cid)), relayer_key[0])
    assert _decrypt(store, package.weights_cid, key, model_id, 0) == path.read_bytes()


def test_publishVersion_reusesTheModelKeyBoundToTheNewVersion(
    market, iris, store, creator_key, creator
):
    path, document = iris
    metadata = publishing.parse_metadata(document)
    first, plan = publishing.plan_publish(
        market, path, metadata, backend=store, creator_key=creator_key[0], sender=creator
    )
    model_id = plan.execute().model_id

    package, version_plan = publishing.plan_publish_version(
        market,
        model_id,
        path,
        metadata,
        backend=store,
        creator_key=creator_key[0],
        sender=creator,
    )
    version = version_plan.execute()

    assert version.version == 1
    first_key = unwrap_key(KeyEnvelope.from_json(_fetch(store, first.envelope_cid)), creator_key[0])
    assert _decrypt(store, package.weights_cid, first_key, model_id, 1) == path.read_bytes()


def test_publishVersion__notOwner__raisesBeforeStoringAnything(
    market, iris, store, creator_key, creator, stranger
):
    path, document = iris
    metadata = publishing.parse_metadata(document)
    _, plan = publishing.plan_publish(
        market, path, metadata, backend=store, creator_key=creator_key[0], sender=creator
    )
    model_id = plan.execute().model_id
    blocks = store.count()

    with pytest.raises(NotOwnerError):
        publishing.plan_publish_version(
            market,
            model_id,
            path,
            metadata,
            backend=store,
            creator_key=creator_key[0],
            sender=stranger,
        )
    assert store.count() == blocks
