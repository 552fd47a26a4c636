"""The relayer's HTTP API: signatures, refusals, limits, receipts (the chain is a test double)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from daimm import eip712
from daimm.client import verify_receipt_document
from daimm.errors import ReceiptError, RequestRefusedError
from daimm.relayer.access import RateLimiter
from daimm.relayer.app import create_app
from daimm.relayer.chain import Channel
from daimm.relayer.signing import SignatureVerifier

# The same values as conftest.py (test modules here are not a package, so they are repeated).
CHAIN_ID = 31337
REGISTRY = "0x" + "12" * 20
ESCROW = "0x" + "34" * 20


def _body(rows: Any) -> bytes:
    return json.dumps({"inputs": {"input": np.asarray(rows).tolist()}}).encode()


def _post(http: Any, client: Any, model_id: int, body: bytes, **sign: Any) -> httpx.Response:
    headers = client.signed_headers(model_id, body, **sign)
    return http.post(f"/v1/models/{model_id}/predict", content=body, headers=headers)


@pytest.fixture
def served(create_services: Any, make_client: Any, chain: Any, user: Any) -> Any:
    """A relayer authorised for model 1, with ``user`` holding a licence."""
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services()
    client, http = make_client(services, bytes(user.key))
    with http:
        yield services, client, http


# ------------------------------------------------------------------ the happy path
def test_predict_serves_a_licence_holder_and_the_receipt_verifies(
    served: Any, iris: Any, relayer_account: Any
) -> None:
    _services, client, _http = served
    model, rows = iris

    prediction = client.predict(1, {"input": rows.tolist()})

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, {"input": rows})
    assert prediction.outputs["label"] == label.tolist()
    np.testing.assert_allclose(prediction.outputs["probabilities"], probabilities, rtol=1e-6)
    receipt = verify_receipt_document(prediction.receipt, relayer_account.address)
    assert receipt.model_id == 1
    assert receipt.weights_cid == "bafy-model-1"
    assert prediction.receipt["chainId"] == CHAIN_ID


def test_receipt_fails_verification_for_another_relayer_or_altered_outputs(served: Any) -> None:
    _services, client, _http = served
    prediction = client.predict(1, {"input": [[5.1, 3.5, 1.4, 0.2]]})

    with pytest.raises(ReceiptError, match="not by relayer"):
        verify_receipt_document(prediction.receipt, "0x" + "99" * 20)
    altered = {**prediction.outputs, "label": [2]}
    with pytest.raises(ReceiptError, match="outputsHash"):
        verify_receipt_document(prediction.receipt, prediction.receipt["relayer"], outputs=altered)


def test_models_lists_the_loaded_model_with_its_schema(served: Any) -> None:
    _services, client, http = served
    client.predict(1, {"input": [[5.1, 3.5, 1.4, 0.2]]})

    models = http.get("/v1/models").json()["models"]

    assert [m["model_id"] for m in models] == [1]
    assert models[0]["inputs"] == [
        {"name": "input", "type": "tensor(float)", "dtype": "float32", "shape": [None, 4]}
    ]


def test_health_and_metrics_answer(served: Any, relayer_account: Any) -> None:
    _services, _client, http = served
    health = http.get("/v1/health").json()
    assert health["relayer"] == relayer_account.address
    assert health["chain_id"] == CHAIN_ID
    assert (health["block"], health["block_hash"]) == (1, "0x" + "ab" * 32)  # the watcher's view
    metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert "daimm_relayer_requests_total" in metrics.text


# ------------------------------------------------------------------ 401
def test_expired_request_is_refused_401(served: Any, chain: Any) -> None:
    _services, client, http = served
    response = _post(http, client, 1, _body([[1, 2, 3, 4]]), deadline=chain.now - 1)
    assert response.status_code == 401
    assert response.json()["error"] == "expired"


def test_reused_nonce_is_refused_401(served: Any) -> None:
    _services, client, http = served
    body = _body([[1, 2, 3, 4]])
    headers = client.signed_headers(1, body, nonce=7)

    first = http.post("/v1/models/1/predict", content=body, headers=headers)
    replay = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["error"] == "nonce_reused"


def test_request_for_another_relayer_is_refused_401(served: Any) -> None:
    _services, client, http = served
    body = _body([[1, 2, 3, 4]])
    headers = client.signed_headers(1, body)
    headers["x-daimm-relayer"] = "0x" + "ab" * 20

    response = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "wrong_relayer"


def test_request_signed_for_another_chain_is_refused_401(served: Any, user: Any) -> None:
    _services, client, http = served
    body = _body([[1, 2, 3, 4]])
    request = eip712.PredictRequest(
        model_id=1,
        body_hash=eip712.keccak256(body),
        nonce=5,
        deadline=int(time.time()) + 60,
        chain_id=CHAIN_ID + 1,
        relayer=client.info().relayer,
    )
    signature = eip712.sign_predict_request(request, REGISTRY, bytes(user.key))
    headers = {
        "x-daimm-address": user.address,
        "x-daimm-signature": "0x" + signature.hex(),
        "x-daimm-nonce": "5",
        "x-daimm-deadline": str(request.deadline),
    }

    silent = http.post("/v1/models/1/predict", content=body, headers=headers)
    declared = http.post(
        "/v1/models/1/predict", content=body, headers={**headers, "x-daimm-chain-id": "31338"}
    )

    # Without saying so, the signature simply does not verify for this relayer's chain.
    assert silent.status_code == 401
    assert silent.json()["error"] == "bad_signature"
    assert declared.status_code == 401
    assert declared.json()["error"] == "wrong_chain"


def test_body_changed_after_signing_is_refused_401(served: Any) -> None:
    _services, client, http = served
    headers = client.signed_headers(1, _body([[1, 2, 3, 4]]))

    response = http.post("/v1/models/1/predict", content=_body([[9, 9, 9, 9]]), headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "bad_signature"


def test_unsigned_request_is_refused_401(served: Any) -> None:
    _services, _client, http = served
    response = http.post("/v1/models/1/predict", content=_body([[1, 2, 3, 4]]))
    assert response.status_code == 401
    assert response.json()["error"] == "missing_signature"


def test_two_identical_requests_at_once_serve_exactly_one(
    create_services: Any, chain: Any, user: Any, make_client: Any
) -> None:
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services()
    app = create_app(services)
    client, sync_http = make_client(services, bytes(user.key))
    body = _body([[5.1, 3.5, 1.4, 0.2]])
    # NOTE: no `with`: the lifespan (which closes the store at exit) must not end mid-test.
    client.predict(1, {"input": [[5.1, 3.5, 1.4, 0.2]]})  # warm the model
    headers = client.signed_headers(1, body)

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            responses = await asyncio.gather(
                *(
                    http.post("/v1/models/1/predict", content=body, headers=headers)
                    for _ in range(2)
                )
            )
        return sorted(r.status_code for r in responses)

    assert asyncio.run(race()) == [200, 401]


# ------------------------------------------------------------------ 403, 402, 503
def test_caller_without_licence_is_refused_403_saying_no_licence(
    served: Any, chain: Any, user: Any
) -> None:
    _services, client, _http = served
    chain.access.clear()
    chain.prices[1] = 10

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, {"input": [[1, 2, 3, 4]]})

    assert (refused.value.status, refused.value.code) == (403, "no_licence")
    assert "holds no live licence" in refused.value.detail
    assert "offered per call" in refused.value.detail


def test_rental_that_expires_mid_session_stops_being_served(
    served: Any, chain: Any, user: Any
) -> None:
    _services, client, _http = served
    assert client.predict(1, {"input": [[1, 2, 3, 4]]}).outputs
    chain.access.discard((1, user.address))  # the chain now says the rental has lapsed

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, {"input": [[1, 2, 3, 4]]})

    assert refused.value.status == 403


def test_relayer_not_authorised_for_the_model_is_refused_403(served: Any, chain: Any) -> None:
    _services, client, _http = served
    chain.authorised.clear()

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, {"input": [[1, 2, 3, 4]]})

    assert (refused.value.status, refused.value.code) == (403, "relayer_not_authorised")


def test_unreadable_chain_gives_503_never_no_licence(served: Any, chain: Any) -> None:
    _services, client, _http = served
    chain.down = True

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, {"input": [[1, 2, 3, 4]]})

    assert (refused.value.status, refused.value.code) == (503, "chain_unavailable")
    chain.down = False
    assert client.predict(1, {"input": [[1, 2, 3, 4]]}).outputs


@pytest.fixture
def pay_per_use(create_services: Any, make_client: Any, chain: Any, user: Any, store: Any) -> Any:
    chain.authorised.add(1)
    chain.prices[1] = 100
    chain.channels[(user.address, 1)] = Channel(
        "0x" + "00" * 20, deposited=250, redeemed=0, expires_at=chain.now + 86_400
    )
    services = create_services()
    client, http = make_client(services, bytes(user.key))
    with http:
        yield client, http


def test_pay_per_use_calls_are_charged_and_recorded_before_the_answer(
    pay_per_use: Any, store: Any, user: Any
) -> None:
    client, _http = pay_per_use

    first = client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)
    second = client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)

    assert (first.charged, second.charged) == (100, 100)
    recorded = store.get(user.address, 1)
    assert (recorded.spent, recorded.cumulative) == (200, 200)
    voucher = eip712.Voucher(1, client.info().relayer, 200, CHAIN_ID, ESCROW)
    assert eip712.recover_voucher_signer(voucher, recorded.signature) == user.address


def test_voucher_beyond_the_deposit_is_refused_402(pay_per_use: Any) -> None:
    client, _http = pay_per_use
    client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)
    client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)

    with pytest.raises(RequestRefusedError) as refused:  # 300 > 250 deposited
        client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)

    assert (refused.value.status, refused.value.code) == (402, "voucher_above_deposit")
    # In the currency's own units, not wei (ETH here: the channel's currency is the zero address).
    assert "the voucher is for 0.0000000000000003 ETH" in refused.value.detail
    assert "only 0.00000000000000025 ETH was deposited" in refused.value.detail


def test_voucher_that_does_not_cover_the_call_is_refused_402(pay_per_use: Any) -> None:
    client, http = pay_per_use
    client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)
    body = _body([[1, 2, 3, 4]])
    headers = client.signed_headers(1, body)
    headers["x-daimm-voucher"] = client.voucher_header(1, 100)  # reuses the first call's voucher

    response = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert response.status_code == 402
    assert response.json()["error"] == "insufficient_voucher"
    assert "at least 0.0000000000000002 ETH (200 in the smallest unit)" in response.json()["detail"]


def test_voucher_without_deposit_or_on_expiring_channel_is_refused_402(
    pay_per_use: Any, chain: Any, user: Any
) -> None:
    client, _http = pay_per_use
    chain.channels[(user.address, 1)] = Channel("0x" + "00" * 20, 250, 0, chain.now + 60)
    with pytest.raises(RequestRefusedError) as expiring:
        client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)
    del chain.channels[(user.address, 1)]
    with pytest.raises(RequestRefusedError) as empty:
        client.predict(1, {"input": [[1, 2, 3, 4]]}, pay_per_use=True)

    assert (expiring.value.status, expiring.value.code) == (402, "channel_expiring")
    assert "expires in 1 min (at " in expiring.value.detail
    assert (empty.value.status, empty.value.code) == (402, "no_credit")


# ------------------------------------------------------------------ 429, 413, 422, JSON errors
@pytest.fixture
def recoveries(monkeypatch: Any) -> list[int]:
    """One entry per request signature recovery (a spy on the real verifier)."""
    seen: list[int] = []
    real = SignatureVerifier.is_signed_by

    def counting(self: Any, *args: Any) -> bool:
        seen.append(1)
        return real(self, *args)

    monkeypatch.setattr(SignatureVerifier, "is_signed_by", counting)
    return seen


@pytest.mark.parametrize(
    ("limiter", "recovered"),
    [("ip_limiter", []), ("address_limiter", [1])],
    ids=["per-ip-before-any-signature-recovery", "per-wallet-after-its-signature-verifies"],
)
def test_rate_limit__bucket_empty__429_before_any_chain_call(
    create_services: Any,
    make_client: Any,
    chain: Any,
    user: Any,
    recoveries: list[int],
    limiter: str,
    recovered: list[int],
) -> None:
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services(**{limiter: RateLimiter(rate=0.001, burst=1)})
    client, http = make_client(services, bytes(user.key))
    with http:
        assert client.predict(1, {"input": [[1, 2, 3, 4]]}).outputs
        assert recoveries  # the spy sees signature checks
        recoveries.clear()
        chain_calls = chain.calls

        response = _post(http, client, 1, _body([[1, 2, 3, 4]]))

    assert (response.status_code, response.json()["error"]) == (429, "rate_limited")
    assert recoveries == recovered
    assert chain.calls == chain_calls


def test_wallet_rate_limit__unsigned_claims_of_its_address__spend_none_of_it(
    create_services: Any, make_client: Any, chain: Any, user: Any
) -> None:
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services(address_limiter=RateLimiter(rate=0.001, burst=1))
    client, http = make_client(services, bytes(user.key))
    with http:
        claim = {"x-daimm-address": user.address}
        claims = [http.post("/v1/models/1/predict", content=b"{}", headers=claim) for _ in range(3)]
        served = client.predict(1, {"input": [[1, 2, 3, 4]]})

    assert {c.status_code for c in claims} == {401}
    assert served.outputs


def test_per_ip_rate_limit_answers_429(create_services: Any, make_client: Any, user: Any) -> None:
    services = create_services(ip_limiter=RateLimiter(rate=0.001, burst=2))
    _client, http = make_client(services, bytes(user.key))
    with http:
        codes = [http.post("/v1/models/1/predict", content=b"{}").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_body_over_the_limit_is_refused_413(
    create_services: Any, make_client: Any, user: Any
) -> None:
    services = create_services(max_body_bytes=1000)
    client, http = make_client(services, bytes(user.key))
    with http:
        body = _body(np.ones((100, 4)))
        response = _post(http, client, 1, body)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("inputs", "needle"),
    [
        ({"input": [[1, 2, 3]]}, "inputs.input: expected shape ['*', 4], got [1, 3]"),
        ({"input": [[1, 2, 3, 4]], "extra": [1]}, "inputs.extra: the model has no such input"),
        ({}, "inputs.input: missing"),
        ({"input": [["a", "b", "c", "d"]]}, "inputs.input: expected numbers"),
        ({"input": [[1, 2], [3]]}, "inputs.input"),
    ],
)
def test_wrong_tensor_gets_422_naming_the_field(served: Any, inputs: Any, needle: str) -> None:
    _services, client, _http = served
    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, inputs)
    assert refused.value.status == 422
    assert needle in refused.value.detail


def test_malformed_json_gets_422(served: Any) -> None:
    _services, client, http = served
    response = _post(http, client, 1, b"{not json")
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_json", "detail": "body: not valid JSON"}


def test_errors_are_json_with_code_and_detail_never_tracebacks(served: Any) -> None:
    _services, _client, http = served
    for response in (
        http.get("/v1/nothing"),
        http.get("/v1/models/1/predict"),
        http.post("/v1/models/not-a-number/predict", content=b"{}"),
    ):
        data = response.json()
        assert set(data) == {"error", "detail"}
        assert "Traceback" not in response.text


def test_model_ids_outside_uint256_are_unknown_models_not_server_errors(served: Any) -> None:
    _services, _client, http = served
    for model_id in (0, -1, 2**256):
        response = http.post(f"/v1/models/{model_id}/predict", content=b"{}")
        assert (response.status_code, response.json()["error"]) == (404, "unknown_model")


@pytest.mark.parametrize("voucher", ["-5:0x00", "abc:0x00", "5:nothex", "5:0x1234"])
def test_malformed_vouchers_are_refused_402_not_server_errors(
    pay_per_use: Any, voucher: str
) -> None:
    client, http = pay_per_use
    body = _body([[1, 2, 3, 4]])
    headers = {**client.signed_headers(1, body), "x-daimm-voucher": voucher}

    response = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert (response.status_code, response.json()["error"]) == (402, "invalid_voucher")
