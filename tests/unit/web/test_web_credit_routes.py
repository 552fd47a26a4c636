"""``/api/credit/config`` and the relayer credit pass-through (the signing and the deposit happen
in the browser: tests/e2e/test_web_credit.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def test_credit_config__the_escrow_its_abi_and_the_voucher_type(client: Any, site: dict) -> None:
    answer = client.get("/api/credit/config").json()

    deployments = json.loads(Path(site["deployments"]).read_text())
    (record,) = deployments.values()
    assert answer["escrow"] == record["contracts"]["CreditEscrow"]
    names = {item["name"] for item in answer["abi"]}
    assert {"deposit", "reclaim", "channelOf", "redeemSessionBatch", "SessionCapExceeded"} <= names
    assert answer["domain"] == {"name": "daimm CreditEscrow", "version": "1"}
    fields = [field["name"] for field in answer["types"]["Voucher"]]
    assert fields == ["modelId", "relayer", "cumulativeAmount", "chainId", "escrow"]


def test_relayer_credit__payer_not_an_address__422_before_any_relayer_is_asked(
    client: Any,
) -> None:
    answer = client.get("/api/relayers/0x" + "ab" * 20 + "/models/1/credit/not-an-address")

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_request"


def test_relayer_credit__unknown_relayer__404(client: Any) -> None:
    answer = client.get("/api/relayers/0x" + "ab" * 20 + "/models/1/credit/0x" + "cd" * 20)

    assert answer.status_code == 404


def test_model_page__per_call_offer__credit_panel_included(client: Any, site: dict) -> None:
    page = client.get(f"/models/{site['cancer']}").text

    # The fixture's model has no relayer: no panel (nothing to deposit with).
    assert 'id="credit-panel"' not in page
