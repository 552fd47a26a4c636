"""Small ONNX models made on the spot for relayer tests and the benchmark (no downloads)."""

from __future__ import annotations

import numpy as np


def iris_classifier() -> tuple[bytes, np.ndarray]:
    """A logistic regression on scikit-learn's bundled iris data, exported with skl2onnx.

    Returns:
        The ONNX bytes (input ``input``: float32 [N, 4]; outputs ``label``, ``probabilities``)
        and a few sample rows.
    """
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(
        model,
        x[:1],
        options={id(model): {"zipmap": False}},
        initial_types=None,
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onx.graph.input[0].name = "input"
    for node in onx.graph.node:
        node.input[:] = ["input" if i == "X" else i for i in node.input]
    return onx.SerializeToString(), x[:5]


def add_model(width: int = 4, initializer_floats: int = 0) -> bytes:
    """``y = x + c`` over float32 [N, width]; ``initializer_floats`` pads the model with a big
    unused-for-output initializer (to make a model of a chosen size for cold-start tests)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Add", ["x", "c"], ["y"])]
    inits = [numpy_helper.from_array(np.arange(width, dtype=np.float32), "c")]
    if initializer_floats:
        big = np.zeros(initializer_floats, dtype=np.float32)
        inits.append(numpy_helper.from_array(big, "big"))
        nodes.append(helper.make_node("ReduceSum", ["big"], ["bigsum"], keepdims=0))
        nodes.append(helper.make_node("Mul", ["bigsum", "zero"], ["nothing"]))
        inits.append(numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"))
        nodes.append(helper.make_node("Add", ["y0", "nothing"], ["y"]))
        nodes[0] = helper.make_node("Add", ["x", "c"], ["y0"])
    graph = helper.make_graph(
        nodes,
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def slow_model(size: int = 1024, repeats: int = 60) -> bytes:
    """A model that takes a noticeable time per call (``repeats`` chained MatMuls of size^2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.eye(size, dtype=np.float32), "w")
    nodes = []
    previous = "x"
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"h{i}"]))
        previous = f"h{i}"
    nodes.append(helper.make_node("Identity", [previous], ["y"]))
    graph = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
