"""Pay per call from the page in Chromium on anvil: deposit credit, see it, "Try it" pays from it.

Bob holds no licence for the demo's model (priced per call in AIMT). On the model page he deposits
credit with its relayer from the wallet (approve, then deposit), the balance shows; "Try it" then
pays per call: the wallet signs one session with a spend cap naming the relayer, each call's voucher
is signed in the tab by the session key (no further prompt), the relayer serves and charges it.

The marketplace, relayer, catalog, ``daimm web`` and Chromium are tests/e2e/test_web_widgets.py's
fixtures (reused). NOTE: the wallet is tests/e2e/test_web.py's stand-in (an EIP-1193 provider
forwarding to anvil's unlocked dev accounts): a real wallet's pop-ups cannot run here.

Runs only on anvil: ``ape test tests/e2e/test_web_credit.py --network ethereum:local:foundry``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from tests.e2e.test_web import TIMEOUT_MS, WALLET_JS
from tests.e2e.test_web_widgets import browser, site  # noqa: F401 - fixtures

pytestmark = [pytest.mark.chain]


def wallet_calls(page: Any, method: str) -> int:
    return int(page.evaluate(f"window.__walletCalls.filter((m) => m === {method!r}).length"))


def run(page: Any) -> str:
    page.click("#tryit-run")
    page.wait_for_selector("#tryit-run:not([disabled])")
    page.wait_for_selector("#tryit-message.ok, #tryit-message.err")
    return str(page.get_attribute("#tryit-message", "class")).split()[-1]


def test_credit__deposit_from_the_page__balance_shown__try_it_pays_per_call(
    site: dict[str, Any],  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    demo = site["demo"]
    model_id = site["models"]["breast_cancer"]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    wallet = {"rpc": site["node_url"], "account": str(demo.bob)}
    context.add_init_script(f"window.__wallet = {json.dumps(wallet)};")
    context.add_init_script(WALLET_JS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{site['url']}/models/{model_id}")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#wallet-connect")
    page.wait_for_selector("#wallet-connect:has-text('Connected')")
    page.wait_for_selector("#access-status[data-access='no']")
    page.select_option("#credit-relayer", demo.relayer.address)
    page.fill("#credit-amount", "1")

    page.click("#credit-deposit")
    page.wait_for_selector("#credit-message.ok, #credit-message.err")

    assert "Deposited 1" in page.inner_text("#credit-message"), page.inner_text("#credit-message")
    assert wallet_calls(page, "eth_sendTransaction") == 2  # approve, deposit
    page.wait_for_selector("#credit-balance[data-deposited='1000000000000000000']")
    assert "Balance 1" in page.inner_text("#credit-balance")

    results = [run(page) for _ in range(3)]

    assert results == ["ok"] * 3, page.inner_text("#tryit-message")
    assert "paid from your credit" in page.inner_text("#tryit-message")
    assert page.locator("#tryit-verified.verified-ok").count() == 1
    assert wallet_calls(page, "eth_signTypedData_v4") == 1  # the session; vouchers need no prompt
    assert wallet_calls(page, "eth_sendTransaction") == 2
    answer = httpx.get(f"{demo.endpoint}/v1/models/{model_id}/credit/{demo.bob}").json()
    price = int(answer["price_per_call"])
    assert int(answer["spent"]) == 3 * price
    page.wait_for_selector(f"#credit-balance[data-spent='{3 * price}']")
    context.close()
