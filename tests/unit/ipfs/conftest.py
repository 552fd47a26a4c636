"""Fixtures of the IPFS tests: the independent JS implementation, run through node."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
REFERENCE_SCRIPT = REPO / "tests" / "utils" / "unixfs_reference.mjs"


@pytest.fixture(scope="session")
def js_reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], dict]:
    """Run tests/utils/unixfs_reference.mjs (npm ipfs-unixfs-importer + @ipld/car) on a job."""
    node = shutil.which("node")
    if node is None or not (REPO / "node_modules" / "ipfs-unixfs-importer").is_dir():
        pytest.skip("node and `npm ci` are needed for the independent implementation")
    job_dir = tmp_path_factory.mktemp("js-job")

    def run(job: dict[str, Any]) -> dict:
        job_file = job_dir / "job.json"
        job_file.write_text(json.dumps(job))
        done = subprocess.run(
            [node, str(REFERENCE_SCRIPT), str(job_file)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run
