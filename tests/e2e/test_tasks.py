"""Each task end to end on anvil through the real relayer daemon: a card-carrying model is
published as a creator publishes it (checked, encrypted, stored by CID with its card), rented,
and asked with an image, a sentence or a row of named features.

The relayer's answer must equal ONNX Runtime on the same preprocessed tensor, computed here
independently of daimm's preprocessing, and its receipt must verify over the body sent and the
labelled answer received. Runs only on a real local node: ``ape test tests/e2e/test_tasks.py
--network ethereum:local:foundry``; skipped on ape's in-process chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from tests.utils import load_by_path
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


task_models = load_by_path("tests/utils/task_models.py", "daimm_test_task_models")


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
    from ape import chain

    from daimm.crypto import generate_private_key
    from daimm.deployments import Deployment, provider_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market import Marketplace, Offer
    from daimm.market.deploy_extensions import deploy_extensions
    from daimm.market.provision import publish_model
    from daimm.market.publishing import parse_metadata
    from daimm.relayer.settings import write_settings

    work = tmp_path_factory.mktemp("tasks")
    ext = deploy_extensions(project, deployer, contracts)
    addresses = {**contracts.addresses(), **ext.addresses()}
    market = Marketplace(
        Deployment(provider_key(chain.provider), chain.chain_id, 0, addresses, {"ETH": ETH})
    )
    port = free_port()
    relayer_eth, _ = new_relayer(work, ext.relayer_registry, deployer, port)

    blocks = LocalBlockstore(work / "blocks")
    creator_key = generate_private_key()
    models: dict[str, dict[str, Any]] = {}
    for task, build in (("image", task_models.image_model), ("text", task_models.text_model),
                        ("tabular", task_models.tabular_model)):  # fmt: skip
        model_bytes, document = build()
        path = work / f"{task}.onnx"
        path.write_bytes(model_bytes)
        # What `daimm model publish --rent ... --authorise RELAYER` does, in one call.
        model = publish_model(
            market, path, parse_metadata(document), backend=blocks, creator_key=creator_key,
            sender=creator, offer=Offer(ETH, PRICE_PER_PERIOD, PERIOD, 1, 30, True, 0, 0),
            relayers=[relayer_eth.address],
        )  # fmt: skip
        models[task] = {"id": model.model_id, "bytes": model_bytes, "card": document}

    config = write_settings(
        work / "relayer.toml",
        rpc_url=node_url,
        account_key_file=work / "relayer.eth",
        x25519_key_file=work / "relayer.x25519",
        storage="local",
        storage_path=work / "blocks",
        db_path=work / "relayer.sqlite3",
        port=port,
        access_ttl_s=2.0,
        log_poll_s=0.2,
        contracts=addresses,
    )
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
