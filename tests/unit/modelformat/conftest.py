"""Fixtures for the model format: a tiny model and card for each pipeline tag."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.utils import load_by_path

task_models = load_by_path("tests/utils/task_models.py", "daimm_test_task_models")
_BUILT: dict[str, tuple[bytes, dict[str, Any]]] = {}


@pytest.fixture(scope="session")
def tasks() -> Any:
    """The ``task_models`` helper module."""
    return task_models


@pytest.fixture
def make_task() -> Any:
    """Factory: ``(onnx_bytes, card)`` for ``image``, ``image-nhwc``, ``text``, ``tabular`` or
    ``tokenized``; the card is a fresh copy the test may change."""
    builders = {
        "image": task_models.image_model,
        "image-nhwc": lambda: task_models.image_model("NHWC", 3, 6),
        "text": task_models.text_model,
        "tabular": task_models.tabular_model,
        "tokenized": task_models.tokenized_model,
    }

    def make(kind: str) -> tuple[bytes, dict[str, Any]]:
        if kind not in _BUILT:
            _BUILT[kind] = builders[kind]()
        model, card = _BUILT[kind]
        return model, copy.deepcopy(card)

    return make


@pytest.fixture
def old_card() -> dict[str, Any]:
    """A card as daimm published them before the schema: ``task``, metrics as an object."""
    return {
        "name": "Iris classifier",
        "description": "Logistic regression on the iris data set",
        "task": "tabular-classification",
        "framework": "onnx",
        "tags": ["iris", "sklearn"],
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 4]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, 3]},
        ],
        "sample_input": {"input": [[5.1, 3.5, 1.4, 0.2]]},
        "metrics": {"accuracy": 0.97},
        "training_data": "sklearn iris",
        "licence": "MIT",
        "daimm": {"model_id": 1, "version": 0},
    }
