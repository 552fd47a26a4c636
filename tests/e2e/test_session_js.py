"""The JavaScript session module in Node against real ``daimm relayer serve`` processes on anvil.

The bundle an application imports (``static/daimm-session.mjs``) runs in Node with an API key the
holder made through the library (one signature): it predicts and verifies the receipt, lists the
model's relayers from the chain, is refused once the key is revoked, and fails over to the second
relayer when the first is stopped. The marketplace, the two relayers and the licence are the
``stack`` fixture of tests/e2e/test_sessions.py (reused, not copied).

Runs only on a real node (``--network ethereum:local:foundry``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_sessions import INPUTS, _stop, stack  # noqa: F401 - `stack` is a fixture
from tests.utils.relayer import wait_until_current

pytestmark = [pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "src" / "daimm" / "web" / "static" / "daimm-session.mjs"
VIEM = ROOT / "node_modules" / "viem" / "_esm" / "index.js"

APP = ROOT / "tests" / "utils" / "session_js_app.mjs"


def app(tmp_path: Path, command: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    if not BUNDLE.exists():
        pytest.skip("the session module is not built: run `make web` (make setup does)")
    done = subprocess.run(
        [node, str(APP), str(BUNDLE), str(VIEM)], input=json.dumps(command),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def key_and_command(stack: dict[str, Any], renter: Any, calls: int, **extra: Any) -> Any:  # noqa: F811
    """A fresh API key of the renter for the stack's model, and the app's command using it."""
    api_key = stack["sessions"].create(renter, model_id=stack["model_id"])
    command = {"apiKey": api_key.encode(), "relayers": relayers_of(stack),
               "modelId": stack["model_id"], "inputs": INPUTS, "calls": calls, **extra}  # fmt: skip
    return api_key, command


def relayers_of(stack: dict[str, Any]) -> list[dict[str, str]]:  # noqa: F811 - not the fixture
    return [{"url": url, "address": address} for url, address in stack["relayers"]]


def test_node_app__api_key__predicts_with_verified_receipts_and_lists_relayers_from_chain(
    stack: dict[str, Any],  # noqa: F811
    renter: Any,
    chain: Any,
    tmp_path: Path,
) -> None:
    first_url, first = stack["relayers"][0]
    _, command = key_and_command(stack, renter, 3, rpc=chain.provider.uri,
                                 relayerRegistry=stack["relayer_registry"])  # fmt: skip
    wait_until_current(first_url, chain)

    answer = app(tmp_path, command)

    assert [call.get("outputs", call)["label"] for call in answer["calls"]] == [[0]] * 3
    assert [(call["relayer"], call["signer"]) for call in answer["calls"]] == [(first, first)] * 3
    assert answer["relayers"] == relayers_of(stack)


def test_node_app__key_revoked_on_chain__refused_session_revoked(
    stack: dict[str, Any],  # noqa: F811
    renter: Any,
    chain: Any,
    tmp_path: Path,
) -> None:
    api_key, command = key_and_command(stack, renter, 1)
    wait_until_current(stack["relayers"][0][0], chain)
    assert "outputs" in app(tmp_path, command)["calls"][0]

    stack["sessions"].revoke(api_key.hash, sender=renter)
    wait_until_current(stack["relayers"][0][0], chain)
    refused = app(tmp_path, command)["calls"][0]

    assert (refused["error"], refused["status"], refused["code"]) == (
        "RequestRefusedError",
        401,
        "session_revoked",
    )


def test_node_app__first_relayer_stopped__second_one_answers(
    stack: dict[str, Any],  # noqa: F811
    renter: Any,
    chain: Any,
    tmp_path: Path,
) -> None:
    (_first_url, first), (second_url, second) = stack["relayers"]
    _, command = key_and_command(stack, renter, 2)
    wait_until_current(second_url, chain)

    _stop(stack["daemons"][0])
    answer = app(tmp_path, command)

    assert [call.get("relayer") for call in answer["calls"]] == [second, second]
    assert [call["outputs"]["label"] for call in answer["calls"]] == [[0], [0]]
