"""Models the relayer serves: untrusted ONNX validated before use, loaded once, kept in a budget.

- ONNX only. A model is parsed as an ONNX protobuf from bytes and refused before any session is
  built if it is a pickle (or joblib file), stores any tensor as external data (``../``, absolute
  or any other location: a model is one self-contained blob), or uses an operator domain outside
  ONNX's own and ONNX Runtime's built-in contrib domain (custom-op libraries are never registered).
  Nothing is ever unpickled.
- :class:`ModelManager` loads each model (fetch by CID with verification, unwrap the content key,
  decrypt in the worker) in its own worker process, once, however many first requests arrive
  together; keeps them in an LRU bounded by a memory budget; restarts a crashed worker on the next
  request; and answers 503 for a model that failed to load (for ``load_retry_s``) without touching
  the others.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daimm.errors import (
    DaimmError,
    ModelUnavailableError,
    RequestRefusedError,
    ValidationError,
)
from daimm.relayer.worker import WorkerLimits, WorkerProcess, check_reply

__all__ = [
    "ALLOWED_DOMAINS",
    "EncryptedStorageSource",
    "LoadPayload",
    "LoadedModel",
    "ModelManager",
    "ModelRef",
    "ModelSchema",
    "ModelSource",
    "StaticSource",
    "TensorSpec",
    "build_session",
    "decrypt_model",
    "refuse_non_finite",
    "schema_of",
    "validate_inputs",
    "validate_onnx_bytes",
]

log = logging.getLogger(__name__)

#: Operator domains a model may use: ONNX, ONNX-ML and ONNX Runtime's built-in contrib ops.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})

_PICKLE_PROTOCOLS = {2, 3, 4, 5}


# ---------------------------------------------------------------------------- validation
def validate_onnx_bytes(data: bytes) -> Any:
    """Parse ``data`` as an ONNX model and refuse what the relayer never runs.

    Returns:
        The parsed ``onnx.ModelProto``.

    Raises:
        ValidationError: A pickle/joblib file, not ONNX, external data, or a custom-op domain.
    """
    if len(data) >= 2 and data[0] == 0x80 and data[1] in _PICKLE_PROTOCOLS:
        raise ValidationError(
            "this is a Python pickle, not an ONNX model: daimm runs ONNX only and never unpickles"
        )
    if data[:2] in (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x1f\x8b", b"BZ", b"\xfd7"):
        raise ValidationError(
            "this is a compressed file (joblib?), not an ONNX model: daimm runs ONNX only"
        )
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ValidationError(f"not an ONNX model (protobuf parse failed: {exc})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ValidationError("not an ONNX model (no IR version or no graph outputs)")
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise ValidationError(
                f"the model imports operator domain {opset.domain!r}: custom operators are refused"
            )
    local_functions = {(f.domain, f.name) for f in model.functions}
    for node, where in _all_nodes(model):
        if (
            node.domain not in ALLOWED_DOMAINS
            and (node.domain, node.op_type) not in local_functions
        ):
            raise ValidationError(
                f"node {node.name or node.op_type!r} in {where} uses custom operator domain"
                f" {node.domain!r}: refused (only ONNX and ONNX Runtime built-in operators)"
            )
    for tensor, where in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise ValidationError(
                f"tensor {tensor.name!r} in {where} keeps its data in an external file"
                f" ({location!r}): refused; embed all weights in the model"
            )
    return model


def _graphs(graph: Any, where: str) -> Iterator[tuple[Any, str]]:
    import onnx

    yield graph, where
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g, f"{where}/{node.name or node.op_type}")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub, f"{where}/{node.name or node.op_type}")


def _all_nodes(model: Any) -> Iterator[tuple[Any, str]]:
    for graph, where in _graphs(model.graph, "graph"):
        for node in graph.node:
            yield node, where
    for function in model.functions:
        for node in function.node:
            yield node, f"function {function.name}"


def _all_tensors(model: Any) -> Iterator[tuple[Any, str]]:
    import onnx

    for graph, where in _graphs(model.graph, "graph"):
        for tensor in graph.initializer:
            yield tensor, where
        for sparse in graph.sparse_initializer:
            yield sparse.values, where
            yield sparse.indices, where
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t, where
                elif attr.type == onnx.AttributeProto.TENSORS:
                    for tensor in attr.tensors:
                        yield tensor, where
                elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield attr.sparse_tensor.values, where


def build_session(data: bytes, *, threads: int = 1) -> Any:
    """Validate ``data`` and build an ONNX Runtime session from the bytes (CPU, no custom ops).

    Raises:
        ValidationError: See :func:`validate_onnx_bytes`.
        ModelUnavailableError: ONNX Runtime refused the model.
    """
    validate_onnx_bytes(data)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ModelUnavailableError(f"ONNX Runtime cannot load the model: {exc}") from None


def decrypt_model(ciphertext: bytes, content_key: bytes, associated_data: bytes) -> bytes:
    """Decrypt a daimm AEAD ciphertext in memory (nothing touches the disk)."""
    from daimm.crypto import decrypt_stream

    out = io.BytesIO()
    decrypt_stream(io.BytesIO(ciphertext), out, content_key, associated_data)
    return out.getvalue()


# ---------------------------------------------------------------------------- schemas
_ONNX_TO_NUMPY = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model.

    Attributes:
        name: The tensor's name in the graph.
        type: ONNX type string, e.g. ``tensor(float)`` or ``seq(map(int64,tensor(float)))``.
        shape: Dimensions; ``None`` for a free (symbolic) one; empty for non-tensors.
    """

    name: str
    type: str
    shape: tuple[int | None, ...]

    @property
    def dtype(self) -> str | None:
        """The numpy dtype of a tensor of this type, or None if not a plain tensor."""
        return _ONNX_TO_NUMPY.get(self.type)

    def to_json(self) -> dict[str, Any]:
        """As served by ``GET /v1/models``."""
        return {
            "name": self.name,
            "type": self.type,
            "dtype": self.dtype,
            "shape": list(self.shape),
        }


@dataclass(frozen=True)
class ModelSchema:
    """A model's inputs and outputs."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        """As served by ``GET /v1/models`` and passed from the worker."""
        return {
            "inputs": [t.to_json() for t in self.inputs],
            "outputs": [t.to_json() for t in self.outputs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSchema:
        """Inverse of :meth:`to_json`."""

        def specs(items: Any) -> tuple[TensorSpec, ...]:
            return tuple(
                TensorSpec(str(i["name"]), str(i["type"]), tuple(i["shape"])) for i in items
            )

        return cls(specs(data["inputs"]), specs(data["outputs"]))


def schema_of(session: Any) -> ModelSchema:
    """The schema of an ONNX Runtime session."""

    def spec(node: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (node.shape or []))
        return TensorSpec(node.name, node.type, shape)

    return ModelSchema(
        tuple(spec(i) for i in session.get_inputs()), tuple(spec(o) for o in session.get_outputs())
    )


def validate_inputs(schema: ModelSchema, inputs: Any) -> dict[str, Any]:
    """Check a request's ``inputs`` object against the schema and build numpy arrays.

    Returns:
        Name -> C-contiguous numpy array of the model's dtype.

    Raises:
        RequestRefusedError: 422 naming the field (``inputs.<name>``) that is missing, extra, of
            the wrong type or of the wrong shape, or holds NaN or an infinity.
    """
    import numpy as np

    if not isinstance(inputs, dict):
        raise RequestRefusedError(422, "invalid_input", "inputs: must be an object of tensors")
    expected = {spec.name: spec for spec in schema.inputs}
    for name in inputs:
        if name not in expected:
            raise RequestRefusedError(
                422,
                "invalid_input",
                f"inputs.{name}: the model has no such input (it takes {sorted(expected)})",
            )
    arrays: dict[str, Any] = {}
    for name, spec in expected.items():
        if name not in inputs:
            raise RequestRefusedError(422, "invalid_input", f"inputs.{name}: missing")
        if spec.dtype is None:
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: type {spec.type} is not served over JSON"
            )
        value = inputs[name]
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: not a rectangular array"
            ) from None
        if array.dtype == object or array.dtype.kind in "USV":
            raise RequestRefusedError(
                422,
                "invalid_input",
                f"inputs.{name}: expected numbers of type {spec.dtype}, got a ragged or"
                " non-numeric array",
            )
        target = np.dtype(spec.dtype)
        if array.dtype.kind == "f" and target.kind in "iub":
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: expected {spec.dtype}, got floats"
            )
        if array.dtype.kind == "b" and target.kind != "b":
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: expected {spec.dtype}, got booleans"
            )
        if len(spec.shape) != array.ndim or any(
            want is not None and want != got
            for want, got in zip(spec.shape, array.shape, strict=True)
        ):
            shown = ["*" if d is None else d for d in spec.shape]
            raise RequestRefusedError(
                422,
                "invalid_input",
                f"inputs.{name}: expected shape {shown}, got {list(array.shape)}",
            )
        try:
            # Overflow to an infinity is refused just below, by refuse_non_finite: no warning.
            with np.errstate(over="ignore", invalid="ignore"):
                converted = array.astype(
                    target, casting="same_kind" if target.kind == "f" else "unsafe"
                )
        except TypeError:
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: cannot convert to {spec.dtype}"
            ) from None
        if target.kind in "iu" and not np.array_equal(converted, array):
            raise RequestRefusedError(
                422, "invalid_input", f"inputs.{name}: values out of range for {spec.dtype}"
            )
        refuse_non_finite(name, converted)
        arrays[name] = np.ascontiguousarray(converted)
    return arrays


def refuse_non_finite(name: str, array: Any) -> None:
    """Refuse a tensor holding NaN or an infinity, after conversion to the model's dtype.

    Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity`` (none of them JSON), and a
    finite number past a float type's range (``1e39`` as float32) becomes an infinity on
    conversion. Neither is a number a model may be asked about, and its answer would not be JSON.

    Raises:
        RequestRefusedError: 422 ``invalid_input`` naming ``inputs.<name>``.
    """
    import numpy as np

    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise RequestRefusedError(
            422,
            "invalid_input",
            f"inputs.{name}: holds NaN or an infinity (or a number beyond {array.dtype}'s range);"
            " send finite numbers",
        )


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ModelRef:
    """Which bytes to serve for a model: what the chain says now.

    Attributes:
        model_id: The model's token id.
        version: The version index (bound into the ciphertext as associated data).
        weights_cid: CID of the encrypted weights.
        envelope_cid: CID of the key envelope for this relayer.
    """

    model_id: int
    version: int
    weights_cid: str
    envelope_cid: str


@dataclass(frozen=True)
class LoadPayload:
    """What a worker needs to load a model.

    Attributes:
        data: The ciphertext (or, for :class:`StaticSource`, the plaintext ONNX bytes).
        content_key: The unwrapped content key; None if ``data`` is plaintext.
        associated_data: The AEAD associated data (model id and version).
    """

    data: bytes
    content_key: bytes | None = None
    associated_data: bytes = b""


class ModelSource(Protocol):
    """Where model bytes come from. ``fetch`` may block (it runs in a thread)."""

    def fetch(self, ref: ModelRef) -> LoadPayload:
        """Return the verified payload for ``ref``; raise a DaimmError on failure."""
        ...


class EncryptedStorageSource:
    """Ciphertext and key envelope by CID from a storage backend, verified block by block.

    Args:
        backend: A ``daimm.ipfs.Backend`` (local blockstore, Kubo, gateway).
        private_key: The relayer's X25519 private key (opens the envelope).
    """

    def __init__(self, backend: Any, private_key: Any) -> None:
        self.backend = backend
        self._private_key = private_key

    def _get(self, cid_text: str) -> bytes:
        from daimm.ipfs import CID, fetch_file

        out = io.BytesIO()
        fetch_file(CID.parse(cid_text), self.backend, out)
        return out.getvalue()

    def fetch(self, ref: ModelRef) -> LoadPayload:
        """Fetch and verify both documents, unwrap the content key."""
        from daimm.crypto import KeyEnvelope, model_associated_data, unwrap_key

        if not ref.envelope_cid:
            raise ModelUnavailableError(
                f"model {ref.model_id} has no key envelope for this relayer: ask its owner to"
                " authorise the relayer with an envelope"
            )
        envelope = KeyEnvelope.from_json(self._get(ref.envelope_cid))
        key = unwrap_key(envelope, self._private_key)
        return LoadPayload(
            self._get(ref.weights_cid), key, model_associated_data(ref.model_id, ref.version)
        )


class StaticSource:
    """Plaintext ONNX bytes held in memory, by model id (tests and the benchmark's bare mode).

    NOTE: not a stand-in for storage in production; it skips fetch and decryption, so the
    benchmark labels any run that uses it.
    """

    def __init__(self, models: Mapping[int, bytes]) -> None:
        self.models = dict(models)
        self.fetches = 0

    def fetch(self, ref: ModelRef) -> LoadPayload:
        """The bytes registered for ``ref.model_id``."""
        self.fetches += 1
        try:
            return LoadPayload(self.models[ref.model_id])
        except KeyError:
            raise ModelUnavailableError(f"no bytes for model {ref.model_id}") from None


# ---------------------------------------------------------------------------- the manager
@dataclass
class LoadedModel:
    """A model loaded in its worker.

    Attributes:
        ref: What was loaded.
        schema: Its inputs and outputs.
        worker: The worker process holding the session.
        cost_bytes: Memory charged to the budget (model size x 2 + the worker's overhead).
        loaded_at: ``time.monotonic()`` when it finished loading.
        load_seconds: How long fetch, verify, decrypt and load took.
    """

    ref: ModelRef
    schema: ModelSchema
    worker: WorkerProcess
    cost_bytes: int
    loaded_at: float
    load_seconds: float
    in_flight: int = 0
    rss_bytes: int = 0
    semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))


class ModelManager:
    """Loads models into worker processes once and keeps them within a memory budget (LRU).

    Memory is charged deterministically: twice the model's size (ONNX Runtime keeps the weights
    and may copy them while optimising) plus ``worker_overhead_bytes``. NOTE: measured worker RSS
    is reported in metrics but not used for eviction, so eviction does not depend on timing.

    Args:
        source: Where model bytes come from.
        budget_bytes: Memory budget for all loaded models.
        max_workers: Most models (worker processes) loaded at once.
        limits: Resource limits of each worker.
        worker_overhead_bytes: Memory charged per worker besides its model.
        load_timeout_s: Longest one load may take.
        inference_timeout_s: Longest one prediction may take.
        load_retry_s: How long a failed load is remembered (503 without retrying).
    """

    def __init__(
        self,
        source: ModelSource,
        *,
        budget_bytes: int,
        max_workers: int = 4,
        limits: WorkerLimits | None = None,
        worker_overhead_bytes: int = 64 << 20,
        load_timeout_s: float = 120.0,
        inference_timeout_s: float = 10.0,
        load_retry_s: float = 10.0,
    ) -> None:
        self.source = source
        self.budget_bytes = budget_bytes
        self.max_workers = max_workers
        self.limits = limits or WorkerLimits()
        self.worker_overhead_bytes = worker_overhead_bytes
        self.load_timeout_s = load_timeout_s
        self.inference_timeout_s = inference_timeout_s
        self.load_retry_s = load_retry_s
        self._loaded: OrderedDict[int, LoadedModel] = OrderedDict()
        self._loading: dict[ModelRef, asyncio.Task[LoadedModel]] = {}
        self._failed: dict[ModelRef, tuple[float, str]] = {}
        self.loads = 0
        self.evictions = 0
        self.crashes = 0

    # ------------------------------------------------------------------ views
    def loaded(self) -> list[LoadedModel]:
        """Models loaded now, least recently used first."""
        return [m for m in self._loaded.values() if m.worker.alive]

    @property
    def used_bytes(self) -> int:
        """Memory charged to the budget now."""
        return sum(m.cost_bytes for m in self._loaded.values())

    # ------------------------------------------------------------------ loading
    async def get(self, ref: ModelRef) -> LoadedModel:
        """The loaded model for ``ref``, loading it (once) if needed.

        Raises:
            ModelUnavailableError: It failed to load (now or within ``load_retry_s``).
        """
        current = self._loaded.get(ref.model_id)
        if current is not None and current.ref == ref and current.worker.alive:
            self._loaded.move_to_end(ref.model_id)
            return current
        if current is not None and (current.ref != ref or not current.worker.alive):
            # A new version was published, or the worker crashed: retire the old one.
            if not current.worker.alive:
                self.crashes += 1
            self._unload(ref.model_id)
        failed = self._failed.get(ref)
        if failed is not None:
            if time.monotonic() - failed[0] < self.load_retry_s:
                raise ModelUnavailableError(failed[1])
            del self._failed[ref]
        task = self._loading.get(ref)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(ref))
            self._loading[ref] = task
            task.add_done_callback(lambda _t: self._loading.pop(ref, None))
        return await asyncio.shield(task)

    async def _load(self, ref: ModelRef) -> LoadedModel:
        started = time.perf_counter()
        worker: WorkerProcess | None = None
        try:
            payload = await asyncio.to_thread(self.source.fetch, ref)
            cost = 2 * len(payload.data) + self.worker_overhead_bytes
            self._make_room(cost, ref.model_id)
            worker = WorkerProcess(f"model-{ref.model_id}", self.limits)
            header: dict[str, Any] = {"op": "load", "model_id": ref.model_id}
            if payload.content_key is not None:
                header["content_key"] = payload.content_key.hex()
                header["associated_data"] = payload.associated_data.hex()
            reply, _ = await worker.call(header, payload.data, timeout_s=self.load_timeout_s)
            del payload
            check_reply(reply, f"model {ref.model_id}")
            model = LoadedModel(
                ref=ref,
                schema=ModelSchema.from_json(reply["schema"]),
                worker=worker,
                cost_bytes=cost,
                loaded_at=time.monotonic(),
                load_seconds=time.perf_counter() - started,
                rss_bytes=int(reply.get("rss_bytes", 0)),
            )
        except (DaimmError, OSError) as exc:
            if worker is not None:
                worker.close(timeout_s=1)
            message = (
                f"model {ref.model_id} could not be loaded ({exc}); retrying in"
                f" {self.load_retry_s:g} s"
            )
            self._failed[ref] = (time.monotonic(), message)
            log.warning("model load failed", extra={"model_id": ref.model_id, "error": str(exc)})
            raise ModelUnavailableError(message) from None
        self._loaded[ref.model_id] = model
        self.loads += 1
        log.info(
            "model loaded",
            extra={"model_id": ref.model_id, "version": ref.version,
                   "seconds": round(model.load_seconds, 3), "cost_bytes": model.cost_bytes},
        )  # fmt: skip
        return model

    def _make_room(self, cost: int, model_id: int) -> None:
        if cost > self.budget_bytes:
            raise ModelUnavailableError(
                f"model {model_id} needs about {cost >> 20} MiB, more than the relayer's whole"
                f" cache budget ({self.budget_bytes >> 20} MiB)"
            )
        while self._loaded and (
            self.used_bytes + cost > self.budget_bytes or len(self._loaded) >= self.max_workers
        ):
            victim = next(
                (
                    m
                    for m in self._loaded.values()
                    if m.in_flight == 0 and m.ref.model_id != model_id
                ),
                None,
            )
            if victim is None:
                raise ModelUnavailableError(
                    f"no room to load model {model_id}: every loaded model is busy; retry shortly"
                )
            self._unload(victim.ref.model_id)
            self.evictions += 1

    def _unload(self, model_id: int) -> None:
        model = self._loaded.pop(model_id, None)
        if model is not None:
            model.worker.close(timeout_s=2)
            log.info("model unloaded", extra={"model_id": model_id})

    def unload(self, model_id: int) -> None:
        """Unload ``model_id`` now (e.g. the relayer was de-authorised for it)."""
        self._unload(model_id)

    # ------------------------------------------------------------------ inference
    async def run(self, model: LoadedModel, arrays: dict[str, Any]) -> bytes:
        """Run one prediction; return the outputs as canonical JSON bytes.

        Raises:
            ModelUnavailableError: The worker crashed or timed out (503 for this model only).
            RequestRefusedError: 422 if ONNX Runtime refused the inputs.
        """
        model.in_flight += 1
        try:
            async with model.semaphore:
                specs = [
                    {"name": n, "dtype": a.dtype.str, "shape": list(a.shape)}
                    for n, a in arrays.items()
                ]
                reply, payload = await model.worker.call(
                    {"op": "run", "inputs": specs},
                    *(memoryview(a).cast("B") for a in arrays.values()),
                    timeout_s=self.inference_timeout_s,
                )
        finally:
            model.in_flight -= 1
        check_reply(reply, f"model {model.ref.model_id}")
        return payload

    def close(self) -> None:
        """Stop every worker."""
        for model_id in list(self._loaded):
            self._unload(model_id)
        for task in self._loading.values():
            task.cancel()
