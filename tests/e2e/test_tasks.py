"""Each task end to end on anvil through the real relayer daemon: a card-carrying model is
published as a creator publishes it (checked, encrypted, stored by CID with its card), rented,
and asked with an image, a sentence or a row of named features.

The relayer's answer must equal ONNX Runtime on the same preprocessed tensor, computed here
independently of daimm's preprocessing, and its receipt must verify over the body sent and the
labelled answer received. Runs only on a real local node: ``ape test tests/e2e/test_tasks.py
--network ethereum:local:foundry``; skipped on ape's in-process chain.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from tests.utils.relayer import (
    free_port,
    new_relayer,
    node_url_or_skip,
    relayer_daemon,
    wait_until_current,
)

from daimm.client import ApeAccountSigner, RelayerClient, verify_receipt_document
from daimm.errors import RequestRefusedError

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
PERIOD = 3600
PRICE_PER_PERIOD = 10**15
ROOT = Path(__file__).resolve().parents[2]


def _task_models() -> Any:
    # NOTE: by path: a site-packages `tests` package (from pymultihash) can shadow ours.
    path = ROOT / "tests" / "utils" / "task_models.py"
    spec = importlib.util.spec_from_file_location("daimm_test_task_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


task_models = _task_models()


@pytest.fixture(scope="module")
def node_url(chain: Any) -> str:
    return node_url_or_skip(chain, "the relayer daemon reads the chain over HTTP")


@pytest.fixture(scope="module")
def stack(
    node_url: str,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Three models (image, text, tabular) published with their cards; a relayer serving them."""
    from daimm.crypto import generate_content_key, generate_private_key, public_key_of, wrap_key
    from daimm.ipfs import LocalBlockstore, add_file
    from daimm.market import publishing
    from daimm.market.deploy_extensions import deploy_extensions

    work = tmp_path_factory.mktemp("tasks")
    ext = deploy_extensions(project, deployer, contracts)
    registry, relayers = contracts.registry, ext.relayer_registry
    port = free_port()
    relayer_eth, x25519 = new_relayer(work, relayers, deployer, port)

    blocks = LocalBlockstore(work / "blocks")
    creator_key = generate_private_key()
    models: dict[str, dict[str, Any]] = {}
    for task, build in (("image", task_models.image_model), ("text", task_models.text_model),
                        ("tabular", task_models.tabular_model)):  # fmt: skip
        model_bytes, document = build()
        path = work / f"{task}.onnx"
        path.write_bytes(model_bytes)
        card = publishing.parse_metadata(document)
        publishing.validate_model(model_bytes, card)  # what `daimm model publish` checks first
        model_id = int(registry.modelCount()) + 1
        content_key = generate_content_key()
        package = publishing.prepare_package(
            path, card, backend=blocks, creator_key=creator_key, model_id=model_id, version=0,
            content_key=content_key,
        )  # fmt: skip
        tx = registry.publishModel(package.weights_cid, package.metadata_cid, 0, sender=creator)
        assert int(tx.events.filter(registry.ModelPublished)[0].modelId) == model_id
        contracts.escrow.setOffer(
            model_id, (ETH, PRICE_PER_PERIOD, PERIOD, 1, 30, True, 0, 0), sender=creator
        )
        envelope = wrap_key(content_key, [public_key_of(x25519)])
        envelope_cid = str(add_file(io.BytesIO(envelope.to_json()), blocks).cid)
        relayers.authorise(model_id, relayer_eth.address, envelope_cid, sender=creator)
        models[task] = {"id": model_id, "bytes": model_bytes, "card": document}

    addresses = {**contracts.addresses(), **ext.addresses()}
    config = work / "relayer.toml"
    config.write_text("\n".join([
        "[relayer]",
        f'rpc_url = "{node_url}"',
        f'account_key_file = "{work / "relayer.eth"}"',
        f'x25519_key_file = "{work / "relayer.x25519"}"',
        'storage = "local"',
        f'storage_path = "{work / "blocks"}"',
        f'db_path = "{work / "relayer.sqlite3"}"',
        f"port = {port}",
        "access_ttl_s = 2.0",
        "log_poll_s = 0.2",
        "[relayer.contracts]",
        *(f'{name} = "{address}"' for name, address in addresses.items()),
    ]))  # fmt: skip
    with relayer_daemon(config, port, work / "relayer.log") as url:
        yield {"url": url, "relayer": relayer_eth.address, "models": models}


def _renter_client(stack: Any, escrow: Any, renter: Any, chain: Any, task: str) -> RelayerClient:
    model_id = stack["models"][task]["id"]
    escrow.rent(model_id, 1, PRICE_PER_PERIOD, value=PRICE_PER_PERIOD, sender=renter)
    wait_until_current(stack["url"], chain)
    return RelayerClient(stack["url"], ApeAccountSigner(renter), expected_relayer=stack["relayer"])


def _session(model: dict[str, Any]) -> Any:
    return ort.InferenceSession(model["bytes"], providers=["CPUExecutionProvider"])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_image__the_answer_equals_onnx_runtime_on_the_preprocessed_image_and_the_receipt_verifies(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    model = stack["models"]["image"]
    client = _renter_client(stack, escrow, renter, chain, "image")
    image = task_models.png(48, 32, fmt="JPEG")

    prediction = client.predict(model["id"], image=image, top_k=3)

    prep = model["card"]["inputs"][0]["preprocessing"]
    (logits,) = _session(model).run(
        None, {"pixels": task_models.reference_image_tensor(image, prep)}
    )
    np.testing.assert_allclose(prediction.outputs["logits"], logits, rtol=1e-5, atol=1e-5)
    scores = _softmax(logits.astype(np.float64))[0]
    assert [p["label"] for p in prediction.predictions[0]] == [
        model["card"]["labels"][i] for i in np.argsort(-scores)
    ]
    np.testing.assert_allclose([p["score"] for p in prediction.predictions[0]],
                               np.sort(scores)[::-1], rtol=1e-6)  # fmt: skip
    receipt = verify_receipt_document(
        prediction.receipt, stack["relayer"],
        outputs=prediction.outputs, predictions=prediction.predictions,
    )  # fmt: skip
    assert receipt.model_id == model["id"]


def test_text__the_answer_equals_onnx_runtime_on_the_string(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    model = stack["models"]["text"]
    client = _renter_client(stack, escrow, renter, chain, "text")

    prediction = client.predict(model["id"], text="a dull film")

    (scores,) = _session(model).run(None, {"text": np.array(["a dull film"])})
    assert prediction.outputs["scores"] == scores.tolist()
    assert prediction.predictions[0][0]["label"] == "negative"
    assert prediction.predictions[0][0]["score"] == pytest.approx(float(scores[0][0]))


def test_tabular__named_features_equal_onnx_runtime_on_the_row(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    model = stack["models"]["tabular"]
    client = _renter_client(stack, escrow, renter, chain, "tabular")
    row = {"magnesium": 98.0, "ash": 2.3, "alcohol": 12.1, "malic_acid": 3.1}

    prediction = client.predict(model["id"], features=row, top_k=1)

    tensor = np.asarray([[12.1, 3.1, 2.3, 98.0]], dtype=np.float32)
    label, probabilities = _session(model).run(None, {"input": tensor})
    assert prediction.outputs["label"] == label.tolist()
    np.testing.assert_allclose(prediction.outputs["probabilities"], probabilities, rtol=1e-6)
    assert prediction.predictions == [[{
        "label": f"class_{int(label[0])}",
        "score": pytest.approx(float(probabilities[0][label[0]])),
    }]]  # fmt: skip


def test_bad_image__is_a_422_from_the_daemon_which_keeps_serving(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    model = stack["models"]["image"]
    client = _renter_client(stack, escrow, renter, chain, "image")

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(model["id"], image=task_models.png(64, 64)[:70])
    after = client.predict(model["id"], image=task_models.png(8, 8))

    assert (refused.value.status, refused.value.code) == (422, "invalid_image")
    assert "inputs.pixels" in refused.value.detail
    assert len(after.predictions[0]) == 3
