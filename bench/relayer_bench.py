"""Relayer benchmark: ``python bench/relayer_bench.py`` writes bench/results/relayer.json.

One run, on loopback, on a real local chain (anvil, started through ape-foundry; ``anvil`` must be
on PATH, as the Makefile arranges):

- the relayer (``daimm relayer serve`` in its own process, reading anvil through its chain reader
  with a warm access cache) serving a small scikit-learn model (iris logistic regression, ONNX),
  at 1, 8 and 64 concurrent clients: requests per second, p50 and p99 latency;
- a bare ASGI endpoint that does nothing (raw ASGI on the same uvicorn), at the same concurrency;
- the same model called directly through ONNX Runtime in this process (p50);
- session-signed requests (an API key's session key signs; the session check cached after its first
  use) against plain signed ones at 1 client, in alternating rounds of the same size so both see
  the same machine load: ``session_p50_ms_c1`` and the overhead over plain requests;
- the cold start of a ~100 MB model: fetch from the local blockstore with verification, unwrap
  the key, spawn the worker, decrypt, validate and build the session.

The load generator is an async httpx client written here: requests are signed before timing (each
needs its own nonce), each level is bounded by a request count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "relayer.json"
ETH = "0x0000000000000000000000000000000000000000"
PERIOD = 30 * 24 * 3600
LEVELS = (1, 8, 64)


# ---------------------------------------------------------------------------- bare endpoint
async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI endpoint that does nothing: reads the body, answers ``{}``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


def _serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------------------- helpers
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start:\n{log.read_text()[-3000:]}")


def _onnx_helpers() -> Any:
    import importlib.util

    path = ROOT / "tests" / "utils" / "onnx_models.py"
    spec = importlib.util.spec_from_file_location("daimm_bench_onnx_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _load(
    url: str,
    requests: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    max_s: float,
    *,
    keep: bool = False,
) -> dict[str, Any]:
    """Send ``requests`` with ``concurrency`` clients until done or ``max_s`` elapsed."""
    latencies: list[float] = []
    errors: dict[int, int] = {}
    queue = iter(requests)
    # NOTE: one client (one keep-alive connection) per simulated user: a single httpx pool shared
    # by 64 tasks spends more time in its own locking than the servers spend answering.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(limits=limits, timeout=60) for _ in range(concurrency)]
    started = time.perf_counter()
    stop_at = started + max_s

    async def one_client(http: httpx.AsyncClient) -> None:
        async with http:
            for body, headers in queue:
                if time.perf_counter() > stop_at:
                    return
                sent = time.perf_counter()
                response = await http.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 200:
                    errors[response.status_code] = errors.get(response.status_code, 0) + 1

    await asyncio.gather(*(one_client(http) for http in clients))
    elapsed = time.perf_counter() - started
    return {
        "count": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "errors": errors,
        **({"latencies": latencies} if keep else {}),
    }


# ---------------------------------------------------------------------------- the chain
def _setup_chain(work: Path, model_bytes: bytes, count: int) -> dict[str, Any]:
    """Deploy, register a relayer; publish ``count`` encrypted models, authorise it, rent them."""
    from ape import accounts, project

    from daimm.crypto import (
        encrypt_stream,
        generate_content_key,
        generate_private_key,
        model_associated_data,
        public_key_of,
        save_private_key,
        wrap_key,
    )
    from daimm.ipfs import LocalBlockstore, add_file
    from daimm.market.deploy import deploy_all
    from daimm.market.deploy_extensions import deploy_extensions

    deployer, treasury, arbiter, creator, user = (accounts.test_accounts[i] for i in range(5))
    core = deploy_all(project, deployer, treasury=treasury, arbiter=arbiter, fee_bps=250,
                      dispute_window=3 * 86400)  # fmt: skip
    ext = deploy_extensions(project, deployer, core)
    relayer = accounts.test_accounts.generate_test_account()
    deployer.transfer(relayer, 10**18)
    key_file = work / "relayer.eth"
    key_file.write_text(str(relayer.private_key))
    key_file.chmod(0o600)
    x25519 = generate_private_key()
    save_private_key(work / "relayer.x25519", x25519)

    ext.relayer_registry.register(
        relayer.address, public_key_of(x25519).raw, "http://127.0.0.1", sender=relayer
    )
    blocks = LocalBlockstore(work / "blocks")
    model_ids = []
    for _ in range(count):  # the same bytes, each encrypted for its own id
        model_id = int(core.registry.modelCount()) + 1
        content_key = generate_content_key()
        sealed = io.BytesIO()
        encrypt_stream(
            io.BytesIO(model_bytes), sealed, content_key, model_associated_data(model_id, 0)
        )
        weights_cid = str(add_file(io.BytesIO(sealed.getvalue()), blocks).cid)
        envelope = wrap_key(content_key, [public_key_of(x25519)]).to_json()
        envelope_cid = str(add_file(io.BytesIO(envelope), blocks).cid)
        core.registry.publishModel(weights_cid, weights_cid, 0, sender=creator)
        core.escrow.setOffer(model_id, (ETH, 10**15, PERIOD, 1, 12, True, 0, 0), sender=creator)
        ext.relayer_registry.authorise(model_id, relayer.address, envelope_cid, sender=creator)
        core.escrow.rent(model_id, 1, 10**15, value=10**15, sender=user)
        model_ids.append(model_id)
    return {
        "model_ids": model_ids,
        "relayer": relayer.address,
        "key_file": key_file,
        "user_key": str(user.private_key),
        "contracts": {**core.addresses(), **ext.addresses()},
        "blocks": work / "blocks",
        "x25519": x25519,
    }


def _presign(client: Any, model_id: int, body: bytes, count: int) -> list[tuple[bytes, dict]]:
    return [(body, client.signed_headers(model_id, body)) for _ in range(count)]


def _session_client(url: str, setup: dict[str, Any], chain_id: int) -> Any:
    """A client signing with a fresh API key the renter made (one signature, any relayer)."""
    from eth_account import Account

    from daimm import eip712
    from daimm.client import SessionRelayerClient
    from daimm.sessions import ApiKey, new_session

    key = Account.create()
    holder = Account.from_key(setup["user_key"])
    session = new_session(
        holder.address, key.address, model_id=setup["model_ids"][0], nonce=0, chain_id=chain_id,
        registry=setup["contracts"]["SessionRegistry"], max_calls=2**63,
    )  # fmt: skip
    api_key = ApiKey(bytes(key.key), session, eip712.sign_session(session, holder.key))
    return SessionRelayerClient(url, api_key, expected_relayer=setup["relayer"])


def _sessions_c1(
    predict_url: str, plain: Any, session: Any, model_id: int, body: bytes, count: int,
    max_s: float, rounds: int = 6,
) -> dict[str, float]:  # fmt: skip
    """p50 of session-signed and plain requests at c=1, alternating ``rounds`` times each."""
    latencies: dict[str, list[float]] = {"plain": [], "session": []}
    per_round = max(50, count // rounds)
    for _ in range(rounds):
        for name, client in (("plain", plain), ("session", session)):
            run = asyncio.run(
                _load(
                    predict_url,
                    _presign(client, model_id, body, per_round),
                    1,
                    max_s / rounds,
                    keep=True,
                )  # fmt: skip
            )
            if run["errors"]:
                raise SystemExit(f"{name} errors at c=1: {run['errors']}")
            latencies[name] += run["latencies"]
    plain_p50 = _percentile(latencies["plain"], 50) * 1000
    session_p50 = _percentile(latencies["session"], 50) * 1000
    return {
        "session_p50_ms_c1": round(session_p50, 3),
        "session_plain_p50_ms_c1": round(plain_p50, 3),
        "session_overhead_p50_ms_c1": round(session_p50 - plain_p50, 3),
        "session_requests_c1": len(latencies["session"]),
    }


# ---------------------------------------------------------------------------- cold start
def _cold_start(work: Path, x25519: Any, helpers: Any) -> float:
    """Seconds to fetch (verified), unwrap, decrypt, validate and load a ~100 MB model."""
    from daimm.crypto import (
        encrypt_stream,
        generate_content_key,
        model_associated_data,
        public_key_of,
        wrap_key,
    )
    from daimm.ipfs import LocalBlockstore, add_file
    from daimm.relayer.models import EncryptedStorageSource, ModelManager, ModelRef

    big = helpers.add_model(initializer_floats=25_000_000)  # 100 MB of float32
    key = generate_content_key()
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(big), sealed, key, model_associated_data(99, 0))
    del big
    blocks = LocalBlockstore(work / "cold-blocks")
    weights = str(add_file(io.BytesIO(sealed.getvalue()), blocks).cid)
    del sealed
    envelope = str(
        add_file(io.BytesIO(wrap_key(key, [public_key_of(x25519)]).to_json()), blocks).cid
    )
    manager = ModelManager(EncryptedStorageSource(blocks, x25519), budget_bytes=4 << 30)

    async def load() -> float:
        started = time.perf_counter()
        await manager.get(ModelRef(99, 0, weights, envelope))
        return time.perf_counter() - started

    try:
        return asyncio.run(load())
    finally:
        manager.close()


# ---------------------------------------------------------------------------- memory
def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def _memory(pid: int) -> dict[str, Any]:
    """RSS and PSS (shared pages split between the processes that map them) of a process tree."""
    rss = pss = 0
    processes = 0
    for member in _tree(pid):
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in rollup.splitlines()[1:] if ":" in line)
        rss += int(fields["Rss"].split()[0]) * 1024
        pss += int(fields["Pss"].split()[0]) * 1024
        processes += 1
    return {
        "processes": processes,
        "rss_mib": round(rss / 2**20, 1),
        "pss_mib": round(pss / 2**20, 1),
    }


# ---------------------------------------------------------------------------- profile
#: Where a sampled stack's time is charged: the first rule (in this order) that matches one of its
#: frames, searching from the innermost frame outwards. Each rule is (category, substrings of
#: "function (file)").
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("worker: ONNX Runtime run", ("run (onnxruntime/",)),
    ("worker: frame decode, tensors, output JSON", ("worker_main (daimm/relayer/worker.py",)),
    ("request signature check (coincurve)", ("is_signed_by (daimm/relayer/signing.py",)),
    ("receipt signature (coincurve)", ("sign (daimm/relayer/signing.py",)),
    ("EIP-712 digests, keccak", ("daimm/relayer/signing.py", "keccak256 (daimm/eip712.py")),
    ("SQLite nonce check and commit", ("nonce_used (daimm/", "use_nonce (daimm/")),
    ("signing headers parse, checksums", ("parse_signed_headers", "claimed_address")),
    ("access decision (cached chain reads)", ("_decide (daimm/", "decide (daimm/")),
    ("input validation (numpy)", ("validate_inputs (daimm/",)),
    ("worker IPC, parent side", ("daimm/relayer/worker.py", "run (daimm/relayer/models.py")),
    ("logging", ("logging/",)),
    ("prometheus metrics", ("prometheus_client/",)),
    ("JSON encode/decode", ("json/",)),
    ("predict handler, other", ("predict (daimm/relayer/app.py",)),
    ("FastAPI, Starlette, pydantic", ("fastapi/", "starlette/", "pydantic")),
    ("uvicorn, HTTP parsing", ("uvicorn/", "httptools")),
    ("event loop", ("asyncio/", "uvloop")),
)


def _categorise(stack: str) -> str:
    frames = stack.split(";")[::-1]
    for category, needles in _CATEGORIES:
        if any(needle in frame for frame in frames for needle in needles):
            return category
    return "other"


def _profile(
    pid: int, url: str, signed: list[tuple[bytes, dict]], seconds: float
) -> dict[str, Any]:
    """Sample the relayer and its workers with py-spy while one client sends ``signed``.

    Returns:
        Per category, the CPU microseconds per request (samples of busy threads only; idle waits
        are not sampled), and the request count.
    """
    py_spy = Path(sys.executable).with_name("py-spy")
    raw = Path(tempfile.mkdtemp(prefix="daimm-profile-")) / "stacks.txt"
    rate = 1000
    spy = subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
         "--rate", str(rate), "--format", "raw", "--output", str(raw),
         "--duration", str(int(seconds) + 2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1.0)  # attach
    run = asyncio.run(_load(url, signed, 1, seconds))
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0 or not raw.exists():
        raise SystemExit(f"py-spy failed: {err.decode()[-2000:]}")
    samples: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # Samples taken while no request ran (attaching, detaching) land on the same frames as
        # the idle loop, which py-spy does not record: nothing to subtract.
        category = _categorise(stack)
        samples[category] = samples.get(category, 0) + int(count)
    per_request = {
        k: round(v / rate / run["count"] * 1e6, 1)
        for k, v in sorted(samples.items(), key=lambda kv: -kv[1])
    }
    return {
        "requests": run["count"],
        "p50_ms_while_sampled": round(run["p50_ms"], 3),
        "cpu_us_per_request": per_request,
        "cpu_us_per_request_total": round(sum(per_request.values()), 1),
    }


# ---------------------------------------------------------------------------- relayer
def _write_config(path: Path, setup: dict[str, Any], uri: str, port: int, work: Path) -> None:
    contracts = "\n".join(f'{k} = "{v}"' for k, v in setup["contracts"].items())
    path.write_text(
        f"""[relayer]
rpc_url = "{uri}"
account_key_file = "{setup["key_file"]}"
x25519_key_file = "{work / "relayer.x25519"}"
storage = "local"
storage_path = "{setup["blocks"]}"
db_path = "{work / "relayer.sqlite3"}"
port = {port}
access_ttl_s = 600.0
rate_per_ip = 1000000.0
burst_per_ip = 1000000
rate_per_address = 1000000.0
burst_per_address = 1000000
max_workers = {len(setup["model_ids"]) + 1}
cache_memory_mb = {(len(setup["model_ids"]) + 1) * 128}
log_level = "INFO"
redeem_interval_s = 3600.0
[relayer.contracts]
{contracts}
"""
    )


def _direct_p50_ms(model_bytes: bytes, row: np.ndarray) -> float:
    """Median of ``InferenceSession.run`` on a warm session in this process, in ms."""
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    timings = []
    for _ in range(2000):
        started = time.perf_counter()
        session.run(None, {"input": row})
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def _scale(
    client: Any, pid: int, url: str, model_ids: list[int], body: bytes, steps: list[int]
) -> list[dict[str, Any]]:
    """Memory of the relayer and its workers, and one client's p50 over all loaded models, with
    ``steps`` models loaded."""
    rows = []
    loaded = 1  # the first model is loaded already
    for n in steps:
        for model_id in model_ids[loaded:n]:
            client.predict(model_id, {"input": json.loads(body)["inputs"]["input"]})
        loaded = max(loaded, n)
        time.sleep(1.0)  # let freshly started workers settle
        memory = _memory(pid)
        count = max(400, 4 * n)
        signed = [(body, client.signed_headers(model_ids[i % n], body)) for i in range(count)]
        # The requests go to the models in turn; each model's URL is in its own request.
        latencies = asyncio.run(_load_many(url, signed, model_ids[:n]))
        rows.append({"models": n, **memory, **latencies})
        print(f"{n} models: {memory}, p50 {latencies['p50_ms']:.2f} ms", flush=True)
    return rows


async def _load_many(url: str, signed: list[tuple[bytes, dict]], ids: list[int]) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        for i, (body, headers) in enumerate(signed):
            sent = time.perf_counter()
            response = await http.post(f"{url}/v1/models/{ids[i % len(ids)]}/predict",
                                       content=body, headers=headers)  # fmt: skip
            latencies.append(time.perf_counter() - sent)
            errors += response.status_code != 200
    if errors:
        raise SystemExit(f"{errors} errors while measuring {len(ids)} models")
    return {
        "requests": len(latencies),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 3),
    }


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per level (max)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per level")
    parser.add_argument(
        "--models", default="1,10,50", help="loaded-model counts of the scaling run ('' skips it)"
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=8.0, help="py-spy sampling run (0 skips it)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        _serve_bare(args.serve_bare)
        return

    from ape import networks

    from daimm.client import KeySigner, RelayerClient

    helpers = _onnx_helpers()
    model_bytes, rows = helpers.iris_classifier()
    row = rows[:1]
    body = json.dumps({"inputs": {"input": row.tolist()}}).encode()
    steps = [int(n) for n in args.models.split(",") if n.strip()]
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="daimm-relayer-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        setup = _setup_chain(work, model_bytes, max([1, *steps]))
        model_id = setup["model_ids"][0]
        port, bare_port = _free_port(), _free_port()
        config = work / "relayer.toml"
        _write_config(config, setup, provider.uri, port, work)
        log = work / "servers.log"
        with open(log, "wb") as sink:
            processes.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config",
                 str(config)], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT))  # fmt: skip
            processes.append(subprocess.Popen(
                [sys.executable, __file__, "--serve-bare", str(bare_port)],
                stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT))  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/v1/health", processes[0], log)
            _wait_http(f"http://127.0.0.1:{bare_port}/", processes[1], log)
            client = RelayerClient(
                url, KeySigner(setup["user_key"]), expected_relayer=setup["relayer"]
            )
            for _ in range(5):  # load the model, warm the access cache
                client.predict(model_id, {"input": row.tolist()})
            predict_url = f"{url}/v1/models/{model_id}/predict"
            for c in LEVELS:
                count = min(args.requests, max(200, c * 10))
                signed = _presign(client, model_id, body, count)
                if c == 1:  # in the same run, right before the relayer's own level
                    results["onnx_direct_p50_ms"] = round(_direct_p50_ms(model_bytes, row), 4)
                run = asyncio.run(_load(predict_url, signed, c, args.max_seconds))
                if run["errors"]:
                    raise SystemExit(f"relayer errors at c={c}: {run['errors']}")
                bare = asyncio.run(
                    _load(f"http://127.0.0.1:{bare_port}/", signed, c, args.max_seconds)
                )
                results[f"relayer_rps_c{c}"] = round(run["rps"], 1)
                results[f"relayer_p50_ms_c{c}"] = round(run["p50_ms"], 3)
                results[f"relayer_p99_ms_c{c}"] = round(run["p99_ms"], 3)
                results[f"bare_rps_c{c}"] = round(bare["rps"], 1)
                results[f"bare_p50_ms_c{c}"] = round(bare["p50_ms"], 3)
                print(
                    f"c={c}: relayer {run['rps']:.0f} rps p50 {run['p50_ms']:.2f} ms"
                    f" p99 {run['p99_ms']:.2f} ms; bare {bare['rps']:.0f} rps"
                    f" p50 {bare['p50_ms']:.2f} ms",
                    flush=True,
                )
            # Session-signed against plain, at c=1, in this same run (issue 17's goal: < 0.2 ms).
            sessions = _session_client(url, setup, int(provider.chain_id))
            for _ in range(5):  # the first use checks the session and reads the chain
                sessions.predict(model_id, {"input": row.tolist()})
            results.update(
                _sessions_c1(
                    predict_url, client, sessions, model_id, body, args.requests, args.max_seconds
                )  # fmt: skip
            )
            sessions.close()
            print(
                f"c=1 session {results['session_p50_ms_c1']:.3f} ms p50, plain"
                f" {results['session_plain_p50_ms_c1']:.3f} ms (alternating rounds)",
                flush=True,
            )
            results["overhead_p50_ms_c1"] = round(
                results["relayer_p50_ms_c1"] - results["onnx_direct_p50_ms"], 3
            )
            results["over_bare_p50_ms_c1"] = round(
                results["relayer_p50_ms_c1"] - results["bare_p50_ms_c1"], 3
            )
            if args.profile_seconds > 0:
                signed = _presign(client, model_id, body, int(args.profile_seconds * 1000))
                results["profile_c1"] = _profile(
                    processes[0].pid, predict_url, signed, args.profile_seconds
                )
                print(json.dumps(results["profile_c1"], indent=2), flush=True)
            if steps:
                results["models_scale_c1"] = _scale(
                    client, processes[0].pid, url, setup["model_ids"], body, steps
                )
            client.close()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)

    results["cold_start_100mb_s"] = round(_cold_start(work, setup["x25519"], helpers), 3)

    from eth_keys import KeyAPI

    results["notes"] = {
        "access": "real anvil chain through the relayer's chain reader, access cache warm",
        "model": "scikit-learn LogisticRegression on iris, 1 row, via skl2onnx",
        "ecc_backend": type(KeyAPI().backend).__name__,
        "server": _server_stack(),
        "relayer_log_level": "INFO (the default: one JSON line per served request)",
        "machine": f"{os.cpu_count()} cores shared, Python {platform.python_version()}",
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "client": "async httpx on the same machine, requests signed before timing",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _server_stack() -> str:
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"uvicorn with {loop} and {http}"


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
