"""The relayer's HTTP API (FastAPI on uvicorn).

- ``GET /v1/health``: liveness, the relayer's address, chain id and contracts, latest block seen
  (number and hash).
- ``GET /v1/models``: models loaded now, with input and output schemas.
- ``GET /v1/models/{model_id}/credit/{payer}``: a payer's spent total and price per call.
- ``POST /v1/models/{model_id}/predict``: a signed request ``{"inputs": {name: value}}`` (nested
  lists, or per the model's card image bytes, strings or named features; docs/RELAYER.md); the
  answer is ``{"outputs": ..., "predictions": ..., "receipt": {...}}`` with a receipt the relayer
  signed over it.
- ``GET /metrics``: Prometheus metrics.

Every error is ``{"error": code, "detail": message}`` with a fitting status, never a traceback.
Logs are one JSON object per line and carry no keys, signatures or inputs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from daimm.errors import DaimmError, ModelUnavailableError, RequestRefusedError
from daimm.modelformat import prepare_request
from daimm.openapi_docs import serve_docs
from daimm.relayer.access import (
    AccessPolicy,
    RateLimiter,
    chain_refusal,
    parse_signed_headers,
)
from daimm.relayer.chain import CacheMiss, ChainReader, LogWatcher
from daimm.relayer.claims import ClaimWorker
from daimm.relayer.edge import parse_json_body
from daimm.relayer.models import ModelManager
from daimm.relayer.proofs import CircuitPreparer, ProofJobs
from daimm.relayer.signing import ReceiptSigner, keccak
from daimm.relayer.vouchers import Redeemer, VoucherStore

__all__ = ["RelayerServices", "create_app", "error_body"]

log = logging.getLogger("daimm.relayer")


@dataclass
class RelayerServices:
    """Everything the app uses, built by ``runner.build_services`` (or by tests).

    Attributes:
        policy: Signature, licence and voucher checks.
        models: The model manager.
        store: Nonces and vouchers.
        reader: The chain reader.
        private_key: The relayer's Ethereum key (signs receipts).
        max_body_bytes: Largest accepted body.
        max_json_depth: Deepest nesting of arrays and objects accepted in a body (checked before
            parsing).
        ip_limiter: Rate limits per client IP, counted before anything else.
        address_limiter: Rate limits per wallet, counted once its signature verifies (never on an
            address a request merely claims, or anyone could throttle any wallet).
        watcher: The log watcher (started and stopped with the app), if any.
        redeemer: The voucher redeemer (started and stopped with the app), if any.
        proofs: Proof jobs for provable models (started and stopped with the app), if any.
    """

    policy: AccessPolicy
    models: ModelManager
    store: VoucherStore
    reader: ChainReader
    private_key: bytes
    max_body_bytes: int = 12 << 20
    max_json_depth: int = 64
    ip_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(200.0, 400))
    address_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(100.0, 200))
    watcher: LogWatcher | None = None
    redeemer: Redeemer | None = None
    started_at: float = field(default_factory=time.time)
    #: Proofs on demand for provable models (docs/ZK.md), if configured.
    proofs: ProofJobs | None = None
    #: Makes published provable versions provable here on first use (docs/ZK.md), if configured.
    preparer: CircuitPreparer | None = None
    #: Answers on-chain challenges of this relayer's receipts by itself (docs/ZK.md), if any.
    claims: ClaimWorker | None = None


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "daimm_relayer_requests_total",
            "Predict requests by outcome.",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "daimm_relayer_predict_seconds",
            "Latency of served predictions, in seconds.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )
        self.loaded = Gauge(
            "daimm_relayer_models_loaded", "Models loaded in workers.", registry=self.registry
        )
        self.memory = Gauge(
            "daimm_relayer_model_memory_bytes",
            "Memory charged to the model cache budget.",
            registry=self.registry,
        )
        self.evictions = Gauge(
            "daimm_relayer_model_evictions", "Models evicted so far.", registry=self.registry
        )
        self.crashes = Gauge(
            "daimm_relayer_worker_crashes", "Worker crashes seen so far.", registry=self.registry
        )
        self.chain_healthy = Gauge(
            "daimm_relayer_chain_healthy",
            "1 when the log watcher's last poll succeeded.",
            registry=self.registry,
        )


def error_body(status: int, code: str, detail: str) -> JSONResponse:
    """The one error shape: ``{"error": code, "detail": detail}``."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestRefusedError(
                    413, "body_too_large", f"the body is {declared} bytes; the limit is {limit}"
                )
        except ValueError:
            raise RequestRefusedError(
                400, "bad_request", "Content-Length is not a number"
            ) from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestRefusedError(
                    413, "body_too_large", f"the body exceeds the limit of {limit} bytes"
                )
            chunks.append(chunk)
    except ClientDisconnect:
        # The client left (or the edge closed a body that was too slow): nobody reads this answer.
        raise RequestRefusedError(400, "client_disconnected", "the body was not sent") from None
    return b"".join(chunks)


def create_app(services: RelayerServices) -> FastAPI:
    """The FastAPI application over ``services``; starts and stops watcher, redeemer, workers."""
    metrics = _Metrics()
    policy = services.policy
    signer = ReceiptSigner(services.private_key)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        if services.watcher is not None:
            await asyncio.to_thread(services.watcher.start)
        if services.redeemer is not None:
            services.redeemer.start()
        if services.proofs is not None:
            services.proofs.start()
        if services.claims is not None:
            services.claims.start()
        log.info(
            "relayer started",
            extra={"relayer": policy.relayer, "chain_id": policy.chain_id},
        )
        try:
            yield
        finally:
            # uvicorn has already finished the in-flight requests when this runs.
            if services.watcher is not None:
                await asyncio.to_thread(services.watcher.stop)
            if services.redeemer is not None:
                await asyncio.to_thread(services.redeemer.stop)
            if services.claims is not None:
                await asyncio.to_thread(services.claims.stop)
            if services.proofs is not None:
                await asyncio.to_thread(services.proofs.stop)
            services.models.close()
            services.store.close()
            if policy.sessions is not None:
                policy.sessions.store.close()
            log.info("relayer stopped")

    app = FastAPI(
        title="daimm relayer",
        version="1",
        summary="Serves ONNX predictions to wallets that hold a live licence or credit.",
        lifespan=lifespan,
        docs_url=None,  # /docs is served from the package, not a CDN (daimm.openapi_docs)
        redoc_url=None,
    )
    serve_docs(app)

    @app.exception_handler(RequestRefusedError)
    async def _refused(_request: Request, exc: RequestRefusedError) -> JSONResponse:
        metrics.requests.labels(exc.code).inc()
        return error_body(exc.status, exc.code, exc.detail)

    @app.exception_handler(ModelUnavailableError)
    async def _unavailable(_request: Request, exc: ModelUnavailableError) -> JSONResponse:
        metrics.requests.labels("model_unavailable").inc()
        return error_body(503, "model_unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_body(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_body(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", extra={"error_type": type(exc).__name__})
        return error_body(500, "internal_error", "the relayer failed unexpectedly; see its logs")

    def _limit_ip(request: Request) -> None:
        ip = request.client.host if request.client else "unknown"
        if not services.ip_limiter.allow(ip):
            raise RequestRefusedError(429, "rate_limited", "too many requests from this address")

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        """Liveness and identity of this relayer."""
        watcher = services.watcher
        return {
            "status": "ok" if watcher is None or watcher.healthy else "chain_unavailable",
            "relayer": policy.relayer,
            "chain_id": policy.chain_id,
            "contracts": {
                "RelayerRegistry": policy.registry,
                "CreditEscrow": policy.escrow,
                **(
                    {"SessionRegistry": policy.sessions.registry}
                    if policy.sessions is not None and policy.sessions.registry is not None
                    else {}
                ),
            },
            "block": services.reader.latest_block,
            "block_hash": services.reader.latest_block_hash,
            "models_loaded": len(services.models.loaded()),
            "uptime_s": round(time.time() - services.started_at, 1),
        }

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """Models loaded now, with their schemas (others load on their first request)."""
        return {
            "models": [
                {
                    "model_id": m.ref.model_id,
                    "version": m.ref.version,
                    "weights_cid": m.ref.weights_cid,
                    **m.schema.to_json(),
                    "card": m.card.summary() if m.card is not None else None,
                }
                for m in services.models.loaded()
            ]
        }

    @app.get("/v1/models/{model_id}/credit/{payer}")
    async def credit(model_id: int, payer: str, request: Request) -> dict[str, Any]:
        """What ``payer`` has spent on ``model_id`` here, and the price of the next call.

        Public on purpose (docs/RELAYER.md, "The credit endpoint"): the amounts reach the chain
        at the next redemption, and a client reads them before it can sign its next voucher.
        """
        from eth_utils import is_address, to_checksum_address

        # NOTE: unsigned, and a cache miss costs an RPC call: the per-IP limit comes first.
        _limit_ip(request)
        _check_model_id(model_id)
        if not is_address(payer):
            raise RequestRefusedError(422, "invalid_request", "payer: not an address")
        stored = services.store.get(to_checksum_address(payer), model_id)
        try:
            price = await asyncio.to_thread(services.reader.price_per_call, model_id)
        except Exception as exc:  # noqa: BLE001 - ChainError and friends
            raise chain_refusal(exc) from None
        return {
            "model_id": model_id,
            "payer": to_checksum_address(payer),
            "spent": str(stored.spent if stored else 0),
            "cumulative": str(stored.cumulative if stored else 0),
            "price_per_call": str(price),
        }

    @app.post(
        "/v1/models/{model_id}/predict",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "inputs": {"type": "object"},
                                "image": {"type": "object", "properties": {"b64": {}}},
                                "text": {"type": "string"},
                                "features": {},
                                "top_k": {"type": "integer", "minimum": 1},
                            },
                        }
                    }
                },
            }
        },
    )
    async def predict(model_id: int, request: Request) -> Response:
        """Run ``model_id`` on the signed request's inputs; the answer carries a signed receipt."""
        started = time.perf_counter()
        # 1. The client's IP, before any signature recovery or chain call.
        _limit_ip(request)
        # 2. Size, then the signature (CPU only), then the wallet's own limit: counted only for
        #    a verified signer, so nobody spends another wallet's allowance by claiming its address.
        _check_model_id(model_id)
        body = await _read_body(request, services.max_body_bytes)
        signed = parse_signed_headers(request.headers)
        body_hash = keccak(body)
        policy.verify_request(model_id, body_hash, signed)
        if not services.address_limiter.allow(signed.address):
            raise RequestRefusedError(429, "rate_limited", "too many requests for this wallet")
        document = parse_json_body(body, services.max_json_depth)
        if not isinstance(document, dict) or not any(
            key in document for key in ("inputs", "image", "text", "features")
        ):
            raise RequestRefusedError(
                422, "invalid_input", 'body: expected {"inputs": {name: value}}'
            )
        # 3. The chain (cached): authorisation, licence or voucher.
        try:
            decision = await _decide(services, model_id, signed)
        except RequestRefusedError as exc:
            if exc.code in ("relayer_not_authorised", "unknown_model"):
                # Plaintext weights of a model this relayer may no longer serve leave memory now.
                services.models.unload(model_id)
            raise
        model = await services.models.get(decision.ref)
        prepared = prepare_request(model.card, model.schema, document)
        # 4. Spend the nonce (exactly one of two identical requests passes), run, charge, sign.
        policy.use_nonce(signed)
        policy.use_session_call(decision)
        answer = await services.models.answer(model, prepared)
        if decision.session is not None:
            # A revocation seen while the model ran stops the answer (cached read when warm).
            await _cached_or_thread(services, policy.recheck_session, decision)
        policy.charge(decision, signed)
        timestamp = int(time.time())
        outputs_hash = keccak(answer.data)
        receipt_digest = policy.digests.receipt(
            model_id, decision.ref.weights_cid, body_hash, outputs_hash, timestamp
        )
        signature = signer.sign(receipt_digest)
        receipt_json = json.dumps(
            {
                "modelId": model_id,
                "weightsCid": decision.ref.weights_cid,
                "inputsHash": "0x" + body_hash.hex(),
                "outputsHash": "0x" + outputs_hash.hex(),
                "timestamp": timestamp,
                "chainId": policy.chain_id,
                "verifyingContract": policy.registry,
                "relayer": policy.relayer,
                "signature": "0x" + signature.hex(),
            },
            separators=(",", ":"),
        ).encode()
        extra = b""
        if decision.paid_by == "voucher":
            extra = b',"charged":"%d"' % decision.price
        if services.proofs is not None:
            extra += await _proof_claim(
                services, signer, decision.ref, prepared.tensors, receipt_digest
            )
        content = answer.body(receipt_json, extra)
        elapsed = time.perf_counter() - started
        metrics.requests.labels("ok").inc()
        metrics.latency.observe(elapsed)
        log.info(
            "served",
            extra={"model_id": model_id, "address": signed.address, "paid_by": decision.paid_by,
                   "session": decision.session is not None, "ms": round(elapsed * 1000, 2)},
        )  # fmt: skip
        return Response(content, media_type="application/json")

    @app.post("/v1/proofs", status_code=202)
    async def request_proof(request: Request) -> dict[str, Any]:
        """Queue a proof of a receipt this relayer issued for a provable model (docs/ZK.md)."""
        _limit_ip(request)
        if services.proofs is None:
            raise RequestRefusedError(404, "proofs_disabled", "this relayer proves no model")
        body = await _read_body(request, 4096)
        try:
            digest = parse_json_body(body, services.max_json_depth)["receipt"]
        except (KeyError, TypeError, IndexError):
            raise RequestRefusedError(
                422, "invalid_request", 'body: expected {"receipt": "0x<receipt digest>"}'
            ) from None
        return services.proofs.submit(str(digest)).to_json()

    @app.get("/v1/proofs/{job_id}")
    async def proof_job(job_id: str) -> dict[str, Any]:
        """A proof job's state, and its proof once done."""
        if services.proofs is None:
            raise RequestRefusedError(404, "proofs_disabled", "this relayer proves no model")
        return services.proofs.get(job_id).to_json()

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics."""
        loaded = services.models.loaded()
        metrics.loaded.set(len(loaded))
        metrics.memory.set(services.models.used_bytes)
        metrics.evictions.set(services.models.evictions)
        metrics.crashes.set(services.models.crashes)
        if services.watcher is not None:
            metrics.chain_healthy.set(1 if services.watcher.healthy else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _check_model_id(model_id: int) -> None:
    if not 0 < model_id < 2**256:
        raise RequestRefusedError(
            404, "unknown_model", f"model ids are 1..2**256-1, not {model_id}"
        )


async def _decide(services: RelayerServices, model_id: int, signed: Any) -> Any:
    """Decide on the event loop when every chain answer is cached (microseconds); otherwise in a
    thread, where a chain read may block for up to the RPC timeout."""
    return await _cached_or_thread(services, services.policy.decide, model_id, signed)


async def _cached_or_thread(services: RelayerServices, fn: Any, *args: Any) -> Any:
    try:
        with services.reader.cache_only():
            return fn(*args)
    except CacheMiss:
        return await asyncio.to_thread(fn, *args)


async def _proof_claim(
    services: RelayerServices,
    signer: ReceiptSigner,
    ref: Any,
    arrays: dict[str, Any],
    receipt_digest: bytes,
) -> bytes:
    """For a provable model, sign the ``ProofClaim`` and keep the receipt provable (docs/ZK.md).

    NOTE: the circuit's outputs come from an ezkl witness in a worker process (about a second);
    only provable models pay it, and only one input row is provable per request.
    """
    from daimm.eip712 import proof_claim_digest
    from daimm.relayer.proofs import IssuedReceipt
    from daimm.zk import instances_hash
    from daimm.zk.prover import claim_instances

    assert services.proofs is not None
    provable = services.proofs.provable(ref.model_id, ref.weights_cid)
    if provable is None and services.preparer is not None:
        services.preparer.ensure(ref)  # non-blocking: later answers carry the claim
    if provable is None or len(arrays) != 1:
        # NOTE: provable circuits take one tabular tensor (daimm.zk.check_provable).
        return b""
    (array,) = arrays.values()
    row = tuple(float(v) for v in array.reshape(array.shape[0], -1)[0])
    try:
        io = await asyncio.to_thread(claim_instances, provable.circuit, row)
    except DaimmError as exc:
        # The answer stands without a claim; the user sees none and can refuse the answer.
        log.warning("no proof claim", extra={"model_id": ref.model_id, "error": str(exc)[:200]})
        return b""
    claimed = instances_hash(io)
    policy = services.policy
    claim_signature = signer.sign(
        proof_claim_digest(receipt_digest, claimed, policy.chain_id, policy.registry)
    )
    services.proofs.record(
        receipt_digest, IssuedReceipt(ref.model_id, ref.weights_cid, row, io, time.time())
    )
    return b',"proofClaim":{"receipt":"0x%s","instancesHash":"0x%s","signature":"0x%s"}' % (
        receipt_digest.hex().encode(),
        claimed.hex().encode(),
        claim_signature.hex().encode(),
    )
