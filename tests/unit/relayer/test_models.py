"""Untrusted models: validated before anything runs, worker isolation, LRU budget, single flight."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.utils import load_by_path

from daimm.errors import ModelUnavailableError, ValidationError
from daimm.relayer.models import (
    ModelManager,
    ModelRef,
    StaticSource,
    validate_inputs,
    validate_onnx_bytes,
)

onnx_models = load_by_path("tests/utils/onnx_models.py", "daimm_test_onnx_models")


def _ref(model_id: int, version: int = 0) -> ModelRef:
    return ModelRef(model_id, version, f"bafy-{model_id}-{version}", f"bafy-env-{model_id}")


def _external_data_model(location: str) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(onnx_models.add_model())
    tensor = model.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return model.SerializeToString()


def _custom_op_model() -> bytes:
    node = helper.make_node("EvilOp", ["x"], ["y"], domain="com.attacker")
    graph = helper.make_graph(
        [node],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)]
    )
    return model.SerializeToString()


class _Payload:
    """Unpickling this would create a marker file (runs a shell command through __reduce__)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("location", ["../../etc/passwd", "/etc/passwd", "weights.bin"])
def test_model_with_external_data_is_refused(location: str) -> None:
    with pytest.raises(ValidationError, match="external file"):
        validate_onnx_bytes(_external_data_model(location))


def test_model_with_custom_op_domain_is_refused() -> None:
    with pytest.raises(ValidationError, match="com.attacker"):
        validate_onnx_bytes(_custom_op_model())


def test_custom_op_in_a_subgraph_is_refused() -> None:
    inner = helper.make_graph(
        [helper.make_node("EvilOp", [], ["z"], domain="com.attacker")],
        "inner",
        [],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])],
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    graph = helper.make_graph(
        [node],
        "outer",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValidationError, match="custom operator domain 'com.attacker'"):
        validate_onnx_bytes(model.SerializeToString())


def test_pickle_with_reduce_payload_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_Payload(marker))

    with pytest.raises(ValidationError, match="pickle"):
        validate_onnx_bytes(blob)

    assert not marker.exists()


def test_pickle_is_refused_by_the_full_loading_path_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    manager = ModelManager(StaticSource({9: pickle.dumps(_Payload(marker))}), budget_bytes=1 << 30)

    async def load() -> None:
        await manager.get(_ref(9))

    try:
        with pytest.raises(ModelUnavailableError, match="pickle"):
            asyncio.run(load())
    finally:
        manager.close()
    assert not marker.exists()


def test_random_bytes_are_not_a_model() -> None:
    with pytest.raises(ValidationError):
        validate_onnx_bytes(os.urandom(256))


def test_a_plain_onnx_model_passes_validation() -> None:
    assert validate_onnx_bytes(onnx_models.add_model()).graph.output[0].name == "y"


# ------------------------------------------------------------------ the manager
def test_concurrent_first_requests_load_the_model_once() -> None:
    source = StaticSource({1: onnx_models.add_model()})
    manager = ModelManager(source, budget_bytes=1 << 30)

    async def many() -> list[Any]:
        return await asyncio.gather(*(manager.get(_ref(1)) for _ in range(10)))

    try:
        models = asyncio.run(many())
        assert source.fetches == 1
        assert manager.loads == 1
        assert len({id(m) for m in models}) == 1
    finally:
        manager.close()


def test_lru_evicts_the_least_recently_used_model_beyond_the_budget() -> None:
    blob = onnx_models.add_model()
    overhead = 10 << 20
    cost = 2 * len(blob) + overhead
    source = StaticSource({1: blob, 2: blob, 3: blob})
    manager = ModelManager(
        source, budget_bytes=2 * cost + 1, worker_overhead_bytes=overhead, max_workers=8
    )

    async def scenario() -> list[int]:
        await manager.get(_ref(1))
        await manager.get(_ref(2))
        await manager.get(_ref(1))  # 1 is now the most recently used
        await manager.get(_ref(3))  # over budget: 2 goes
        return [m.ref.model_id for m in manager.loaded()]

    try:
        assert asyncio.run(scenario()) == [1, 3]
        assert manager.evictions == 1
        assert manager.used_bytes <= manager.budget_bytes
    finally:
        manager.close()


def test_model_larger_than_the_budget_is_refused_503() -> None:
    manager = ModelManager(StaticSource({1: onnx_models.add_model()}), budget_bytes=1 << 10)
    with pytest.raises(ModelUnavailableError, match="budget"):
        asyncio.run(manager.get(_ref(1)))
    manager.close()


def test_a_model_that_fails_to_load_gives_503_for_that_model_only() -> None:
    source = StaticSource({1: onnx_models.add_model(), 2: b"\x08\x07garbage that is not onnx"})
    manager = ModelManager(source, budget_bytes=1 << 30, load_retry_s=60)

    async def scenario() -> None:
        with pytest.raises(ModelUnavailableError, match="model 2 could not be loaded"):
            await manager.get(_ref(2))
        fetches = source.fetches
        with pytest.raises(ModelUnavailableError):  # remembered: no second attempt yet
            await manager.get(_ref(2))
        assert source.fetches == fetches
        good = await manager.get(_ref(1))
        x = np.ones((1, 4), dtype=np.float32)
        assert await manager.run(good, {"x": x}) == b'{"y":[[1.0,2.0,3.0,4.0]]}'

    try:
        asyncio.run(scenario())
    finally:
        manager.close()


def test_a_crashing_worker_takes_down_only_its_model_and_is_restarted() -> None:
    # NOTE: no model crashes ONNX Runtime 1.31 on demand, so the crash is a real SIGSEGV delivered
    # to the worker process while it runs a slow prediction; the relayer sees exactly what a
    # segfault inside ONNX Runtime would produce.
    source = StaticSource({1: onnx_models.slow_model(), 2: onnx_models.add_model()})
    manager = ModelManager(source, budget_bytes=1 << 30, max_workers=4)
    big = np.ones((1024, 1024), dtype=np.float32)
    small = np.ones((1, 4), dtype=np.float32)

    async def scenario() -> None:
        slow = await manager.get(_ref(1))
        other = await manager.get(_ref(2))
        running = asyncio.create_task(manager.run(slow, {"x": big}))
        await asyncio.sleep(0.3)
        os.kill(slow.worker.pid, signal.SIGSEGV)
        with pytest.raises(ModelUnavailableError, match="crashed"):
            await running
        assert other.worker.alive
        assert await manager.run(other, {"x": small}) == b'{"y":[[1.0,2.0,3.0,4.0]]}'
        restarted = await manager.get(_ref(1))  # the next request restarts the worker
        assert restarted.worker.pid != slow.worker.pid
        assert restarted.worker.alive

    try:
        asyncio.run(scenario())
        assert manager.crashes == 1
    finally:
        manager.close()


def test_a_prediction_over_the_time_limit_kills_its_worker() -> None:
    source = StaticSource({1: onnx_models.slow_model(repeats=400)})
    manager = ModelManager(source, budget_bytes=1 << 30, inference_timeout_s=0.2)

    async def scenario() -> Any:
        model = await manager.get(_ref(1))
        started = time.monotonic()
        with pytest.raises(ModelUnavailableError, match="longer than"):
            await manager.run(model, {"x": np.ones((1024, 1024), dtype=np.float32)})
        assert time.monotonic() - started < 5
        return model

    try:
        model = asyncio.run(scenario())
        model.worker.process.join(timeout=5)
        assert not model.worker.process.is_alive()
    finally:
        manager.close()


# ------------------------------------------------------------------ input validation
def test_inputs_are_converted_to_the_model_dtype(iris: Any) -> None:
    from daimm.relayer.models import ModelSchema, TensorSpec

    schema = ModelSchema((TensorSpec("input", "tensor(float)", (None, 4)),), ())
    arrays = validate_inputs(schema, {"input": [[1, 2, 3, 4]]})
    assert arrays["input"].dtype == np.float32
    assert arrays["input"].shape == (1, 4)


def test_integer_inputs_refuse_floats_and_out_of_range_values() -> None:
    from daimm.errors import RequestRefusedError
    from daimm.relayer.models import ModelSchema, TensorSpec

    schema = ModelSchema((TensorSpec("ids", "tensor(int8)", (2,)),), ())
    with pytest.raises(RequestRefusedError, match="inputs.ids: expected int8, got floats"):
        validate_inputs(schema, {"ids": [1.5, 2.0]})
    with pytest.raises(RequestRefusedError, match="inputs.ids: values out of range"):
        validate_inputs(schema, {"ids": [1, 1000]})


def test_helper_models_match_numpy() -> None:
    # Guards the helper the other tests rely on: the add model really adds [0, 1, 2, 3].
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_models.add_model(), providers=["CPUExecutionProvider"])
    x = np.ones((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x + np.arange(4))
    assert numpy_helper is not None
