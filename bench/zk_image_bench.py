"""Zero-knowledge proofs of a small image model: a digits MLP, measured like the tabular sample.

Run from the repository root (once; a proof takes minutes and gigabytes here):

    .venv/bin/python bench/zk_image_bench.py [--proofs 3] [--hidden 32] [--max-logrows 17]

The model is scikit-learn's 8x8 digits classified by an ``MLPClassifier`` (64 -> hidden -> 10,
ReLU), re-expressed with standard ONNX operators (``Mul`` for the pixel scaling, ``Gemm``,
``Relu``, ``Gemm``) as a provable model must be (docs/ZK.md); its weights are hashed into the
circuit like every provable model's. Merges the figures into ``bench/results/zk.json`` under the
key ``image`` (beside ``tabular``, which ``bench/zk_bench.py`` writes), with the same fields.
The SRS is generated locally: fine for timings, never for real proofs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from zk_bench import RESULTS, measure

from daimm.zk import build_circuit, generate_test_srs


def digits_mlp(folder: Path, hidden: int) -> tuple[Path, Any, Any, float]:
    """Train the digits MLP, write it as Mul/Gemm/Relu/Gemm; return the file, rows, accuracy."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    data = load_digits()
    x = data.data.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=7, stratify=data.target
    )
    mlp = MLPClassifier((hidden,), max_iter=600, random_state=7).fit(x_train / 16, y_train)
    accuracy = float(mlp.score(x_test / 16, y_test))
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["input", "pixel_scale"], ["scaled"]),
            helper.make_node("Gemm", ["scaled", "w1", "b1"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["activated"]),
            helper.make_node("Gemm", ["activated", "w2", "b2"], ["logits"]),
        ],
        "digits_mlp_provable",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [
            numpy_helper.from_array(np.array([1 / 16], dtype=np.float32), "pixel_scale"),
            numpy_helper.from_array(w1.astype(np.float32), "w1"),
            numpy_helper.from_array(b1.astype(np.float32), "b1"),
            numpy_helper.from_array(w2.astype(np.float32), "w2"),
            numpy_helper.from_array(b2.astype(np.float32), "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / "digits_mlp_provable.onnx"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path, x_train[:20], x_test, accuracy


def image(work: Path, proofs: int, hidden: int, max_logrows: int) -> dict[str, Any]:
    path, calibration, x_test, accuracy = digits_mlp(work / "model", hidden)
    srs = work / f"test{max_logrows}.srs"
    if not srs.is_file():
        generate_test_srs(srs, max_logrows, timeout_s=1800)
    started = time.perf_counter()
    circuit = build_circuit(
        path,
        calibration,
        work / "circuit",
        srs,
        allow_test_srs=True,
        max_logrows=max_logrows,
        timeout_s=3600,
    )
    setup_s = time.perf_counter() - started
    print(f"setup {setup_s:.1f} s, logrows {circuit.logrows}", flush=True)
    return {
        "model": f"digits MLP 64-{hidden}-10 (Mul, Gemm, Relu, Gemm)",
        "parameters": 1 + 64 * hidden + hidden + hidden * 10 + 10,
        "accuracy": round(accuracy, 4),
        **measure(circuit, x_test, srs, work, setup_s, proofs, timeout_s=3600),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=32)
    # NOTE: the SRS is made for exactly this many rows: the 64-32-10 MLP needs 2**17 (its weights'
    # Poseidon hash), and a larger SRS, which ezkl downsizes at every step, made setup far slower.
    parser.add_argument("--max-logrows", type=int, default=17)
    parser.add_argument("--work", type=Path, default=Path("/tmp/daimm-zk-image"))
    args = parser.parse_args()
    figures = image(args.work, args.proofs, args.hidden, args.max_logrows)
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results["image"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
