"""Proofs on demand: the relayer proves, in the background, a prediction it answered.

For a provable model (one whose circuit folder the operator configured), the relayer keeps what it
needs to prove each answer it issued: the receipt's digest, the input row and the circuit's public
inputs and outputs it signed in its ``ProofClaim`` (docs/ZK.md). They are kept for ``retention_s``
seconds (default three days, the escrow's default dispute window: after it, a receipt can no
longer be challenged) and at most ``max_receipts`` of them (oldest dropped first).

A proof request names a receipt digest and gets a job id at once; one thread proves the queued
jobs one at a time, each in an ezkl worker process with a timeout (:func:`daimm.zk.prove`). The
queue is bounded: a full queue refuses with **429** ``proof_queue_full`` at the cost of a dict
lookup, so a flood of proof requests slows nothing else (the predict path never waits for a
proof). Finished jobs are kept ``keep_s`` seconds for their owner to fetch.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from daimm.errors import DaimmError, RequestRefusedError

__all__ = [
    "CircuitPreparer",
    "IssuedReceipt",
    "JobState",
    "ProofJob",
    "ProofJobs",
    "ProvableModel",
    "prover_with_timeout",
]

log = logging.getLogger(__name__)

#: Seconds an issued receipt of a provable model stays provable here (the default dispute window).
DEFAULT_RETENTION_S = 3 * 24 * 3600


@dataclass(frozen=True)
class ProvableModel:
    """A model version this relayer can prove: its circuit folder and the SRS (by path)."""

    circuit: Any  # daimm.zk.Circuit (kept untyped here: importing daimm.zk is cheap but optional)
    srs: Path


@dataclass(frozen=True)
class IssuedReceipt:
    """What proving one answer needs: the model version, the input row, the signed instances."""

    model_id: int
    weights_cid: str
    row: tuple[float, ...]
    io_instances: tuple[int, ...]
    issued_at: float


class JobState(StrEnum):
    QUEUED = "queued"
    PROVING = "proving"
    DONE = "done"
    FAILED = "failed"


@dataclass
class ProofJob:
    """One proof job (mutable: its state advances)."""

    job_id: str
    receipt: str
    state: JobState = JobState.QUEUED
    proof: dict[str, Any] | None = None
    error: str | None = None
    finished_at: float | None = None
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"job": self.job_id, "receipt": self.receipt, "state": self.state}
        if self.proof is not None:
            body["proof"] = self.proof
        if self.error is not None:
            body["error"] = self.error
        return body


Prover = Callable[[ProvableModel, Sequence[float], Path], dict[str, Any]]


def prover_with_timeout(timeout_s: float) -> Prover:
    """The ezkl prover, its worker process killed after ``timeout_s`` seconds (job ``failed``)."""

    def _prove(model: ProvableModel, row: Sequence[float], out: Path) -> dict[str, Any]:
        from daimm.zk import prove

        proof, _ = prove(model.circuit, row, model.srs, out, timeout_s=timeout_s)
        return proof.document

    return _prove


_prove_with_ezkl = prover_with_timeout(600)


class ProofJobs:
    """Issued receipts of provable models, and a bounded queue of proof jobs.

    Args:
        models: Provable model versions by ``(model_id, weights_cid)``.
        folder: Where proof files are written.
        prover: Makes the proof document (default: ezkl in a worker process).
        max_queued: Jobs waiting or running at most; more are refused with 429.
        retention_s: Seconds an issued receipt stays provable.
        max_receipts: Issued receipts kept at most.
        keep_s: Seconds a finished job stays fetchable.
        db: SQLite file the issued receipts are also kept in, so they stay provable (and
            challenges of them answerable) across a restart; None keeps them in memory only.
    """

    def __init__(
        self,
        models: dict[tuple[int, str], ProvableModel],
        folder: str | Path,
        *,
        prover: Prover = _prove_with_ezkl,
        max_queued: int = 4,
        retention_s: float = DEFAULT_RETENTION_S,
        max_receipts: int = 100_000,
        keep_s: float = 3600,
        db: str | Path | None = None,
    ) -> None:
        self._models = dict(models)
        self._folder = Path(folder)
        self._prover = prover
        self._max_queued = max_queued
        self._retention_s = retention_s
        self._max_receipts = max_receipts
        self._keep_s = keep_s
        self._receipts: OrderedDict[str, IssuedReceipt] = OrderedDict()
        self._jobs: dict[str, ProofJob] = {}
        self._queue: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        if db is not None:
            self._open_db(Path(db))

    def _open_db(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS issued_receipts (digest TEXT PRIMARY KEY,"
            " model_id TEXT, weights_cid TEXT, row TEXT, io TEXT, issued_at REAL)"
        )
        since = time.time() - self._retention_s
        self._db.execute("DELETE FROM issued_receipts WHERE issued_at < ?", (since,))
        rows = self._db.execute(
            "SELECT digest, model_id, weights_cid, row, io, issued_at FROM issued_receipts"
            " ORDER BY issued_at DESC LIMIT ?",
            (self._max_receipts,),
        ).fetchall()
        for digest, model_id, weights_cid, row, io, issued_at in reversed(rows):
            self._receipts[digest] = IssuedReceipt(
                int(model_id),
                weights_cid,
                tuple(json.loads(row)),
                tuple(int(i) for i in json.loads(io)),
                issued_at,
            )

    # ------------------------------------------------------------ issued receipts
    def add(self, model_id: int, weights_cid: str, model: ProvableModel) -> None:
        """Make a model version provable here (:class:`CircuitPreparer` calls it)."""
        with self._lock:
            self._models[(model_id, weights_cid)] = model

    def provable(self, model_id: int, weights_cid: str) -> ProvableModel | None:
        """The provable model version, or None if this relayer does not prove it."""
        return self._models.get((model_id, weights_cid))

    def record(self, digest: bytes, receipt: IssuedReceipt) -> None:
        """Keep an issued receipt (by its EIP-712 digest) provable for ``retention_s``."""
        with self._lock:
            self._receipts[digest.hex()] = receipt
            self._prune_receipts(time.time())
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO issued_receipts VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        digest.hex(),
                        str(receipt.model_id),
                        receipt.weights_cid,
                        json.dumps(receipt.row),
                        json.dumps([str(i) for i in receipt.io_instances]),
                        receipt.issued_at,
                    ),
                )
                oldest = next(iter(self._receipts.values())).issued_at
                self._db.execute("DELETE FROM issued_receipts WHERE issued_at < ?", (oldest,))

    def receipt(self, digest_hex: str) -> IssuedReceipt | None:
        """The issued receipt with that digest, if still kept."""
        with self._lock:
            self._prune_receipts(time.time())
            return self._receipts.get(digest_hex.removeprefix("0x").lower())

    def prove_receipt(self, digest_hex: str) -> dict[str, Any]:
        """Prove an issued receipt now, in the calling thread (the claim worker's path).

        Raises:
            DaimmError: The receipt is unknown here, its model is not provable here, or the
                prover failed.
        """
        receipt = self.receipt(digest_hex)
        if receipt is None:
            raise DaimmError(f"no issued receipt {digest_hex} kept here")
        model = self.provable(receipt.model_id, receipt.weights_cid)
        if model is None:
            raise DaimmError(f"model {receipt.model_id} is not provable here (yet)")
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._prover(model, receipt.row, self._folder / f"claim-{digest_hex[-16:]}.json")

    def _prune_receipts(self, now: float) -> None:
        while self._receipts:
            oldest_key = next(iter(self._receipts))
            oldest = self._receipts[oldest_key]
            expired = now - oldest.issued_at > self._retention_s
            if not expired and len(self._receipts) <= self._max_receipts:
                break
            del self._receipts[oldest_key]

    # ------------------------------------------------------------ jobs
    def submit(self, digest_hex: str) -> ProofJob:
        """Queue a proof of the receipt with digest ``digest_hex``.

        Raises:
            RequestRefusedError: 422 not a digest; 404 no such receipt here (or it expired);
                429 the queue is full.
        """
        key = digest_hex.removeprefix("0x").lower()
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise RequestRefusedError(422, "invalid_request", "receipt: a 32-byte hex digest")
        with self._lock:
            self._prune_receipts(time.time())
            if key not in self._receipts:
                raise RequestRefusedError(
                    404,
                    "unknown_receipt",
                    "this relayer issued no receipt of a provable model with that digest, or it"
                    f" is older than {self._retention_s:.0f} s",
                )
            if len(self._queue) + self._running() >= self._max_queued:
                raise RequestRefusedError(
                    429, "proof_queue_full", f"{self._max_queued} proofs are queued; retry later"
                )
            job = ProofJob(secrets.token_hex(16), "0x" + key)
            self._jobs[job.job_id] = job
            self._queue.append(job.job_id)
            self._wake.notify()
        return job

    def get(self, job_id: str) -> ProofJob:
        """The job ``job_id``.

        Raises:
            RequestRefusedError: 404 no such job (or it finished more than ``keep_s`` ago).
        """
        with self._lock:
            self._prune_jobs(time.time())
            job = self._jobs.get(job_id)
        if job is None:
            raise RequestRefusedError(404, "unknown_job", f"no proof job {job_id!r}")
        return job

    def _running(self) -> int:
        return sum(1 for j in self._jobs.values() if j.state is JobState.PROVING)

    def _prune_jobs(self, now: float) -> None:
        for job_id in [
            j.job_id
            for j in self._jobs.values()
            if j.finished_at is not None and now - j.finished_at > self._keep_s
        ]:
            del self._jobs[job_id]

    # ------------------------------------------------------------ the prover thread
    def start(self) -> None:
        """Start the prover thread."""
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="daimm-proofs", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5) -> None:
        """Stop taking jobs; wait up to ``timeout_s`` for the thread (a running proof's worker
        process ends at its own timeout)."""
        with self._lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run_one(self) -> bool:
        """Prove the next queued job, if any (the thread's step; tests call it directly)."""
        with self._lock:
            if not self._queue:
                return False
            job = self._jobs[self._queue.popleft()]
            receipt = self._receipts.get(job.receipt[2:])
            job.state = JobState.PROVING
        try:
            if receipt is None:
                raise DaimmError("the receipt expired before its proof started")
            model = self._models[(receipt.model_id, receipt.weights_cid)]
            self._folder.mkdir(parents=True, exist_ok=True)
            document = self._prover(model, receipt.row, self._folder / f"{job.job_id}.json")
            state, proof, error = JobState.DONE, document, None
        except DaimmError as exc:
            state, proof, error = JobState.FAILED, None, str(exc)
        with self._lock:
            job.state, job.proof, job.error = state, proof, error
            job.finished_at = time.time()
        log.info("proof job finished", extra={"job": job.job_id, "state": state.value})
        return True

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
            self.run_one()


class CircuitPreparer:
    """Makes a model version provable here from its publication: no hand configuration.

    A version is provable when its metadata names a circuit description (``daimm.circuit``,
    written by ``daimm model publish --provable``). The first time the relayer answers for such a
    version, :meth:`ensure` starts, in a background thread, one preparation: decrypt the model,
    fetch the published settings and verification key, compile with those settings and regenerate
    the proving key with the SRS (:func:`daimm.market.provable.regenerate_circuit`, about 15 s
    for the sample), refusing a key or weights hash other than the published ones. The version
    is then added to :class:`ProofJobs`; answers before that carry no claim. A restart reuses a
    folder whose manifest and files still match (no regeneration).

    Args:
        jobs: Where prepared versions are added.
        source: The relayer's model source (ciphertext, content key, card).
        backend: Storage the circuit description is fetched from.
        srs: The SRS file (pinned by hash unless ``allow_test_srs``).
        folder: Where circuits are kept, one sub-folder per model version.
    """

    def __init__(
        self,
        jobs: ProofJobs,
        source: Any,
        backend: Any,
        srs: str | Path,
        folder: str | Path,
        *,
        allow_test_srs: bool = False,
    ) -> None:
        self._jobs = jobs
        self._source = source
        self._backend = backend
        self._srs = Path(srs)
        self._folder = Path(folder)
        self._allow_test_srs = allow_test_srs
        self._seen: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()

    def state(self, model_id: int, weights_cid: str) -> str | None:
        """``preparing``, ``ready``, ``not_provable`` or ``failed: ...``; None if never seen."""
        with self._lock:
            return self._seen.get((model_id, weights_cid))

    def ensure(self, ref: Any) -> None:
        """Start preparing ``ref`` (a ``ModelRef``) unless it was already seen (non-blocking)."""
        key = (ref.model_id, ref.weights_cid)
        with self._lock:
            if key in self._seen:
                return
            self._seen[key] = "preparing"
        threading.Thread(
            target=self._prepare_logged, args=(ref,), name="daimm-circuit", daemon=True
        ).start()

    def _prepare_logged(self, ref: Any) -> None:
        key = (ref.model_id, ref.weights_cid)
        try:
            state = self.prepare(ref)
        except DaimmError as exc:
            state = f"failed: {exc}"
            log.warning("circuit not prepared", extra={"model_id": ref.model_id, "error": state})
        with self._lock:
            self._seen[key] = state

    def prepare(self, ref: Any) -> str:
        """Prepare ``ref`` now (blocking); ``ready`` or ``not_provable``.

        Raises:
            DaimmError: The publication cannot be fetched, or the regenerated keys differ.
        """
        import json

        from daimm.market.provable import fetch_circuit, regenerate_circuit
        from daimm.market.publishing import fetch_bytes
        from daimm.modelformat.graph import decrypt_model
        from daimm.zk import load_circuit

        # The metadata alone first: a model that is not provable costs one small document.
        metadata = (
            json.loads(fetch_bytes(ref.metadata_cid, self._backend)) if ref.metadata_cid else {}
        )
        circuit_cid = (metadata.get("daimm") or {}).get("circuit")
        if not circuit_cid:
            return "not_provable"
        folder = self._folder / f"{ref.model_id}-{ref.weights_cid}"
        circuit = None
        if (folder / "circuit.json").is_file():
            try:
                circuit = load_circuit(folder)
                circuit.check_frozen("settings.json", "network.ezkl", "vk.key", "pk.key")
            except DaimmError:
                circuit = None
        if circuit is None:
            description = fetch_circuit(str(circuit_cid), self._backend, folder)
            payload = self._source.fetch(ref)
            model = payload.data
            if payload.content_key is not None:
                model = decrypt_model(payload.data, payload.content_key, payload.associated_data)
            plain = folder / "model.onnx"
            plain.touch(mode=0o600)
            try:
                plain.write_bytes(model)
                circuit = regenerate_circuit(
                    plain, description, folder, self._srs, allow_test_srs=self._allow_test_srs
                )
            finally:
                plain.unlink(missing_ok=True)
        self._jobs.add(ref.model_id, ref.weights_cid, ProvableModel(circuit, self._srs))
        log.info("circuit ready", extra={"model_id": ref.model_id})
        return "ready"
