"""Replay: identical signed requests sent at the same moment to the real app on a uvicorn server.

tests/unit/relayer/test_app.py races two requests through httpx's in-memory ASGI transport; here
the race goes over real TCP connections to uvicorn on 127.0.0.1, each copy on its own connection,
many rounds, so the copies are parsed, verified and decided concurrently as in production. The
race runs twice: with every chain answer cached (the decision is made inline on the event loop)
and with every answer missing the cache (the decision runs in a thread, so the copies interleave
between the signature check and spending the nonce: only the store's atomic insert stops them).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.trust.conftest import LONG, onnx_models, run

MODEL = 1
BODY = b'{"inputs":{"x":[[1.0,2.0,3.0,4.0]]}}'
ROUNDS = 200 if LONG else 25


async def _race(url: str, headers: dict[str, str], copies: int) -> list[tuple[int, str]]:
    # One client per copy: every copy has its own TCP connection, none waits for a pooled one.
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for _ in range(copies)]
    try:
        for http in clients:  # connect first, so the requests themselves leave together
            await http.get("/v1/health")
        responses = await asyncio.gather(
            *(h.post(f"/v1/models/{MODEL}/predict", content=BODY, headers=headers) for h in clients)
        )
    finally:
        await asyncio.gather(*(h.aclose() for h in clients))
    return [(r.status_code, r.json().get("error", "ok")) for r in responses]


@pytest.mark.parametrize("cold_chain", [False, True], ids=["warm-cache", "cold-cache"])
def test_identical_signed_requests_sent_together_are_served_exactly_once(
    relayer_server: Any, cold_chain: bool
) -> None:
    with relayer_server({MODEL: onnx_models.add_model()}, cold_chain=cold_chain) as relayer:
        client = relayer.client()
        client.predict(MODEL, {"x": [[0.0, 0.0, 0.0, 0.0]]})  # load the model first

        async def rounds() -> list[list[tuple[int, str]]]:
            results = []
            for i in range(ROUNDS):
                headers = client.signed_headers(MODEL, BODY)  # a fresh nonce each round
                results.append(await _race(relayer.url, headers, 2 if i % 5 else 8))
            return results

        results = run(rounds())

    for outcome in results:
        served = [r for r in outcome if r[0] == 200]
        refused = [r for r in outcome if r[0] != 200]
        assert len(served) == 1, outcome
        assert set(refused) == {(401, "nonce_reused")}, outcome
