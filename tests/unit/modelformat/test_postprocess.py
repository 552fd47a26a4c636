"""Outputs -> ``[{label, score}]`` sorted and cut at top-k; the bytes a receipt covers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from daimm.modelformat import answer_bytes, parse_card, predictions


def test_predictions__logits__are_softmaxed_sorted_and_cut(make_task: Any) -> None:
    _model, document = make_task("image")
    card = parse_card(document)
    logits = np.array([[1.0, 3.0, 2.0]], dtype=np.float32)

    rows = predictions(card, {"logits": logits}, 2)

    e = np.exp(logits[0] - 3.0)
    p = e / e.sum()
    assert rows == [[{"label": "one", "score": pytest.approx(p[1])},
                     {"label": "two", "score": pytest.approx(p[2])}]]  # fmt: skip


def test_predictions__probabilities__are_kept_and_ties_keep_label_order(make_task: Any) -> None:
    _model, document = make_task("tabular")
    card = parse_card(document)
    outputs = {"label": np.array([0]), "probabilities": np.array([[0.25, 0.5, 0.25]], "float32")}

    rows = predictions(card, outputs, 5)

    assert [(r["label"], r["score"]) for r in rows[0]] == [
        ("class_1", 0.5),
        ("class_0", 0.25),
        ("class_2", 0.25),
    ]


def test_predictions__regression_or_no_labels__are_none(make_task: Any) -> None:
    _model, document = make_task("tabular")
    document.pop("labels")
    card = parse_card(document)

    assert predictions(card, {"probabilities": np.ones((1, 3), "float32")}, 5) is None


def test_answer_bytes__with_predictions__are_the_canonical_answer_object() -> None:
    outputs = {"b": [1], "a": [[0.5]]}
    labelled = [[{"score": 0.5, "label": "x"}]]

    data = answer_bytes(outputs, labelled)

    assert data == b'{"outputs":{"a":[[0.5]],"b":[1]},"predictions":[[{"label":"x","score":0.5}]]}'
    assert json.loads(data) == {"outputs": outputs, "predictions": labelled}
    assert answer_bytes(outputs) == b'{"a":[[0.5]],"b":[1]}'
