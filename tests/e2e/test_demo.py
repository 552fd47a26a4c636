"""`make demo` end to end: `ape run demo` on its own anvil, checked through the outcome it writes.

The demo runs as `ape run demo --network ethereum:local:foundry` in a subprocess (exactly what
`make demo` runs), so this test passes whatever network the rest of the suite uses; ape-foundry
spawns a fresh anvil from npm (on PATH through the Makefile) and stops it at the end. The demo
writes what it proved to DAIMM_DEMO_RESULT; the assertions below read that file and the output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIMT = 10**18


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, float]:
    if shutil.which("anvil") is None:
        pytest.skip("anvil is not on PATH: run through `make test` (it adds node_modules/.bin)")
    result = tmp_path_factory.mktemp("demo") / "outcome.json"
    ape = Path(sys.executable).with_name("ape")
    started = time.monotonic()
    done = subprocess.run(
        [str(ape), "run", "demo", "--network", "ethereum:local:foundry"],
        cwd=ROOT,
        env={**os.environ, "DAIMM_DEMO_RESULT": str(result), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return json.loads(result.read_text()), output, seconds


def test_the_demo_finishes_without_error_or_traceback_in_under_three_minutes(demo):
    outcome, output, seconds = demo

    assert outcome["error"] is None
    assert "Traceback" not in output
    assert "Done in" in output
    assert seconds < 180


def test_the_relayers_predictions_match_the_plaintext_model(demo):
    outcome, _, _ = demo

    assert outcome["predictions_match"] is True
    assert outcome["predictions"] == 143  # the held-out quarter of the breast-cancer data set
    assert outcome["max_probability_difference"] <= 1e-6


def test_the_catalog_search_finds_the_published_model(demo):
    outcome, _, _ = demo

    assert outcome["search_found_model"] is True
    assert outcome["model_id"] == 1


def test_every_balance_changes_by_what_the_prices_say_and_money_in_equals_money_out(demo):
    outcome, _, _ = demo
    change = {name: int(b["change"]) for name, b in outcome["balances"].items()}

    # Alice rents 3 h at 2 AIMT; Bob spends 3 calls at 0.1 AIMT; Carol buys at 100 and resells at
    # 80 (5% royalty, 2.5% fee from her part); Dave pays 80. Fee 2.5% on every payment.
    assert change == {
        "creator": (6 * AIMT - 15 * AIMT // 100)
        + (100 * AIMT - 25 * AIMT // 10)
        + 4 * AIMT
        + (3 * AIMT // 10 - 75 * AIMT // 10_000),
        "alice": -6 * AIMT,
        "bob": -3 * AIMT // 10,
        "carol": -26 * AIMT,
        "dave": -80 * AIMT,
        "relayer": 0,
        "treasury": 15 * AIMT // 100 + 25 * AIMT // 10 + 2 * AIMT + 75 * AIMT // 10_000,
        "RentalEscrow": 0,
        "CreditEscrow": 0,
    }
    assert outcome["balances_match_expected"] is True
    assert int(outcome["money_in"]) == int(outcome["money_out"]) == 1123 * AIMT // 10
    assert outcome["money_adds_up"] is True


def test_pay_per_use_calls_were_redeemed_and_the_royalty_paid(demo):
    outcome, _, _ = demo

    assert outcome["paid_calls"] == 3
    assert outcome["royalty"] == 4 * AIMT


def test_the_demo_leaves_nothing_running(demo):
    outcome, _, _ = demo

    assert outcome["relayer_stopped"] is True
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert not [
        line
        for line in ps.stdout.splitlines()
        if "relayer serve --config" in line and "daimm-demo-" in line
    ]
