"""Relayer benchmark: ``python bench/relayer_bench.py`` writes bench/results/relayer.json.

One run, on loopback, on a real local chain (anvil, started through ape-foundry; ``anvil`` must be
on PATH, as the Makefile arranges):

- the relayer (``daimm relayer serve`` in its own process, reading anvil through its chain reader
  with a warm access cache) serving a small scikit-learn model (iris logistic regression, ONNX),
  at 1, 8 and 64 concurrent clients: requests per second, p50 and p99 latency;
- a bare ASGI endpoint that does nothing (raw ASGI on the same uvicorn), at the same concurrency;
- the same model called directly through ONNX Runtime in this process (p50);
- the cold start of a ~100 MB model: fetch from the local blockstore with verification, unwrap
  the key, spawn the worker, decrypt, validate and build the session.

The load generator is an async httpx client written here: requests are signed before timing (each
needs its own nonce), each level is bounded by a request count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
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
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int, max_s: float
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
    }


# ---------------------------------------------------------------------------- the chain
def _setup_chain(work: Path, model_bytes: bytes) -> dict[str, Any]:
    """Deploy, publish the encrypted model, register and authorise a relayer, rent for a user."""
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

    model_id = int(core.registry.modelCount()) + 1
    content_key = generate_content_key()
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(model_bytes), sealed, content_key, model_associated_data(model_id, 0))
    blocks = LocalBlockstore(work / "blocks")
    weights_cid = str(add_file(io.BytesIO(sealed.getvalue()), blocks).cid)
    envelope_cid = str(
        add_file(io.BytesIO(wrap_key(content_key, [public_key_of(x25519)]).to_json()), blocks).cid
    )
    core.registry.publishModel(weights_cid, weights_cid, 0, sender=creator)
    core.escrow.setOffer(model_id, (ETH, 10**15, PERIOD, 1, 12, True, 0, 0), sender=creator)
    ext.relayer_registry.register(
        relayer.address, public_key_of(x25519).raw, "http://127.0.0.1", sender=relayer
    )
    ext.relayer_registry.authorise(model_id, relayer.address, envelope_cid, sender=creator)
    core.escrow.rent(model_id, 1, 10**15, value=10**15, sender=user)
    return {
        "model_id": model_id,
        "relayer": relayer.address,
        "key_file": key_file,
        "user_key": str(user.private_key),
        "contracts": {**core.addresses(), **ext.addresses()},
        "blocks": work / "blocks",
        "x25519": x25519,
    }


def _presign(client: Any, model_id: int, body: bytes, count: int) -> list[tuple[bytes, dict]]:
    return [(body, client.signed_headers(model_id, body)) for _ in range(count)]


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


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per level (max)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="time limit per level")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        _serve_bare(args.serve_bare)
        return

    import onnxruntime as ort
    from ape import networks

    from daimm.client import KeySigner, RelayerClient

    helpers = _onnx_helpers()
    model_bytes, rows = helpers.iris_classifier()
    row = rows[:1]
    body = json.dumps({"inputs": {"input": row.tolist()}}).encode()
    results: dict[str, Any] = {}
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="daimm-relayer-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        setup = _setup_chain(work, model_bytes)
        port, bare_port = _free_port(), _free_port()
        config = work / "relayer.toml"
        contracts = "\n".join(f'{k} = "{v}"' for k, v in setup["contracts"].items())
        config.write_text(
            f"""[relayer]
rpc_url = "{provider.uri}"
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
log_level = "WARNING"
redeem_interval_s = 3600.0
[relayer.contracts]
{contracts}
"""
        )
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
                client.predict(setup["model_id"], {"input": row.tolist()})
            predict_url = f"{url}/v1/models/{setup['model_id']}/predict"
            for c in LEVELS:
                count = min(args.requests, max(200, c * 10))
                signed = _presign(client, setup["model_id"], body, count)
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
                    f" p99 {run['p99_ms']:.2f} ms; bare {bare['rps']:.0f} rps",
                    flush=True,
                )
            client.close()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    timings = []
    for _ in range(2000):
        started = time.perf_counter()
        session.run(None, {"input": row})
        timings.append(time.perf_counter() - started)
    results["onnx_direct_p50_ms"] = round(statistics.median(timings) * 1000, 4)
    results["cold_start_100mb_s"] = round(_cold_start(work, setup["x25519"], helpers), 3)

    from eth_keys import KeyAPI

    results["notes"] = {
        "access": "real anvil chain through the relayer's chain reader, access cache warm",
        "model": "scikit-learn LogisticRegression on iris, 1 row, via skl2onnx",
        "ecc_backend": type(KeyAPI().backend).__name__,
        "machine": f"{os.cpu_count()} cores shared, Python {platform.python_version()}",
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "client": "async httpx on the same machine, requests signed before timing",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
