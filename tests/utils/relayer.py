"""Helpers for tests that run daemons (the relayer, the catalog indexer) against anvil."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Daemon:
    """One ``daimm relayer serve`` process (its own process, as in production)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_daemon(
    work: Path, name: str, settings: dict[str, Any], contracts: dict[str, str]
) -> Daemon:
    """Write a config and start the daemon; return once ``/v1/health`` answers.

    Args:
        work: Folder of the config, the log and the daemon's own SQLite file (``<name>.sqlite3``).
        name: Names those files.
        settings: ``[relayer]`` keys (``port`` and ``db_path`` are set here).
        contracts: ``[relayer.contracts]``: contract name -> address.
    """
    from daimm.relayer.settings import write_settings

    port = free_port()
    config = write_settings(
        work / f"{name}.toml",
        **{**settings, "port": port, "db_path": work / f"{name}.sqlite3", "contracts": contracts},
    )
    log = work / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config", config],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    daemon = Daemon(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(daemon.url + "/v1/health", timeout=1).status_code == 200:
                return daemon
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"relayer {name} did not start:\n{daemon.tail()}")
        time.sleep(0.2)


def stop_daemon(daemon: Daemon) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it takes more than 30 s."""
    if daemon.process.poll() is None:
        daemon.process.terminate()
        try:
            daemon.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait(timeout=10)


def publish_encrypted_model(
    work: Path, registry: Any, creator: Any, model_bytes: bytes, x25519: Any
) -> tuple[int, str]:
    """Encrypt ``model_bytes`` into ``work/blocks``, publish it as ``creator``, wrap its key for
    the relayer's X25519 key; returns (model id, envelope CID) for ``RelayerRegistry.authorise``.
    """
    from daimm.crypto import (
        encrypt_stream,
        generate_content_key,
        model_associated_data,
        public_key_of,
        wrap_key,
    )
    from daimm.ipfs import LocalBlockstore, add_file

    model_id = int(registry.modelCount()) + 1
    content_key = generate_content_key()
    ciphertext = io.BytesIO()
    encrypt_stream(
        io.BytesIO(model_bytes), ciphertext, content_key, model_associated_data(model_id, 0)
    )
    blocks = LocalBlockstore(work / "blocks")
    weights_cid = str(add_file(io.BytesIO(ciphertext.getvalue()), blocks).cid)
    envelope = wrap_key(content_key, [public_key_of(x25519)])
    envelope_cid = str(add_file(io.BytesIO(envelope.to_json()), blocks).cid)
    tx = registry.publishModel(weights_cid, weights_cid, 0, sender=creator)
    assert int(tx.events.filter(registry.ModelPublished)[0].modelId) == model_id
    return model_id, envelope_cid


def wait_until_current(url: str, chain: Any, timeout_s: float = 15.0) -> None:
    """Wait until the daemon at ``url`` is healthy and its watcher has seen the node's head.

    "Seen" means a block at or past the head, on the node's current branch (its hash matches the
    node's block at that number): ape reverts the chain to a snapshot after every test, so the next
    test's blocks reuse numbers the watcher has already seen on the reverted branch.
    """
    number = chain.blocks.head.number
    deadline = time.monotonic() + timeout_s
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(url + "/v1/health", timeout=2).json()
            seen = health["block"]
            if (
                health["status"] == "ok"
                and isinstance(seen, int)
                and number <= seen <= chain.blocks.head.number
                and health["block_hash"] == _hash_of(chain, seen)
            ):
                return
        time.sleep(0.05)
    pytest.fail(
        f"the relayer at {url} did not reach block {number}; it reports"
        f" {health.get('status')} at {health.get('block')} ({health.get('block_hash')})"
    )


def _hash_of(chain: Any, number: int) -> str:
    return "0x" + bytes(chain.provider.get_block(number).hash).hex()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_url_or_skip(chain: Any, why: str) -> str:
    """The HTTP JSON-RPC URL of the node ape is connected to; skip the test if there is none.

    Args:
        chain: ape's chain manager.
        why: Why the test needs a real node (ends the skip message).
    """
    uri = getattr(chain.provider, "http_uri", None) or getattr(chain.provider, "uri", None)
    if chain.provider.name == "test" or not _answers_rpc(uri):
        pytest.skip(
            "needs anvil: run with `--network ethereum:local:foundry` (make test-foundry);"
            f" ape's in-process test chain has no HTTP endpoint and {why}"
        )
    return str(uri)


def _answers_rpc(uri: Any) -> bool:
    if not isinstance(uri, str) or not uri.startswith("http"):
        return False
    try:
        probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        return "result" in httpx.post(uri, json=probe, timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False


@contextlib.contextmanager
def anvil_node(chain_id: int, timeout_s: float = 30.0) -> Iterator[str]:
    """An anvil of chain id ``chain_id`` on a free port (Cancun, like ape-foundry's): its URL.

    Stopped (its process group) on exit.
    """
    from daimm.stack import find_anvil

    port = free_port()
    argv = [find_anvil(), "--port", str(port), "--chain-id", str(chain_id)]
    process = subprocess.Popen(  # noqa: S603 - our own anvil
        [*argv, "--hardfork", "cancun", "--silent"], start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _answers_rpc(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"anvil did not answer on {url} (exit status {process.poll()})")
            time.sleep(0.1)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@contextlib.contextmanager
def relayer_daemon(
    config: Path, port: int, log_path: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`daimm relayer serve --config CONFIG` as its own process, once it answers: its URL.

    Terminated on exit; the test fails with the log's tail if it does not start within a minute.
    """
    log_file = log_path.open("wb")
    daemon = subprocess.Popen(  # noqa: S603 - our own command
        [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config", str(config)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            if daemon.poll() is not None or time.monotonic() > deadline:
                log_file.flush()
                pytest.fail("relayer did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield url
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        finally:
            log_file.close()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the node; ``stop()`` cuts every connection and refuses new
    ones (the RPC endpoint "goes away"), ``start()`` brings it back on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            doomed, self._sockets = self._sockets, []
        for sock in [listener, *doomed]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


def new_relayer(work: Path, relayers: Any, funder: Any, port: int) -> tuple[Any, Any]:
    """A relayer identity registered in ``relayers`` at ``http://127.0.0.1:PORT``.

    Writes ``work/relayer.eth`` (its Ethereum key, mode 0600) and ``work/relayer.x25519``, funds
    the address from ``funder`` and registers it (the address registers itself: the registry
    refuses squatting). Returns the ape account and the X25519 private key.
    """
    from ape import accounts

    from daimm.crypto import generate_private_key, public_key_of, save_private_key

    account = accounts.test_accounts.generate_test_account()
    key_file = work / "relayer.eth"
    key_file.write_text(str(account.private_key))
    key_file.chmod(0o600)
    x25519 = generate_private_key()
    save_private_key(work / "relayer.x25519", x25519)
    funder.transfer(account.address, 10**18)
    relayers.register(
        account.address, public_key_of(x25519).raw, f"http://127.0.0.1:{port}", sender=account
    )
    return account, x25519
