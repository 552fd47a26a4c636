"""The solcjs bridge answers like a native solc for py-solc-x, forge and slither."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BRIDGE = ROOT / "scripts" / "solc-bridge.mjs"


def run_bridge(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(BRIDGE), *args], input=stdin, capture_output=True, text=True, check=False
    )


def standard_json(sources: dict[str, str]) -> str:
    return json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"urls": [name]} for name in sources},
            "settings": {"outputSelection": {"*": {"*": ["abi"]}}},
        }
    )


def test_version__reports_the_pinned_compiler():
    result = run_bridge("--version")

    assert result.returncode == 0
    assert "Version: 0.8.28+commit.7893614a" in result.stdout


def test_standard_json__resolves_imports_from_include_paths(tmp_path: Path):
    base, lib = tmp_path / "base", tmp_path / "lib"
    (base).mkdir()
    (lib / "dep").mkdir(parents=True)
    (base / "A.sol").write_text(
        'pragma solidity 0.8.28; import "dep/B.sol"; contract A is B { function f() external {} }'
    )
    (lib / "dep" / "B.sol").write_text("pragma solidity 0.8.28; contract B { uint256 public x; }")

    result = run_bridge(
        "--standard-json",
        "--base-path",
        str(base),
        "--include-path",
        str(lib),
        stdin=standard_json({"A.sol": ""}),
    )

    output = json.loads(result.stdout)
    assert [e for e in output.get("errors", []) if e["severity"] == "error"] == []
    abi_names = {item.get("name") for item in output["contracts"]["A.sol"]["A"]["abi"]}
    assert {"f", "x"} <= abi_names


def test_standard_json__refuses_files_outside_the_allowed_folders(tmp_path: Path):
    base = tmp_path / "base"
    base.mkdir()
    secret = tmp_path / "outside.sol"
    secret.write_text("pragma solidity 0.8.28; contract S {}")
    (base / "A.sol").write_text(f'pragma solidity 0.8.28; import "{secret}"; contract A {{}}')

    result = run_bridge(
        "--standard-json", "--base-path", str(base), stdin=standard_json({"A.sol": ""})
    )

    errors = [e["message"] for e in json.loads(result.stdout)["errors"] if e["severity"] == "error"]
    assert any("outside of allowed directories" in message for message in errors)


@pytest.mark.parametrize("args", [[], ["--bin", "A.sol"]])
def test_other_modes__are_refused_with_a_clear_message(args: list[str]):
    result = run_bridge(*args)

    assert result.returncode == 2
    assert "only --version and --standard-json" in result.stderr
