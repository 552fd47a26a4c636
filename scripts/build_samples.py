"""Rebuild the sample models daimm ships (src/daimm/samples/*.onnx and *.card.json).

    .venv/bin/python scripts/build_samples.py            # into the package
    .venv/bin/python scripts/build_samples.py --out DIR  # somewhere else, to compare

Offline and deterministic (scikit-learn's bundled data sets, the repository's review sentences,
fixed seeds); tests/unit/test_samples.py checks the shipped files are what this builds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from daimm.samples import SAMPLES_DIR
from daimm.samples.build import build_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="folder to write into")
    args = parser.parse_args()
    for path in build_samples(args.out):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
