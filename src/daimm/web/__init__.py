"""`daimm web`: the marketplace in a browser, above the library.

An ASGI app (:func:`create_app`) over the catalog (``daimm.catalog``) with server-rendered pages,
a JSON API, and a browser module (``static/daimm.js``, bundled from ``js/`` with viem) that
connects an EIP-1193 wallet to rent, buy, try models through a relayer and withdraw earnings.
Nothing in the library imports this package. ``docs/WEB.md`` describes pages, API and errors.
"""

from __future__ import annotations

from daimm.web.app import create_app
from daimm.web.config import DEFAULT_HOST, DEFAULT_PORT, WebConfig

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WebConfig", "create_app"]
