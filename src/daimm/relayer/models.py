"""Models the relayer serves: untrusted ONNX validated before use, loaded once, kept in a budget.

- ONNX only, validated by :mod:`daimm.modelformat.graph` inside the worker before any session is
  built (pickles, external data and custom operators are refused; nothing is ever unpickled).
- Each model's card (its metadata document, by the CID the chain names) travels with it: requests
  are checked against it here (:func:`daimm.modelformat.prepare_request`), images are decoded and
  answers labelled in the worker.
- :class:`ModelManager` loads each model (fetch by CID with verification, unwrap the content key,
  decrypt in the worker) in its own worker process, once, however many first requests arrive
  together; keeps them in an LRU bounded by a memory budget; restarts a crashed worker on the next
  request; and answers 503 for a model that failed to load (for ``load_retry_s``) without touching
  the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from daimm.errors import (
    DaimmError,
    ModelUnavailableError,
    RequestRefusedError,
)
from daimm.modelformat import ModelCard, ModelSchema, PreparedRequest, TensorSpec, parse_card
from daimm.modelformat.graph import (
    ALLOWED_DOMAINS,
    build_session,
    decrypt_model,
    validate_onnx_bytes,
)
from daimm.modelformat.preprocess import prepare_request
from daimm.modelformat.tensors import refuse_non_finite, schema_of
from daimm.relayer.worker import WorkerLimits, WorkerProcess, check_reply

__all__ = [
    "ALLOWED_DOMAINS",
    "Answer",
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

#: Largest card (metadata document) read, in bytes.
MAX_CARD_BYTES = 1 << 20
#: Largest tokenizer file read, in bytes.
MAX_TOKENIZER_BYTES = 32 << 20


def validate_inputs(schema: ModelSchema, inputs: Any) -> dict[str, Any]:
    """Check a request's raw ``inputs`` object against the schema and build numpy arrays.

    Returns:
        Name -> C-contiguous numpy array of the model's dtype.

    Raises:
        RequestRefusedError: 422 naming the field (``inputs.<name>``) that is missing, extra, of
            the wrong type or of the wrong shape, or holds NaN or an infinity.
    """
    if not isinstance(inputs, dict):
        raise RequestRefusedError(422, "invalid_input", "inputs: must be an object of tensors")
    return prepare_request(None, schema, {"inputs": inputs}).tensors


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ModelRef:
    """Which bytes to serve for a model: what the chain says now.

    Attributes:
        model_id: The model's token id.
        version: The version index (bound into the ciphertext as associated data).
        weights_cid: CID of the encrypted weights.
        envelope_cid: CID of the key envelope for this relayer.
        metadata_cid: CID of the version's card ("" when unknown: raw tensors only).
    """

    model_id: int
    version: int
    weights_cid: str
    envelope_cid: str
    metadata_cid: str = ""


@dataclass(frozen=True)
class LoadPayload:
    """What a worker needs to load a model.

    Attributes:
        data: The ciphertext (or, for :class:`StaticSource`, the plaintext ONNX bytes).
        content_key: The unwrapped content key; None if ``data`` is plaintext.
        associated_data: The AEAD associated data (model id and version).
        card: The model's card (JSON document), or None: raw tensors only, no labels.
        tokenizers: Input name -> tokenizer file bytes, for text inputs the card tokenizes.
    """

    data: bytes
    content_key: bytes | None = None
    associated_data: bytes = b""
    card: dict[str, Any] | None = None
    tokenizers: Mapping[str, bytes] = field(default_factory=dict)


def read_card(raw: bytes | None, label: str) -> ModelCard | None:
    """A stored card parsed, or None (logged) if it is missing or not valid: the model is then
    served on raw tensors only, as before cards had a schema."""
    if raw is None:
        return None
    try:
        return parse_card(json.loads(raw), stored=True)
    except (ValueError, DaimmError) as exc:
        log.warning("card not used", extra={"model": label, "error": str(exc)[:200]})
        return None


def tokenizer_cids(card: ModelCard | None) -> dict[str, tuple[str, str | None]]:
    """Input name -> (tokenizer CID, SHA-256 or None) for the card's tokenized text inputs."""
    from daimm.modelformat import TextPreprocessing

    if card is None:
        return {}
    return {
        name: (prep.tokenizer_cid, prep.tokenizer_sha256)
        for name, prep in card.preprocessing.items()
        if isinstance(prep, TextPreprocessing) and prep.tokenizer_cid
    }


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

    def _get(self, cid_text: str, max_bytes: int | None = None) -> bytes:
        from daimm.ipfs import CID, fetch_file

        out = io.BytesIO()
        fetch_file(CID.parse(cid_text), self.backend, out)
        if max_bytes is not None and out.tell() > max_bytes:
            raise ModelUnavailableError(f"document {cid_text} is larger than {max_bytes} bytes")
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
        raw_card = self._get(ref.metadata_cid, MAX_CARD_BYTES) if ref.metadata_cid else None
        card = read_card(raw_card, f"model-{ref.model_id}")
        tokenizers = {}
        for name, (cid, sha256) in tokenizer_cids(card).items():
            data = self._get(cid, MAX_TOKENIZER_BYTES)
            if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                raise ModelUnavailableError(f"tokenizer {cid} does not match its card's sha256")
            tokenizers[name] = data
        return LoadPayload(
            self._get(ref.weights_cid),
            key,
            model_associated_data(ref.model_id, ref.version),
            card=dict(card.document) if card is not None else None,
            tokenizers=tokenizers,
        )


class StaticSource:
    """Plaintext ONNX bytes held in memory, by model id (tests and the benchmark's bare mode).

    NOTE: not a stand-in for storage in production; it skips fetch and decryption, so the
    benchmark labels any run that uses it.
    """

    def __init__(
        self,
        models: Mapping[int, bytes],
        cards: Mapping[int, Mapping[str, Any]] | None = None,
        tokenizers: Mapping[int, Mapping[str, bytes]] | None = None,
    ) -> None:
        self.models = dict(models)
        self.cards = dict(cards or {})
        self.tokenizers = dict(tokenizers or {})
        self.fetches = 0

    def fetch(self, ref: ModelRef) -> LoadPayload:
        """The bytes (and card, tokenizers) registered for ``ref.model_id``."""
        self.fetches += 1
        try:
            data = self.models[ref.model_id]
        except KeyError:
            raise ModelUnavailableError(f"no bytes for model {ref.model_id}") from None
        card = self.cards.get(ref.model_id)
        return LoadPayload(
            data,
            card=dict(card) if card is not None else None,
            tokenizers=dict(self.tokenizers.get(ref.model_id, {})),
        )


@dataclass(frozen=True)
class Answer:
    """A worker's answer: canonical JSON bytes, what the receipt's ``outputsHash`` hashes.

    Attributes:
        data: ``outputs`` alone, or ``{"outputs": ..., "predictions": ...}`` when labelled.
        labelled: Whether ``data`` is the object with ``predictions``.
    """

    data: bytes
    labelled: bool

    def body(self, receipt_json: bytes, extra: bytes = b"") -> bytes:
        """The HTTP answer: these bytes, the receipt, anything else (``charged``)."""
        head = self.data[:-1] if self.labelled else b'{"outputs":' + self.data
        return head + b',"receipt":' + receipt_json + extra + b"}"


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
        card: Its card, if it has a valid one that matches the model (else raw tensors only).
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
    card: ModelCard | None = None


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
            if payload.card is not None:
                header["card"] = payload.card
            header["tokenizers"] = [
                {"name": n, "size": len(b)} for n, b in payload.tokenizers.items()
            ]
            reply, _ = await worker.call(
                header, payload.data, *payload.tokenizers.values(), timeout_s=self.load_timeout_s
            )
            card_document = payload.card
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
                card=(
                    parse_card(card_document, stored=True)
                    if reply.get("card") and card_document is not None
                    else None
                ),
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
                    *(_raw(a) for a in arrays.values()),
                    timeout_s=self.inference_timeout_s,
                )
        finally:
            model.in_flight -= 1
        check_reply(reply, f"model {model.ref.model_id}")
        return payload

    async def answer(self, model: LoadedModel, request: PreparedRequest) -> Answer:
        """Run one prepared request (images decoded, text tokenized and answers labelled in the
        worker, per the card it was loaded with).

        Raises:
            ModelUnavailableError: The worker crashed or timed out (503 for this model only).
            RequestRefusedError: 422 with the input's code (an image that does not decode) or
                ``invalid_input`` if ONNX Runtime refused the inputs.
        """
        tensors = request.tensors
        header = {
            "op": "answer",
            "inputs": [
                {"name": n, "dtype": a.dtype.str, "shape": list(a.shape)}
                for n, a in tensors.items()
            ],
            "images": [{"name": n, "size": len(b)} for n, b in request.images.items()],
            "texts": request.texts,
            "top_k": request.top_k,
        }
        model.in_flight += 1
        try:
            async with model.semaphore:
                reply, payload = await model.worker.call(
                    header,
                    *(_raw(a) for a in tensors.values()),
                    *request.images.values(),
                    timeout_s=self.inference_timeout_s,
                )
        finally:
            model.in_flight -= 1
        check_reply(reply, f"model {model.ref.model_id}")
        return Answer(payload, bool(reply.get("labelled")))

    def close(self) -> None:
        """Stop every worker."""
        for model_id in list(self._loaded):
            self._unload(model_id)
        for task in self._loading.values():
            task.cancel()


def _raw(array: Any) -> memoryview:
    """An array's bytes without a copy (strings too: numpy's ``<U`` is 4 bytes a character)."""
    import numpy as np

    raw: memoryview = np.ascontiguousarray(array).reshape(-1).view(np.uint8).data
    return raw
