"""`daimm web` in Chromium on anvil: search, rent, try it, withdraw, and every bad input.

The marketplace is the demo's (``scripts/demo.py``: deploy, the breast-cancer model published
encrypted with an AIMT offer, a relayer registered, authorised and running as `daimm relayer
serve`, the catalog synced), the web app runs under uvicorn in a thread, reading the chain through
a TCP proxy the RPC-outage test cuts, and the Debian ``/usr/bin/chromium`` is driven by Playwright
(``playwright install`` is never run).

NOTE: the wallet is a stand-in. A real wallet's own UI (an extension's confirmation pop-ups) cannot
run here, so each page gets an EIP-1193 provider injected with ``page.add_init_script`` that
forwards JSON-RPC to anvil, whose dev accounts are unlocked: ``eth_requestAccounts`` maps to
``eth_accounts`` (narrowed to the test's account), ``eth_sendTransaction`` and
``eth_signTypedData_v4`` are anvil's own. It can claim another chain (the wrong-chain test) and
refuse the next request with EIP-1193's code 4001 (the rejected-signature test). Everything else
(the page, viem, the server, the relayer, the contracts) is real.

Runs only on anvil: ``ape test tests/e2e/test_web.py --network ethereum:local:foundry``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from tests.utils.relayer import TcpProxy
from tests.utils.web import chromium, demo_marketplace, serve_in_thread

pytestmark = [pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[2]
#: Screenshots go to docs/ when this is set (`DAIMM_WEB_SCREENSHOTS=1 ape test ...`), else to tmp.
SCREENSHOTS = os.environ.get("DAIMM_WEB_SCREENSHOTS") == "1"
TIMEOUT_MS = 30_000

# The stand-in wallet (see the module docstring). `__wallet` is set by a first init script.
WALLET_JS = """
(() => {
  const cfg = window.__wallet;
  const listeners = {};
  let connected = false;
  const rpc = async (method, params) => {
    const response = await fetch(cfg.rpc, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: Date.now(), method, params: params || [] }),
    });
    const answer = await response.json();
    if (answer.error) {
      const error = new Error(answer.error.message);
      error.code = answer.error.code;
      error.data = answer.error.data;
      throw error;
    }
    return answer.result;
  };
  const emit = (name, value) => (listeners[name] || []).forEach((fn) => fn(value));
  window.__walletCalls = [];
  window.ethereum = {
    isDaimmTestWallet: true,
    on(name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    removeListener(name, fn) { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); },
    async request({ method, params }) {
      window.__walletCalls.push(method);
      if (window.__rejectNext && ["eth_sendTransaction", "eth_signTypedData_v4"].includes(method)) {
        window.__rejectNext = false;
        const error = new Error("User rejected the request.");
        error.code = 4001;
        throw error;
      }
      if (method === "eth_requestAccounts" || method === "eth_accounts") {
        if (method === "eth_requestAccounts") connected = true;
        if (!connected) return [];
        const all = await rpc("eth_accounts", []);
        return all.filter((a) => a.toLowerCase() === cfg.account.toLowerCase());
      }
      if (method === "eth_chainId") return cfg.fakeChainId || rpc(method, params);
      if (method === "wallet_switchEthereumChain") {
        const real = await rpc("eth_chainId", []);
        if (BigInt(params[0].chainId) !== BigInt(real)) {
          const error = new Error("Unrecognized chain");
          error.code = 4902;
          throw error;
        }
        cfg.fakeChainId = null;
        emit("chainChanged", real);
        return null;
      }
      return rpc(method, params);
    },
  };
})();
"""


@pytest.fixture(scope="module")
def site(chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo's marketplace on anvil, its relayer running, the catalog synced, `daimm web` up."""
    from daimm.web import WebConfig, create_app

    work = tmp_path_factory.mktemp("web")
    demo, node_url = demo_marketplace(chain, work)
    with contextlib.ExitStack() as stack:
        relayer = contextlib.ExitStack()
        stack.callback(relayer.close)
        relayer.enter_context(demo.serve_relayer())
        demo.search()  # syncs the catalog (and checks the model is found)
        proxy = TcpProxy(("127.0.0.1", int(node_url.rsplit(":", 1)[1].split("/")[0])))
        proxy.start()
        stack.callback(proxy.stop)
        config = WebConfig(
            catalog_url=demo.catalog_url,
            rpc_url=proxy.url,
            deployments=str(demo.deployments_file),
            network=demo.network,
            rpc_timeout_s=2.0,
            store=str(work / "blocks"),  # the block store the demo's relayer reads
        )
        url = stack.enter_context(serve_in_thread(create_app(config)))
        yield {
            "demo": demo,
            "url": url,
            "node_url": node_url,
            "proxy": proxy,
            "stop_relayer": relayer.close,
            "work": work,
        }


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def open_page(site: dict[str, Any], browser: Any) -> Iterator[Any]:
    """``open_page(account, path, fake_chain_id=None, **options)``: a page with the stand-in
    wallet; ``options`` go to the browser context (``timezone_id``, ``locale``)."""
    contexts: list[Any] = []

    def open_(account: Any, path: str, fake_chain_id: str | None = None, **options: Any) -> Any:
        wallet = {"rpc": site["node_url"], "account": str(account), "fakeChainId": fake_chain_id}
        return wallet_page(browser, contexts, site["url"] + path, wallet, height=900, **options)

    yield open_
    for context in contexts:
        context.close()


def wallet_page(
    browser: Any,
    contexts: list[Any],
    url: str,
    wallet: dict[str, Any],
    *,
    height: int,
    **options: Any,
) -> Any:
    """A new page at ``url`` with the stand-in wallet ``wallet`` injected, once the page says it
    is ready; its context (``options`` passed to it) is appended to ``contexts`` (the caller
    closes them)."""
    context = browser.new_context(viewport={"width": 1280, "height": height}, **options)
    contexts.append(context)
    context.add_init_script(f"window.__wallet = {json.dumps(wallet)};")
    context.add_init_script(WALLET_JS)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page


def _connect(page: Any) -> None:
    page.click("#wallet-connect")
    page.wait_for_selector("#wallet-connect:has-text('Connected')")


def _shot(page: Any, site: dict[str, Any], name: str) -> None:
    target = ROOT / "docs" / name if SCREENSHOTS else site["work"] / name
    page.screenshot(path=str(target), full_page=True)


def _message(page: Any, selector: str, kind: str) -> str:
    page.wait_for_selector(f"{selector}.{kind}")
    return str(page.inner_text(selector))


# ---------------------------------------------------------------------------------- the story
def test_search_rent_try_and_withdraw__balances_add_up_to_the_wei(site, open_page, chain, tmp_path):
    demo = site["demo"]
    token = demo.market.token
    escrow_address = demo.market.escrow.address
    before = {
        "alice": token.balance_of(demo.alice),
        "creator": token.balance_of(demo.creator),
        "escrow": token.balance_of(escrow_address),
    }

    # Alice finds the model by full-text search and opens its page.
    page = open_page(demo.alice, "/?q=breast+cancer&licence=rental&max_price=5+AIMT")
    assert page.locator(f"li[data-model-id='{demo.model_id}']").count() == 1
    page.click(f"li[data-model-id='{demo.model_id}'] a.model-name")
    page.wait_for_selector("body[data-ready='1']")
    _connect(page)
    page.wait_for_selector("#access-status[data-access='no']")

    # She rents it for 3 hours: approve, then rent (two wallet transactions).
    page.fill("#rent-periods", "3")
    page.click("#rent-button")
    rented = _message(page, "#tx-message", "ok")
    assert rented.startswith("Rented: licence #")
    page.wait_for_selector("#access-status[data-access='yes']")
    assert page.locator("#rent-button").inner_text() == "Extend rental"
    demo.indexer.sync()  # what `daimm catalog sync --follow` does beside `daimm web`
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _connect(page)
    assert "1 rental(s)" in page.inner_text("main")

    # "Try it": the wallet signs, the relayer answers, the page verifies the receipt.
    page.click("#tryit-run")
    page.wait_for_selector("#tryit-verified.verified-ok")
    answer_text = page.locator("#tryit-answer").text_content()
    body_text = page.locator("#tryit-body").text_content()
    answer = json.loads(answer_text)
    # The page's form sends the card's named features; the model reads them in the card's order.
    features = json.loads(body_text)["features"]
    inputs = [[features[name] for name in demo.document["features"]]]
    session = ort.InferenceSession(demo.model_path.read_bytes(), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(
        ["label", "probabilities"], {"input": np.asarray(inputs, dtype=np.float32)}
    )
    assert answer["outputs"]["label"] == labels.tolist()
    assert np.array_equal(np.asarray(answer["outputs"]["probabilities"], np.float32), probabilities)
    _shot(page, site, "web-model.png")

    # She extends the rental by one hour (approve the price again, then rent again).
    first_expiry = page.inner_text("#access-status")
    page.fill("#rent-periods", "1")
    page.click("#rent-button")
    page.wait_for_function(
        "(t) => document.querySelector('#tx-message.ok')"
        " && document.querySelector('#tx-message').textContent !== t",
        arg=rented,
    )
    extended = page.inner_text("#tx-message")
    assert (
        extended.startswith("Rented: licence #") and extended.split(",")[0] == rented.split(",")[0]
    )
    page.wait_for_function(
        "(t) => document.querySelector('#access-status').textContent !== t", arg=first_expiry
    )

    # The CLI accepts the receipt the page shows, over the body the page signed.
    (tmp_path / "answer.json").write_text(answer_text)
    (tmp_path / "body.json").write_text(body_text)
    verified = subprocess.run(
        [str(Path(sys.executable).with_name("daimm")), "verify-receipt",
         str(tmp_path / "answer.json"), "--relayer", demo.relayer.address,
         "--body", str(tmp_path / "body.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"OK: receipt for model {demo.model_id}")

    # The creator's dashboard: the payment is held for the dispute window, then withdrawable.
    demo.indexer.sync()
    board = open_page(demo.creator, f"/dashboard?address={demo.creator.address}")
    _connect(board)
    board.wait_for_selector("#balances-table")
    assert board.locator("#withdraw-button").is_disabled()
    assert "Held until" in board.locator("#withdraw-button").inner_text()
    from daimm.catalog import CatalogStore
    from daimm.web.data import dashboard

    held = dashboard(CatalogStore(demo.catalog_url), demo.creator.address).held
    chain.mine(1, timestamp=max(b.release_at for b in held) + 1)
    board.reload()
    board.wait_for_selector("body[data-ready='1']")
    _connect(board)
    board.wait_for_selector("#withdraw-button:not([disabled])")
    _shot(board, site, "web-dashboard.png")
    board.click("#withdraw-button")
    withdrawn = _message(board, "#withdraw-message", "ok")
    assert withdrawn.startswith("Withdrawn: ")

    price = 4 * demo_module_constant("RENT_PRICE")  # 3 hours, then 1 more
    fee = price * demo_module_constant("FEE_BPS") // 10_000
    after = {
        "alice": token.balance_of(demo.alice),
        "creator": token.balance_of(demo.creator),
        "escrow": token.balance_of(escrow_address),
    }
    assert before["alice"] - after["alice"] == price
    assert after["creator"] - before["creator"] == price - fee
    assert after["escrow"] - before["escrow"] == fee  # the treasury's fee, owed to it
    assert sum(after.values()) == sum(before.values())
    assert withdrawn == f"Withdrawn: {format_aimt(price - fee)}."


def demo_module_constant(name: str) -> int:
    return int(getattr(sys.modules["daimm_demo_for_web"], name))


def format_aimt(value: int) -> str:
    from daimm.units import format_amount

    return format_amount(value, 18, "AIMT")


def test_buy__a_perpetual_licence_from_the_page(site, open_page):
    demo = site["demo"]
    token = demo.market.token
    before = token.balance_of(demo.carol)
    page = open_page(demo.carol, f"/models/{demo.model_id}")
    _connect(page)
    page.wait_for_selector("#access-status[data-access='no']")

    page.click("#buy-button")
    bought = _message(page, "#tx-message", "ok")

    assert bought.startswith("Bought: perpetual licence #")
    assert bought.endswith(f"(paid {format_aimt(demo_module_constant('PERPETUAL_PRICE'))}).")
    page.wait_for_selector("#access-status[data-access='yes']")
    assert "perpetual licence" in page.inner_text("#access-status")
    assert before - token.balance_of(demo.carol) == demo_module_constant("PERPETUAL_PRICE")


# ---------------------------------------------------------------------------------- bad input
def test_unknown_model__404_page_and_json(site, open_page):
    page = open_page(site["demo"].bob, "/")

    response = page.goto(site["url"] + "/models/999999")
    api = page.request.get(site["url"] + "/api/models/999999")

    assert response.status == 404
    assert "model 999999 is not in the catalog" in page.inner_text("#error-detail")
    assert api.status == 404 and api.json()["error"] == "unknown_model"


def test_malformed_query__422_with_a_message(site, open_page):
    page = open_page(site["demo"].bob, "/")

    response = page.goto(site["url"] + "/?min_rating=lots")
    api = page.request.get(site["url"] + "/api/models?sort=cheapest")

    assert response.status == 422
    assert "min_rating: 'lots' is not a number" in page.inner_text("#error-detail")
    assert api.status == 422 and "sort: 'cheapest' is not one of" in api.json()["detail"]


def test_wrong_chain__page_names_the_chain_and_switches(site, open_page, chain):
    demo = site["demo"]
    page = open_page(demo.bob, f"/models/{demo.model_id}", fake_chain_id="0x1")
    _connect(page)

    banner = page.locator("#chain-message")
    page.wait_for_selector("#chain-banner:not([hidden])")
    assert f"Switch your wallet to chain {chain.chain_id}" in banner.inner_text()
    assert "is on chain 1" in banner.inner_text()
    assert page.locator("#rent-button").is_disabled()

    page.click("#chain-switch")
    page.wait_for_selector("#chain-banner", state="hidden")
    page.wait_for_selector("#rent-button:not([disabled])")
    assert "wallet_switchEthereumChain" in page.evaluate("window.__walletCalls")


def test_rejected_signature__says_so_and_sends_nothing(site, open_page):
    demo = site["demo"]
    page = open_page(demo.bob, f"/models/{demo.model_id}")
    _connect(page)
    page.wait_for_selector("#access-status[data-access]")

    page.evaluate("window.__rejectNext = true")
    page.click("#tryit-run")
    signing = _message(page, "#tryit-message", "err")
    page.evaluate("window.__rejectNext = true")
    page.click("#rent-button")
    paying = _message(page, "#tx-message", "err")

    assert signing == "You rejected the request in your wallet: nothing was signed or sent."
    assert paying == signing
    assert page.locator("#access-status").get_attribute("data-access") == "no"


def test_revert__named_by_its_custom_error(site, open_page):
    demo = site["demo"]
    page = open_page(demo.bob, f"/models/{demo.model_id}")

    # A rent whose price cap (1 wei) is below the price: the escrow reverts with PriceAboveMax.
    message = page.evaluate(
        """async ([modelId, account]) => {
          const config = await window.daimm.loadConfig();
          try {
            await config.publicClient.simulateContract({
              address: config.contracts.RentalEscrow, abi: config.abi("RentalEscrow"),
              functionName: "rent", args: [BigInt(modelId), 1n, 1n], account,
            });
            return "no revert";
          } catch (error) {
            const currency = { symbol: "AIMT", decimals: 18 };
            return window.daimm.explain(error, { currency, errors: config.errors });
          }
        }""",
        [demo.model_id, str(demo.bob.address)],
    )

    assert message == (
        "PriceAboveMax: the price is now 2 AIMT, above the 0.000000000000000001 AIMT you"
        " accepted: reload the page to see the new price."
    )


def test_rpc_outage__banner_and_no_cached_no_access(site, open_page):
    demo = site["demo"]
    site["proxy"].stop()
    try:
        page = open_page(demo.alice, f"/models/{demo.model_id}")
        _connect(page)
        page.wait_for_selector("#rpc-banner:not([hidden])")
        page.wait_for_selector("#access-status[data-access='unknown']")
        assert "Chain unavailable" in page.inner_text("#rpc-banner")
        assert "Cannot check your licence now" in page.inner_text("#access-status")
        assert page.locator("#model-title").is_visible()  # the catalog's page still renders
    finally:
        site["proxy"].start()
    deadline = time.monotonic() + 10
    while True:
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        if page.locator("#rpc-banner").is_hidden() or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    _connect(page)
    page.wait_for_selector("#access-status[data-access='no'], #access-status[data-access='yes']")
    assert page.locator("#rpc-banner").is_hidden()


def test_relayer_down__the_page_says_so_and_the_rest_works(site, open_page):
    demo = site["demo"]
    site["stop_relayer"]()  # last test: the relayer does not come back

    page = open_page(demo.bob, f"/models/{demo.model_id}")
    _connect(page)
    page.wait_for_selector(".relayer-status.down")
    page.click("#tryit-run")
    message = _message(page, "#tryit-message", "err")

    assert message.startswith("The relayer is down:")
    assert "is not answering" in message
    page.wait_for_selector("#access-status[data-access='no']")
    assert page.locator("#rent-button").is_enabled()


# ---------------------------------------------------------------------------------- issue 15
def test_api_docs__swagger_ui_renders_with_no_request_beyond_the_server(site, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(site["url"] + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/models']")
    title = page.inner_text(".swagger-ui .info .title")
    _shot(page, site, "web-api-docs.png")
    context.close()

    assert "daimm web" in title
    assert [url for url in requested if not url.startswith(site["url"])] == []


def test_a_model_whose_weights_are_out_of_the_relayers_reach__page_says_why_instead_of_rent(
    site, open_page
):
    from daimm.ipfs import CID, LocalBlockstore
    from daimm.market.publishing import parse_metadata, plan_publish

    demo = site["demo"]
    # Published from a terminal whose block store is not the relayer's: the metadata is copied
    # to the relayer's store (so the catalog lists the model), the weights are not.
    elsewhere = LocalBlockstore(site["work"] / "elsewhere")
    package, plan = plan_publish(
        demo.market,
        demo.model_path,
        parse_metadata({**demo.document, "name": "Out of reach classifier"}),
        backend=elsewhere,
        creator_key=demo.creator_key,
        sender=demo.creator,
    )
    model_id = plan.execute().model_id
    metadata = CID.parse(package.metadata_cid)
    demo.blockstore.put_block(metadata, elsewhere.get_block(metadata))
    demo.market.escrow.set_offer(
        model_id, demo.market.escrow.offer(demo.model_id), sender=demo.creator
    )
    demo.indexer.sync()

    page = open_page(demo.bob, f"/models/{model_id}")
    _connect(page)
    reason = page.inner_text("#offer-unservable")
    _shot(page, site, "web-unservable.png")
    servable = open_page(demo.bob, f"/models/{demo.model_id}")

    assert reason.startswith("Cannot be rented or bought:")
    assert f"its encrypted weights {package.weights_cid} are not in the block store" in reason
    assert page.locator("#rent-button").count() == 0
    assert page.locator("#buy-button").count() == 0
    assert servable.locator("#offer-unservable").count() == 0
    assert servable.locator("#rent-button").count() == 1
