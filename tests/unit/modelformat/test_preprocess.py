"""Requests -> tensors: images decoded under limits, strings, named features, raw tensors; each
refusal a 422 with a code naming the input."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest

from daimm.errors import RequestRefusedError
from daimm.modelformat import build_request, parse_card, prepare_request
from daimm.modelformat.model import feeds_of, load_session
from daimm.modelformat.preprocess import MAX_IMAGE_PIXELS, image_to_array
from daimm.modelformat.tensors import schema_of


def _setup(make_task: Any, kind: str) -> tuple[Any, Any]:
    model, document = make_task(kind)
    return parse_card(document), schema_of(load_session(model))


@pytest.mark.parametrize("kind", ["image", "image-nhwc"])
def test_image__decoded_in_the_worker__equals_the_card_s_preprocessing_written_out(
    make_task: Any, tasks: Any, kind: str
) -> None:
    card, schema = _setup(make_task, kind)
    data = tasks.png(37, 23, card.preprocessing["pixels"].channels)

    prepared = prepare_request(card, schema, build_request(card, image=data))
    feeds = feeds_of(card, schema, prepared)

    prep = card.document["inputs"][0]["preprocessing"]
    np.testing.assert_allclose(feeds["pixels"], tasks.reference_image_tensor(data, prep),
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("resize", ["center_crop", "pad"])
def test_image__crop_or_pad__gives_the_input_s_shape(
    make_task: Any, tasks: Any, resize: str
) -> None:
    card, _schema = _setup(make_task, "image-nhwc")
    prep = card.preprocessing["pixels"]
    prep = type(prep)(**{**prep.__dict__, "resize": resize})

    array = image_to_array("pixels", tasks.png(50, 10, 3, fmt="JPEG"), prep, "float32")

    assert array.shape == (1, 6, 6, 3)
    assert array.dtype == np.float32


def test_image__rgba_webp_to_grayscale__is_composited_on_white(make_task: Any) -> None:
    from PIL import Image

    card, _schema = _setup(make_task, "image")
    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(out, format="WEBP", lossless=True)
    prep = card.preprocessing["pixels"]

    array = image_to_array("pixels", out.getvalue(), prep, "float32")

    # white, inverted (255 - 255 = 0), scaled, minus the mean 0.5, over std 2
    np.testing.assert_allclose(array, np.full((1, 1, 8, 8), -0.25), atol=1e-6)


def test_image__declaring_more_pixels_than_the_limit__is_refused_before_decoding(
    make_task: Any,
) -> None:
    from PIL import Image

    card, _schema = _setup(make_task, "image")
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG")

    with pytest.raises(RequestRefusedError) as refused:
        image_to_array("pixels", out.getvalue(), card.preprocessing["pixels"], "float32")

    assert (refused.value.status, refused.value.code) == (422, "image_too_large")


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"b64": "not base64!"}, "invalid_image"),
        ({"b64": base64.b64encode(b"GIF89a" + b"\0" * 10).decode(), "x": 1}, "invalid_image"),
        ({"b64": base64.b64encode(b"BM" + b"\0" * 64).decode()}, "invalid_image"),
        ({"b64": "A" * (12 << 20)}, "image_too_large"),
        ([[0.5]], "invalid_input"),
    ],
    ids=["not base64", "extra key", "bmp", "too many bytes", "wrong shape list"],
)
def test_prepare__bad_image_value__is_refused_in_the_relayer_process(
    make_task: Any, value: Any, code: str
) -> None:
    card, schema = _setup(make_task, "image")

    with pytest.raises(RequestRefusedError) as refused:
        prepare_request(card, schema, {"inputs": {"pixels": value}})

    assert (refused.value.code, "inputs.pixels" in refused.value.detail) == (code, True)


def test_prepare__string_model__builds_a_string_tensor(make_task: Any) -> None:
    card, schema = _setup(make_task, "text")

    prepared = prepare_request(card, schema, {"text": "a great film", "top_k": 1})

    assert prepared.tensors["text"].tolist() == ["a great film"]
    assert prepared.top_k == 1


def test_prepare__rows_of_named_features__build_the_columns_in_card_order(make_task: Any) -> None:
    card, schema = _setup(make_task, "tabular")
    rows = [{"magnesium": 100, "ash": 2.0, "malic_acid": 1.5, "alcohol": 13.0},
            {"alcohol": 12.0, "malic_acid": 0.5, "ash": 1.0, "magnesium": 90.5}]  # fmt: skip

    prepared = prepare_request(card, schema, {"features": rows})

    np.testing.assert_array_equal(
        prepared.tensors["input"], [[13.0, 1.5, 2.0, 100.0], [12.0, 0.5, 1.0, 90.5]]
    )


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"features": {"alcohol": True, "malic_acid": 1, "ash": 1, "magnesium": 1}},
         "invalid_feature"),
        ({"features": {"alcohol": "13", "malic_acid": 1, "ash": 1, "magnesium": 1}},
         "invalid_feature"),
        ({"features": {"alcohol": 1e309, "malic_acid": 1, "ash": 1, "magnesium": 1}},
         "invalid_feature"),
        ({"inputs": {"input": [[1.0, float("nan"), 1.0, 1.0]]}}, "invalid_input"),
        ({"inputs": {"input": [[1e39, 1.0, 1.0, 1.0]]}}, "invalid_input"),
        ({"inputs": {"input": [[1.0, 1.0, 1.0, 1.0]]}, "top_k": 0}, "invalid_request"),
        ({"inputs": {"input": [[1.0, 1.0, 1.0, 1.0]]}, "features": {}}, "invalid_input"),
        ({"image": {"b64": ""}}, "invalid_input"),
    ],
    ids=["bool", "string", "overflow", "nan tensor", "float32 overflow", "top_k 0", "two forms",
         "no image input"],
)  # fmt: skip
def test_prepare__bad_tabular_request__is_a_422_with_its_code(
    make_task: Any, document: Any, code: str
) -> None:
    card, schema = _setup(make_task, "tabular")

    with pytest.raises(RequestRefusedError) as refused:
        prepare_request(card, schema, document)

    assert (refused.value.status, refused.value.code) == (422, code)


def test_tokenizer_mode__text_becomes_ids_and_mask_padded_to_max_length() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    from daimm.modelformat.card import TextPreprocessing
    from daimm.modelformat.preprocess import tokenize

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "great": 2, "film": 3}, "[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    prep = TextPreprocessing("tokenizer", tokenizer_cid="bafy", max_length=5)

    encoded = tokenize(Tokenizer.from_str(tokenizer.to_str()), "a great film", prep, "int64")

    assert encoded["ids"].tolist() == [[1, 2, 3, 0, 0]]
    assert encoded["attention_mask"].tolist() == [[1, 1, 1, 0, 0]]
