"""The model page's "Try it" widgets in Chromium on anvil: a picture, a drawing, a sentence, a form.

The marketplace is the demo's (``scripts/demo.py``): the breast-cancer model it trains and the
image and text samples daimm ships (``daimm.samples``: handwritten digits, review sentiment),
published encrypted, a relayer authorised for all three and running as `daimm relayer serve`, the
catalog synced; `daimm web` runs under uvicorn in a thread, and the Debian ``/usr/bin/chromium`` is
driven by Playwright (``playwright install`` is never run). Alice rents the three models through
the library; the page then signs each request with her account and verifies each receipt.

NOTE: the wallet is tests/e2e/test_web.py's stand-in (an EIP-1193 provider forwarding to anvil's
unlocked dev accounts, see that module's docstring): a real wallet's pop-ups cannot run here.
Everything else (the page, its widgets, viem, the server, the relayer, the contracts) is real.

Runs only on anvil: ``ape test tests/e2e/test_web_widgets.py --network ethereum:local:foundry``.
Screenshots go to the test's folder; ``DAIMM_WEB_SCREENSHOTS=1`` writes docs/web-widget-image.png.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.e2e.test_web import ROOT, SCREENSHOTS, wallet_page
from tests.utils.web import chromium, demo_marketplace, serve_in_thread

pytestmark = [pytest.mark.chain]


@pytest.fixture(scope="module")
def site(chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo's three models served by its relayer, the catalog synced, `daimm web` up, and
    Alice holding a rental of each."""
    from daimm.web import WebConfig, create_app

    demo, node_url = demo_marketplace(chain, tmp_path_factory.mktemp("widgets"))
    work = demo.workdir
    models = {"breast_cancer": demo.model_id, **demo.outcome.sample_models}
    for model_id in models.values():
        demo.market.escrow.rent(model_id, 1, sender=demo.alice, approve=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(demo.serve_relayer())
        demo.search()  # syncs the catalog
        config = WebConfig(
            catalog_url=demo.catalog_url,
            rpc_url=node_url,
            deployments=str(demo.deployments_file),
            network=demo.network,
        )
        url = stack.enter_context(serve_in_thread(create_app(config)))
        yield {
            "demo": demo,
            "models": models,
            "url": url,
            "node_url": node_url,
            "work": work,
        }


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def model_page(site: dict[str, Any], browser: Any) -> Iterator[Any]:
    """``model_page(key)``: the page of that sample, Alice's stand-in wallet connected."""
    contexts: list[Any] = []

    def open_(key: str) -> Any:
        wallet = {"rpc": site["node_url"], "account": str(site["demo"].alice)}
        url = f"{site['url']}/models/{site['models'][key]}"
        page = wallet_page(browser, contexts, url, wallet, height=1000)
        page.click("#wallet-connect")
        page.wait_for_selector("#wallet-connect:has-text('Connected')")
        return page

    yield open_
    for context in contexts:
        context.close()


def _digit_png(digit: int, size: int = 128) -> bytes:
    """A held-out digits image of ``digit``, drawn dark on white and enlarged, as a PNG file."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    image = data.images[np.flatnonzero(data.target == digit)[-1]]
    grey = (255 - np.rint(image * 255 / 16)).astype(np.uint8)
    picture = Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _run(page: Any) -> None:
    page.click("#tryit-run")
    page.wait_for_selector("#tryit-message.ok, #tryit-message.err")


def _answer(page: Any) -> tuple[str, float, dict[str, Any]]:
    """The top bar's label and score, and the body the page signed."""
    message = page.inner_text("#tryit-message")
    assert page.locator("#tryit-verified.verified-ok").count() == 1, message
    top = page.locator("#tryit-predictions .bar-row.best")
    label = top.get_attribute("data-label")
    score = float(top.locator(".bar-score").inner_text())
    return str(label), score, json.loads(page.locator("#tryit-body").text_content())


def _error(page: Any) -> str:
    page.wait_for_selector("#tryit-message.err")
    return str(page.inner_text("#tryit-message"))


def _shot(page: Any, site: dict[str, Any], name: str) -> None:
    """A full-page screenshot in the test's folder; docs/WEB.md's one in docs/ when asked."""
    in_docs = SCREENSHOTS and name == "web-widget-image.png"
    target = ROOT / "docs" / name if in_docs else site["work"] / name
    page.screenshot(path=str(target), full_page=True)


def _drop(page: Any, selector: str, name: str, mime: str, data: bytes) -> None:
    """Drop a file on ``selector`` as a person dragging it from their desktop would."""
    page.evaluate(
        """([selector, name, mime, b64]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], name, { type: mime }));
          const target = document.querySelector(selector);
          const init = { dataTransfer: transfer, bubbles: true };
          target.dispatchEvent(new DragEvent("dragover", init));
          target.dispatchEvent(new DragEvent("drop", init));
        }""",
        [selector, name, mime, base64.b64encode(data).decode()],
    )


# ---------------------------------------------------------------------------------- the widgets
def test_image_widget__a_dropped_digit_png__is_labelled(site, model_page):
    page = model_page("digits")
    assert page.locator("#try-it[data-widget='image']").count() == 1
    png = _digit_png(4)

    _drop(page, "#widget-drop", "four.png", "image/png", png)
    page.wait_for_selector("#widget-preview:not([hidden])")
    _run(page)

    label, score, body = _answer(page)
    assert (label, body["image"]["b64"]) == ("4", base64.b64encode(png).decode())
    assert score > 0.5
    _shot(page, site, "web-widget-image.png")


def test_image_widget__a_chosen_jpeg__is_labelled(model_page):
    from PIL import Image

    page = model_page("digits")
    picture = Image.open(io.BytesIO(_digit_png(2, size=224)))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92)

    page.set_input_files(
        "#widget-file", {"name": "two.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}
    )
    page.wait_for_selector("#widget-preview:not([hidden])")
    _run(page)

    assert _answer(page)[0] == "2"


def test_image_widget__the_cards_example_picture__is_labelled(model_page):
    page = model_page("digits")

    page.click("#widget-image .widget-example:has-text('a handwritten 7')")
    _run(page)

    assert _answer(page)[0] == "7"


def test_image_widget__a_drawn_one__is_sent_as_a_cropped_png_and_labelled(site, model_page):
    page = model_page("digits")
    page.locator("#widget-pad").scroll_into_view_if_needed()
    pad = page.locator("#widget-pad").bounding_box()
    x = pad["x"] + pad["width"] * 0.55

    # A single upright stroke, in the right half of the pad: the widget crops it to the ink.
    page.mouse.move(x, pad["y"] + pad["height"] * 0.2)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x - step * 0.8, pad["y"] + pad["height"] * (0.2 + step * 0.06))
    page.mouse.up()
    page.wait_for_selector("#widget-image-name:has-text('your drawing')")
    _run(page)

    label, _, body = _answer(page)
    png = base64.b64decode(body["image"]["b64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert label == "1"
    _shot(page, site, "web-widget-pad.png")


def test_text_widget__a_typed_sentence__is_labelled(site, model_page):
    page = model_page("sentiment")
    assert page.locator("#try-it[data-widget='text']").count() == 1

    page.fill("#widget-text", "What a lovely hotel, the staff were so friendly")
    _run(page)
    positive = _answer(page)
    page.fill("#widget-text", "Awful food and a rude waiter, never again")
    _run(page)
    negative = _answer(page)

    assert (positive[0], positive[2]) == (
        "positive",
        {"text": "What a lovely hotel, the staff were so friendly"},
    )
    assert negative[0] == "negative"
    _shot(page, site, "web-widget-text.png")


def test_tabular_widget__the_prefilled_form__is_sent_as_named_features(site, model_page):
    page = model_page("breast_cancer")
    fields = page.locator("#widget-form input[data-feature]")
    assert fields.count() == 30

    page.fill("#widget-form input[data-feature='mean radius']", "12.5")
    _run(page)

    label, _, body = _answer(page)
    assert label in {"malignant", "benign"}
    assert len(body["features"]) == 30
    assert body["features"]["mean radius"] == 12.5


def test_use_this_model__shows_the_cli_and_python_calls(site, model_page):
    page = model_page("sentiment")

    page.click("#use-this-model summary")

    model_id = site["models"]["sentiment"]
    cli = page.inner_text("#use-cli")
    assert cli.startswith(f'daimm infer {model_id} --text "')
    assert f"--relayer-address {site['demo'].relayer.address}" in cli
    assert f"client.predict({model_id}, text=" in page.inner_text("#use-python")


# ---------------------------------------------------------------------------------- bad inputs
def test_image_widget__not_an_image__shows_the_relayers_detail(model_page):
    page = model_page("digits")

    _drop(page, "#widget-drop", "notes.png", "image/png", b"these are my notes, not a picture")
    page.wait_for_selector("#widget-image-name:has-text('notes.png')")
    _run(page)

    assert _error(page) == (
        "The relayer refused (invalid_image): inputs.image: not a PNG, JPEG, WebP or GIF image."
    )


def test_image_widget__nothing_chosen__asks_for_a_picture(model_page):
    page = model_page("digits")

    _run(page)

    assert "Drop a picture, choose a file, pick an example or draw first." in _error(page)


def test_text_widget__empty__shows_the_relayers_detail(model_page):
    page = model_page("sentiment")

    page.fill("#widget-text", "")
    _run(page)

    assert _error(page) == "The relayer refused (invalid_text): inputs.text: the text is empty."


def test_tabular_widget__a_field_left_empty__names_the_missing_feature(model_page):
    page = model_page("breast_cancer")

    page.fill("#widget-form input[data-feature='mean texture']", "")
    _run(page)

    assert _error(page) == (
        "The relayer refused (missing_feature): inputs.input.mean texture: missing."
    )


def test_raw_json__wrong_shape__shows_the_relayers_detail(model_page):
    page = model_page("breast_cancer")

    page.click("#tryit-raw summary")
    page.fill("#tryit-inputs", '{"input": [[1, 2, 3]]}')
    page.check("#tryit-use-raw")
    _run(page)

    assert _error(page) == (
        "The relayer refused (invalid_input): inputs.input: expected shape ['*', 30], got [1, 3]."
    )
