"""`daimm web` under uvicorn in a thread, and Chromium, for the browser tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.utils import ROOT
from tests.utils.relayer import free_port, node_url_or_skip

#: The Debian Chromium, driven by Playwright (``playwright install`` is never run).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def page_on_anvil_or_skip(chain: Any, bundles: tuple[str, ...] = ("daimm.js",)) -> str:
    """The anvil node's URL, skipping the test without anvil, Chromium or the built ``bundles``
    (files in src/daimm/web/static)."""
    node_url = node_url_or_skip(chain, "the web server and the browser read the chain over HTTP")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (CI's .ci/run does)")
    if not all((ROOT / "src" / "daimm" / "web" / "static" / b).exists() for b in bundles):
        pytest.skip("the browser modules are not built: run `make web` (make setup does)")
    return node_url


@contextlib.contextmanager
def chromium(extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser) until the block exits, with ``extra_args``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def serve_in_thread(app: Any, start_timeout_s: float = 20.0) -> Iterator[str]:
    """Serve the ASGI ``app`` on a free loopback port until the block exits; yields its URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def load_demo() -> Any:
    """``scripts/demo.py`` as the module ``daimm_demo_for_web`` (in ``sys.modules``, which its
    dataclasses need).

    NOTE: by path: scripts/ is not a package (ape runs it with runpy).
    """
    spec = importlib.util.spec_from_file_location(
        "daimm_demo_for_web", ROOT / "scripts" / "demo.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def demo_marketplace(
    chain: Any, work: Path, bundles: tuple[str, ...] = ("daimm.js",)
) -> tuple[Any, str]:
    """The demo's marketplace for a browser test on anvil, or a skip saying what is missing.

    The demo (``scripts/demo.py``) deploys, trains the breast-cancer model and publishes it with
    the shipped samples, each offered and authorised for its relayer (registered, not serving
    yet: ``demo.serve_relayer()`` starts it).

    ``bundles`` names the built browser files (in src/daimm/web/static) the test needs.

    Returns:
        The :class:`Demo` (its ``outcome.sample_models`` name the samples) and the node's URL.
    """
    node_url = page_on_anvil_or_skip(chain, bundles)
    demo_module = load_demo()
    demo = demo_module.Demo(demo_module.Story(echo=lambda _text: None), work)
    demo.deploy()
    demo.train()
    demo.publish()
    return demo, node_url


@contextlib.contextmanager
def serve_demo_web(demo: Any, node_url: str) -> Iterator[str]:
    """`daimm web` over a demo's catalog (synced) and deployments file; yields its URL."""
    from daimm.web import WebConfig, create_app

    config = WebConfig(
        catalog_url=demo.catalog_url,
        rpc_url=node_url,
        deployments=str(demo.deployments_file),
        network=demo.network,
    )
    with serve_in_thread(create_app(config)) as url:
        yield url
