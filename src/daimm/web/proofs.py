"""Proofs of predictions through `daimm web`: the relayer's proof jobs, passed through (docs/ZK.md).

The model page's "Request proof" (``js/proofs.js``) asks the relayer that answered for a proof of
its receipt and polls the job; the page then checks the proof itself (the weights hash the chain
records for the model version, the relayer's signed claim for the receipt, and the model version's
verifier contract through an ``eth_call``). These routes only forward, like the predict
pass-through: the relayer's answers come back unchanged, so nothing the server does can make a
proof pass the page's checks.

- ``POST /api/relayers/{address}/proofs`` → the relayer's ``POST /v1/proofs`` (202 with a job id;
  404 ``unknown_receipt``; 429 ``proof_queue_full``);
- ``GET /api/relayers/{address}/proofs/{job}`` → its ``GET /v1/proofs/{job}`` (``queued``,
  ``proving``, ``done`` with the proof, or ``failed``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

__all__ = ["MAX_PROOF_REQUEST_BYTES", "proofs_router"]

#: Largest proof request forwarded (a receipt digest in JSON needs under 100 bytes).
MAX_PROOF_REQUEST_BYTES = 4096
_JOB_ID = re.compile(r"[0-9a-fA-F]{1,64}")

Endpoint = Callable[[str, int | None], str]
Forward = Callable[..., Awaitable[Response]]


def proofs_router(
    relayer_endpoint: Endpoint, forward: Forward, refuse: Callable[[int, str, str], Exception]
) -> APIRouter:
    """The proof pass-through routes.

    Args:
        relayer_endpoint: ``(address, model_id)`` to a registered, active relayer's base URL
            (raising the app's 404 otherwise).
        forward: ``(method, url, relayer, **httpx_kwargs)`` to the relayer's answer, unchanged
            (raising the app's 502 when it does not answer).
        refuse: ``(status, code, detail)`` to the app's error exception.
    """
    router = APIRouter()

    @router.post(
        "/api/relayers/{address}/proofs",
        status_code=202,
        summary="Ask a relayer for a proof of one of its receipts, passed through",
    )
    async def api_request_proof(address: str, request: Request) -> Response:
        """Forwards ``{"receipt": "0x<receipt digest>"}`` to the relayer's ``POST /v1/proofs``."""
        body = await request.body()
        if len(body) > MAX_PROOF_REQUEST_BYTES:
            raise refuse(
                413, "body_too_large", f"a proof request is at most {MAX_PROOF_REQUEST_BYTES} bytes"
            )
        endpoint = relayer_endpoint(address, None)
        headers = {"content-type": "application/json"}
        return await forward(
            "POST", f"{endpoint}/v1/proofs", address, content=body, headers=headers
        )

    @router.get(
        "/api/relayers/{address}/proofs/{job}",
        summary="A relayer's proof job (its state, and the proof once done), passed through",
    )
    async def api_proof_job(address: str, job: str) -> Response:
        """Forwards to the relayer's ``GET /v1/proofs/{job}``."""
        if not _JOB_ID.fullmatch(job):
            raise refuse(404, "unknown_job", f"no proof job {job[:80]!r}")
        endpoint = relayer_endpoint(address, None)
        return await forward("GET", f"{endpoint}/v1/proofs/{job}", address)

    return router
