"""The web server: server-rendered pages and a JSON API over the catalog, for people with a wallet.

Pages (Jinja2 templates): ``/`` (browse and search), ``/models/{id}`` (a model card with rent, buy
and "try it"), ``/dashboard?address=0x...`` (a creator's models, earnings and withdrawals). JSON
(in the OpenAPI document at ``/docs``): ``/api/models``, ``/api/models/{id}``, ``/api/config``,
``/api/health``. Two pass-throughs let the browser module reach what it must not be configured
with: ``POST /api/rpc`` (read-only JSON-RPC methods to the chain) and
``/api/relayers/{address}/...`` (a registered relayer's health and predict endpoints, bytes
forwarded unchanged so the receipt still verifies in the browser).

The server never holds a key and never sends a transaction: the browser module
(``static/daimm.js``, built from ``js/``) asks the wallet to sign. Every error is a page or
``{"error": code, "detail": message}`` with a fitting status, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from daimm import eip712
from daimm.catalog import CatalogStore, get_model
from daimm.catalog.queries import relayer_of
from daimm.deployments import Deployment, DeploymentsFile
from daimm.errors import CatalogError, CatalogUnavailableError, DaimmError, ValidationError
from daimm.ipfs import LocalBlockstore
from daimm.openapi_docs import serve_docs
from daimm.units import format_amount
from daimm.web import data
from daimm.web.chart import step_chart
from daimm.web.comments import CommentReader
from daimm.web.config import WebConfig
from daimm.web.creators import creators_router, upload_settings
from daimm.web.credit import mount_credit
from daimm.web.holder import holder_router
from daimm.web.keys import mount_sessions
from daimm.web.proofs import proofs_router
from daimm.web.upload import mount_uploads

__all__ = ["ABI_CONTRACTS", "READ_METHODS", "create_app"]

log = logging.getLogger("daimm.web")

HERE = Path(__file__).resolve().parent
#: Contracts whose ABIs the browser gets from ``/api/config``.
ABI_CONTRACTS = ("RentalEscrow", "LicenseNFT", "AIModelToken", "ModelRegistry", "RelayerRegistry")
#: JSON-RPC methods ``POST /api/rpc`` forwards: reads only (transactions go through the wallet).
READ_METHODS = frozenset(
    {
        "eth_blockNumber",
        "eth_call",
        "eth_chainId",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByNumber",
        "eth_getCode",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "net_version",
    }
)
_FORWARDED_HEADERS = ("content-type", "x-daimm-")
_HEALTH_TTL_S = 2.0


class _ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _abi(name: str) -> list[dict[str, Any]]:
    """The ABI of ``name`` from the shipped contract types, read now (they may be refreshed)."""
    text = resources.files("daimm.contracts").joinpath(f"{name}.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)["abi"]
    return abi


class _RpcHealth:
    """Whether the chain's RPC endpoint answers, re-probed at most every two seconds."""

    def __init__(self, url: str, chain_id: int, timeout_s: float) -> None:
        self.url, self.chain_id, self.timeout_s = url, chain_id, timeout_s
        self._lock = threading.Lock()
        self._checked = 0.0
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None when the endpoint answers with the expected chain id, else what is wrong."""
        with self._lock:
            if time.monotonic() - self._checked < _HEALTH_TTL_S:
                return self._problem
        probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        problem: str | None
        try:
            answer = httpx.post(self.url, json=probe, timeout=self.timeout_s).json()
            chain_id = int(answer["result"], 16)
            problem = (
                None
                if chain_id == self.chain_id
                else f"the RPC endpoint serves chain {chain_id}, not chain {self.chain_id}"
            )
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            problem = f"the chain's RPC endpoint is not answering ({type(exc).__name__})"
        with self._lock:
            self._checked, self._problem = time.monotonic(), problem
        return problem


def _shareable_rpc_url(url: str) -> str | None:
    """``url`` if it has no path, query or user info, where hosted endpoints keep API keys."""
    from daimm.relayer.chain import redact_url

    return None if redact_url(url).endswith("/...") else url


def _format(value: Any, decimals: int, symbol: str) -> str:
    return format_amount(int(value), int(decimals), symbol)


def _when(ts: int | None) -> str:
    from datetime import UTC, datetime

    if not ts:
        return "-"
    return datetime.fromtimestamp(int(ts), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def create_app(config: WebConfig) -> FastAPI:
    """The ASGI app serving ``config``'s catalog and deployment.

    Raises:
        DeploymentNotFoundError: The deployments file has no entry for ``config.network``.
        CatalogError: The catalog database cannot be opened.
    """
    deployment: Deployment = DeploymentsFile(config.deployments).get(config.network)
    chain_id = config.chain_id or deployment.chain_id
    store = CatalogStore(config.catalog_url)
    blocks = LocalBlockstore(config.store) if config.store else None
    health = _RpcHealth(config.rpc_url, chain_id, min(config.rpc_timeout_s, 2.0))
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["amount"] = _format
    templates.env.filters["when"] = _when
    templates.env.globals["short"] = lambda a: f"{a[:6]}…{a[-4:]}" if a else ""

    rpc_client = httpx.AsyncClient(timeout=config.rpc_timeout_s)
    relayer_client = httpx.AsyncClient(timeout=config.relayer_timeout_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await rpc_client.aclose()
        await relayer_client.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="daimm web",
        version="1",
        summary="Browse the daimm catalog; rent, buy and try models with a wallet.",
        description="The JSON half of `daimm web`. Amounts are decimal strings in the currency's"
        ' smallest unit; errors are `{"error": code, "detail": message}`.',
        docs_url=None,  # /docs is served from the package, not a CDN (daimm.openapi_docs)
        redoc_url=None,
    )
    serve_docs(app)
    app.state.config = config
    app.state.store = store
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    uploads = upload_settings(config)
    mount_uploads(
        app, chain_id=chain_id, registry=deployment.address("ModelRegistry"), settings=uploads
    )

    def currencies() -> dict[str, tuple[str, int]]:
        return data.known_currencies(store, deployment.currencies)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("rpc_problem", health.problem())
        context.setdefault("chain_id", chain_id)
        context.setdefault("network", deployment.network)
        if "last_block" not in context:
            try:
                context["last_block"] = store.last_block()
            except Exception:  # noqa: BLE001 - an error page must render even without the catalog
                context["last_block"] = None
        return templates.TemplateResponse(request, name, context, status_code=status)

    app.include_router(creators_router(store, render, uploads))
    app.include_router(holder_router(store, render))
    comments = CommentReader(uploads.backend)
    mount_sessions(app, deployment=deployment, render=render)

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    def error(request: Request, status: int, code: str, detail: str) -> Response:
        if is_api(request):
            return JSONResponse({"error": code, "detail": detail}, status_code=status)
        titles = {404: "Not found", 422: "That request cannot be read", 503: "Unavailable"}
        return render(
            request,
            "error.html",
            status,
            title=titles.get(status, "Something went wrong"),
            detail=detail,
            code=status,
        )

    # ------------------------------------------------------------------ errors
    @app.exception_handler(_ApiError)
    async def on_api_error(request: Request, exc: _ApiError) -> Response:
        return error(request, exc.status, exc.code, exc.detail)

    @app.exception_handler(ValidationError)
    async def on_validation(request: Request, exc: ValidationError) -> Response:
        return error(request, 422, "invalid_query", str(exc))

    @app.exception_handler(CatalogError)
    async def on_catalog(request: Request, exc: CatalogError) -> Response:
        log.warning("catalog error on %s: %s", request.url.path, exc)
        return error(request, 503, "catalog_unavailable", str(exc))

    @app.exception_handler(DaimmError)
    async def on_daimm(request: Request, exc: DaimmError) -> Response:
        return error(request, 400, "bad_request", str(exc))

    @app.exception_handler(RequestValidationError)
    async def on_request_validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("path", "query"))
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
        return error(request, 422, "invalid_query", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = "no such page" if exc.status_code == 404 else str(exc.detail)
        return error(
            request, exc.status_code, "not_found" if exc.status_code == 404 else "http", detail
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return error(request, 500, "internal", "an unexpected error happened; it was logged")

    def model_or_404(model_id: int) -> dict[str, Any]:
        if not 0 < model_id < 2**256:
            raise _ApiError(404, "unknown_model", f"model ids are 1, 2, ...; not {model_id}")
        try:
            detail = data.model_detail(store, model_id)
        except CatalogUnavailableError:
            raise
        except CatalogError as exc:
            raise _ApiError(404, "unknown_model", str(exc)) from None
        comments.attach(detail["reviews"])
        detail["unservable"] = data.unservable_reason(detail, blocks)
        return detail

    # ------------------------------------------------------------------ pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> Response:
        filters, query = data.parse_filters(request.query_params, currencies(), config.page_size)
        page = data.run_filters(store, filters, query, config.page_size)
        return render(
            request,
            "index.html",
            page=page,
            rows=[data.hit_json(h) for h in page.hits],
            currencies=sorted(currencies()),
        )

    @app.get("/models/{model_id}", response_class=HTMLResponse, include_in_schema=False)
    def model_page(request: Request, model_id: int) -> Response:
        detail = model_or_404(model_id)
        return render(request, "model.html", model=detail)

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request, address: str | None = None) -> Response:
        if not address:
            return render(request, "dashboard.html", board=None, charts={})
        board = data.dashboard(store, data.parse_address(address))
        charts = {
            "rentals": step_chart(
                [("rentals", [(ts, float(n)) for ts, n in board.rentals])],
                title="Rentals over time (cumulative)",
                y_label="rentals",
            ),
            "revenue": step_chart(
                sorted(board.revenue.items()),
                title="Net revenue to payees over time (cumulative)",
                y_label="whole units",
            ),
        }
        held = [
            {"payee_set": str(b.payee_set), "currency": b.currency, "release_at": b.release_at,
             "amount": str(b.amount), "fee": str(b.fee)}
            for b in board.held
        ]  # fmt: skip
        return render(request, "dashboard.html", board=board, charts=charts, held=held)

    # ------------------------------------------------------------------ JSON
    @app.get("/api/models", summary="Search the catalog (same filters as the / page)")
    def api_models(
        request: Request,
        q: str = Query("", description="Words to match in name, description, task and tags."),
        task: str = Query("", description="Exact task, e.g. tabular-classification."),
        licence: str = Query("", description="Kind of licence offered: rental, perpetual or call."),
        max_price: str = Query("", description="Highest price with its currency, e.g. '5 AIMT'."),
        min_rating: str = Query("", description="Lowest average rating, 1 to 5 stars."),
        sort: str = Query("relevance", description="relevance, price, rating, newest or name."),
        page: str = Query("1", description="Page number, from 1."),
    ) -> dict[str, Any]:
        """Models matching the filters, one page at a time."""
        filters, query = data.parse_filters(request.query_params, currencies(), config.page_size)
        result = data.run_filters(store, filters, query, config.page_size)
        return {
            "models": [data.hit_json(h) for h in result.hits],
            "page": filters.page,
            "page_size": config.page_size,
            "has_more": result.has_more,
            "catalog_block": store.last_block(),
        }

    @app.get(
        "/api/models/{model_id}",
        summary="One model: metadata, versions, offer, reviews, relayers",
        responses={404: {"description": "No such model in the catalog"}},
    )
    def api_model(model_id: int) -> dict[str, Any]:
        """Everything the catalog knows of a model."""
        return model_or_404(model_id)

    @app.get("/api/dashboard", summary="A creator's models, earnings and held payments")
    def api_dashboard(
        address: str = Query(..., description="The creator's address."),
    ) -> dict[str, Any]:
        """What the dashboard shows, as JSON."""
        board = data.dashboard(store, data.parse_address(address))
        return {
            "address": board.address,
            "models": [data.hit_json(h) for h in board.models],
            "earnings": [
                {k: (str(v) if isinstance(v, int) else v) for k, v in e.items()}
                for e in board.earnings
            ],
            "rentals": [{"timestamp": ts, "total": n} for ts, n in board.rentals],
            "held": [
                {"payee_set": str(b.payee_set), "currency": b.currency,
                 "release_at": b.release_at, "amount": str(b.amount), "fee": str(b.fee)}
                for b in board.held
            ],
        }  # fmt: skip

    @app.get("/api/config", summary="Chain, contracts, ABIs and EIP-712 types for the browser")
    def api_config() -> dict[str, Any]:
        """What the browser module needs to talk to the chain and the relayers."""
        abis = {name: _abi(name) for name in ABI_CONTRACTS}
        errors: dict[str, dict[str, Any]] = {}
        for abi in abis.values():
            for item in abi:
                if item.get("type") == "error":
                    signature = (
                        item["name"] + "(" + ",".join(i["type"] for i in item["inputs"]) + ")"
                    )
                    errors.setdefault(signature, item)
        sample = eip712.PredictRequest(
            model_id=1, body_hash=b"\x00" * 32, nonce=0, deadline=0, chain_id=chain_id,
            relayer="0x" + "00" * 20,
        )  # fmt: skip
        registry = deployment.address("RelayerRegistry")
        request_doc = eip712.predict_request_typed_data(sample, registry)
        receipt_doc = eip712.receipt_typed_data(
            eip712.Receipt(1, "x", b"\x00" * 32, b"\x00" * 32, 0), chain_id, registry
        )
        known = currencies()
        return {
            "chain_id": chain_id,
            "network": deployment.network,
            "rpc_url": config.public_rpc_url or _shareable_rpc_url(config.rpc_url),
            "contracts": dict(deployment.contracts),
            "currencies": {s: {"address": a, "decimals": d} for s, (a, d) in known.items()},
            "abis": abis,
            "errors": list(errors.values()),
            "eip712": {
                "domain": {
                    "name": request_doc["domain"]["name"],
                    "version": request_doc["domain"]["version"],
                },
                "types": {
                    "PredictRequest": request_doc["types"]["PredictRequest"],
                    "Receipt": receipt_doc["types"]["Receipt"],
                },
            },
        }

    @app.get("/api/health", summary="Whether the catalog and the chain's RPC endpoint answer")
    def api_health() -> dict[str, Any]:
        """``rpc`` is ``ok`` or a message; ``catalog_block`` the last block the catalog read."""
        problem = health.problem()
        return {"rpc": problem or "ok", "chain_id": chain_id, "catalog_block": store.last_block()}

    # ------------------------------------------------------------------ pass-throughs
    @app.post("/api/rpc", summary="Read-only JSON-RPC to the chain (for the browser module)")
    async def api_rpc(request: Request) -> Response:
        """Forwards a JSON-RPC call (or batch) of a read method; 502 when the chain is down."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise _ApiError(422, "invalid_json", "the body is not JSON-RPC") from None
        calls = body if isinstance(body, list) else [body]
        for call in calls:
            method = call.get("method") if isinstance(call, dict) else None
            if method not in READ_METHODS:
                raise _ApiError(
                    403, "method_not_allowed",
                    f"{method!r} is not a read method; transactions go through your wallet",
                )  # fmt: skip
        try:
            answer = await rpc_client.post(config.rpc_url, json=body)
        except httpx.HTTPError as exc:
            raise _ApiError(
                502,
                "rpc_unavailable",
                f"the chain's RPC endpoint is not answering ({type(exc).__name__})",
            ) from None
        return Response(
            answer.content, status_code=answer.status_code, media_type="application/json"
        )

    def relayer_endpoint(address: str, model_id: int | None) -> str:
        relayer = data.parse_address(address)
        row = relayer_of(store, relayer)
        if row is None or not row.active:
            raise _ApiError(
                404, "unknown_relayer", f"{relayer} is not a registered, active relayer"
            )
        if model_id is not None and relayer not in get_model(store, model_id).relayers:
            raise _ApiError(
                404, "relayer_not_authorised", f"relayer {relayer} does not serve model {model_id}"
            )
        return str(row.endpoint).rstrip("/")

    async def forward(method: str, url: str, relayer: str, **kwargs: Any) -> Response:
        try:
            answer = await relayer_client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise _ApiError(
                502, "relayer_unavailable",
                f"relayer {relayer} at {url.split('/v1/')[0]} is not answering"
                f" ({type(exc).__name__}); try another relayer or later",
            ) from None  # fmt: skip
        media = answer.headers.get("content-type", "application/json")
        return Response(answer.content, status_code=answer.status_code, media_type=media)

    @app.get("/api/relayers/{address}/health", summary="A relayer's /v1/health, passed through")
    async def api_relayer_health(address: str) -> Response:
        """The relayer's own health answer; 502 when it does not answer."""
        endpoint = relayer_endpoint(address, None)
        return await forward("GET", endpoint + "/v1/health", address)

    @app.post(
        "/api/relayers/{address}/models/{model_id}/predict",
        summary="A signed predict request, passed through to the relayer unchanged",
    )
    async def api_relayer_predict(address: str, model_id: int, request: Request) -> Response:
        """Forwards the body and the ``x-daimm-*`` signature headers; the answer comes back
        byte for byte, so the browser verifies the relayer's receipt itself."""
        if not 0 < model_id < 2**256:
            raise _ApiError(404, "unknown_model", f"model ids are 1, 2, ...; not {model_id}")
        endpoint = relayer_endpoint(address, model_id)
        headers = {
            k: v for k, v in request.headers.items() if k.lower().startswith(_FORWARDED_HEADERS)
        }
        body = await request.body()
        url = f"{endpoint}/v1/models/{model_id}/predict"
        return await forward("POST", url, address, content=body, headers=headers)

    mount_credit(app, deployment=deployment, relayer_endpoint=relayer_endpoint, forward=forward)
    app.include_router(proofs_router(relayer_endpoint, forward, _ApiError))
    return app
