"""The creator's pages of `daimm web`: publishing from the browser, and what the page asks.

``GET /publish`` (``?model=ID`` for a new version of model ID) serves the publish page
(``templates/publish.html``, browser code ``js/publish.js`` in ``static/daimm-creator.js``): the
creator picks an ONNX file, the page pre-fills the card from the graph as `daimm model init`
does, runs the sample input through ONNX Runtime Web (served from ``/static``, never a CDN),
encrypts, uploads to ``POST /api/uploads`` and asks the wallet to sign the rest.

Two JSON helpers for that page: ``POST /api/cards/check`` checks a card against the card schema
(:func:`daimm.modelformat.card.parse_card`, the very check publishing and the upload endpoint
make) and names the first missing or wrong field; ``GET /api/relayers`` lists the relayers the
catalog saw registered, whose X25519 keys the page then reads on chain before wrapping for them.

The server still never sees plaintext weights or a key: a card is metadata the creator publishes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from daimm.catalog import CatalogStore
from daimm.errors import ValidationError
from daimm.ipfs import LocalBlockstore
from daimm.modelformat import CardError, parse_card
from daimm.web.config import WebConfig
from daimm.web.upload import UploadSettings

__all__ = ["check_card", "creators_router", "upload_settings"]


def upload_settings(config: WebConfig) -> UploadSettings:
    """Where uploads go: the environment's backend (:meth:`UploadSettings.from_env`), except that
    `daimm web --store DIR` (the folder this marketplace's relayers read, as `daimm up` passes it)
    is used when no Kubo node or pinning service is configured, so what a creator's page uploads
    is what the relayers find."""
    settings = UploadSettings.from_env()
    if config.store and not (
        os.environ.get("DAIMM_KUBO_URL") or os.environ.get("DAIMM_PINNING_URL")
    ):
        folder = Path(config.store).expanduser()

        @contextlib.contextmanager
        def backend() -> Iterator[LocalBlockstore]:
            yield LocalBlockstore(folder)

        settings = dataclasses.replace(settings, backend=backend)
    return settings


def check_card(document: Any) -> dict[str, Any]:
    """The card's summary if it is ready to publish.

    Raises:
        CardError: A missing, mistyped or inconsistent field, or one still holding `daimm model
            init`'s placeholder; the message names it.
    """
    card = parse_card(document)
    card.require_filled()
    return card.summary()


def creators_router(
    store: CatalogStore, render: Callable[..., HTMLResponse], uploads: UploadSettings
) -> APIRouter:
    """The publish page and its JSON helpers; ``render(request, template, **context)`` renders a
    page with the site's common context (as app.py's pages do); ``uploads`` says where uploaded
    envelopes are."""
    router = APIRouter()

    @router.get("/publish", response_class=HTMLResponse, include_in_schema=False)
    def publish_page(request: Request, model: int | None = None) -> Response:
        return render(request, "publish.html", version_of=model)

    @router.post(
        "/api/cards/check",
        summary="Check a model card against the card schema before publishing",
        responses={422: {"description": "A field is missing, wrong, or still a placeholder"}},
    )
    def api_check_card(document: Any = Body(...)) -> Response:  # noqa: B008 - FastAPI's idiom
        """``{"ok": true, "summary": ...}``, or 422 ``{"error": "bad_card", "field", "detail"}``."""
        try:
            summary = check_card(document)
        except CardError as exc:
            return JSONResponse(
                {"error": "bad_card", "field": exc.field, "detail": str(exc)}, status_code=422
            )
        except ValidationError as exc:
            return JSONResponse({"error": "bad_card", "field": "", "detail": str(exc)}, 422)
        return JSONResponse({"ok": True, "summary": summary})

    @router.get("/api/relayers", summary="Relayers registered on chain, as the catalog saw them")
    def api_relayers() -> dict[str, Any]:
        """Active relayers: address, operator, endpoint (keys are read on chain by the page)."""
        from sqlalchemy import select

        from daimm.catalog import store as t

        with store.connect() as conn:
            rows = conn.execute(
                select(t.relayers.c.address, t.relayers.c.operator, t.relayers.c.endpoint)
                .where(t.relayers.c.active.is_(True))
                .order_by(t.relayers.c.address)
            ).all()
        return {
            "relayers": [
                {"address": r.address, "operator": r.operator, "endpoint": r.endpoint} for r in rows
            ]
        }

    @router.get(
        "/api/envelopes/{cid}",
        summary="A key envelope stored by an upload (the creator's page unwraps it with its key)",
        responses={404: {"description": "Not stored here, or not a key envelope"}},
    )
    def api_envelope(cid: str) -> Response:
        """The envelope's JSON, fetched from the upload backend and verified by CID."""
        from daimm.crypto.envelope import KeyEnvelope
        from daimm.errors import DaimmError
        from daimm.market.publishing import fetch_bytes

        try:
            with uploads.backend() as backend:
                raw = fetch_bytes(cid, backend, max_bytes=64 << 10)
            KeyEnvelope.from_json(raw)
        except DaimmError as exc:
            return JSONResponse(
                {"error": "unknown_envelope", "detail": f"no key envelope {cid} here: {exc}"}, 404
            )
        return Response(raw, media_type="application/json")

    return router
