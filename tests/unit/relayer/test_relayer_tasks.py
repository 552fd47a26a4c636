"""Images, text and named features through the real app and worker processes, per each model's
card; every malformed input a 422 naming it, never a 5xx or a worker crash (the chain is a test
double)."""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from tests.utils import load_by_path

from daimm.client import verify_receipt_document
from daimm.errors import RequestRefusedError

task_models = load_by_path("tests/utils/task_models.py", "daimm_test_task_models")
IMAGE, TEXT, TABLE = 1, 2, 3
MODELS = {IMAGE: task_models.image_model(), TEXT: task_models.text_model(),
          TABLE: task_models.tabular_model()}  # fmt: skip


@pytest.fixture(scope="module")
def sessions() -> dict[int, Any]:
    return {
        i: ort.InferenceSession(m, providers=["CPUExecutionProvider"])
        for i, (m, _card) in MODELS.items()
    }


@pytest.fixture
def served(create_services: Any, make_client: Any, chain: Any, user: Any) -> Any:
    for model_id in MODELS:
        chain.authorised.add(model_id)
        chain.access.add((model_id, user.address))
    services = create_services(
        models={i: m for i, (m, _c) in MODELS.items()},
        cards={i: c for i, (_m, c) in MODELS.items()},
    )
    client, http = make_client(services, bytes(user.key))
    with http:
        yield services, client, http


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ each task
def test_predict__image__answers_labels_equal_to_onnx_runtime_on_the_preprocessed_tensor(
    served: Any, sessions: Any, relayer_account: Any
) -> None:
    _services, client, _http = served
    _model, card = MODELS[IMAGE]
    image = task_models.png(40, 30)

    prediction = client.predict(IMAGE, image=image, top_k=2)

    tensor = task_models.reference_image_tensor(image, card["inputs"][0]["preprocessing"])
    (logits,) = sessions[IMAGE].run(None, {"pixels": tensor})
    np.testing.assert_allclose(prediction.outputs["logits"], logits, rtol=1e-5, atol=1e-5)
    scores = _softmax(logits.astype(np.float64))[0]
    order = np.argsort(-scores)[:2]
    assert [p["label"] for p in prediction.predictions[0]] == [card["labels"][i] for i in order]
    np.testing.assert_allclose([p["score"] for p in prediction.predictions[0]], scores[order])
    verify_receipt_document(
        prediction.receipt, relayer_account.address,
        outputs=prediction.outputs, predictions=prediction.predictions,
    )  # fmt: skip


def test_predict__text__answers_the_labels_of_the_string_model(served: Any) -> None:
    _services, client, _http = served

    prediction = client.predict(TEXT, text="a great film")

    assert prediction.predictions == [
        [{"label": "positive", "score": pytest.approx(0.9)},
         {"label": "negative", "score": pytest.approx(0.1)}]
    ]  # fmt: skip


def test_predict__named_features_or_raw_rows__answer_the_same_as_onnx_runtime(
    served: Any, sessions: Any
) -> None:
    _services, client, _http = served
    row = {"alcohol": 13.2, "malic_acid": 1.78, "ash": 2.14, "magnesium": 111.0}
    tensor = np.asarray([[13.2, 1.78, 2.14, 111.0]], dtype=np.float32)

    named = client.predict(TABLE, features=row, top_k=3)
    raw = client.predict(TABLE, {"input": tensor.tolist()})

    label, probabilities = sessions[TABLE].run(None, {"input": tensor})
    assert named.outputs == raw.outputs
    assert named.outputs["label"] == label.tolist()
    best = int(np.argmax(probabilities[0]))
    assert named.predictions[0][0] == {
        "label": f"class_{best}",
        "score": pytest.approx(float(probabilities[0][best])),
    }
    assert [p["score"] for p in named.predictions[0]] == sorted(
        (p["score"] for p in named.predictions[0]), reverse=True
    )


def test_answer__altered_predictions__fail_the_receipt(served: Any) -> None:
    _services, client, _http = served
    prediction = client.predict(TEXT, text="a dull film")
    altered = [[{**prediction.predictions[0][0], "label": "positive"}]]

    with pytest.raises(Exception, match="outputsHash"):
        verify_receipt_document(
            prediction.receipt, prediction.receipt["relayer"],
            outputs=prediction.outputs, predictions=altered,
        )  # fmt: skip


# ------------------------------------------------------------------ bad input
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))  # fmt: skip


def _animated_gif() -> bytes:
    from PIL import Image

    frames = [Image.new("L", (8, 8), v) for v in (0, 255)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


BAD = [
    ("not an image", IMAGE, {"image": b"hello, not an image"}, "invalid_image", "inputs.pixels"),
    ("truncated png", IMAGE, {"image": task_models.png(64, 64)[:60]}, "invalid_image",
     "inputs.pixels"),
    ("20000 x 20000", IMAGE, {"image": _png_header_only(20_000, 20_000)}, "image_too_large",
     "inputs.pixels"),
    ("animated gif", IMAGE, {"image": _animated_gif()}, "invalid_image", "2 frames"),
    ("empty string", TEXT, {"text": "   "}, "invalid_text", "inputs.text"),
    ("10 MB string", TEXT, {"text": "a" * 10_000_000}, "invalid_text", "inputs.text"),
    ("unknown feature", TABLE,
     {"features": {"alcohol": 1, "malic_acid": 1, "ash": 1, "magnesium": 1, "colour": 2}},
     "unknown_feature", "inputs.input.colour"),
    ("missing feature", TABLE, {"features": {"alcohol": 1, "malic_acid": 1, "ash": 1}},
     "missing_feature", "inputs.input.magnesium"),
    ("NaN feature", TABLE,
     {"features": {"alcohol": float("nan"), "malic_acid": 1, "ash": 1, "magnesium": 1}},
     "invalid_feature", "inputs.input.alcohol"),
    ("Infinity in a raw tensor", TABLE, {"inputs": {"input": [[1.0, float("inf"), 1.0, 1.0]]}},
     "invalid_input", "inputs.input"),
    ("text to an image model", IMAGE, {"text": "a cat"}, "invalid_input", "text"),
]  # fmt: skip


@pytest.mark.parametrize(("model_id", "request_", "code", "named"),
                         [b[1:] for b in BAD], ids=[b[0] for b in BAD])  # fmt: skip
def test_predict__bad_input__is_a_422_naming_it_and_the_worker_lives(
    served: Any, model_id: int, request_: dict[str, Any], code: str, named: str
) -> None:
    services, client, _http = served

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(model_id, **request_)

    assert (refused.value.status, refused.value.code) == (422, code)
    assert named in refused.value.detail
    assert services.models.crashes == 0
    assert all(m.worker.alive for m in services.models.loaded())
    ok = client.predict(IMAGE, image=task_models.png(8, 8))
    assert len(ok.predictions[0]) == 3


def test_models__lists_each_card_s_task_and_labels(served: Any) -> None:
    _services, client, http = served
    client.predict(TEXT, text="a great film")

    listed = http.get("/v1/models").json()["models"]

    assert [(m["model_id"], m["card"]["pipeline_tag"], m["card"]["labels"]) for m in listed] == [
        (TEXT, "text-classification", ["negative", "positive"])
    ]


def test_load__card_that_does_not_fit_the_model__serves_raw_tensors_only(
    create_services: Any, make_client: Any, chain: Any, user: Any
) -> None:
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    model, card = MODELS[TABLE]
    wrong = json.loads(json.dumps(card))
    wrong["inputs"][0]["name"] = "features"
    wrong["sample_input"] = {"features": card["sample_input"]["input"]}
    services = create_services(models={1: model}, cards={1: wrong})
    client, http = make_client(services, bytes(user.key))
    with http:
        prediction = client.predict(1, {"input": [[1.0, 2.0, 3.0, 4.0]]})

        assert prediction.predictions is None
        with pytest.raises(RequestRefusedError, match="takes no features"):
            client.predict(1, features={"alcohol": 1})


def test_predict__tokenizer_card__tokenizes_in_the_worker_like_the_tokenizers_package(
    create_services: Any, make_client: Any, chain: Any, user: Any
) -> None:
    from tokenizers import Tokenizer

    chain.authorised.add(1)
    chain.access.add((1, user.address))
    model, card = task_models.tokenized_model(length=6)
    tokenizer = task_models.tokenizer_json()
    services = create_services(
        models={1: model}, cards={1: card}, tokenizers={1: {"input_ids": tokenizer}}
    )
    client, http = make_client(services, bytes(user.key))
    with http:
        prediction = client.predict(1, text="a great unknown film")

    ids = Tokenizer.from_str(tokenizer.decode()).encode("a great unknown film").ids
    feeds = {
        "input_ids": np.asarray([ids + [0] * (6 - len(ids))], dtype=np.int64),
        "attention_mask": np.asarray([[1] * len(ids) + [0] * (6 - len(ids))], dtype=np.int64),
    }
    (scores,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert prediction.outputs["scores"] == scores.tolist() == [[4.0, 7.0]]
    assert prediction.predictions == [
        [{"label": "weight", "score": 7.0}, {"label": "length", "score": 4.0}]
    ]
