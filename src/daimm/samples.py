"""A small real model to try the marketplace with: `make demo` and `daimm up` publish it.

A scikit-learn logistic regression on the Wisconsin breast-cancer data set that ships with
scikit-learn (no download), exported to ONNX, with the metadata document `daimm model publish`
expects. scikit-learn and skl2onnx are test dependencies (``pip install 'daimm[test]'``, which
`make setup` does); they are imported only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daimm.errors import ConfigError

__all__ = ["SAMPLE_FILE", "SampleModel", "train_sample_model"]

#: File name of the exported model inside the folder given to :func:`train_sample_model`.
SAMPLE_FILE = "breast_cancer.onnx"


@dataclass(frozen=True)
class SampleModel:
    """The trained sample model.

    Attributes:
        path: The ONNX file.
        x_test: Held-out inputs, float32, shape (rows, 30).
        y_test: Their labels (0 malignant, 1 benign).
        accuracy: Accuracy on the held-out rows, 0..1.
        metadata: The metadata document describing the model (name, task, tensors, sample input).
    """

    path: Path
    x_test: Any
    y_test: Any
    accuracy: float
    metadata: dict[str, Any]


def train_sample_model(folder: str | Path) -> SampleModel:
    """Train a logistic regression on scikit-learn's breast-cancer data; export it to ONNX.

    Deterministic: the same split (seed 7) and solver give the same model on every run.

    Args:
        folder: Where the ONNX file is written (as :data:`SAMPLE_FILE`).

    Raises:
        ConfigError: scikit-learn or skl2onnx is not installed.
    """
    try:
        import numpy as np
        from skl2onnx import to_onnx
        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise ConfigError(
            f"the sample model needs scikit-learn and skl2onnx ({exc.name} is missing):"
            " run `make setup`, or `pip install 'daimm[test]'`"
        ) from exc

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=7, stratify=data.target
    )
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    pipeline.fit(x_train, y_train)
    accuracy = float(pipeline.score(x_test, y_test))
    onx = to_onnx(
        pipeline,
        x_train[:1],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if name == "X" else name for name in node.input]
    path = Path(folder) / SAMPLE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    features = x.shape[1]
    metadata = {
        "name": "Breast cancer tumour classifier",
        "description": "Logistic regression on the Wisconsin diagnostic breast cancer data set"
        " (30 cell-nucleus features): predicts malignant (0) or benign (1) with probabilities.",
        "task": "tabular-classification",
        "framework": "onnx",
        "tags": ["medical", "oncology", "breast-cancer", "sklearn", "logistic-regression"],
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, features]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, 2]},
        ],
        "sample_input": {"input": x_test[:1].tolist()},
        "metrics": {"accuracy": round(accuracy, 4), "test_rows": int(len(y_test))},
        "training_data": "sklearn.datasets.load_breast_cancer, 75% stratified split (seed 7)",
        "licence": "Research use; no clinical decisions.",
    }
    return SampleModel(path, x_test, y_test, accuracy, metadata)
