"""Pay-per-use credit in the pages: what the browser needs to deposit, read and pay per call.

``GET /api/credit/config`` gives the CreditEscrow's address and ABI (from the shipped contract
types) and the EIP-712 ``Voucher`` type; ``GET /api/relayers/{address}/models/{id}/credit/{payer}``
passes the relayer's public credit endpoint through (what the payer has spent there, unredeemed
included, and the price of the next call: what the next voucher must cover). The server signs
nothing: deposits and reclaims go through the wallet, vouchers are signed in the page by the
session key (docs/WEB.md, "Pay per call").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response

from daimm import eip712
from daimm.deployments import Deployment

__all__ = ["mount_credit"]


def mount_credit(
    app: FastAPI,
    *,
    deployment: Deployment,
    relayer_endpoint: Callable[[str, int | None], str],
    forward: Callable[..., Awaitable[Response]],
) -> None:
    """Add ``/api/credit/config`` and the relayer credit pass-through to ``app``.

    Args:
        app: The ``daimm web`` app.
        deployment: Its deployment (the CreditEscrow, when it has one).
        relayer_endpoint: The app's lookup of a registered relayer's endpoint (404 otherwise).
        forward: The app's pass-through to a relayer (502 when it does not answer).
    """
    router = APIRouter()
    escrow = deployment.contracts.get("CreditEscrow")
    text = resources.files("daimm.contracts").joinpath("CreditEscrow.json").read_text()
    abi = [item for item in json.loads(text)["abi"] if item.get("type") in ("function", "error")]
    sample = eip712.Voucher(1, "0x" + "00" * 20, 0, 1, "0x" + "00" * 20)
    document = eip712.voucher_typed_data(sample)

    @router.get("/api/credit/config", summary="The CreditEscrow and the Voucher type, for the page")
    def credit_config() -> dict[str, Any]:
        """``escrow`` is null when the deployment has no CreditEscrow (no pay-per-use)."""
        return {
            "escrow": escrow,
            "abi": abi,
            "domain": {
                "name": document["domain"]["name"],
                "version": document["domain"]["version"],
            },
            "types": {"Voucher": document["types"]["Voucher"]},
        }

    @router.get(
        "/api/relayers/{address}/models/{model_id}/credit/{payer}",
        summary="A relayer's credit answer (spent there, price per call), passed through",
    )
    async def relayer_credit(address: str, model_id: int, payer: str) -> Response:
        """The relayer's ``/v1/models/{id}/credit/{payer}``, byte for byte."""
        from eth_utils import is_address

        if not is_address(payer) or not 0 < model_id < 2**256:
            return Response(
                json.dumps({"error": "invalid_request", "detail": "payer: not an address"}),
                status_code=422,
                media_type="application/json",
            )
        endpoint = relayer_endpoint(address, model_id)
        url = f"{endpoint}/v1/models/{model_id}/credit/{payer}"
        return await forward("GET", url, address)

    app.include_router(router)
