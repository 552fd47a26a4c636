"""A card against its ONNX model: the check publishing runs, the run the worker does, and the card
``daimm model init`` writes from an ONNX file.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from daimm.errors import ModelUnavailableError, ModelValidationError, RequestRefusedError
from daimm.modelformat.card import (
    PIPELINE_TAGS,
    PLACEHOLDER,
    ImagePreprocessing,
    ModelCard,
    TextPreprocessing,
    card_dtype,
    parse_card,
)
from daimm.modelformat.graph import build_session
from daimm.modelformat.postprocess import predictions
from daimm.modelformat.preprocess import (
    PreparedRequest,
    image_to_array,
    prepare_request,
    tokenize,
)
from daimm.modelformat.tensors import ModelSchema, TensorSpec, compatible_shape, schema_of

__all__ = ["check_model", "check_tensors", "feeds_of", "init_card", "load_session"]


def load_session(model_bytes: bytes) -> Any:
    """An ONNX Runtime session over validated bytes, as the relayer's worker builds it.

    Raises:
        ModelValidationError: Refused by :func:`~daimm.modelformat.graph.validate_onnx_bytes`
            (pickle, external data, custom operators) or by ONNX Runtime.
    """
    try:
        return build_session(model_bytes)
    except ModelUnavailableError as exc:
        raise ModelValidationError(str(exc).replace("cannot load", "does not load")) from None
    except ModelValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - ValidationError from the graph checks
        raise ModelValidationError(str(exc)) from None


def feeds_of(
    card: ModelCard | None,
    schema: ModelSchema,
    prepared: PreparedRequest,
    tokenizers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The session's feeds for a prepared request: decode images, tokenize text (worker side).

    Raises:
        RequestRefusedError: 422 for an image that does not decode (see ``image_to_array``).
    """
    feeds = dict(prepared.tensors)
    specs = {s.name: s for s in schema.inputs}
    preprocessing = card.preprocessing if card is not None else {}
    for name, data in prepared.images.items():
        prep = preprocessing[name]
        assert isinstance(prep, ImagePreprocessing)
        feeds[name] = image_to_array(name, data, prep, specs[name].numpy_dtype or "float32")
    for name, text in prepared.texts.items():
        prep = preprocessing[name]
        assert isinstance(prep, TextPreprocessing)
        tokenizer = (tokenizers or {}).get(name)
        if tokenizer is None:
            raise ModelUnavailableError(f"the tokenizer of input {name!r} is not loaded")
        encoded = tokenize(tokenizer, text, prep, specs[name].numpy_dtype or "int64")
        feeds[name] = encoded["ids"]
        for key in ("attention_mask", "token_type_ids"):
            other = getattr(prep, key)
            if other is not None:
                feeds[other] = encoded[key].astype(specs[other].numpy_dtype or "int64")
    return feeds


def check_tensors(card: ModelCard, schema: ModelSchema) -> None:
    """Raise ModelValidationError unless the card's tensors are the model's (names, types,
    shapes)."""
    for kind, declared, actual in (
        ("input", card.inputs, schema.inputs),
        ("output", card.outputs, schema.outputs),
    ):
        by_name = {a.name: a for a in actual}
        if set(by_name) != {d.name for d in declared}:
            raise ModelValidationError(
                f"the model's {kind}s are {sorted(by_name)} but the card declares"
                f" {sorted(d.name for d in declared)}"
            )
        for spec in declared:
            node = by_name[spec.name]
            if node.type != spec.type:
                raise ModelValidationError(
                    f"{kind} {spec.name!r} is {node.type} in the model but {spec.dtype} in the card"
                )
            if not compatible_shape(spec.shape, node.shape):
                raise ModelValidationError(
                    f"{kind} {spec.name!r} has shape {list(node.shape)} in the model but"
                    f" {list(spec.shape)} in the card"
                )


def _run(
    session: Any, card: ModelCard, schema: ModelSchema, body: Any, where: str,
    tokenizers: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], Any]:  # fmt: skip
    try:
        prepared = prepare_request(card, schema, body)
        feeds = feeds_of(card, schema, prepared, tokenizers)
    except RequestRefusedError as exc:
        detail = (
            exc.detail.replace("inputs.", f"{where}.", 1)
            if where == "sample_input"
            else (f"{where}: {exc.detail}")
        )
        raise ModelValidationError(f"{detail} (a relayer would refuse it: {exc.code})") from None
    names = [o.name for o in schema.outputs]
    try:
        values = session.run(names, feeds)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelValidationError(f"{where} does not run in the model: {first}") from exc
    outputs = dict(zip(names, values, strict=True))
    return outputs, predictions(card, outputs, prepared.top_k)


def _widget_body(card: ModelCard, example: Mapping[str, Any]) -> Any:
    if "structured_data" in example and card.features_input:
        return {"features": example["structured_data"]}
    if "text" in example and card.text_input:
        return {"text": example["text"]}
    src = example.get("src")
    if isinstance(src, str) and src.startswith("data:") and ";base64," in src and card.image_input:
        return {"image": {"b64": src.split(";base64,", 1)[1]}}
    return None


def check_model(
    model_bytes: bytes, card: ModelCard, *, tokenizers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check that the model loads as a relayer loads it, matches the card, and runs its examples.

    The sample input, and each widget example the model can take offline (``text``,
    ``structured_data``, ``data:`` images), run through the relayer's own request path
    (:func:`~daimm.modelformat.preprocess.prepare_request` then :func:`feeds_of`). A classifier's
    labels must match its scores: one per column.

    Returns:
        Output name -> the sample's output (as nested lists), for the record.

    Raises:
        ModelValidationError: What disagrees, named.
    """
    session = load_session(model_bytes)
    schema = schema_of(session)
    check_tensors(card, schema)
    if card.text_input and tokenizers is None:
        prep = card.preprocessing[card.text_input]
        if isinstance(prep, TextPreprocessing) and prep.mode == "tokenizer":
            tokenizers = {}
    outputs, _ = _run(session, card, schema, {"inputs": dict(card.sample_input)},
                      "sample_input", tokenizers)  # fmt: skip
    for node in schema.outputs:
        spec = next(s for s in card.outputs if s.name == node.name)
        shape = getattr(outputs[node.name], "shape", None)
        if shape is None or not compatible_shape(spec.shape, shape):
            raise ModelValidationError(
                f"output {node.name!r} of the sample has shape {list(shape or [])}, not"
                f" {list(spec.shape)}"
            )
    if card.is_classifier and predictions(card, outputs, 1) is None:
        raise ModelValidationError(
            f"the card has {len(card.labels)} labels but no float output of shape"
            f" [*, {len(card.labels)}] holds one score per label: fix 'labels' or set"
            " 'postprocessing.scores_output'"
        )
    for i, example in enumerate(card.widget):
        body = _widget_body(card, example)
        if body is None or ("text" in body and tokenizers == {}):
            continue  # NOTE: a tokenizer stored by CID is not at hand offline
        _run(session, card, schema, body, f"widget[{i}]", tokenizers)
    return {name: value.tolist() for name, value in outputs.items()}


# ---------------------------------------------------------------------------- init
def _guess(schema: ModelSchema) -> tuple[str, dict[str, dict[str, Any]]]:
    """A pipeline tag and per-input preprocessing guessed from the tensors."""
    first = schema.inputs[0]
    if first.dtype == "string":
        return "text-classification", {first.name: {"type": "text", "mode": "string"}}
    if len(first.shape) == 4 and first.dtype in ("float32", "float64", "float16", "uint8"):
        _, a, b, c = first.shape
        nchw = a in (1, 3) or c not in (1, 3)
        channels, h, w = (a, b, c) if nchw else (c, a, b)
        prep = {
            "type": "image",
            "size": [h or 224, w or 224],
            "channels": channels if channels in (1, 3) else 3,
            "layout": "NCHW" if nchw else "NHWC",
            "resize": "stretch",
            "scale": 1 / 255,
            "mean": [0.0],
            "std": [1.0],
        }
        return "image-classification", {first.name: prep}
    classifier = any(
        o.dtype in ("int64", "string") or not o.type.startswith("tensor(") for o in schema.outputs
    ) or any(len(o.shape) == 2 and (o.shape[1] or 0) > 1 for o in schema.outputs)
    return ("tabular-classification" if classifier else "tabular-regression"), {}


def _sample(spec: TensorSpec, prep: Mapping[str, Any] | None) -> Any:
    import numpy as np

    if spec.dtype == "string":
        return np.full([d or 1 for d in spec.shape], "hello").tolist()
    shape = [d or 1 for d in spec.shape]
    if prep is not None and prep.get("type") == "image":
        shape = [1, *ImagePreprocessing(tuple(prep["size"]), prep["channels"],  # type: ignore[arg-type]
                                        prep["layout"]).tensor_shape()[1:]]  # fmt: skip
    fill = 0.5 if spec.dtype and spec.dtype.startswith("float") else 0
    return np.full(shape, fill).tolist()


def _blank_png(prep: Mapping[str, Any]) -> str:
    import io

    from PIL import Image

    h, w = prep["size"]
    out = io.BytesIO()
    Image.new("L" if prep["channels"] == 1 else "RGB", (w, h), 128).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def init_card(model_bytes: bytes, *, name: str | None = None) -> dict[str, Any]:
    """A card for an ONNX model: tensors read from it, a guessed task, a sample input that runs.

    Fields only the creator can fill (description, labels, feature names, metrics, licence) hold
    :data:`~daimm.modelformat.card.PLACEHOLDER`; publishing refuses a card that still has one.

    Raises:
        ModelValidationError: The model does not load as a relayer would load it, has an input
            or output a card cannot describe, or the guessed sample does not run.
    """
    session = load_session(model_bytes)
    schema = schema_of(session)
    try:
        dtypes = {s.name: card_dtype(s) for s in (*schema.inputs, *schema.outputs)}
    except Exception as exc:  # noqa: BLE001 - ValidationError naming the tensor
        raise ModelValidationError(str(exc)) from None
    tag, preprocessing = _guess(schema)
    inputs = []
    for spec in schema.inputs:
        item: dict[str, Any] = {"name": spec.name, "dtype": dtypes[spec.name],
                                "shape": list(spec.shape)}  # fmt: skip
        if spec.name in preprocessing:
            item["preprocessing"] = preprocessing[spec.name]
        inputs.append(item)
    document: dict[str, Any] = {
        "name": name or f"{PLACEHOLDER}: the model's name",
        "description": f"{PLACEHOLDER}: what the model does, how it was trained, its limits",
        "pipeline_tag": tag,
        "framework": "onnx",
        "tags": [],
        "license": f"{PLACEHOLDER}: e.g. apache-2.0",
        "inputs": inputs,
        "outputs": [
            {"name": s.name, "dtype": dtypes[s.name], "shape": list(s.shape)}
            for s in schema.outputs
        ],
        "sample_input": {s.name: _sample(s, preprocessing.get(s.name)) for s in schema.inputs},
        "metrics": [
            {
                "type": "accuracy",
                "value": 0.0,
                "dataset": f"{PLACEHOLDER}: the data set and split it was measured on",
            }
        ],  # fmt: skip
    }
    if tag.endswith("classification"):
        width = next(
            (o.shape[1] for o in schema.outputs
             if o.dtype and o.dtype.startswith("float") and len(o.shape) == 2 and o.shape[1]),
            None,
        )  # fmt: skip
        if width:
            document["labels"] = [f"{PLACEHOLDER}: class {i}" for i in range(width)]
    if tag.startswith("tabular"):
        first = schema.inputs[0]
        if len(schema.inputs) == 1 and len(first.shape) == 2 and first.shape[1]:
            document["features"] = [f"{PLACEHOLDER}: feature {i}" for i in range(first.shape[1])]
            document["widget"] = [
                {
                    "example_title": "sample",
                    "structured_data": {f: 0.5 for f in document["features"]},
                }
            ]
    elif tag == "image-classification":
        prep = preprocessing[schema.inputs[0].name]
        document["widget"] = [{"example_title": "grey square", "src": _blank_png(prep)}]
    elif tag == "text-classification":
        document["widget"] = [{"example_title": "sample", "text": "hello"}]
    assert tag in PIPELINE_TAGS
    card = parse_card(document)
    check_model(model_bytes, card)
    return document
