"""Which ONNX graphs can be proven, and the provable sample model.

ezkl reads standard ONNX operators only: scikit-learn's ML-domain operators (``LinearClassifier``,
``ZipMap``) are refused, so a provable model re-expresses them (a logistic regression becomes
``Sub`` and ``Mul`` for the scaler and a ``Gemm`` for the linear layer). The circuit proves the
logits; Softmax is applied outside it (a Softmax in the circuit costs lookup tables and time for
no extra assurance: the probabilities are a public function of the proven logits).

:func:`check_provable` is what publishing runs before any proving work: operators on the allow list,
one input, and at most :data:`MAX_PARAMETERS` weights, so a model too large to prove on the
relayer is refused at publish with the limit named instead of failing hours later in a worker.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daimm.errors import CircuitTooLargeError, ConfigError, ModelValidationError

__all__ = [
    "MAX_PARAMETERS",
    "PROVABLE_OPS",
    "PROVABLE_SAMPLE_FILE",
    "CircuitShape",
    "ProvableSample",
    "check_provable",
    "train_provable_sample",
]

#: ONNX operators the circuits here are built from (all in the default domain).
PROVABLE_OPS = frozenset(
    {"Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Reshape", "Flatten", "Conv", "Identity"}
)

#: Most weights (tensor elements among the initializers) a provable model may have. A 30-feature
#: logistic regression has 92; a digits MLP about 10,000 (proofs of 50-100 s, 2-4 GB here).
MAX_PARAMETERS = 20_000

#: File name of the provable sample inside the folder given to :func:`train_provable_sample`.
PROVABLE_SAMPLE_FILE = "breast_cancer_provable.onnx"


@dataclass(frozen=True)
class CircuitShape:
    """What :func:`check_provable` found.

    Attributes:
        input_name: The graph's single input.
        features: Elements of one input row.
        outputs: Elements of one output row.
        parameters: Weights (initializer elements).
    """

    input_name: str
    features: int
    outputs: int
    parameters: int


@dataclass(frozen=True)
class ProvableSample:
    """The provable sample: the same logistic regression as :mod:`daimm.samples`, in Gemm form.

    Attributes:
        path: The ONNX file (input ``input`` [1, 30] float32, output ``logits`` [1, 2]).
        x_test: Held-out inputs, float32, shape (rows, 30).
        y_test: Their labels.
        calibration: Rows used to calibrate the circuit's scales, float32 (rows, 30).
    """

    path: Path
    x_test: Any
    y_test: Any
    calibration: Any


def _dims(value_info: Any) -> list[int]:
    return [
        d.dim_value if d.HasField("dim_value") else 1 for d in value_info.type.tensor_type.shape.dim
    ]


def check_provable(path: str | Path, *, max_parameters: int = MAX_PARAMETERS) -> CircuitShape:
    """Check that the ONNX model at ``path`` can be proven here.

    Raises:
        ModelValidationError: An operator off :data:`PROVABLE_OPS` (named), or not one input and
            one output.
        CircuitTooLargeError: More than ``max_parameters`` weights (both numbers named).
    """
    from math import prod

    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    refused = sorted(
        {n.op_type for n in graph.node if n.domain not in ("", "ai.onnx")}
        | {n.op_type for n in graph.node if n.op_type not in PROVABLE_OPS}
    )
    if refused:
        raise ModelValidationError(
            f"the model uses operators a proof cannot express: {', '.join(refused)};"
            f" re-express it with {', '.join(sorted(PROVABLE_OPS))} (docs/ZK.md)"
        )
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ModelValidationError(
            f"a provable model has one input and one output, not {len(inputs)} and"
            f" {len(graph.output)}"
        )
    parameters = sum(prod(i.dims) for i in graph.initializer)
    if parameters > max_parameters:
        raise CircuitTooLargeError(
            f"the model has {parameters:,} weights; a provable model may have at most"
            f" {max_parameters:,} (MAX_PARAMETERS): publish it without --provable, or shrink it"
        )
    return CircuitShape(
        inputs[0].name, prod(_dims(inputs[0])), prod(_dims(graph.output[0])), parameters
    )


def train_provable_sample(folder: str | Path, *, calibration_rows: int = 20) -> ProvableSample:
    """Train the sample logistic regression and write it as standard ONNX operators.

    The pipeline and split are :mod:`daimm.samples`' (deterministic); the graph is
    ``logits = ((x - mean) * (1 / std)) @ W + b`` with ``W = [-w/2, w/2]`` and ``b = [-c/2, c/2]``,
    so ``softmax(logits)`` equals the classifier's ``[1 - sigmoid(z), sigmoid(z)]``.

    Raises:
        ConfigError: scikit-learn is not installed.
    """
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        from sklearn.datasets import load_breast_cancer
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise ConfigError(
            f"the provable sample needs scikit-learn ({exc.name} is missing): run `make setup`"
        ) from exc

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=7, stratify=data.target
    )
    scaler = StandardScaler().fit(x_train)
    with warnings.catch_warnings():
        # lbfgs may stop short of its tolerance on this small set; the sample's arg-max agreement
        # with ONNX Runtime is what the tests check, and the warning broke `daimm up`'s output.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), y_train)
    w = classifier.coef_[0].astype(np.float32)
    c = np.float32(classifier.intercept_[0])
    weights = np.stack([-w / 2, w / 2], axis=1).astype(np.float32)  # (30, 2)
    bias = np.array([-c / 2, c / 2], dtype=np.float32)
    features = x.shape[1]
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["input", "mean"], ["centred"]),
            helper.make_node("Mul", ["centred", "inv_std"], ["scaled"]),
            helper.make_node("Gemm", ["scaled", "weights", "bias"], ["logits"]),
        ],
        "breast_cancer_provable",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        [
            numpy_helper.from_array(scaler.mean_.astype(np.float32).reshape(1, -1), "mean"),
            numpy_helper.from_array(
                (1 / scaler.scale_).astype(np.float32).reshape(1, -1), "inv_std"
            ),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(folder) / PROVABLE_SAMPLE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return ProvableSample(path, x_test, y_test, x_train[:calibration_rows])
