"""Session keys in Chromium on anvil: "Try it" under one wallet signature, and the API-key page.

- The model page: connect, one ``eth_signTypedData_v4`` (a Session for a key made in the tab), ten
  runs with no further wallet prompt (the stand-in wallet counts every request it is asked), the
  calls left shown; "End session" revokes on chain (one transaction) and forgets the key, which the
  relayer then refuses; a session revoked elsewhere makes the next run fail with a clear message.
- The API-key page: the wallet signs once, the key is shown once with its snippets; the Python
  snippet, written to a file and run by this worktree's Python, predicts and verifies; revoked on
  the page, the same script is refused.

The marketplace, relayer, catalog, ``daimm web`` and Chromium are tests/e2e/test_web_widgets.py's
fixtures (reused). NOTE: the wallet is tests/e2e/test_web.py's stand-in (an EIP-1193 provider
forwarding to anvil's unlocked dev accounts): a real wallet's pop-ups cannot run here.

Runs only on anvil: ``ape test tests/e2e/test_web_sessions.py --network ethereum:local:foundry``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_web import TIMEOUT_MS, WALLET_JS
from tests.e2e.test_web_widgets import browser, model_page, site  # noqa: F401 - fixtures
from tests.utils.relayer import wait_until_current

from daimm.client import SessionRelayerClient
from daimm.errors import RequestRefusedError
from daimm.sessions import parse_api_key

pytestmark = [pytest.mark.chain]


def run(page: Any) -> str:
    """Click "Run", wait until the run is over; the message's class ("ok" or "err")."""
    page.click("#tryit-run")
    page.wait_for_selector("#tryit-run:not([disabled])")
    page.wait_for_selector("#tryit-message.ok, #tryit-message.err")
    return str(page.get_attribute("#tryit-message", "class")).split()[-1]


def wallet_calls(page: Any, method: str) -> int:
    return int(page.evaluate(f"window.__walletCalls.filter((m) => m === {method!r}).length"))


def tab_session(page: Any) -> str | None:
    """The API key the tab keeps for "Try it" (sessionStorage), or None."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => {
          const entry = Object.entries(sessionStorage).find(([k]) => k.startsWith("daimm.tryit."));
          return entry ? JSON.parse(entry[1]).apiKey : null;
        }"""
    )


def test_try_it__one_signature__ten_runs_without_prompt__ended_and_revoked__refused(
    site: dict[str, Any],  # noqa: F811
    model_page: Any,  # noqa: F811
    chain: Any,
) -> None:
    demo = site["demo"]
    page = model_page("breast_cancer")
    signatures_before = wallet_calls(page, "eth_signTypedData_v4")

    results = [run(page) for _ in range(10)]

    assert results == ["ok"] * 10, page.inner_text("#tryit-message")
    assert page.locator("#tryit-verified.verified-ok").count() == 1
    assert wallet_calls(page, "eth_signTypedData_v4") - signatures_before == 1
    assert wallet_calls(page, "eth_sendTransaction") == 0
    assert page.get_attribute("#session-state", "data-calls-left") == "9990"
    assert "9990 of 10000 calls left" in page.inner_text("#session-state")
    api_key = tab_session(page)
    assert api_key is not None and parse_api_key(api_key).session.holder == str(demo.alice)

    # "End session": one transaction revokes it on chain, and the tab forgets the key.
    page.click("#session-end")
    page.wait_for_selector("#tryit-message.ok:has-text('Session ended')")
    assert wallet_calls(page, "eth_sendTransaction") == 1
    assert tab_session(page) is None
    wait_until_current(demo.endpoint, chain)
    relayer = SessionRelayerClient(demo.endpoint, api_key, expected_relayer=demo.relayer.address)
    with pytest.raises(RequestRefusedError) as refused:
        relayer.predict(site["models"]["breast_cancer"], {"input": [[0.0] * 30]})
    assert refused.value.code == "session_revoked"

    # The next run signs a new session; revoked elsewhere (the API-key page, the CLI), the run
    # after that is refused with a sentence saying so, and the tab drops the key.
    assert run(page) == "ok"
    assert wallet_calls(page, "eth_signTypedData_v4") - signatures_before == 2
    second = parse_api_key(str(tab_session(page)))
    demo.market.sessions.revoke(second.hash, sender=demo.alice)
    wait_until_current(demo.endpoint, chain)

    assert run(page) == "err"
    message = page.inner_text("#tryit-message")
    assert "The relayer refused (session_revoked): this session was revoked on chain" in message
    assert tab_session(page) is None


def test_keys_page__key_made_once__python_snippet_predicts__revoked_on_page__refused(
    site: dict[str, Any],  # noqa: F811
    browser: Any,  # noqa: F811
    chain: Any,
    tmp_path: Path,
) -> None:
    demo = site["demo"]
    model_id = site["models"]["breast_cancer"]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    wallet = {"rpc": site["node_url"], "account": str(demo.alice)}
    context.add_init_script(f"window.__wallet = {json.dumps(wallet)};")
    context.add_init_script(WALLET_JS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{site['url']}/models/{model_id}")
    page.wait_for_selector("body[data-ready='1']")
    page.click("#session-keys-link")  # linked from the model page, for this model
    page.wait_for_selector("body[data-page='keys'][data-ready='1']")
    assert page.input_value("#key-model") == str(model_id)
    page.click("#wallet-connect")
    page.wait_for_selector("#wallet-connect:has-text('Connected')")
    page.wait_for_selector(f"#key-relayer option[value='{demo.relayer.address}']", state="attached")

    page.click("#key-create")
    page.wait_for_selector("#key-message.ok, #key-message.err")

    assert "Key made" in page.inner_text("#key-message"), page.inner_text("#key-message")
    assert wallet_calls(page, "eth_signTypedData_v4") == 1
    key = page.input_value("#key-value")
    assert key.startswith("daimm_sk_") and key in page.text_content("#snippet-python")
    assert "--api-key" in page.text_content("#snippet-cli")
    script = tmp_path / "app.py"
    script.write_text(str(page.text_content("#snippet-python")))
    wait_until_current(demo.endpoint, chain)
    first = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert f"receipt verified, signed by relayer {demo.relayer.address}" in first.stdout

    session_hash = "0x" + parse_api_key(key).hash.hex()
    row = page.locator(f"#key-list tr[data-hash='{session_hash}']")
    assert row.get_attribute("data-state") == "live"
    row.locator(".key-revoke").click()
    page.wait_for_selector("#key-list-message.ok, #key-list-message.err")
    assert "Revoked" in page.inner_text("#key-list-message"), page.inner_text("#key-list-message")
    assert wallet_calls(page, "eth_sendTransaction") == 1
    wait_until_current(demo.endpoint, chain)
    second = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip

    assert second.returncode != 0
    assert "session_revoked" in second.stderr
    page.wait_for_selector(f"#key-list tr[data-hash='{session_hash}'][data-state='revoked']")
    context.close()
