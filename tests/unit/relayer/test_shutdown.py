"""Graceful shutdown: a stop request (what uvicorn does on SIGTERM) lets in-flight requests finish,
then the app closes its workers and its database."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from tests.utils.relayer import free_port

from daimm.relayer.app import create_app


def test_stopping_the_server_finishes_the_request_in_flight_then_closes_everything(
    create_services: Any, chain: Any, user: Any, relayer_account: Any, iris: Any
) -> None:
    from tests.utils import load_by_path

    from daimm.client import KeySigner, RelayerClient

    onnx_models = load_by_path("tests/utils/onnx_models.py", "daimm_test_onnx_models")
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services(
        models={1: onnx_models.slow_model(repeats=40)}, max_body_bytes=64 << 20
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    client = RelayerClient(
        url, KeySigner(bytes(user.key)), expected_relayer=relayer_account.address
    )
    x = np.ones((1024, 1024), dtype=np.float32).tolist()
    client.predict(1, {"x": x})  # load the model first
    body = json.dumps({"inputs": {"x": x}}).encode()
    headers = client.signed_headers(1, body)
    answers: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{url}/v1/models/1/predict", content=body, headers=headers, timeout=60)
        )
    )

    sender.start()
    time.sleep(0.5)  # the request is now running in the worker
    server.should_exit = True  # what uvicorn's SIGTERM handler does
    sender.join(timeout=60)
    thread.join(timeout=60)

    assert [a.status_code for a in answers] == [200]
    assert services.models.loaded() == []
    with pytest.raises(Exception, match="closed"):
        services.store.nonce_used(user.address, 1)
