"""Helpers shared by the test suites."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "load_by_path"]

#: The repository's root folder.
ROOT = Path(__file__).resolve().parents[2]


def load_by_path(relative: str, name: str) -> Any:
    """Import a module of this repository by its path, as a fresh module named ``name``.

    For test helpers (``tests/utils/onnx_models.py``), conftest modules and scripts
    (``scripts/deploy.py``: not a package, `ape run` executes them with runpy).

    NOTE: by path: a ``tests`` package installed in site-packages (by pymultihash) can shadow
    this repository's, so helpers that must not depend on import order are loaded this way.

    Args:
        relative: The file, relative to the repository's root.
        name: The module's name (it is not put in ``sys.modules``).
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
