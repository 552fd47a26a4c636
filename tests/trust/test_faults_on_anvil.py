"""Load and faults on a real stack: anvil, the relayer daemon, a storage gateway, real clients.

Runs on anvil through ape-foundry: ``ape test tests/trust --network ethereum:local:foundry``
(``make test-foundry`` runs it). On ape's in-process test chain, which has no HTTP endpoint for
the daemon, the module is skipped with that reason. Nothing here is mocked:

- the relayer is its own process (``daimm relayer serve --config``);
- it reads anvil through a TCP proxy the tests cut (the chain RPC "stops and returns");
- it fetches ciphertexts and envelopes from a trustless-gateway HTTP server the tests control,
  which can serve corrupted blocks;
- the load comes from an async httpx client written here: every request is signed by a licensed
  wallet, 64 clients at once, 10 s by default and 60 s under ``DAIMM_FUZZ=long``; p50/p99 latency
  and requests per second go to ``bench/results/load.json`` (under ``DAIMM_FUZZ=long``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from daimm.client import KeySigner, RelayerClient
from tests.trust.conftest import LONG, ROOT, onnx_models
from tests.utils.relayer import (
    Daemon,
    TcpProxy,
    node_url_or_skip,
    start_daemon,
    stop_daemon,
    wait_until_current,
)

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
PERIOD = 3600
PRICE_PER_PERIOD = 10**15
CLIENTS = 64
LOAD_SECONDS = 60.0 if LONG else 10.0
IRIS_ROW = {"input": [[5.1, 3.5, 1.4, 0.2]]}
SLOW_SIZE = 256
#: How long a cached chain answer is reused by the daemon under test, in seconds.
ACCESS_TTL_S = 1.0
LOG_POLL_S = 0.2
LOAD_RETRY_S = 1.0


# ------------------------------------------------------------------ the storage gateway
class BlockGateway:
    """A trustless gateway (``GET /ipfs/<cid>?format=raw``) over a local block store.

    ``corrupted`` holds CIDs whose blocks are served with one byte flipped (a faulty or hostile
    storage node); the relayer must detect it, not load the model, and keep serving the others.
    """

    def __init__(self, blocks: Any) -> None:
        self.blocks = blocks
        self.corrupted: set[str] = set()
        self.requests = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                from daimm.ipfs import CID

                gateway.requests += 1
                text = self.path.split("?")[0].removeprefix("/ipfs/")
                try:
                    data = gateway.blocks.get_block(CID.parse(text))
                except Exception:  # noqa: BLE001 - any unknown block is a 404
                    self.send_response(404)
                    self.end_headers()
                    return
                if text in gateway.corrupted:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.ipld.raw")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------ the stack
@pytest.fixture(scope="module")
def node_url(chain: Any) -> str:
    return node_url_or_skip(chain, "the relayer daemon reads the chain over HTTP")


@dataclass
class Stack:
    """What the tests drive: models, parties, the proxy, the gateway and the running daemon."""

    work: Path
    settings: dict[str, Any]
    addresses: dict[str, str]
    proxy: Any
    gateway: BlockGateway
    daemon: Daemon
    relayer: str
    iris: int
    plain: int
    slow: int
    weights: dict[int, str] = field(default_factory=dict)

    def client(self, account: Any, url: str | None = None) -> RelayerClient:
        return RelayerClient(
            url or self.daemon.url, KeySigner(account.private_key), expected_relayer=self.relayer
        )


@pytest.fixture(scope="module")
def stack(
    node_url: str,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    renter: Any,
    accounts: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Three encrypted models published and authorised, ``renter`` renting all three, a relayer
    daemon reading anvil through a proxy and storage through a gateway."""
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
    from daimm.market.deploy_extensions import deploy_extensions

    work = tmp_path_factory.mktemp("trust-relayer")
    ext = deploy_extensions(project, deployer, contracts)
    registry, relayers = contracts.registry, ext.relayer_registry
    # The relayer's Ethereum account is a test account (its key goes in a key file) that has no
    # other role in these tests; it registers itself, so no operator consent is needed.
    relayer_account = accounts[8]
    key_file = work / "relayer.eth"
    key_file.write_text(str(relayer_account.private_key))
    key_file.chmod(0o600)
    x25519 = generate_private_key()
    save_private_key(work / "relayer.x25519", x25519)
    blocks = LocalBlockstore(work / "blocks")
    gateway = BlockGateway(blocks)

    endpoint = "http://127.0.0.1:1"  # informational only: clients are given the URL
    relayers.register(
        relayer_account.address, public_key_of(x25519).raw, endpoint, sender=relayer_account
    )
    ids: dict[str, int] = {}
    weights: dict[int, str] = {}
    models = {
        "iris": onnx_models.iris_classifier()[0],
        "plain": onnx_models.add_model(),
        "slow": onnx_models.slow_model(size=SLOW_SIZE, repeats=600),
    }
    for name, model_bytes in models.items():
        model_id = int(registry.modelCount()) + 1
        content_key = generate_content_key()
        ciphertext = io.BytesIO()
        encrypt_stream(
            io.BytesIO(model_bytes), ciphertext, content_key, model_associated_data(model_id, 0)
        )
        weights_cid = str(add_file(io.BytesIO(ciphertext.getvalue()), blocks).cid)
        envelope = wrap_key(content_key, [public_key_of(x25519)])
        envelope_cid = str(add_file(io.BytesIO(envelope.to_json()), blocks).cid)
        registry.publishModel(weights_cid, weights_cid, 0, sender=creator)
        assert int(registry.modelCount()) == model_id
        contracts.escrow.setOffer(
            model_id, (ETH, PRICE_PER_PERIOD, PERIOD, 1, 30, True, 0, 0), sender=creator
        )
        relayers.authorise(model_id, relayer_account.address, envelope_cid, sender=creator)
        price = 30 * PRICE_PER_PERIOD
        contracts.escrow.rent(model_id, 30, price, value=price, sender=renter)
        ids[name], weights[model_id] = model_id, weights_cid

    proxy = TcpProxy(("127.0.0.1", int(node_url.rsplit(":", 1)[1].split("/")[0])))
    proxy.start()
    settings = {
        "rpc_url": proxy.url,
        "rpc_timeout_s": 1.0,
        "account_key_file": str(key_file),
        "x25519_key_file": str(work / "relayer.x25519"),
        "storage": "gateway",
        "storage_url": gateway.url,
        "access_ttl_s": ACCESS_TTL_S,
        "log_poll_s": LOG_POLL_S,
        "load_retry_s": LOAD_RETRY_S,
        "redeem_interval_s": 3600.0,
        # NOTE: every load client shares 127.0.0.1 and one wallet; the limits (tested in
        # tests/unit/relayer) are lifted so the load run measures serving, not rate limiting.
        "rate_per_ip": 1e6,
        "burst_per_ip": 1_000_000,
        "rate_per_address": 1e6,
        "burst_per_address": 1_000_000,
    }
    addresses = {**contracts.addresses(), **ext.addresses()}
    daemon = start_daemon(work, "main", settings, addresses)
    try:
        yield Stack(
            work, settings, addresses, proxy, gateway, daemon, relayer_account.address,
            ids["iris"], ids["plain"], ids["slow"], weights,
        )  # fmt: skip
    finally:
        stop_daemon(daemon)
        proxy.stop()
        gateway.close()


# ------------------------------------------------------------------ the load generator
@dataclass(frozen=True)
class Outcome:
    """One request: when it started (monotonic s), how long it took (s), status, error code."""

    started: float
    seconds: float
    status: int
    error: str


async def generate_load(
    client: RelayerClient,
    model_id: int,
    *,
    clients: int,
    seconds: float,
    stop: threading.Event | None = None,
    inputs: dict[str, Any] = IRIS_ROW,
) -> list[Outcome]:
    """``clients`` concurrent loops, each signing and sending predict requests back to back.

    Transport failures count as status 0 (an error). Runs ``seconds`` or until ``stop`` is set.
    """
    body = json.dumps({"inputs": inputs}, separators=(",", ":")).encode()
    path = f"/v1/models/{model_id}/predict"
    client.info()  # fetch the relayer's identity once, outside the timed loop
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=str(client.http.base_url), timeout=30, limits=limits
    ) as http:

        async def one_client() -> None:
            while time.monotonic() < end and not (stop is not None and stop.is_set()):
                headers = client.signed_headers(model_id, body)
                started = time.monotonic()
                try:
                    response = await http.post(path, content=body, headers=headers)
                    status = response.status_code
                    error = "" if status == 200 else str(response.json().get("error"))
                except (httpx.HTTPError, ValueError) as exc:
                    status, error = 0, type(exc).__name__
                outcomes.append(Outcome(started, time.monotonic() - started, status, error))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return outcomes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def background_load(
    client: RelayerClient, model_id: int, clients: int = 16
) -> Iterator[list[Outcome]]:
    """Load in a thread while the body of the ``with`` injects a fault; outcomes appear at exit."""
    results: list[Outcome] = []
    stop = threading.Event()

    def run() -> None:
        results.extend(
            asyncio.run(generate_load(client, model_id, clients=clients, seconds=600, stop=stop))
        )

    thread = threading.Thread(target=run, name="trust-load", daemon=True)
    thread.start()
    try:
        yield results
    finally:
        stop.set()
        thread.join(timeout=60)


# ------------------------------------------------------------------ load
def test_64_clients_are_served_with_zero_errors_and_latency_is_reported(
    stack: Stack, renter: Any, chain: Any
) -> None:
    wait_until_current(stack.daemon.url, chain)
    client = stack.client(renter)
    assert client.predict(stack.iris, IRIS_ROW).outputs  # warm: the model is loaded

    body = json.dumps({"inputs": IRIS_ROW}).encode()
    sign_started = time.perf_counter()
    for _ in range(20):
        client.signed_headers(stack.iris, body)
    sign_ms = (time.perf_counter() - sign_started) / 20 * 1000
    load_before = os.getloadavg()[0]

    started = time.monotonic()
    outcomes = asyncio.run(generate_load(client, stack.iris, clients=CLIENTS, seconds=LOAD_SECONDS))
    elapsed = time.monotonic() - started

    errors = [o for o in outcomes if o.status != 200]
    latencies_ms = [o.seconds * 1000 for o in outcomes if o.status == 200]
    result = {
        "mode": "long" if LONG else "ci",
        "clients": CLIENTS,
        "duration_s": round(elapsed, 2),
        "requests": len(outcomes),
        "errors": len(errors),
        "rps": round(len(outcomes) / elapsed, 1),
        "p50_ms": round(percentile(latencies_ms, 0.50), 2) if latencies_ms else None,
        "p99_ms": round(percentile(latencies_ms, 0.99), 2) if latencies_ms else None,
        "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else None,
        # The client signs every request in the same process and competes for the same cores:
        # its signing cost and the machine's load put the numbers in context.
        "client_sign_ms": round(sign_ms, 2),
        "loadavg_1min_before": round(load_before, 2),
        "model": "iris logistic regression (skl2onnx), encrypted, one row per request",
        "setup": "daimm relayer serve on 127.0.0.1, anvil via ape-foundry, async httpx clients"
        " signing every request (EIP-712) in the same process; one machine, shared cores",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if LONG:  # the 60 s run is the one recorded; the CI run's short figures are only printed
        out = ROOT / "bench" / "results" / "load.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nload: {json.dumps(result)}")

    assert errors == [], f"{len(errors)} errors, first: {errors[:5]}"
    assert len(outcomes) > CLIENTS


# ------------------------------------------------------------------ faults under load
def test_chain_rpc_outage_under_load_gives_503_never_no_licence_and_recovers(
    stack: Stack, renter: Any, chain: Any
) -> None:
    wait_until_current(stack.daemon.url, chain)
    client = stack.client(renter)
    assert client.predict(stack.iris, IRIS_ROW).outputs

    with background_load(client, stack.iris) as outcomes:
        time.sleep(1.0)
        cut_at = time.monotonic()
        stack.proxy.stop()
        try:
            deadline = time.monotonic() + 10
            while httpx.get(stack.daemon.url + "/v1/health", timeout=5).json()["status"] == "ok":
                assert time.monotonic() < deadline, "the watcher never noticed the outage"
                time.sleep(0.05)
            noticed_at = time.monotonic()
            time.sleep(2.0)  # a stretch of requests wholly inside the outage
        finally:
            restored_at = time.monotonic()
            stack.proxy.start()
        wait_until_current(stack.daemon.url, chain)
        recovered_at = time.monotonic()
        time.sleep(1.5)

    before = [o for o in outcomes if o.started + o.seconds < cut_at]
    outage = [o for o in outcomes if o.started > noticed_at and o.started + o.seconds < restored_at]
    after = [o for o in outcomes if o.started > recovered_at]
    codes = {(o.status, o.error) for o in outcomes}
    assert before and outage and after
    assert {o.status for o in before} == {200}
    assert {(o.status, o.error) for o in outage} == {(503, "chain_unavailable")}
    assert {o.status for o in after} == {200}
    # Over the whole run, including the moments of cutting and restoring: served or 503, nothing
    # else; above all never 403 "no licence" for a wallet whose rental is live.
    assert codes <= {(200, ""), (503, "chain_unavailable")}, codes


def test_corrupted_blocks_from_storage_reject_that_model_while_others_are_served(
    stack: Stack, renter: Any, chain: Any
) -> None:
    wait_until_current(stack.daemon.url, chain)
    client = stack.client(renter)
    assert client.predict(stack.iris, IRIS_ROW).outputs
    stack.gateway.corrupted.add(stack.weights[stack.plain])
    body = b'{"inputs":{"x":[[1.0,2.0,3.0,4.0]]}}'

    with background_load(client, stack.iris) as outcomes:
        time.sleep(0.5)
        try:
            refused = httpx.post(
                f"{stack.daemon.url}/v1/models/{stack.plain}/predict",
                content=body, headers=client.signed_headers(stack.plain, body), timeout=60,
            )  # fmt: skip
            listed = httpx.get(stack.daemon.url + "/v1/models", timeout=10).json()["models"]
            time.sleep(0.5)
        finally:
            stack.gateway.corrupted.clear()

    assert (refused.status_code, refused.json()["error"]) == (503, "model_unavailable")
    assert "failed verification" in refused.json()["detail"]
    assert stack.plain not in [m["model_id"] for m in listed]
    assert outcomes and {o.status for o in outcomes} == {200}
    # With the storage honest again, the model loads after the retry delay.
    time.sleep(LOAD_RETRY_S + 0.2)
    assert client.predict(stack.plain, {"x": [[1.0, 2.0, 3.0, 4.0]]}).outputs == {
        "y": [[1.0, 3.0, 5.0, 7.0]]
    }


@pytest.mark.parametrize("refill", [False, True], ids=["head-goes-back", "same-height-reorg"])
def test_a_reorganisation_that_removes_a_rental_withdraws_access(
    stack: Stack, contracts: Any, buyer: Any, chain: Any, refill: bool
) -> None:
    client = stack.client(buyer)
    head_before = chain.blocks.head.number
    snapshot = chain.snapshot()  # evm_snapshot on anvil
    contracts.escrow.rent(stack.iris, 1, PRICE_PER_PERIOD, value=PRICE_PER_PERIOD, sender=buyer)
    removed = chain.blocks.head.number - head_before
    wait_until_current(stack.daemon.url, chain)
    assert client.predict(stack.iris, IRIS_ROW).outputs

    chain.restore(snapshot)  # evm_revert: the block holding the rental is gone
    if refill:
        chain.mine(removed)  # back at the same height: only the head's new hash tells them apart
    reverted_at = time.monotonic()

    outcome = None
    while time.monotonic() - reverted_at < ACCESS_TTL_S + 5 * LOG_POLL_S + 2:
        body = json.dumps({"inputs": IRIS_ROW}).encode()
        response = httpx.post(
            f"{stack.daemon.url}/v1/models/{stack.iris}/predict",
            content=body, headers=client.signed_headers(stack.iris, body), timeout=30,
        )  # fmt: skip
        outcome = (response.status_code, response.json().get("error"))
        if outcome[0] != 200:
            break
        time.sleep(0.05)
    withdrawn_after = time.monotonic() - reverted_at

    assert outcome == (403, "no_licence"), outcome
    assert withdrawn_after <= ACCESS_TTL_S + 5 * LOG_POLL_S + 1


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_cleanly(
    stack: Stack, renter: Any, chain: Any
) -> None:
    daemon = start_daemon(stack.work, "sigterm", stack.settings, stack.addresses)
    try:
        wait_until_current(daemon.url, chain)
        client = stack.client(renter, url=daemon.url)
        big = {"x": [[1.0] * SLOW_SIZE] * SLOW_SIZE}
        client.predict(stack.slow, big)  # loaded: each call now takes a while in the worker
        body = json.dumps({"inputs": big}, separators=(",", ":")).encode()

        async def scenario() -> tuple[list[Any], Any]:
            clients = [httpx.AsyncClient(base_url=daemon.url, timeout=60) for _ in range(4)]
            try:
                in_flight = [
                    asyncio.create_task(
                        http.post(
                            f"/v1/models/{stack.slow}/predict",
                            content=body,
                            headers=client.signed_headers(stack.slow, body),
                        )
                    )
                    for http in clients
                ]
                await asyncio.sleep(0.4)
                daemon.process.send_signal(signal.SIGTERM)
                # uvicorn logs "Shutting down" and closes its listener in the same step; wait for
                # the line (a fixed sleep raced a busy event loop and the late request was served).
                deadline = time.monotonic() + 15
                while '"Shutting down"' not in daemon.log.read_text(errors="replace"):
                    assert time.monotonic() < deadline, "the daemon never began shutting down"
                    await asyncio.sleep(0.05)
                try:
                    async with httpx.AsyncClient(base_url=daemon.url, timeout=5) as fresh:
                        late: Any = (await fresh.get("/v1/health")).status_code
                except httpx.HTTPError as exc:
                    late = type(exc).__name__
                done = await asyncio.gather(*in_flight, return_exceptions=True)
                return done, late
            finally:
                await asyncio.gather(*(h.aclose() for h in clients))

        answers, late = asyncio.run(scenario())
        code = daemon.process.wait(timeout=60)
    finally:
        stop_daemon(daemon)

    statuses = [a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers]
    assert statuses == [200] * 4, daemon.tail()
    # A new connection after SIGTERM gets no answer: refused, or accepted by the kernel's backlog
    # and closed unanswered. Never a response.
    assert late in ("ConnectError", "ReadError", "RemoteProtocolError"), late
    assert code == 0, f"exit code {code}\n{daemon.tail()}"
