"""Fuzz every endpoint of the relayer's OpenAPI document with schemathesis: no 5xx, no crash.

The schema is read from the running server (``/openapi.json`` on 127.0.0.1), so any endpoint added
later is fuzzed too. Cases come from schemathesis in both modes (data that fits the schema and data
that does not). Unsigned requests stop at the signature check, so half of the ``predict`` cases
are signed by a licensed wallet over the exact bytes sent: those reach JSON parsing, tensor
validation and the model. Every answer must be below 500 and, for an error, the one JSON error
shape. CI runs a bounded number of examples; ``DAIMM_FUZZ=long`` runs many more.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.trust.conftest import LONG, onnx_models

MODEL = 1
EXAMPLES = 2_000 if LONG else 150


def _body_bytes(case: Any) -> bytes | None:
    body = getattr(case, "body", None)
    if body is None or type(body).__name__ == "NotSet":
        return None
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    return json.dumps(body).encode()


def _send(http: httpx.Client, client: Any, case: Any, sign: bool) -> httpx.Response:
    content = _body_bytes(case)
    headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
    path = case.formatted_path
    if case.method.upper() == "POST" and path.endswith("/predict"):
        headers.setdefault("content-type", "application/json")
        if sign:
            model_id = case.path_parameters.get("model_id")
            if isinstance(model_id, int) and 0 <= model_id < 2**256:
                headers.update(client.signed_headers(model_id, content or b""))
    return http.request(
        case.method, path, params=case.query or None, headers=headers, content=content
    )


def test_no_endpoint_answers_5xx_to_fuzzed_requests(relayer_server: Any) -> None:
    seen: dict[str, set[int]] = {}
    with relayer_server({MODEL: onnx_models.add_model()}) as relayer:
        client = relayer.client()
        client.predict(MODEL, {"x": [[1.0, 2.0, 3.0, 4.0]]})  # loaded: fuzz reaches the model
        schema = schemathesis.openapi.from_url(f"{relayer.url}/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        cases = st.one_of(
            schema.as_strategy(GenerationMode.POSITIVE),
            schema.as_strategy(GenerationMode.NEGATIVE),
        )
        http = httpx.Client(base_url=relayer.url, timeout=30)

        @settings(
            max_examples=EXAMPLES * len(operations),
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=cases, sign=st.booleans())
        def fuzz(case: Any, sign: bool) -> None:
            response = _send(http, client, case, sign)
            key = f"{case.method.upper()} {case.operation.path}"
            seen.setdefault(key, set()).add(response.status_code)
            assert response.status_code < 500, (key, response.status_code, response.text[:300])
            if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
                "application/json"
            ):
                document = response.json()
                if "error" in document:
                    assert set(document) == {"error", "detail"}, document
            else:
                assert response.status_code < 400 or response.status_code == 405, response.text

        try:
            fuzz()
            health = http.get("/v1/health")
        finally:
            http.close()

    # Every operation in the document was exercised, and the server still answers.
    assert set(seen) == {f"{op.method.upper()} {op.path}" for op in operations}
    print("fuzz status codes by operation:", {k: sorted(v) for k, v in seen.items()})
    assert health.status_code == 200
    # The signed predict cases got past the signature: some reached validation or the model.
    assert seen["POST /v1/models/{model_id}/predict"] & {200, 422}, seen
