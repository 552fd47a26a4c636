"""Tiny ONNX models and cards for each pipeline tag, made on the spot (no downloads).

Each builder returns ``(onnx_bytes, card_document)``; the card is what a creator would publish.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

DIGIT_LABELS = ["zero", "one", "two"]
WINE_FEATURES = ["alcohol", "malic_acid", "ash", "magnesium"]


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any],
           ml: bool = False) -> bytes:  # fmt: skip
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "task", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", 3))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def image_model(layout: str = "NCHW", channels: int = 1, size: int = 8) -> tuple[bytes, dict]:
    """Linear logits over the pixels: float32 image -> ``logits`` [N, 3] (not normalised)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    weights = rng.normal(size=(size * size * channels, 3)).astype(np.float32)
    shape = ["N", channels, size, size] if layout == "NCHW" else ["N", size, size, channels]
    nodes = [
        helper.make_node("Flatten", ["pixels"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    onnx_bytes = _model(
        nodes,
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "w")],
    )
    prep = {"type": "image", "size": [size, size], "channels": channels, "layout": layout,
            "resize": "stretch", "invert": channels == 1, "scale": 16 / 255,
            "mean": [0.5] * channels, "std": [2.0] * channels}  # fmt: skip
    card_shape = [None, *shape[1:]]
    card = {
        "name": "Tiny digits",
        "pipeline_tag": "image-classification",
        "inputs": [
            {"name": "pixels", "dtype": "float32", "shape": card_shape, "preprocessing": prep}
        ],  # fmt: skip
        "outputs": [{"name": "logits", "dtype": "float32", "shape": [None, 3]}],
        "labels": list(DIGIT_LABELS),
        "sample_input": {"pixels": np.zeros([1, *shape[1:]]).tolist()},
        "widget": [
            {
                "example_title": "a grey square",
                "src": "data:image/png;base64,"
                + base64.b64encode(png(size, size, channels)).decode(),
            }
        ],  # fmt: skip
        "metrics": [{"type": "accuracy", "value": 0.9, "dataset": "synthetic"}],
    }
    return onnx_bytes, card


def text_model() -> tuple[bytes, dict]:
    """A string -> positive/negative scores lookup (ai.onnx.ml LabelEncoder) over string [1]."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node(
            "LabelEncoder",
            ["text"],
            ["p"],
            domain="ai.onnx.ml",
            keys_strings=["a great film", "a dull film"],
            values_floats=[0.9, 0.2],
            default_float=0.5,
        ),  # fmt: skip
        helper.make_node("Sub", ["one", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["flat"], axis=0),
        helper.make_node("Reshape", ["flat", "shape"], ["scores"]),
    ]
    onnx_bytes = _model(
        nodes,
        [helper.make_tensor_value_info("text", TensorProto.STRING, [1])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
        [
            numpy_helper.from_array(np.ones(1, dtype=np.float32), "one"),
            numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "shape"),
        ],  # fmt: skip
        ml=True,
    )
    card = {
        "name": "Film mood",
        "pipeline_tag": "text-classification",
        "inputs": [{"name": "text", "dtype": "string", "shape": [1],
                    "preprocessing": {"type": "text", "mode": "string", "max_chars": 200}}],
        "outputs": [{"name": "scores", "dtype": "float32", "shape": [1, 2]}],
        "labels": ["negative", "positive"],
        "sample_input": {"text": ["a great film"]},
        "widget": [{"example_title": "praise", "text": "a great film"}],
    }  # fmt: skip
    return onnx_bytes, card


def tabular_model() -> tuple[bytes, dict]:
    """Softmax of a linear map over four named features -> ``probabilities`` [N, 3]."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.0, -1.0, 0.0], [0.5, 0.0, -0.5], [0.0, 1.0, 0.0], [0.01, 0.0, -0.01]],
                       dtype=np.float32)  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["z"], ["label"], axis=1, keepdims=0),
    ]
    onnx_bytes = _model(
        nodes,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "w")],
    )  # fmt: skip
    card = {
        "name": "Wine-ish",
        "pipeline_tag": "tabular-classification",
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 4]}],
        "outputs": [{"name": "label", "dtype": "int64", "shape": [None]},
                    {"name": "probabilities", "dtype": "float32", "shape": [None, 3]}],
        "features": [{"name": f, "unit": "-"} for f in WINE_FEATURES],
        "labels": ["class_0", "class_1", "class_2"],
        "sample_input": {"input": [[13.2, 1.78, 2.14, 111.0]]},
        "widget": [{"example_title": "a row", "structured_data": dict(zip(
            WINE_FEATURES, [13.2, 1.78, 2.14, 111.0], strict=True))}],
        "metrics": {"accuracy": 0.5},
    }  # fmt: skip
    return onnx_bytes, card


def png(width: int, height: int, channels: int = 1, *, fmt: str = "PNG", value: int = 200) -> bytes:
    """An image file of one colour with a darker square (so resizing matters)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    image = Image.new(mode, (width, height), value if channels == 1 else (value, 30, 90))
    for x in range(width // 4, width // 2):
        for y in range(height // 4, height // 2):
            image.putpixel((x, y), 0 if channels == 1 else (0, 200, 10))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def reference_image_tensor(data: bytes, prep: dict) -> np.ndarray:
    """The card's preprocessing, written out independently of daimm (for end-to-end checks)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("L" if prep["channels"] == 1 else "RGB")
    h, w = prep["size"]
    image = image.resize((w, h), Image.Resampling.BILINEAR)
    x = np.asarray(image, dtype=np.float32).reshape(h, w, prep["channels"])
    if prep.get("invert"):
        x = 255.0 - x
    x = (x * np.float32(prep["scale"]) - np.asarray(prep["mean"], np.float32)) / np.asarray(
        prep["std"], np.float32
    )
    if prep["layout"] == "NCHW":
        x = x.transpose(2, 0, 1)
    return x[np.newaxis].astype(np.float32)


VOCAB = {"[UNK]": 0, "a": 1, "great": 2, "dull": 3, "film": 4}


def tokenizer_json() -> bytes:
    """A word-level Hugging Face ``tokenizers`` file over :data:`VOCAB` (whitespace split)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel(VOCAB, "[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer.to_str().encode()


def tokenized_model(length: int = 6) -> tuple[bytes, dict]:
    """Token ids and attention mask -> scores [1, 2]: ``(sum(mask), sum(ids * mask))``."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["kept"]),
        helper.make_node("Cast", ["kept"], ["kept_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["mask_f"], ["count"], keepdims=1),
        helper.make_node("ReduceSum", ["kept_f"], ["total"], keepdims=1),
        helper.make_node("Concat", ["count", "total"], ["scores"], axis=1),
    ]
    onnx_bytes = _model(
        nodes,
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, length]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, length])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
        [],
    )  # fmt: skip
    card = {
        "name": "Token counter",
        "pipeline_tag": "text-classification",
        "inputs": [
            {"name": "input_ids", "dtype": "int64", "shape": [1, length],
             "preprocessing": {"type": "text", "mode": "tokenizer",
                               "tokenizer": {"cid": "bafy-tokenizer"}, "max_length": length,
                               "attention_mask": "attention_mask"}},
            {"name": "attention_mask", "dtype": "int64", "shape": [1, length]},
        ],
        "outputs": [{"name": "scores", "dtype": "float32", "shape": [1, 2]}],
        "labels": ["length", "weight"],
        "postprocessing": {"function": "none"},
        "sample_input": {"input_ids": [[1] * length], "attention_mask": [[1] * length]},
        "widget": [{"text": "a great film"}],
    }  # fmt: skip
    return onnx_bytes, card
