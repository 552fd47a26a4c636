"""Train the sample models daimm ships, and export each to ONNX with its model card.

`scripts/build_samples.py` runs :func:`build_samples` into this package's folder;
``tests/unit/test_samples.py`` runs it into a temporary one and checks the shipped files match. The
demo narrates :func:`train_sample_model` as "a creator trains a model".

Everything is offline and deterministic: scikit-learn's bundled data sets (breast cancer, the 8x8
digits images), the review sentences in ``reviews.tsv`` beside this file, fixed seeds. scikit-learn
and skl2onnx are test dependencies (``pip install 'daimm[test]'``, which `make setup` does); they
are imported only here, and only when a model is trained.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daimm.errors import ConfigError
from daimm.samples import CARD_SUFFIX, SAMPLE_KEYS

__all__ = [
    "SAMPLE_FILE",
    "SampleModel",
    "build_samples",
    "png_bytes",
    "train_digits_model",
    "train_sample_model",
    "train_sentiment_model",
]

#: File name of the tabular model inside the folder given to :func:`train_sample_model`.
SAMPLE_FILE = "breast_cancer.onnx"
#: The review sentences of the text sample: ``label<TAB>sentence`` a line.
CORPUS = Path(__file__).with_name("reviews.tsv")
#: Target opsets of every exported model (ONNX Runtime 1.17+ reads them).
OPSETS = {"": 17, "ai.onnx.ml": 3}
#: Words the text sample ignores: they say nothing of sentiment and, in a small corpus, only
#: echo which sentences were paired. (scikit-learn's English list would drop "not" and "never".)
STOP_WORDS = tuple(
    "a an the and or but of to in on at for with by from as is are was were be been it its this"  # noqa: SIM905
    " that these those i we you he she they me my our your his her their them us am so very"
    " really".split()
)
#: The digits images hold 0..16 (ink counts of 4x4 blocks of a 32x32 bitmap).
DIGITS_MAX = 16


@dataclass(frozen=True)
class SampleModel:
    """A trained sample model.

    Attributes:
        path: The ONNX file.
        x_test: Held-out inputs (float32 rows, images or strings, as the model reads them).
        y_test: Their labels (class indices).
        accuracy: Accuracy on the held-out rows, 0..1.
        metadata: The model card (name, pipeline tag, tensors, labels, widget examples...).
    """

    path: Path
    x_test: Any
    y_test: Any
    accuracy: float
    metadata: dict[str, Any]


def build_samples(folder: str | Path) -> list[Path]:
    """Train every shipped sample; write ``<key>.onnx`` and ``<key>.card.json`` into ``folder``.

    Returns:
        The files written.

    Raises:
        ConfigError: scikit-learn or skl2onnx is not installed.
    """
    folder = Path(folder)
    trainers = {
        "breast_cancer": train_sample_model,
        "digits": train_digits_model,
        "sentiment": train_sentiment_model,
    }
    assert tuple(trainers) == SAMPLE_KEYS
    written = []
    for key, train in trainers.items():
        sample = train(folder)
        card = folder / f"{key}{CARD_SUFFIX}"
        card.write_text(json.dumps(sample.metadata, indent=1, ensure_ascii=False) + "\n")
        written += [sample.path, card]
    return written


def _requirements() -> Any:
    try:
        import numpy as np
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"training the sample models needs scikit-learn and skl2onnx ({exc.name} is missing):"
            " run `make setup`, or `pip install 'daimm[test]'`; `daimm up` uses the shipped ones"
        ) from exc
    return np


def _write(onx: Any, path: Path) -> Path:
    # skl2onnx lists the opsets in set order (it changes with the hash seed): sort them.
    opsets = sorted(onx.opset_import, key=lambda o: o.domain)
    del onx.opset_import[:]
    onx.opset_import.extend(opsets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    return path


def _rename_input(onx: Any, old: str, new: str) -> None:
    onx.graph.input[0].name = new
    for node in onx.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]


def train_sample_model(folder: str | Path) -> SampleModel:
    """Train a logistic regression on scikit-learn's breast-cancer data; export it to ONNX.

    Deterministic: the same split (seed 7) and solver give the same model on every run.

    Args:
        folder: Where the ONNX file is written (as :data:`SAMPLE_FILE`).

    Raises:
        ConfigError: scikit-learn or skl2onnx is not installed.
    """
    np = _requirements()
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

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
        target_opset=OPSETS,
    )
    _rename_input(onx, "X", "input")
    path = _write(onx, Path(folder) / SAMPLE_FILE)
    features = [str(name) for name in data.feature_names]
    first = [round(float(v), 4) for v in x_test[0]]
    metadata = {
        "name": "Breast cancer tumour classifier",
        "description": "Logistic regression on the Wisconsin diagnostic breast cancer data set"
        " (30 cell-nucleus features): predicts malignant or benign with probabilities.",
        "pipeline_tag": "tabular-classification",
        "task": "tabular-classification",
        "framework": "onnx",
        "tags": ["medical", "oncology", "breast-cancer", "sklearn", "logistic-regression"],
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, len(features)]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, 2]},
        ],
        "labels": [str(name) for name in data.target_names],
        "features": features,
        "postprocessing": {"scores_output": "probabilities", "function": "none"},
        "sample_input": {"input": x_test[:2].tolist()},
        "widget": [
            {
                "example_title": f"held-out row 1 ({data.target_names[y_test[0]]})",
                "structured_data": dict(zip(features, first, strict=True)),
            }
        ],
        "metrics": [
            {
                "type": "accuracy",
                "value": round(accuracy, 4),
                "dataset": f"breast cancer, {len(y_test)} held-out rows",
            }
        ],
        "training_data": "sklearn.datasets.load_breast_cancer, 75% stratified split (seed 7)",
        "licence": "Research use; no clinical decisions.",
    }
    return SampleModel(path, x_test, y_test, accuracy, metadata)


def png_bytes(pixels: Any) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array, byte for byte the same on every machine.

    NOTE: written by hand (zlib level 9, no filter) rather than by Pillow, whose encoder settings
    and chunks vary between versions: the cards embed these bytes and a test compares them.
    """
    height, width = pixels.shape
    raw = b"".join(b"\x00" + bytes(row) for row in pixels.astype("uint8").tolist())

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def digit_picture(image: Any, scale: int = 4) -> bytes:
    """A digits image (8x8, 0..16) as a PNG a person would draw: dark ink on white, enlarged."""
    np = _requirements()
    grey = 255 - np.rint(np.asarray(image, dtype=np.float64) * 255 / DIGITS_MAX)
    big = np.kron(grey, np.ones((scale, scale)))
    return png_bytes(big.astype(np.uint8))


def train_digits_model(folder: str | Path) -> SampleModel:
    """Train a small neural network on scikit-learn's 8x8 digits images; export it to ONNX.

    The ONNX model reads ``image`` as float32 ``[N, 1, 8, 8]`` (NCHW, one grey channel, 0..16
    with ink high, as the data set holds it); the card's preprocessing tells the relayer how a
    picture of dark ink on a light background becomes that tensor.

    Raises:
        ConfigError: scikit-learn or skl2onnx is not installed.
    """
    np = _requirements()
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    data = load_digits()
    x = data.images.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, data.target, test_size=0.25, random_state=7, stratify=data.target
    )
    flat = x_train.reshape(len(x_train), -1) / DIGITS_MAX
    mlp = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=600, random_state=7)
    mlp.fit(flat, y_train)
    accuracy = float(mlp.score(x_test.reshape(len(x_test), -1) / DIGITS_MAX, y_test))
    onx = to_onnx(mlp, flat[:1], options={id(mlp): {"zipmap": False}}, target_opset=OPSETS)
    # The network reads 0..1; the picture arrives as [N, 1, 8, 8] in 0..16: reshape and divide.
    graph = onx.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([-1, 64], dtype=np.int64), "flat_shape"),
            numpy_helper.from_array(np.array(DIGITS_MAX, dtype=np.float32), "digits_max"),
        ]
    )
    prologue = [
        helper.make_node("Reshape", ["image", "flat_shape"], ["image_flat"], name="flatten"),
        helper.make_node("Div", ["image_flat", "digits_max"], ["X"], name="to_unit"),
    ]
    nodes = prologue + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, 8, 8]))
    path = _write(onx, Path(folder) / "digits.onnx")
    labels = [str(int(name)) for name in data.target_names]
    examples = []
    for digit in (3, 7):
        index = int(np.flatnonzero(y_test == digit)[0])
        uri = "data:image/png;base64," + base64.b64encode(digit_picture(x_test[index])).decode()
        examples.append({"example_title": f"a handwritten {digit}", "src": uri})
    metadata = {
        "name": "Handwritten digit classifier",
        "description": "A small neural network (one hidden layer of 64) trained on the 8x8"
        " handwritten digits images that ship with scikit-learn. Give it a picture of one digit,"
        " dark ink on a light background, filling most of the frame: it answers 0 to 9.",
        "pipeline_tag": "image-classification",
        "task": "image-classification",
        "framework": "onnx",
        "tags": ["vision", "digits", "mnist-like", "sklearn", "mlp"],
        "inputs": [
            {
                "name": "image",
                "dtype": "float32",
                "shape": [None, 1, 8, 8],
                "preprocessing": {
                    "type": "image",
                    "size": [8, 8],
                    "channels": 1,
                    "layout": "NCHW",
                    "resize": "stretch",
                    "invert": True,
                    "scale": DIGITS_MAX / 255,
                },
            }
        ],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, len(labels)]},
        ],
        "labels": labels,
        "postprocessing": {"scores_output": "probabilities", "function": "none"},
        "sample_input": {"image": x_test[:1, None].tolist()},
        "widget": examples,
        "metrics": [
            {
                "type": "accuracy",
                "value": round(accuracy, 4),
                "dataset": f"scikit-learn digits, {len(y_test)} held-out images",
            }
        ],
        "training_data": "sklearn.datasets.load_digits (1,797 8x8 images), 75% stratified split"
        " (seed 7)",
        "licence": "CC BY 4.0 (the UCI optical digits data set); the model: MIT.",
    }
    return SampleModel(path, x_test[:, None], y_test, accuracy, metadata)


def read_corpus(path: Path = CORPUS) -> tuple[list[str], list[str]]:
    """The review sentences and their labels (comment and blank lines skipped)."""
    texts, labels = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, text = line.split("\t", 1)
        labels.append(label)
        texts.append(text)
    return texts, labels


def train_sentiment_model(folder: str | Path) -> SampleModel:
    """Train TF-IDF + logistic regression on the review sentences; export it to ONNX.

    The ONNX model reads ``text`` as a string tensor ``[N, 1]``: ONNX Runtime lower-cases,
    tokenises and weighs the words itself, so the relayer passes the sentence as it is.

    Raises:
        ConfigError: scikit-learn or skl2onnx is not installed.
    """
    np = _requirements()
    from onnx import helper
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    texts, names = read_corpus()
    labels = sorted(set(names))
    y = np.array([labels.index(name) for name in names])
    x_train, x_test, y_train, y_test = train_test_split(
        texts, y, test_size=0.2, random_state=7, stratify=y
    )
    pipeline = make_pipeline(
        TfidfVectorizer(stop_words=list(STOP_WORDS)),
        LogisticRegression(C=10.0, max_iter=2000),
    )
    pipeline.fit(x_train, y_train)
    accuracy = float(pipeline.score(x_test, y_test))
    onx = to_onnx(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=OPSETS,
    )
    # NOTE: skl2onnx's StringNormalizer asks for the en_US.UTF-8 locale, which ONNX Runtime
    # fails to load where it is not installed (slim containers); "C" lower-cases ASCII anywhere.
    # skl2onnx lists the stop words in set order, which changes with the process's hash seed: sort
    # them so every build writes the same bytes.
    for node in onx.graph.node:
        if node.op_type == "StringNormalizer":
            node.attribute.append(helper.make_attribute("locale", "C"))
            for attribute in node.attribute:
                if attribute.name == "stopwords":
                    attribute.strings[:] = sorted(attribute.strings)
    path = _write(onx, Path(folder) / "sentiment.onnx")
    metadata = {
        "name": "Review sentiment classifier",
        "description": "TF-IDF over words with logistic regression, trained on"
        f" {len(texts)} short English review sentences (products, films, food, travel) kept in"
        " daimm's repository: says whether a sentence is positive or negative.",
        "pipeline_tag": "text-classification",
        "task": "text-classification",
        "framework": "onnx",
        "tags": ["nlp", "sentiment", "english", "sklearn", "tf-idf", "logistic-regression"],
        "inputs": [
            {
                "name": "text",
                "dtype": "string",
                "shape": [None, 1],
                "preprocessing": {"type": "text", "mode": "string", "max_chars": 2000},
            }
        ],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, len(labels)]},
        ],
        "labels": labels,
        "postprocessing": {"scores_output": "probabilities", "function": "none"},
        "sample_input": {"text": [["The staff were friendly and the food was delicious"]]},
        "widget": [
            {"example_title": "a happy customer", "text": "I love it, the service was wonderful"},
            {"example_title": "an unhappy one", "text": "The room was dirty and the staff rude"},
        ],
        "metrics": [
            {
                "type": "accuracy",
                "value": round(accuracy, 4),
                "dataset": f"review sentences, {len(y_test)} held out",
            }
        ],
        "training_data": f"src/daimm/samples/reviews.tsv ({len(texts)} sentences), 80% stratified"
        " split (seed 7)",
        "licence": "MIT",
    }
    return SampleModel(path, x_test, y_test, accuracy, metadata)
