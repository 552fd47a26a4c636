"""The sample models `daimm up` and `make demo` publish, shipped inside the package.

Three small real models, each an ONNX file with its model card (``<key>.onnx`` and
``<key>.card.json`` in this folder), so that `daimm up` from a wheel needs neither scikit-learn
nor a download:

- ``breast_cancer``: a tabular classifier (30 named features, malignant or benign);
- ``digits``: an image classifier (pictures of one handwritten digit, 0 to 9);
- ``sentiment``: a text classifier (a sentence, positive or negative).

:mod:`daimm.samples.build` trains them again (scikit-learn and skl2onnx, offline, deterministic);
`scripts/build_samples.py` writes its output here and ``tests/unit/test_samples.py`` checks that
the shipped files are what it builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daimm.errors import ConfigError

__all__ = ["CARD_SUFFIX", "SAMPLES_DIR", "SAMPLE_KEYS", "ShippedSample", "shipped_samples"]

#: The folder of the shipped files (this package's).
SAMPLES_DIR = Path(__file__).parent
#: The samples, in the order they are published (the tabular one first: its id is `daimm up`'s
#: "sample model").
SAMPLE_KEYS = ("breast_cancer", "digits", "sentiment")
#: File name ending of a model card beside its ``<key>.onnx``.
CARD_SUFFIX = ".card.json"


@dataclass(frozen=True)
class ShippedSample:
    """One shipped sample model.

    Attributes:
        key: Its short name (one of :data:`SAMPLE_KEYS`), also its files' stem.
        path: The ONNX file.
        card: The model card (the metadata document `daimm model publish` takes).
    """

    key: str
    path: Path
    card: dict[str, Any]


def shipped_samples(keys: tuple[str, ...] = SAMPLE_KEYS) -> tuple[ShippedSample, ...]:
    """The shipped sample models, read from the package.

    Raises:
        ConfigError: A key is unknown, or its files are missing from the installation.
    """
    out = []
    for key in keys:
        if key not in SAMPLE_KEYS:
            raise ConfigError(f"no sample model {key!r}: choose from {', '.join(SAMPLE_KEYS)}")
        path = SAMPLES_DIR / f"{key}.onnx"
        card = SAMPLES_DIR / f"{key}{CARD_SUFFIX}"
        try:
            document = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the sample model card {card} cannot be read ({exc}): reinstall daimm, or"
                " rebuild the samples with `python scripts/build_samples.py`"
            ) from exc
        if not path.is_file():
            raise ConfigError(
                f"the sample model {path} is missing: reinstall daimm, or rebuild the samples with"
                " `python scripts/build_samples.py`"
            )
        out.append(ShippedSample(key, path, document))
    return tuple(out)
