"""Session keys in the pages: the API-key page (``/keys``) and what the browser needs for them.

``GET /keys?model=ID`` is the page where a licence holder's wallet signs one ``Session`` for a fresh
key made in the page and is shown the API key once (``daimm_sk_...``) with snippets for the CLI,
Python (:class:`daimm.client.SessionClient`) and JavaScript (``/static/daimm-session.mjs``), and
lists the sessions made in this browser with "revoke" and "revoke all". ``GET /api/sessions/config``
gives the SessionRegistry's address and ABI (from the shipped contract types) and the defaults of
:mod:`daimm.sessions`. The server signs nothing and holds no key: the key is made in the page and
the page alone sees it (docs/WEB.md, "Session keys").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from daimm.deployments import Deployment
from daimm.sessions import DEFAULT_MAX_CALLS, DEFAULT_TTL_S, MAX_TTL_S

__all__ = ["mount_sessions"]


def mount_sessions(
    app: FastAPI, *, deployment: Deployment, render: Callable[..., HTMLResponse]
) -> None:
    """Add ``/keys`` and ``/api/sessions/config`` to ``app``.

    Args:
        app: The ``daimm web`` app.
        deployment: Its deployment (the SessionRegistry, when it has one).
        render: The app's page renderer (``render(request, template, **context)``).
    """
    router = APIRouter()
    registry = deployment.contracts.get("SessionRegistry")
    text = resources.files("daimm.contracts").joinpath("SessionRegistry.json").read_text()
    abi = [item for item in json.loads(text)["abi"] if item.get("type") in ("function", "error")]

    @router.get("/keys", response_class=HTMLResponse, include_in_schema=False)
    def keys_page(request: Request, model: int | None = None) -> Response:
        model_id = model if model is not None and 0 < model < 2**256 else None
        return render(request, "keys.html", model_id=model_id, sessions_registry=registry)

    @router.get(
        "/api/sessions/config",
        summary="The SessionRegistry and the session defaults, for the browser's session keys",
    )
    def sessions_config() -> dict[str, Any]:
        """``registry`` is null when the deployment has no SessionRegistry (no session keys)."""
        return {
            "registry": registry,
            "abi": abi,
            "defaults": {
                "ttl_s": DEFAULT_TTL_S,
                "max_ttl_s": MAX_TTL_S,
                "max_calls": DEFAULT_MAX_CALLS,
            },
        }

    app.include_router(router)
