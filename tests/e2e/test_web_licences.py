"""`daimm web` in Chromium on anvil: "My licences" (a rental with its expiry in the page's time
zone, extended from there; the receipt "Try it" verified, kept in the browser, verified again,
and refused once tampered) and reviews written from the model page and read back verified.

The marketplace, the relayer, the stand-in wallet and Chromium are test_web.py's (its module
docstring says what the stand-in wallet is and why); the web server's block store
(`--store`) is the one the demo's relayer reads, so review comments uploaded from the page
land where the server fetches and verifies them.

Runs only on anvil: ``ape test tests/e2e/test_web_licences.py --network ethereum:local:foundry``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.e2e.test_web import (
    _connect,
    _message,
    browser,  # noqa: F401 - fixture
    open_page,  # noqa: F401 - fixture
)
from tests.utils.web import demo_marketplace, serve_in_thread

pytestmark = [pytest.mark.chain]

ZONE = "Asia/Tokyo"  # far from UTC, no daylight saving: the page's expiry must be in this zone


@pytest.fixture(scope="module")
def site(chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo's marketplace, its relayer running, the catalog synced, `daimm web` up with the
    relayer's block store (``store``) as its upload and comment store."""
    from daimm.web import WebConfig, create_app

    work = tmp_path_factory.mktemp("web-licences")
    demo, node_url = demo_marketplace(chain, work)
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(pytest.MonkeyPatch.context())
        env.setenv("DAIMM_UPLOAD_LEDGER", str(work / "uploads.db"))
        stack.enter_context(demo.serve_relayer())
        demo.search()  # syncs the catalog
        config = WebConfig(
            catalog_url=demo.catalog_url,
            rpc_url=node_url,
            deployments=str(demo.deployments_file),
            network=demo.network,
            rpc_timeout_s=2.0,
            store=str(work / "blocks"),
        )
        url = stack.enter_context(serve_in_thread(create_app(config)))
        yield {"demo": demo, "url": url, "node_url": node_url}


def _open(opener: Any, account: Any, path: str) -> Any:
    """A page with the stand-in wallet, in Tokyo's time zone and an en-US locale."""
    return opener(account, path, timezone_id=ZONE, locale="en-US")


def _goto(page: Any, site: dict[str, Any], path: str) -> None:
    page.goto(site["url"] + path)
    page.wait_for_selector("body[data-ready='1']")
    _connect(page)


def _local(seconds: int) -> str:
    """``hh:mm`` of ``seconds`` in Tokyo, as the page's en-US 12-hour clock writes it."""
    return datetime.fromtimestamp(seconds, tz=UTC).astimezone(ZoneInfo(ZONE)).strftime("%I:%M")


def test_my_licences__rent_try_it__receipt_listed_reverified_and_refused_once_tampered(
    site: dict[str, Any],
    open_page: Any,  # noqa: F811 - test_web's fixture
) -> None:
    demo = site["demo"]
    model_id = demo.model_id
    page = _open(open_page, demo.alice, f"/models/{model_id}")
    _connect(page)
    page.wait_for_selector("#access-status[data-access='no']")
    page.fill("#rent-periods", "2")
    page.click("#rent-button")
    assert _message(page, "#tx-message", "ok").startswith("Rented: licence #")
    page.wait_for_selector("#access-status[data-access='yes']")
    page.click("#tryit-run")
    page.wait_for_selector("#tryit-verified.verified-ok")
    demo.indexer.sync()  # what `daimm catalog sync --follow` does beside `daimm web`

    _goto(page, site, "/me")
    licence_id = int(demo.market.licences.contract.rentalOf(model_id, demo.alice))
    row = page.wait_for_selector(f"#licences-table tr[data-licence-id='{licence_id}']")
    expires = int(demo.market.licences.contract.userExpires(licence_id))
    shown = row.query_selector(".licence-expires").inner_text()
    assert page.inner_text("#licences-tz") == ZONE
    assert "GMT+9" in shown and _local(expires) in shown, shown
    assert "rent" in row.inner_text()

    # The receipt Try it verified is listed and verifies again.
    page.wait_for_selector("#receipts-table tr[data-receipt]")
    assert page.locator("#receipts-table tr[data-receipt]").count() == 1
    page.click(".receipt-verify")
    page.wait_for_selector(".receipt-status[data-verified='yes']")

    # Tampered in storage (one output changed), it no longer verifies.
    page.evaluate(
        """() => {
          const list = JSON.parse(localStorage.getItem("daimm.receipts"));
          const answer = JSON.parse(list[0].text);
          answer.outputs.label = answer.outputs.label.map((x) => 1 - x);
          list[0].text = JSON.stringify(answer);
          localStorage.setItem("daimm.receipts", JSON.stringify(list));
        }"""
    )
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.click(".receipt-verify")
    page.wait_for_selector(".receipt-status[data-verified='no']")
    assert "not verified" in page.inner_text(".receipt-status")

    # Extend the rental by one period from here: the expiry moves by an hour, in Tokyo time.
    _connect(page)
    row = page.wait_for_selector(f"#licences-table tr[data-licence-id='{licence_id}']")
    row.query_selector(".extend-periods").fill("1")
    row.query_selector(".extend-button").click()
    assert _message(page, "#tx-message", "ok").startswith(f"Rented: licence #{licence_id}")
    page.wait_for_function(
        "(e) => document.querySelector('.licence-expires').dataset.expires !== String(e)",
        arg=expires,
    )
    extended = int(demo.market.licences.contract.userExpires(licence_id))
    assert extended == expires + 3600
    assert _local(extended) in page.inner_text(".licence-expires")


def test_review__written_from_the_model_page__comment_read_back_verified(
    site: dict[str, Any],
    open_page: Any,  # noqa: F811 - test_web's fixture
) -> None:
    demo = site["demo"]
    model_id = demo.model_id
    page = _open(open_page, demo.carol, f"/models/{model_id}")
    _connect(page)
    assert page.locator("#review-form").is_hidden()  # no licence yet
    page.click("#buy-button")
    assert _message(page, "#tx-message", "ok").startswith("Bought: perpetual licence #")
    demo.indexer.sync()

    _goto(page, site, f"/models/{model_id}")
    page.wait_for_selector("#review-form:not([hidden])")
    page.select_option("#review-rating", "4")
    comment = "Accurate on my cases ✓ — and fast."
    page.fill("#review-comment", comment)
    calls_before = page.evaluate("window.__walletCalls.length")
    page.click("#review-submit")
    posted = _message(page, "#review-message", "ok")
    assert posted.startswith("Reviewed: 4/5, comment ")
    calls = page.evaluate("window.__walletCalls").__getitem__(slice(calls_before, None))
    assert calls.count("eth_signTypedData_v4") == 1  # the comment's upload
    assert calls.count("eth_sendTransaction") == 1  # the review

    demo.indexer.sync()
    _goto(page, site, f"/models/{model_id}")
    review = page.wait_for_selector(".review[data-comment-status='ok']")
    assert review.query_selector(".review-comment").inner_text() == comment
    assert page.locator("#review-form").is_hidden()  # one review per licence


def test_my_licences__sessions_this_browser_signed__revoked_one_then_all_on_chain(
    site: dict[str, Any],
    open_page: Any,  # noqa: F811 - test_web's fixture
) -> None:
    demo = site["demo"]
    registry = demo.market.sessions.contract
    holder = str(demo.alice.address)
    nonce = int(registry.nonceOf(holder))
    later = int(datetime.now(tz=UTC).timestamp()) + 86_400
    # NOTE: the public parts the sessions module remembers (sessionbook.js); the revocation
    # registry takes any hash from its holder, so no session needs signing for this page's part.
    entries = [
        {"hash": "0x" + f"{i:02x}" * 32, "kind": "try-it", "holder": holder, "key": holder,
         "modelId": str(demo.model_id), "relayer": holder, "expiresAt": str(later),
         "maxCalls": "100", "nonce": str(nonce), "madeAt": 0}
        for i in (0xA1, 0xB2)
    ]  # fmt: skip
    page = _open(open_page, demo.alice, "/")
    page.evaluate(
        "([key, entries]) => localStorage.setItem(key, JSON.stringify(entries))",
        [f"daimm.sessions.{demo.deployment.chain_id}", entries],
    )
    _goto(page, site, "/me")
    first, second = (f"#sessions-list li[data-session='{e['hash']}']" for e in entries)
    page.wait_for_selector(f"{first}[data-state='live']")
    page.wait_for_selector(f"{second}[data-state='live']")

    page.click(f"{first} .session-revoke")
    page.wait_for_selector(f"{first}[data-state='revoked']")
    assert registry.isRevoked(holder, entries[0]["hash"])
    assert page.locator(f"{second}[data-state='live']").count() == 1

    page.click("#sessions-revoke-all")
    page.wait_for_selector(f"{second}[data-state='revoked (all)']")
    assert int(registry.nonceOf(holder)) == nonce + 1
