"""Model outputs -> the answer: raw tensors plus, for classifiers, ``[{label, score}]`` per row.

The answer's bytes are canonical JSON (sorted keys, no spaces), and a receipt's ``outputsHash`` is
the hash of :func:`answer_bytes`: the ``outputs`` object alone when there are no predictions (as
before labelled answers existed), else ``{"outputs": ..., "predictions": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from daimm.modelformat.card import ModelCard

__all__ = ["answer_bytes", "canonical_json", "jsonable", "predictions", "scores_output"]


def canonical_json(value: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces): what a receipt's ``outputsHash`` hashes.

    Raises:
        ValueError: ``value`` holds NaN or an infinity, which JSON cannot carry (Python would
            write the non-JSON tokens ``NaN`` and ``Infinity``, and a receipt would sign them).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def answer_bytes(outputs: Any, predictions: Any = None) -> bytes:
    """The bytes a receipt's ``outputsHash`` covers (see the module docstring)."""
    if predictions is None:
        return canonical_json(outputs)
    return canonical_json({"outputs": outputs, "predictions": predictions})


def jsonable(value: Any) -> Any:
    """Numpy arrays and scalars (and ZipMap's lists of maps) as plain JSON values."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):  # ZipMap-style outputs: maps with int or str keys
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def scores_output(card: ModelCard, outputs: Mapping[str, Any]) -> str | None:
    """The output holding class scores: the card's ``postprocessing.scores_output``, else the first
    float output of rank 2 whose last dimension is the number of labels."""
    if card.scores_output is not None:
        return card.scores_output if card.scores_output in outputs else None
    for name, value in outputs.items():
        dtype = getattr(value, "dtype", None)
        if (
            dtype is not None
            and dtype.kind == "f"
            and value.ndim == 2
            and value.shape[1] == len(card.labels)
        ):
            return name
    return None


def _probabilities(scores: Any, function: str) -> Any:
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    if function == "auto":
        is_distribution = bool((scores >= 0).all() and (scores <= 1).all()) and bool(
            np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
        )
        function = "none" if is_distribution else "softmax"
    if function == "softmax":
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    return scores


def predictions(
    card: ModelCard | None, outputs: Mapping[str, Any], top_k: int
) -> list[list[dict[str, Any]]] | None:
    """``[{label, score}]`` per row, highest score first, ``top_k`` long; None if the card has no
    labels, is not a classifier, or no output holds one score per label.

    Args:
        card: The model's card.
        outputs: Output name -> numpy array, as ONNX Runtime returned them.
        top_k: Labels per row.
    """
    if card is None or not card.is_classifier:
        return None
    name = scores_output(card, outputs)
    if name is None:
        return None
    value = outputs[name]
    if getattr(value, "ndim", 0) != 2 or value.shape[1] != len(card.labels):
        return None
    probabilities = _probabilities(value, card.score_function)
    rows = []
    for row in probabilities:
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:top_k]
        rows.append([{"label": card.labels[i], "score": float(row[i])} for i in order])
    return rows
