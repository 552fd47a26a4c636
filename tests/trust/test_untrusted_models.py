"""Untrusted models through the real relayer on loopback: refused before anything runs, and a
crashing worker takes down only its own model.

tests/unit/relayer/test_models.py already covers, on the validator and the model manager: a
protocol-5 pickle with a ``__reduce__`` payload, external data in a top-level initializer
(``../``, absolute, relative), a custom-op domain at the top level and in a subgraph, and a SIGSEGV
in a worker at the manager level. This file adds what those do not reach: pickles of every
protocol and compressed (joblib-style) pickles; external data hidden in a node attribute, a
subgraph or a sparse initializer; a custom operator inside a model-local function; and every one
of those sent through the HTTP app (503 for that model, other models still served, nothing run).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import pickle
import signal
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from daimm.errors import ValidationError
from daimm.relayer.models import validate_onnx_bytes
from tests.trust.conftest import onnx_models, run

GOOD = 1
X = [[1.0, 2.0, 3.0, 4.0]]


class Payload:
    """Unpickling this runs ``touch <marker>`` through ``__reduce__``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def _pickles(marker: Path) -> dict[str, bytes]:
    payload = Payload(marker)
    found = {f"protocol-{p}": pickle.dumps(payload, protocol=p) for p in range(6)}
    found["zlib"] = zlib.compress(found["protocol-4"])  # joblib's default compression
    found["gzip"] = gzip.compress(found["protocol-4"])
    return found


def _sanity_the_payload_really_fires(tmp_path: Path) -> None:
    # Guards the test itself: unpickling the payload does create the marker, so its absence later
    # means nothing was unpickled.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))  # noqa: S301 - on purpose, on our own bytes
    assert probe.exists()
    probe.unlink()


def _with_external_tensor(model: onnx.ModelProto, tensor: onnx.TensorProto, location: str) -> None:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location


def _external_in_constant_node(location: str) -> bytes:
    value = numpy_helper.from_array(np.arange(4, dtype=np.float32), "c")
    _with_external_tensor(onnx.ModelProto(), value, location)
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["c"], value=value),
            helper.make_node("Add", ["x", "c"], ["y"]),
        ],
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _external_in_subgraph(location: str) -> bytes:
    weights = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    _with_external_tensor(onnx.ModelProto(), weights, location)
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["z"])],
        "branch",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4])],
        [weights],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
        "outer",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _external_in_sparse_initializer(location: str) -> bytes:
    values = numpy_helper.from_array(np.ones(2, dtype=np.float32), "s_values")
    indices = numpy_helper.from_array(np.array([0, 3], dtype=np.int64), "s_indices")
    _with_external_tensor(onnx.ModelProto(), values, location)
    sparse = helper.make_sparse_tensor(values, indices, [4])
    sparse.values.name = "s"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "sparse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        sparse_initializer=[sparse],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _custom_op_in_local_function() -> bytes:
    # The model imports only ONNX's own domain; the custom operator hides inside a function whose
    # domain is local to the model.
    function = helper.make_function(
        "local.funcs", "Wrapper", ["a"], ["b"],
        [helper.make_node("EvilOp", ["a"], ["b"], domain="com.attacker")],
        opset_imports=[helper.make_opsetid("", 17)],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Wrapper", ["x"], ["y"], domain="local.funcs")],
        "wrapped",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.funcs", 1)],
        functions=[function],
    )
    return model.SerializeToString()


HOSTILE_ONNX = {
    "external data in a Constant node, ../ path": lambda: _external_in_constant_node("../../x"),
    "external data in a Constant node, absolute path": lambda: _external_in_constant_node("/etc/x"),
    "external data in a subgraph initializer": lambda: _external_in_subgraph("../secret.bin"),
    "external data in a sparse initializer": lambda: _external_in_sparse_initializer("/etc/shadow"),
    "custom operator inside a model-local function": _custom_op_in_local_function,
}  # fmt: skip


# ------------------------------------------------------------------ the validator
@pytest.mark.parametrize("kind", ["protocol-0", "protocol-1", "protocol-2", "protocol-3",
                                  "protocol-4", "protocol-5", "zlib", "gzip"])  # fmt: skip
def test_a_pickle_of_any_protocol_or_compression_is_refused_without_running(
    tmp_path: Path, kind: str
) -> None:
    _sanity_the_payload_really_fires(tmp_path)
    marker = tmp_path / "pwned"

    with pytest.raises(ValidationError):
        validate_onnx_bytes(_pickles(marker)[kind])

    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(HOSTILE_ONNX))
def test_hostile_onnx_is_refused_by_the_validator(name: str) -> None:
    with pytest.raises(ValidationError, match="external file|custom operator"):
        validate_onnx_bytes(HOSTILE_ONNX[name]())


# ------------------------------------------------------------------ through the HTTP app
def test_hostile_models_get_503_over_http_and_run_nothing_while_a_good_model_is_served(
    relayer_server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile: dict[int, bytes] = {}
    for i, blob in enumerate(_pickles(marker).values()):
        hostile[100 + i] = blob
    for i, make in enumerate(HOSTILE_ONNX.values()):
        hostile[200 + i] = make()

    with relayer_server({GOOD: onnx_models.add_model(), **hostile}) as relayer:
        client = relayer.client()
        answers = {}
        for model_id in hostile:
            body = b'{"inputs":{"x":[[1.0,2.0,3.0,4.0]]}}'
            headers = client.signed_headers(model_id, body)
            answers[model_id] = httpx.post(
                f"{relayer.url}/v1/models/{model_id}/predict", content=body, headers=headers,
                timeout=60,
            )  # fmt: skip
        good = client.predict(GOOD, {"x": X})
        listed = httpx.get(f"{relayer.url}/v1/models", timeout=10).json()["models"]

    for model_id, response in answers.items():
        assert (model_id, response.status_code, response.json()["error"]) == (
            model_id,
            503,
            "model_unavailable",
        )
    assert good.outputs == {"y": [[1.0, 3.0, 5.0, 7.0]]}
    assert [m["model_id"] for m in listed] == [GOOD]
    assert not marker.exists()


def test_a_worker_that_crashes_mid_request_costs_503_for_its_model_only_over_http(
    relayer_server: Any,
) -> None:
    # NOTE: no input crashes ONNX Runtime on demand, so the crash is a real SIGSEGV sent to the
    # worker while a request is in flight: the parent sees what a segfault in ORT produces. The
    # worker is stopped (SIGSTOP) before the request goes out, so it cannot answer first; the
    # SIGSEGV is sent once the parent has written the request and awaits the reply, and SIGCONT
    # lets the pending signal kill it. No timing guess: the order is forced.
    slow, other = 7, GOOD
    size = 64
    models = {slow: onnx_models.slow_model(size=size, repeats=10), other: onnx_models.add_model()}
    with relayer_server(models, max_workers=4) as relayer:
        client = relayer.client()
        client.predict(other, {"x": X})
        big = {"x": np.ones((size, size), dtype=np.float32).tolist()}
        client.predict(slow, big)  # loaded and warm
        [victim] = [m for m in relayer.services.models.loaded() if m.ref.model_id == slow]
        worker_pid = victim.worker.pid
        assert victim.worker.in_flight == 0

        async def scenario() -> tuple[int, list[int]]:
            async with httpx.AsyncClient(base_url=relayer.url, timeout=60) as http:
                body = httpx.Request("POST", "/", json={"inputs": big}).content
                headers = client.signed_headers(slow, body)
                os.kill(worker_pid, signal.SIGSTOP)
                doomed = asyncio.create_task(
                    http.post(f"/v1/models/{slow}/predict", content=body, headers=headers)
                )
                deadline = time.monotonic() + 30
                while victim.worker.in_flight == 0:
                    assert time.monotonic() < deadline, "the request never reached the worker"
                    assert not doomed.done(), "answered without the (stopped) worker"
                    await asyncio.sleep(0.005)
                os.kill(worker_pid, signal.SIGSEGV)
                os.kill(worker_pid, signal.SIGCONT)
                others = []
                for _ in range(10):
                    small = b'{"inputs":{"x":[[1.0,2.0,3.0,4.0]]}}'
                    answer = await http.post(
                        f"/v1/models/{other}/predict",
                        content=small,
                        headers=client.signed_headers(other, small),
                    )
                    others.append(answer.status_code)
                return (await doomed).status_code, others

        crashed_status, other_statuses = run(scenario())
        restarted = client.predict(slow, big)

    assert crashed_status == 503
    assert other_statuses == [200] * 10
    assert np.asarray(restarted.outputs["y"]).shape == (size, size)
    assert relayer.services.models.crashes == 1
