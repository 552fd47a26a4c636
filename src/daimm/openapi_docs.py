"""Swagger UI at ``/docs`` served from the installed package, never from a CDN.

FastAPI's default ``/docs`` page loads Swagger UI's script and style sheet from jsDelivr, so it is
a blank page offline or behind a firewall. The ``swagger-ui-bundle`` package ships those assets;
:func:`serve_docs` mounts them under ``/docs/assets`` and serves a ``/docs`` page that names only
them and ``/docs/openapi.json`` (the OpenAPI document labelled 3.0 for that Swagger UI). Both
FastAPI apps (``daimm web`` and the relayer) use it, so this module imports nothing of daimm's.

Usage: create the app with ``docs_url=None, redoc_url=None`` (ReDoc has no packaged assets), then
call ``serve_docs(app)``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_ASSETS", "DOCS_OPENAPI", "DOCS_URL", "serve_docs"]

#: Where the interactive API documentation is served.
DOCS_URL = "/docs"
#: Where Swagger UI's script, style sheet and icon are served.
DOCS_ASSETS = "/docs/assets"
#: The OpenAPI document as the page's Swagger UI reads it (see :func:`serve_docs`).
DOCS_OPENAPI = "/docs/openapi.json"


def serve_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app``'s OpenAPI document at :data:`DOCS_URL`, assets included.

    Args:
        app: A FastAPI app created with ``docs_url=None`` (else FastAPI's CDN page answers first).

    Raises:
        ValueError: ``app`` still has FastAPI's own docs page, or no OpenAPI document.
    """
    from swagger_ui_bundle import swagger_ui_path

    if app.docs_url is not None or app.openapi_url is None:
        raise ValueError("create the FastAPI app with docs_url=None and an openapi_url")
    title = f"{app.title} API"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get(DOCS_OPENAPI, include_in_schema=False)
    async def docs_openapi() -> JSONResponse:
        # NOTE: the packaged Swagger UI (4.x) refuses to render an "openapi: 3.1.0" document
        # (FastAPI's); FastAPI's schemas read fine as 3.0, so the page gets a copy labelled 3.0.3.
        # /openapi.json itself stays 3.1.
        return JSONResponse({**app.openapi(), "openapi": "3.0.3"})

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=DOCS_OPENAPI,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
