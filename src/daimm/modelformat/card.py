"""The model card: the metadata document a creator publishes beside an ONNX model.

Its format is the JSON Schema ``card.schema.json`` in this package (rendered in
``docs/MODEL-CARD.md``); :func:`parse_card` checks a document against it and then against
itself (names unique, the sample names every input, preprocessing fits its input's shape), and
returns a :class:`ModelCard`. The CLI, publishing, the catalog, the relayer and the pages all
read cards through :func:`parse_card`, so they agree on what a valid card is. Cards written
before the schema (``task``, ``metrics`` as an object, no ``pipeline_tag``) stay valid.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from daimm.errors import ValidationError
from daimm.modelformat.tensors import DTYPES, TensorSpec

__all__ = [
    "CLASSIFICATION_TAGS",
    "PIPELINE_TAGS",
    "PLACEHOLDER",
    "CardError",
    "ImagePreprocessing",
    "ModelCard",
    "TextPreprocessing",
    "card_schema",
    "load_card",
    "parse_card",
]

#: The tasks a card may name (Hugging Face's ``pipeline_tag`` values daimm serves).
PIPELINE_TAGS = (
    "tabular-classification",
    "tabular-regression",
    "image-classification",
    "text-classification",
)
#: Tasks whose answers carry ``predictions`` (``[{label, score}]``) when the card has labels.
CLASSIFICATION_TAGS = frozenset(t for t in PIPELINE_TAGS if t.endswith("-classification"))
#: How ``daimm model init`` marks a field only the creator can fill; publishing refuses it.
PLACEHOLDER = "FILL IN"


class CardError(ValidationError):
    """A model card is malformed; the message names the field.

    Attributes:
        field: The path of the offending field, e.g. ``inputs[0].preprocessing.layout``.
    """

    def __init__(self, field_path: str, problem: str) -> None:
        self.field = field_path
        where = f"card field '{field_path}'" if field_path else "the card"
        super().__init__(f"{where}: {problem}")


@functools.cache
def card_schema() -> dict[str, Any]:
    """The card's JSON Schema (draft 2020-12), as shipped in the package."""
    text = resources.files("daimm.modelformat").joinpath("card.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(card_schema())


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an image becomes the input tensor: ``((255 - p if invert else p) * scale - mean) / std``.

    Attributes:
        size: ``(height, width)`` in pixels after resizing.
        channels: 1 (grayscale) or 3 (RGB).
        layout: ``NCHW`` or ``NHWC``.
        resize: ``stretch`` (to the size), ``center_crop`` (scale the short side, crop the
            middle) or ``pad`` (fit inside, pad with black).
        invert: Use ``255 - p`` (white-on-black digits drawn black-on-white).
        scale: Multiplies the 0..255 pixel values.
        mean: Subtracted per channel (one value or one per channel), after scaling.
        std: Divides per channel, after subtracting the mean.
    """

    size: tuple[int, int]
    channels: int
    layout: str
    resize: str = "stretch"
    invert: bool = False
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def tensor_shape(self) -> tuple[int, int, int, int]:
        """The tensor shape of one image (batch 1)."""
        h, w = self.size
        if self.layout == "NCHW":
            return (1, self.channels, h, w)
        return (1, h, w, self.channels)

    def to_json(self) -> dict[str, Any]:
        """As written in a card."""
        return {
            "type": "image", "size": list(self.size), "channels": self.channels,
            "layout": self.layout, "resize": self.resize, "invert": self.invert,
            "scale": self.scale, "mean": list(self.mean), "std": list(self.std),
        }  # fmt: skip


@dataclass(frozen=True)
class TextPreprocessing:
    """How a string becomes the input tensor(s).

    Attributes:
        mode: ``string`` (the model takes strings itself) or ``tokenizer`` (a Hugging Face
            ``tokenizers`` file stored by CID beside the weights gives token ids).
        max_chars: Longest accepted string, in characters.
        tokenizer_cid: The tokenizer file's CID (``tokenizer`` mode).
        tokenizer_sha256: Its SHA-256, hex (optional; checked when given).
        max_length: Token ids are truncated (and padded) to this length.
        attention_mask: Name of the input that takes the attention mask, if any.
        token_type_ids: Name of the input that takes the token type ids, if any.
    """

    mode: str
    max_chars: int = 10_000
    tokenizer_cid: str | None = None
    tokenizer_sha256: str | None = None
    max_length: int = 128
    attention_mask: str | None = None
    token_type_ids: str | None = None


Preprocessing = ImagePreprocessing | TextPreprocessing


@dataclass(frozen=True)
class ModelCard:
    """A checked model card.

    Attributes:
        document: The whole JSON object as written (unknown fields are kept).
        name: The model's name.
        pipeline_tag: Its task (``pipeline_tag``, or a legacy ``task`` that is one), or None.
        inputs: Its input tensors.
        outputs: Its output tensors.
        sample_input: Input name -> nested lists, run once to validate the model.
        labels: Class names in score-column order (empty if none).
        features: Tabular feature names in column order (empty if none).
        preprocessing: Input name -> how images or strings become that input.
        widget: The examples a page offers.
        metrics: ``{"type", "value", "dataset"?}`` each (a legacy object is converted).
        scores_output: The output holding class scores (None: found by rule, see postprocess).
        score_function: ``auto``, ``softmax``, ``sigmoid`` or ``none``.
    """

    document: Mapping[str, Any]
    name: str
    pipeline_tag: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sample_input: Mapping[str, Any]
    labels: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    preprocessing: Mapping[str, Preprocessing] = field(default_factory=dict)
    widget: tuple[Mapping[str, Any], ...] = ()
    metrics: tuple[Mapping[str, Any], ...] = ()
    scores_output: str | None = None
    score_function: str = "auto"

    @property
    def image_input(self) -> str | None:
        """The input that takes an image, if any."""
        return next(
            (n for n, p in self.preprocessing.items() if isinstance(p, ImagePreprocessing)), None
        )

    @property
    def text_input(self) -> str | None:
        """The input that takes a string, if any."""
        return next(
            (n for n, p in self.preprocessing.items() if isinstance(p, TextPreprocessing)), None
        )

    @property
    def features_input(self) -> str | None:
        """The 2-D input whose columns are :attr:`features`, if the card names features."""
        if not self.features:
            return None
        return _features_input(self.inputs, self.preprocessing, len(self.features))

    @property
    def is_classifier(self) -> bool:
        """Whether answers carry labelled ``predictions``."""
        return self.pipeline_tag in CLASSIFICATION_TAGS and bool(self.labels)

    def placeholders(self) -> list[str]:
        """Fields still holding ``daimm model init``'s :data:`PLACEHOLDER` marker."""
        found: list[str] = []

        def walk(value: Any, path: str) -> None:
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                found.append(path)
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    walk(item, f"{path}.{key}" if path else str(key))
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    walk(item, f"{path}[{i}]")

        walk(dict(self.document), "")
        return found

    def require_filled(self) -> None:
        """Refuse a card that still holds ``daimm model init``'s :data:`PLACEHOLDER` marker.

        Raises:
            CardError: Naming the first such field (and how many more there are).
        """
        left = self.placeholders()
        if left:
            raise CardError(
                left[0],
                f"still holds `daimm model init`'s {PLACEHOLDER!r} marker; write the real value"
                + (f" (and in {len(left) - 1} more field(s))" if len(left) > 1 else ""),
            )

    def summary(self) -> dict[str, Any]:
        """What a page or the catalog shows: task, labels, features, widget, metrics, inputs."""
        return {
            "pipeline_tag": self.pipeline_tag,
            "labels": list(self.labels),
            "features": list(self.features),
            "image_input": self.image_input,
            "text_input": self.text_input,
            "features_input": self.features_input,
            "preprocessing": {
                n: p.to_json() if isinstance(p, ImagePreprocessing) else {"type": "text",
                                                                          "mode": p.mode}
                for n, p in self.preprocessing.items()
            },
            "widget": [dict(w) for w in self.widget],
            "metrics": [dict(m) for m in self.metrics],
            "inputs": [s.to_card() for s in self.inputs],
            "outputs": [s.to_card() for s in self.outputs],
        }  # fmt: skip


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _features_input(
    inputs: tuple[TensorSpec, ...], preprocessing: Mapping[str, Any], count: int
) -> str | None:
    candidates = [
        s
        for s in inputs
        if s.name not in preprocessing
        and s.dtype not in (None, "string", "bool")
        and len(s.shape) == 2
        and s.shape[1] in (None, count)
    ]
    return candidates[0].name if len(candidates) == 1 else None


def _image(where: str, spec: TensorSpec, raw: Mapping[str, Any]) -> ImagePreprocessing:
    channels = int(raw["channels"])
    mean = tuple(float(v) for v in raw.get("mean", [0.0]))
    std = tuple(float(v) for v in raw.get("std", [1.0]))
    for key, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise CardError(f"{where}.{key}", f"give 1 or {channels} values (one per channel)")
    prep = ImagePreprocessing(
        size=(int(raw["size"][0]), int(raw["size"][1])),
        channels=channels,
        layout=str(raw["layout"]),
        resize=str(raw.get("resize", "stretch")),
        invert=bool(raw.get("invert", False)),
        scale=float(raw.get("scale", 1 / 255)),
        mean=mean,
        std=std,
    )
    if spec.dtype not in ("float32", "float64", "float16", "uint8"):
        raise CardError(where, f"an image input must be float or uint8, not {spec.dtype}")
    want = prep.tensor_shape()
    if len(spec.shape) != 4 or any(
        d is not None and d != w for d, w in zip(spec.shape[1:], want[1:], strict=True)
    ):
        raise CardError(
            where,
            f"size {list(prep.size)}, {channels} channel(s), {prep.layout} make a tensor of shape"
            f" {['*', *want[1:]]}, but input {spec.name!r} has shape"
            f" {['*' if d is None else d for d in spec.shape]}",
        )
    return prep


def _text(
    where: str, spec: TensorSpec, raw: Mapping[str, Any], names: set[str]
) -> TextPreprocessing:
    tokenizer = raw.get("tokenizer") or {}
    prep = TextPreprocessing(
        mode=str(raw["mode"]),
        max_chars=int(raw.get("max_chars", 10_000)),
        tokenizer_cid=tokenizer.get("cid"),
        tokenizer_sha256=tokenizer.get("sha256"),
        max_length=int(raw.get("max_length", 128)),
        attention_mask=raw.get("attention_mask"),
        token_type_ids=raw.get("token_type_ids"),
    )
    if prep.mode == "string":
        if spec.dtype != "string":
            raise CardError(where, f"mode 'string' needs a string input, not {spec.dtype}")
        if len(spec.shape) not in (1, 2) or any(d not in (None, 1) for d in spec.shape):
            raise CardError(where, "mode 'string' needs an input of shape [1] or [1, 1]")
        return prep
    if prep.tokenizer_cid is None:
        raise CardError(f"{where}.tokenizer", "mode 'tokenizer' needs {\"cid\": ...}")
    if spec.dtype not in ("int64", "int32"):
        raise CardError(where, f"token ids must be int64 or int32, not {spec.dtype}")
    for key in ("attention_mask", "token_type_ids"):
        other = getattr(prep, key)
        if other is not None and other not in names:
            raise CardError(f"{where}.{key}", f"the card has no input {other!r}")
    return prep


def parse_card(document: Any, *, stored: bool = False) -> ModelCard:
    """Check a model card against the schema and itself.

    Args:
        document: The parsed JSON document.
        stored: The card was read back from storage, so its ``daimm`` section (written by daimm
            at publishing) is allowed; a creator's card must not have one.

    Raises:
        CardError: A missing, mistyped or inconsistent field, named.
    """
    if not isinstance(document, dict):
        raise CardError("", "must be a JSON object")
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        import jsonschema.exceptions

        error = jsonschema.exceptions.best_match(errors)
        if error.validator in ("oneOf", "anyOf") and error.context:
            error = max(error.context, key=lambda e: len(e.absolute_path))
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = next(k for k in error.validator_value if k not in error.instance)
            raise CardError(_path([*path, missing]), "is required and missing")
        raise CardError(_path(path), error.message)
    if "daimm" in document and not stored:
        raise CardError("daimm", "must not be written by the creator: daimm writes it")
    inputs = tuple(TensorSpec.of(i["name"], i["dtype"], i["shape"]) for i in document["inputs"])
    outputs = tuple(TensorSpec.of(o["name"], o["dtype"], o["shape"]) for o in document["outputs"])
    for key, specs in (("inputs", inputs), ("outputs", outputs)):
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise CardError(key, "names a tensor twice")
    sample = document["sample_input"]
    if set(sample) != {s.name for s in inputs}:
        raise CardError(
            "sample_input", f"needs one value per input: {', '.join(s.name for s in inputs)}"
        )
    tag = document.get("pipeline_tag")
    if tag is None and str(document.get("task", "")).lower() in PIPELINE_TAGS:
        tag = str(document["task"]).lower()
    input_names = {s.name for s in inputs}
    preprocessing: dict[str, Preprocessing] = {}
    for i, (raw, spec) in enumerate(zip(document["inputs"], inputs, strict=True)):
        prep = raw.get("preprocessing")
        where = f"inputs[{i}].preprocessing"
        if prep is None:
            continue
        if prep["type"] == "image":
            preprocessing[spec.name] = _image(where, spec, prep)
        else:
            preprocessing[spec.name] = _text(where, spec, prep, input_names)
    features = tuple(
        f if isinstance(f, str) else str(f["name"]) for f in document.get("features", [])
    )
    if len(set(features)) != len(features):
        raise CardError("features", "names a feature twice")
    if features and _features_input(inputs, preprocessing, len(features)) is None:
        raise CardError(
            "features",
            f"{len(features)} features need exactly one numeric input of shape"
            f" [*, {len(features)}]",
        )
    post = document.get("postprocessing", {})
    scores_output = post.get("scores_output")
    if scores_output is not None and scores_output not in {s.name for s in outputs}:
        raise CardError("postprocessing.scores_output", f"the card has no output {scores_output!r}")
    labels = tuple(document.get("labels", []))
    metrics = document.get("metrics", [])
    if isinstance(metrics, dict):
        metrics = [{"type": k, "value": v} for k, v in metrics.items()]
    return ModelCard(
        document=document,
        name=document["name"].strip(),
        pipeline_tag=tag,
        inputs=inputs,
        outputs=outputs,
        sample_input=sample,
        labels=labels,
        features=features,
        preprocessing=preprocessing,
        widget=tuple(document.get("widget", [])),
        metrics=tuple(metrics),
        scores_output=scores_output,
        score_function=str(post.get("function", "auto")),
    )


def load_card(path: str | Path) -> ModelCard:
    """Read and check a card file.

    Raises:
        ValidationError: Unreadable or not JSON; CardError for a bad field.
    """
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read the card {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValidationError(f"the card {path} is not JSON: {exc}") from exc
    return parse_card(document)


def card_dtype(spec: TensorSpec) -> str:
    """The card dtype of ``spec`` (raises for non-tensors: sequences and maps)."""
    if spec.type not in DTYPES.values():
        raise ValidationError(
            f"tensor {spec.name!r} has type {spec.type}, which a card cannot describe; export"
            " classifiers without ZipMap (skl2onnx: options={'zipmap': False})"
        )
    return str(spec.dtype)
