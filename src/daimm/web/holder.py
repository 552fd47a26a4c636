"""A licence holder's part of `daimm web`: the "My licences" page and the JSON it reads.

- ``GET /me``: the connected wallet's licences (model, kind, expiry in the browser's time zone, an
  "Extend" button for rentals that pays the escrow as `daimm rent` does), credit channels (read
  only), sessions (revoke one, or all), and the receipts "Try it" verified, kept in the browser and
  verified again on demand. The page is rendered empty; the browser module (``js/licences.js``)
  fills it for the wallet's account, so the server never learns who is looking unless asked.
- ``GET /api/holders/{address}``: that address's licences and credit channels, from the catalog.
- ``GET /api/abis/{name}``: the ABI of a contract the holder's pages call beyond those
  ``/api/config`` carries (the review and session registries, the credit escrow).

Nothing here holds a key or sends a transaction: the wallet signs in the browser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from daimm.catalog.queries import channels_of, licences_of
from daimm.catalog.store import CatalogStore
from daimm.units import format_amount
from daimm.web import data

__all__ = ["HOLDER_ABIS", "holder_router"]

#: Contracts whose ABIs ``/api/abis/{name}`` serves (from the shipped contract types).
HOLDER_ABIS = ("ReviewRegistry", "SessionRegistry", "CreditEscrow")


def holder_router(store: CatalogStore, render: Callable[..., HTMLResponse]) -> APIRouter:
    """The routes of the holder's pages over ``store``; ``render(request, template, **context)``
    renders a page with the site's common context."""
    router = APIRouter()

    @router.get("/me", response_class=HTMLResponse, include_in_schema=False)
    def my_licences(request: Request) -> Response:
        return render(request, "licences.html")

    @router.get(
        "/api/holders/{address}",
        summary="An address's licences and credit channels, from the catalog",
        responses={422: {"description": "Not an address"}},
    )
    def api_holder(address: str) -> dict[str, Any]:
        """Licences (kind ``rental`` or ``perpetual``, ``expires`` in Unix seconds or null) and
        credit channels (amounts as decimal strings in the currency's smallest unit, with
        ``display`` for people). The catalog may be a few blocks behind the chain."""
        holder = data.parse_address(address)
        return {
            "address": holder,
            "catalog_block": store.last_block(),
            "licences": [
                {
                    "licence_id": h.licence_id,
                    "model_id": h.model_id,
                    "model_name": h.model_name,
                    "kind": h.kind,
                    "expires": h.expires,
                }
                for h in licences_of(store, holder)
            ],
            "channels": [
                {
                    "model_id": c.model_id,
                    "model_name": c.model_name,
                    "relayer": c.relayer,
                    "currency": c.currency,
                    "symbol": c.symbol,
                    "decimals": c.decimals,
                    "deposited": str(c.deposited),
                    "redeemed": str(c.redeemed),
                    "reclaimed": str(c.reclaimed),
                    "balance": str(c.balance),
                    "display": {
                        "balance": format_amount(c.balance, c.decimals, c.symbol or "?"),
                        "deposited": format_amount(c.deposited, c.decimals, c.symbol or "?"),
                    },
                }
                for c in channels_of(store, holder)
            ],
        }

    @router.get("/api/abis/{name}", summary="The ABI of a contract the holder's pages call")
    def api_abi(name: str) -> Response:
        """One of ``ReviewRegistry``, ``SessionRegistry``, ``CreditEscrow``."""
        if name not in HOLDER_ABIS:
            return JSONResponse(
                {"error": "unknown_contract", "detail": f"{name!r} is not one of {HOLDER_ABIS}"},
                status_code=404,
            )
        doc = json.loads(resources.files("daimm.contracts").joinpath(f"{name}.json").read_text())
        return JSONResponse(doc["abi"])

    return router
