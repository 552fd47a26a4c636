"""The model format: tensor specs, dtypes, the model card, preprocessing and postprocessing.

One module for what publishing, the catalog, the relayer (and its worker) and the web layer all
need to agree on, so that publishing refuses exactly what a relayer would refuse:

- :mod:`~daimm.modelformat.tensors`: :class:`TensorSpec`, :class:`ModelSchema`, the dtype maps,
  the check of a raw JSON tensor (:func:`tensor_from_json`).
- :mod:`~daimm.modelformat.graph`: ONNX bytes validated before a session is built.
- :mod:`~daimm.modelformat.card`: the card's JSON Schema and :func:`parse_card`.
- :mod:`~daimm.modelformat.preprocess`: request bodies -> tensors (images decoded in the worker).
- :mod:`~daimm.modelformat.postprocess`: outputs -> ``[{label, score}]`` and the receipt's bytes.
- :mod:`~daimm.modelformat.model`: a card checked against its ONNX model; a card written from one.

Heavy imports (numpy, onnx, onnxruntime, Pillow, jsonschema) load inside the functions.
"""

from daimm.modelformat.card import (
    CLASSIFICATION_TAGS,
    PIPELINE_TAGS,
    PLACEHOLDER,
    CardError,
    ImagePreprocessing,
    ModelCard,
    TextPreprocessing,
    card_schema,
    load_card,
    parse_card,
)
from daimm.modelformat.postprocess import answer_bytes, canonical_json, predictions
from daimm.modelformat.preprocess import PreparedRequest, build_request, prepare_request
from daimm.modelformat.tensors import DTYPES, ModelSchema, TensorSpec, schema_of, tensor_from_json

__all__ = [
    "CLASSIFICATION_TAGS",
    "DTYPES",
    "PIPELINE_TAGS",
    "PLACEHOLDER",
    "CardError",
    "ImagePreprocessing",
    "ModelCard",
    "ModelSchema",
    "PreparedRequest",
    "TensorSpec",
    "TextPreprocessing",
    "answer_bytes",
    "build_request",
    "canonical_json",
    "card_schema",
    "load_card",
    "parse_card",
    "predictions",
    "prepare_request",
    "schema_of",
    "tensor_from_json",
]
