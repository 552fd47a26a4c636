"""Inputs as people have them (image bytes, strings, named features) -> the model's tensors.

Two halves, because images are decoded where a crash costs least:

- :func:`prepare_request` runs in the relayer's process on every request: it checks the body's
  shape against the card, builds tensors for raw inputs, strings and named features, and only
  sniffs and size-checks image bytes (never decodes them).
- :func:`image_to_array` and :func:`tokenize` run in the model's worker process: Pillow decodes the
  image under :data:`MAX_IMAGE_PIXELS` (a decompression bomb is refused before its pixels are
  allocated), one frame only, then resizes and normalises it as the card says.

Every refusal is a :class:`~daimm.errors.RequestRefusedError` with status 422, a code
(``invalid_input``, ``invalid_image``, ``image_too_large``, ``invalid_text``,
``unknown_feature``, ``missing_feature``, ``invalid_feature``) and a detail naming
``inputs.<name>``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daimm.errors import RequestRefusedError
from daimm.modelformat.card import ImagePreprocessing, ModelCard, TextPreprocessing
from daimm.modelformat.tensors import ModelSchema, TensorSpec, tensor_from_json

__all__ = [
    "DEFAULT_TOP_K",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "PreparedRequest",
    "build_request",
    "image_to_array",
    "prepare_request",
    "sniff_image",
    "tokenize",
]

#: Largest image file accepted, in bytes (before base64).
MAX_IMAGE_BYTES = 8 << 20
#: Most pixels (width x height) an image may declare; Pillow refuses more before decoding.
MAX_IMAGE_PIXELS = 16_000_000
#: Labels returned per row when the request does not say ``top_k``.
DEFAULT_TOP_K = 5
_MAX_TOP_K = 1000
_SHORTHANDS = ("image", "text", "features")


def _refuse(code: str, detail: str) -> RequestRefusedError:
    return RequestRefusedError(422, code, detail)


@dataclass
class PreparedRequest:
    """A request checked in the relayer's process, ready for the worker.

    Attributes:
        tensors: Input name -> numpy array (raw tensors, strings, features).
        images: Input name -> image file bytes, sniffed but not decoded.
        texts: Input name -> string, for inputs that tokenize in the worker.
        top_k: Labels per row in ``predictions``.
    """

    tensors: dict[str, Any] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    top_k: int = DEFAULT_TOP_K


# ---------------------------------------------------------------------------- request side
def sniff_image(name: str, data: bytes) -> str:
    """The image format of ``data`` by its magic bytes (PNG, JPEG, WEBP, GIF).

    Raises:
        RequestRefusedError: 422 ``invalid_image`` (another format) or ``image_too_large``.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise _refuse(
            "image_too_large",
            f"inputs.{name}: the image is {len(data)} bytes; send at most {MAX_IMAGE_BYTES}",
        )
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    raise _refuse("invalid_image", f"inputs.{name}: not a PNG, JPEG, WebP or GIF image")


def _image_bytes(name: str, value: Any) -> bytes:
    if not isinstance(value, dict) or set(value) != {"b64"} or not isinstance(value["b64"], str):
        raise _refuse(
            "invalid_image", f'inputs.{name}: send an image as {{"b64": "<base64 of the file>"}}'
        )
    if len(value["b64"]) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise _refuse(
            "image_too_large", f"inputs.{name}: the image is larger than {MAX_IMAGE_BYTES} bytes"
        )
    try:
        data = base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise _refuse("invalid_image", f"inputs.{name}: b64 is not valid base64") from None
    sniff_image(name, data)
    return data


def _text(name: str, prep: TextPreprocessing, value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise _refuse("invalid_text", f"inputs.{name}: expected a string")
    if not value.strip():
        raise _refuse("invalid_text", f"inputs.{name}: the text is empty")
    if len(value) > prep.max_chars:
        raise _refuse(
            "invalid_text",
            f"inputs.{name}: the text is {len(value)} characters; this model takes at most"
            f" {prep.max_chars}",
        )
    return value


def _features(card: ModelCard, spec: TensorSpec, value: Any) -> Any:
    import numpy as np

    rows = value if isinstance(value, list) else [value]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise _refuse("invalid_feature", f"inputs.{spec.name}: expected {{feature: number}} rows")
    known = set(card.features)
    table = np.empty((len(rows), len(card.features)), dtype=spec.numpy_dtype or "float32")
    for r, row in enumerate(rows):
        where = f"inputs.{spec.name}" + (f"[{r}]" if isinstance(value, list) else "")
        for key in row:
            if key not in known:
                raise _refuse(
                    "unknown_feature",
                    f"{where}.{key}: the model has no feature {key!r} (it takes"
                    f" {', '.join(card.features)})",
                )
        for c, feature in enumerate(card.features):
            if feature not in row:
                raise _refuse("missing_feature", f"{where}.{feature}: missing")
            item = row[feature]
            if (
                isinstance(item, bool)
                or not isinstance(item, int | float)
                or not math.isfinite(item)
            ):
                raise _refuse("invalid_feature", f"{where}.{feature}: expected a finite number")
            table[r, c] = item
    if not np.isfinite(table).all():
        raise _refuse("invalid_feature", f"inputs.{spec.name}: values out of range")
    if spec.shape[0] is not None and spec.shape[0] != len(rows):
        raise _refuse("invalid_input", f"inputs.{spec.name}: the model takes {spec.shape[0]} rows")
    return table


def _resolve(card: ModelCard | None, document: Any) -> tuple[dict[str, Any], int]:
    if not isinstance(document, dict):
        raise _refuse("invalid_input", 'body: expected {"inputs": {name: value}}')
    top_k = document.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= _MAX_TOP_K:
        raise _refuse("invalid_request", f"top_k: an integer from 1 to {_MAX_TOP_K}")
    given = [k for k in ("inputs", *_SHORTHANDS) if k in document]
    if len(given) != 1:
        raise _refuse(
            "invalid_input",
            'body: expected exactly one of "inputs", "image", "text" or "features"',
        )
    kind = given[0]
    if kind == "inputs":
        if not isinstance(document["inputs"], dict):
            raise _refuse("invalid_input", "inputs: must be an object of input name -> value")
        return document["inputs"], top_k
    target = None
    if card is not None:
        target = {
            "image": card.image_input,
            "text": card.text_input,
            "features": card.features_input,
        }[kind]
    if target is None:
        raise _refuse(
            "invalid_input",
            f'{kind}: this model\'s card takes no {kind}; send {{"inputs": {{name: value}}}}',
        )
    return {target: document[kind]}, top_k


def prepare_request(card: ModelCard | None, schema: ModelSchema, document: Any) -> PreparedRequest:
    """Check a request body against the card and the model's schema (in the relayer's process).

    Args:
        card: The model's card, or None (raw tensors only).
        schema: The loaded model's inputs and outputs (the source of truth for tensors).
        document: The parsed JSON body.

    Raises:
        RequestRefusedError: 422 with a code naming the input (see the module docstring).
    """
    inputs, top_k = _resolve(card, document)
    prepared = PreparedRequest(top_k=top_k)
    expected = {spec.name: spec for spec in schema.inputs}
    for name in inputs:
        if name not in expected:
            raise _refuse(
                "invalid_input",
                f"inputs.{name}: the model has no such input (it takes {sorted(expected)})",
            )
    preprocessing = dict(card.preprocessing) if card is not None else {}
    derived: set[str] = set()
    for name, text_prep in preprocessing.items():
        if (
            isinstance(text_prep, TextPreprocessing)
            and text_prep.mode == "tokenizer"
            and isinstance(inputs.get(name), str)
        ):
            derived |= {n for n in (text_prep.attention_mask, text_prep.token_type_ids) if n}
    for name, spec in expected.items():
        if name in derived and name not in inputs:
            continue
        if name not in inputs:
            raise _refuse("invalid_input", f"inputs.{name}: missing")
        value = inputs[name]
        prep = preprocessing.get(name)
        if isinstance(prep, ImagePreprocessing) and isinstance(value, dict):
            prepared.images[name] = _image_bytes(name, value)
        elif isinstance(prep, TextPreprocessing) and not isinstance(value, list | dict):
            text = _text(name, prep, value)
            if prep.mode == "tokenizer":
                prepared.texts[name] = text
            else:
                import numpy as np

                prepared.tensors[name] = np.array([text]).reshape(tuple(1 for _ in spec.shape))
        elif (
            card is not None
            and card.features_input == name
            and (isinstance(value, dict) or (isinstance(value, list) and value
                                             and isinstance(value[0], dict)))
        ):  # fmt: skip
            prepared.tensors[name] = _features(card, spec, value)
        elif isinstance(value, dict | str):
            takes = "an image" if isinstance(value, dict) else "text"
            raise _refuse(
                "invalid_input", f"inputs.{name}: this input takes no {takes}; send a nested list"
            )
        else:
            prepared.tensors[name] = tensor_from_json(spec, value)
    return prepared


def build_request(
    card: ModelCard | None = None,
    *,
    image: bytes | None = None,
    text: str | None = None,
    features: Any = None,
    inputs: Mapping[str, Any] | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """The JSON body for a request (serialise it once and sign those exact bytes).

    Give exactly one of ``image``, ``text``, ``features`` or ``inputs``. With a card, the value is
    sent under the card's input name; without, under the shorthand key the relayer resolves.
    """
    given = [(k, v) for k, v in (("image", image), ("text", text), ("features", features),
                                 ("inputs", inputs)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise ValueError("give exactly one of image, text, features or inputs")
    kind, value = given[0]
    if kind == "image":
        assert isinstance(value, bytes | bytearray)
        value = {"b64": base64.b64encode(value).decode()}
    body: dict[str, Any]
    if kind == "inputs":
        body = {"inputs": dict(value)}  # type: ignore[arg-type]
    else:
        target = None
        if card is not None:
            target = {"image": card.image_input, "text": card.text_input,
                      "features": card.features_input}[kind]  # fmt: skip
        body = {"inputs": {target: value}} if target else {kind: value}
    if top_k is not None:
        body["top_k"] = top_k
    return body


# ---------------------------------------------------------------------------- worker side
def image_to_array(name: str, data: bytes, prep: ImagePreprocessing, dtype: str) -> Any:
    """Decode an image and preprocess it into a batch-1 tensor (run in the worker process).

    Raises:
        RequestRefusedError: 422 ``invalid_image`` (undecodable, truncated, several frames) or
            ``image_too_large`` (more than :data:`MAX_IMAGE_PIXELS` pixels).
    """
    import warnings

    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    fmt = sniff_image(name, data)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Any = Image.open(_BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _refuse(
                    "image_too_large",
                    f"inputs.{name}: the image is {width} x {height} pixels; send at most"
                    f" {MAX_IMAGE_PIXELS} pixels",
                )
            frames = getattr(image, "n_frames", 1)
            if frames != 1:
                raise _refuse(
                    "invalid_image",
                    f"inputs.{name}: the image has {frames} frames; send a single still image",
                )
            image.load()
    except RequestRefusedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError):
        raise _refuse(
            "image_too_large", f"inputs.{name}: the image has more than {MAX_IMAGE_PIXELS} pixels"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise _refuse(
            "invalid_image", f"inputs.{name}: the {fmt} image cannot be decoded ({exc})"[:300]
        ) from None
    image = ImageOps.exif_transpose(image) if fmt == "JPEG" else image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    image = image.convert("L" if prep.channels == 1 else "RGB")
    height, width = prep.size
    if prep.resize == "stretch":
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    elif prep.resize == "center_crop":
        image = ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)
    else:
        image = ImageOps.pad(image, (width, height), Image.Resampling.BILINEAR, color=0)
    pixels = np.asarray(image, dtype=np.float32).reshape(height, width, prep.channels)
    if prep.invert:
        pixels = 255.0 - pixels
    if dtype == "uint8":
        array = pixels.astype(np.uint8)
    else:
        mean = np.asarray(prep.mean, dtype=np.float32)
        std = np.asarray(prep.std, dtype=np.float32)
        array = ((pixels * np.float32(prep.scale) - mean) / std).astype(dtype)
    if prep.layout == "NCHW":
        array = array.transpose(2, 0, 1)
    return np.ascontiguousarray(array[np.newaxis])


def _BytesIO(data: bytes) -> Any:  # noqa: N802 - a constructor
    import io

    return io.BytesIO(data)


def tokenize(tokenizer: Any, text: str, prep: TextPreprocessing, dtype: str) -> dict[str, Any]:
    """Token ids (and mask, type ids) of ``text``, truncated and padded to ``max_length``.

    Args:
        tokenizer: A ``tokenizers.Tokenizer``.
        text: The checked string.
        prep: The input's text preprocessing.
        dtype: The ids input's dtype.

    Returns:
        ``"ids"``, ``"attention_mask"``, ``"token_type_ids"`` -> batch-1 arrays.
    """
    import numpy as np

    encoding = tokenizer.encode(text)
    length = prep.max_length
    ids = list(encoding.ids)[:length]
    mask = list(encoding.attention_mask)[:length]
    types = list(encoding.type_ids)[:length]
    pad = length - len(ids)
    ids += [0] * pad
    mask += [0] * pad
    types += [0] * pad
    return {
        "ids": np.asarray([ids], dtype=dtype),
        "attention_mask": np.asarray([mask], dtype=dtype),
        "token_type_ids": np.asarray([types], dtype=dtype),
    }
