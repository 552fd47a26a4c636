"""The relayer's HTTP edge, tried as an attacker would (issue 15, items 1-6).

The attacker holds a valid key (any wallet, no licence needed), may claim any address, and sends
bounded load to the real app on real uvicorn on 127.0.0.1 (the chain is the ``ChainDouble`` of
tests/unit/relayer/conftest.py, except where a real ``ChainReader`` meets a dead RPC endpoint).
Every answer must be below 500, no socket may be held open by a client that stops, no answer may
name the RPC endpoint, and no victim may be throttled by traffic it did not sign.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account

from daimm.relayer.access import RateLimiter
from daimm.relayer.chain import ChainReader
from daimm.relayer.settings import CONTRACT_NAMES, RelayerSettings
from tests.trust.conftest import onnx_models
from tests.utils.relayer import free_port

MODEL = 1
ROW = [1.0, 2.0, 3.0, 4.0]


def _predict(relayer: Any, body: bytes, account: Any = None, model_id: int = MODEL) -> Any:
    """POST ``body`` (raw bytes, as is) signed by ``account`` (the licensed user by default)."""
    client = relayer.client(account)
    headers = {"content-type": "application/json", **client.signed_headers(model_id, body)}
    return httpx.post(
        f"{relayer.url}/v1/models/{model_id}/predict", content=body, headers=headers, timeout=30
    )


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


def _log_model() -> bytes:
    """``y = log(x)`` over float32 [N, 4]: finite inputs (0, or negatives) give -inf and NaN."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Log", ["x"], ["y"])],
        "log",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ------------------------------------------------------------------ 1. malformed bodies
@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs":{"x":' + b"[" * 1000 + b"]" * 1000 + b"}}",  # the reported 2 KB body
        b'{"inputs":{"x":' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}}",
        b"[" * 100_000,  # unterminated, and deeper than any stack
        b'{"inputs":{"x":' + b"[" * 65 + b"]" * 65 + b"}}",  # one past the default limit
    ],
    ids=["arrays-1000", "objects-1000", "open-100000", "arrays-65"],
)
def test_predict__deeply_nested_body_with_any_valid_signature__422_json_too_deep(
    relayer_server: Any, body: bytes
) -> None:
    stranger = Account.create()  # a valid key, no licence
    with relayer_server({MODEL: onnx_models.add_model()}) as relayer:
        response = _predict(relayer, body, stranger)
        health = httpx.get(f"{relayer.url}/v1/health", timeout=30)
    assert _error(response) == (422, "json_too_deep")
    assert "64 levels" in response.json()["detail"]
    assert health.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"inputs": "\xff\xfe"}',  # not UTF-8
        '{"inputs": {"x": [[1, 2, 3, 4]]}}'.encode("utf-16"),  # JSON, but not UTF-8
        b'{"inputs": {"x": [[1' + b"0" * 5000 + b", 2, 3, 4]]}}",  # an int past 4,300 digits
        b'{"inputs": {"x": [[1, 2, 3, 4]]}',  # cut short
        b"\xef\xbb\xbf{}",  # a byte order mark
    ],
    ids=["latin-1", "utf-16", "huge-int", "truncated", "bom"],
)
def test_predict__body_the_parser_refuses__422_invalid_json(
    relayer_server: Any, body: bytes
) -> None:
    with relayer_server({MODEL: onnx_models.add_model()}) as relayer:
        response = _predict(relayer, body)
    assert _error(response) == (422, "invalid_json")


def test_predict__brackets_inside_strings__not_counted_as_depth(relayer_server: Any) -> None:
    # An escaped quote before the brackets, an escaped backslash just before the closing quote.
    note = '\\"' + "[" * 500 + "{\\\\"
    body = ('{"note": "' + note + '", "inputs": {"x": [' + json.dumps(ROW) + "]}}").encode()
    json.loads(body)  # valid JSON, nested four deep
    with relayer_server({MODEL: onnx_models.add_model()}) as relayer:
        response = _predict(relayer, body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == {"y": [[1.0, 3.0, 5.0, 7.0]]}


# ------------------------------------------------------------------ 2. NaN and infinities
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "1e39"])
def test_predict__non_finite_number_in_a_tensor__422_invalid_input_naming_it(
    relayer_server: Any, value: str
) -> None:
    body = f'{{"inputs": {{"x": [[{value}, 1.0, 2.0, 3.0]]}}}}'.encode()
    with relayer_server({MODEL: onnx_models.add_model()}) as relayer:
        response = _predict(relayer, body)
    assert _error(response) == (422, "invalid_input")
    assert response.json()["detail"].startswith("inputs.x: holds NaN or an infinity")


@pytest.mark.parametrize("row", [[0.0, 1.0, 1.0, 1.0], [-1.0, 1.0, 1.0, 1.0]], ids=["-inf", "nan"])
def test_predict__model_answers_non_finite__422_and_nothing_signed(
    relayer_server: Any, row: list[float]
) -> None:
    body = json.dumps({"inputs": {"x": [row]}}).encode()
    with relayer_server({MODEL: _log_model()}) as relayer:
        response = _predict(relayer, body)
        served = _predict(relayer, json.dumps({"inputs": {"x": [[1.0] * 4]}}).encode())
    assert _error(response) == (422, "non_finite_output")
    assert "output y" in response.json()["detail"]
    assert "receipt" not in response.text
    json.loads(response.text)  # and the refusal itself is JSON
    assert served.json()["outputs"] == {"y": [[0.0, 0.0, 0.0, 0.0]]}


# ------------------------------------------------------------------ 3. per-wallet limits
def test_predict__flood_claiming_a_victims_address__victim_still_served(
    relayer_server: Any,
) -> None:
    body = json.dumps({"inputs": {"x": [ROW]}}).encode()
    attacker = Account.create()
    limits = (RateLimiter(1e9, 1_000_000), RateLimiter(rate=0.001, burst=3))
    with relayer_server({MODEL: onnx_models.add_model()}, limiters=limits) as relayer:
        victim = relayer.user.address
        forged = relayer.client(attacker).signed_headers(MODEL, body)  # signed, but not by victim
        attack = []
        for headers in (
            {"x-daimm-address": victim},  # unsigned
            {**forged, "x-daimm-address": victim},  # another key's signature
        ):
            for _ in range(5):
                attack.append(
                    httpx.post(
                        f"{relayer.url}/v1/models/{MODEL}/predict",
                        content=body,
                        headers=headers,
                        timeout=30,
                    )
                )
        victims_own = [_predict(relayer, body) for _ in range(4)]
    assert {_error(r) for r in attack} == {(401, "missing_signature"), (401, "bad_signature")}
    assert [r.status_code for r in victims_own] == [200, 200, 200, 429]
    assert _error(victims_own[-1]) == (429, "rate_limited")


# ------------------------------------------------------------------ 4. slow clients
def _open(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if first:
        sock.sendall(first)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the socket (socket.timeout if it never does)."""
    data = b""
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return data


HEAD = b"POST /v1/models/1/predict HTTP/1.1\r\nHost: relayer\r\nContent-Type: application/json\r\n"


@pytest.fixture
def edge_settings() -> RelayerSettings:
    # Short deadlines so the test is quick; the sockets wait up to 30 s for the close.
    return RelayerSettings(header_timeout_s=1.0, body_timeout_s=1.0, max_header_bytes=16384)


def test_slow_clients__head_or_body_stalls__408_and_closed_while_others_are_served(
    relayer_server: Any, edge_settings: RelayerSettings
) -> None:
    with relayer_server({MODEL: onnx_models.add_model()}, settings=edge_settings) as relayer:
        port = int(relayer.url.rsplit(":", 1)[1])
        silent = [_open(port, b"") for _ in range(4)]
        partial_head = [_open(port, HEAD) for _ in range(8)]
        partial_body = [
            _open(port, HEAD + b"Content-Length: 100\r\n\r\n" + b'{"inputs"') for _ in range(4)
        ]
        # A kept-alive connection: one whole request, then the first bytes of the next one.
        kept = _open(port, b"GET /v1/health HTTP/1.1\r\nHost: relayer\r\n\r\n")
        first_answer = kept.recv(65536)
        kept.sendall(b"\r\nGET /v1/health HTTP/1.1\r\nHost: rel")
        # Meanwhile a normal client is served.
        served = relayer.client().predict(MODEL, {"x": [ROW]})
        answers = [_until_closed(s) for s in silent + partial_head + partial_body + [kept]]
        still_serving = httpx.get(f"{relayer.url}/v1/health", timeout=30)
    assert served.outputs == {"y": [[1.0, 3.0, 5.0, 7.0]]}
    assert first_answer.startswith(b"HTTP/1.1 200")
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"error":"request_timeout"' in answer
    assert still_serving.status_code == 200


def test_slow_clients__trickled_head__408_even_though_bytes_keep_coming(
    relayer_server: Any, edge_settings: RelayerSettings
) -> None:
    stop = threading.Event()
    with relayer_server({MODEL: onnx_models.add_model()}, settings=edge_settings) as relayer:
        port = int(relayer.url.rsplit(":", 1)[1])
        sock = _open(port, b"GET /v1/health HTTP/1.1\r\n")

        def trickle() -> None:
            for index in range(300):  # bounded: at most 300 header lines, one each 0.1 s
                if stop.wait(0.1):
                    return
                try:
                    sock.sendall(b"X-Drip-%d: 1\r\n" % index)
                except OSError:
                    return

        dripper = threading.Thread(target=trickle, daemon=True)
        dripper.start()
        try:
            answer = _until_closed(sock)
        finally:
            stop.set()
            dripper.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_slow_clients__head_past_max_header_bytes__431_and_closed(
    relayer_server: Any, edge_settings: RelayerSettings
) -> None:
    with relayer_server({MODEL: onnx_models.add_model()}, settings=edge_settings) as relayer:
        port = int(relayer.url.rsplit(":", 1)[1])
        # 20 x 1 KiB of headers that never end, past the 16 KiB limit. NOTE: sent at once and
        # then no more, so the server has read everything when it closes (unread bytes would
        # make the close a reset, and the client could lose the 431 before reading it).
        pad = b"".join(b"X-Pad-%02d: %s\r\n" % (i, b"a" * 1014) for i in range(20))
        sock = _open(port, b"GET /v1/health HTTP/1.1\r\n" + pad)
        answer = _until_closed(sock)
        served = relayer.client().predict(MODEL, {"x": [ROW]})
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert served.outputs


def test_slow_clients__big_body_sent_promptly__served(
    relayer_server: Any, edge_settings: RelayerSettings
) -> None:
    body = json.dumps({"inputs": {"x": [ROW] * 5000}}).encode()  # ~100 KB in several reads
    with relayer_server({MODEL: onnx_models.add_model()}, settings=edge_settings) as relayer:
        response = _predict(relayer, body)
    assert response.status_code == 200, response.text[:300]


# ------------------------------------------------------------------ 5. no RPC URL in answers
SECRET = "SECRET-API-KEY-0123"


@pytest.fixture
def dead_rpc_reader() -> Iterator[ChainReader]:
    """A real ``ChainReader`` on a hosted-style URL (key in path, query and user info) nobody
    listens on: every read is a refused connection."""
    port = free_port()
    url = f"http://user:{SECRET}@127.0.0.1:{port}/v3/{SECRET}?apikey={SECRET}"
    contracts = {name: "0x" + f"{i + 1:02x}" * 20 for i, name in enumerate(CONTRACT_NAMES)}
    yield ChainReader(url, contracts, timeout_s=2.0, ttl_s=0)


def test_chain_unavailable__503_says_what_failed_never_the_rpc_url(
    relayer_server: Any, dead_rpc_reader: ChainReader, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="daimm.relayer")
    port = dead_rpc_reader.rpc_url.split("@127.0.0.1:")[1].split("/")[0]
    with relayer_server({MODEL: onnx_models.add_model()}, chain=dead_rpc_reader) as relayer:
        predict = _predict(relayer, json.dumps({"inputs": {"x": [ROW]}}).encode())
        credit = httpx.get(f"{relayer.url}/v1/models/{MODEL}/credit/{relayer.user.address}")
    for response in (predict, credit):
        assert _error(response) == (503, "chain_unavailable")
        assert SECRET not in response.text
        assert port not in response.text and "127.0.0.1" not in response.text
        assert "http" not in response.json()["detail"]
    logged = [r.__dict__.get("error", "") for r in caplog.records if r.msg == "chain read failed"]
    assert logged and all(f"127.0.0.1:{port}" in e and SECRET not in e for e in logged), logged


# ------------------------------------------------------------------ 6. the credit endpoint
def test_credit__public_but_per_ip_limited_before_any_chain_read(relayer_server: Any) -> None:
    limits = (RateLimiter(rate=0.001, burst=2), RateLimiter(1e9, 1_000_000))
    with relayer_server({MODEL: onnx_models.add_model()}, limiters=limits) as relayer:
        payer = Account.create().address
        url = f"{relayer.url}/v1/models/{MODEL}/credit/{payer}"
        first = httpx.get(url, timeout=30)  # no signature: public by decision (docs/RELAYER.md)
        reads = relayer.chain.calls
        answers = [httpx.get(url, timeout=30) for _ in range(3)]
        reads_after = relayer.chain.calls
    assert first.status_code == 200
    assert set(first.json()) == {"model_id", "payer", "spent", "cumulative", "price_per_call"}
    assert [r.status_code for r in answers] == [200, 429, 429]
    assert reads_after - reads == 1  # the refused ones cost no chain read


# ------------------------------------------------------------------ the attack run, all at once
def test_attack_run__any_key_any_claimed_address__no_5xx_no_stall_no_throttled_victim(
    relayer_server: Any, edge_settings: RelayerSettings
) -> None:
    """A bounded mixed attack on loopback while the victim keeps calling.

    The attacker holds a licensed key of its own and claims the victim's address at will. The
    per-IP limit is lifted (attacker and victim share 127.0.0.1 here); the per-wallet limit is on.
    """
    import asyncio

    attacker = Account.create()
    limits = (RateLimiter(1e9, 1_000_000), RateLimiter(rate=1.0, burst=50))
    with relayer_server(
        {MODEL: onnx_models.add_model()}, limiters=limits, settings=edge_settings
    ) as relayer:
        relayer.chain.access.add((MODEL, attacker.address))
        port = int(relayer.url.rsplit(":", 1)[1])
        victim, hostile = relayer.client(), relayer.client(attacker)
        good = json.dumps({"inputs": {"x": [ROW]}}).encode()
        hostile_bodies = [
            b'{"inputs":{"x":' + b"[" * depth + b"]" * depth + b"}}" for depth in (65, 1000, 5000)
        ] + [
            b'{"inputs":{"x":[[NaN,1,2,3]]}}',
            b'{"inputs":{"x":[[1e400,1,2,3]]}}',
            b'{"inputs":{"x":[[1,2,3,4]]}',
            b"\xff" * 64,
            b"[" * 50_000,
        ]
        requests: list[tuple[str, bytes, dict[str, str]]] = []
        for index in range(80):
            body = hostile_bodies[index % len(hostile_bodies)]
            requests.append(("attack", body, hostile.signed_headers(MODEL, body)))
            claim = {"x-daimm-address": victim.signer.address}
            forged = {**hostile.signed_headers(MODEL, good), **claim}
            requests.append(("attack", good, claim if index % 2 else forged))
            if index % 2 == 0:
                requests.append(("victim", good, victim.signed_headers(MODEL, good)))
        slow = [_open(port, HEAD) for _ in range(8)]

        async def send_all() -> list[tuple[str, int]]:
            gate = asyncio.Semaphore(16)
            async with httpx.AsyncClient(base_url=relayer.url, timeout=30) as http:

                async def one(who: str, body: bytes, headers: dict[str, str]) -> tuple[str, int]:
                    async with gate:
                        answer = await http.post(
                            f"/v1/models/{MODEL}/predict", content=body, headers=headers
                        )
                    return who, answer.status_code

                return await asyncio.gather(*(one(*request) for request in requests))

        answers = asyncio.run(send_all())
        closed = [_until_closed(sock) for sock in slow]
        health = httpx.get(f"{relayer.url}/v1/health", timeout=30)
    statuses = [status for _who, status in answers]
    assert max(statuses) < 500, sorted(set(statuses))
    assert [s for who, s in answers if who == "victim"] == [200] * 40
    assert {s for who, s in answers if who == "attack"} <= {401, 422, 429}
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in closed)
    assert health.status_code == 200
