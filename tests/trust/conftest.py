"""Fixtures for the off-chain trust tests: the real relayer app served by uvicorn on loopback.

Two kinds of relayer run here:

- In-process (``relayer_server``): the real FastAPI app, real model manager and worker processes,
  real SQLite nonce store, served by a real uvicorn server on 127.0.0.1 in a thread. Only the chain
  is the ``ChainDouble`` of ``tests/unit/relayer/conftest.py`` (NOTE: a test double because these
  tests are about the HTTP surface, models and nonces; everything chain-related runs against anvil
  in ``test_faults_on_anvil.py``).
- On anvil (``test_faults_on_anvil.py``): the daemon as its own process (``daimm relayer serve``),
  reading anvil through a TCP proxy the tests cut, and fetching blocks from a gateway the tests
  corrupt.

``DAIMM_FUZZ=long`` (``make fuzz``) selects the long versions (more fuzz examples, a 60 s load run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from daimm.relayer.access import AccessPolicy, RateLimiter
from daimm.relayer.app import RelayerServices, create_app
from daimm.relayer.models import ModelManager, StaticSource
from daimm.relayer.vouchers import VoucherStore
from tests.utils import load_by_path
from tests.utils.relayer import free_port

#: Long runs: ``make fuzz`` sets ``DAIMM_FUZZ=long``.
LONG = os.environ.get("DAIMM_FUZZ", "") == "long"
ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
REGISTRY = "0x" + "12" * 20
ESCROW = "0x" + "34" * 20


onnx_models = load_by_path("tests/utils/onnx_models.py", "daimm_trust_onnx_models")
_relayer_conftest = load_by_path("tests/unit/relayer/conftest.py", "daimm_trust_relayer_conftest")
ChainDouble = _relayer_conftest.ChainDouble


class ColdChainDouble(ChainDouble):  # type: ignore[misc, valid-type]
    """A ``ChainDouble`` whose every read misses the relayer's cache.

    The app then decides in a thread (``asyncio.to_thread``), as it does in production whenever
    the access cache is cold (after every new block): the request yields the event loop between
    its signature check and spending its nonce, which is where a replay race can slip through.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @contextlib.contextmanager
    def cache_only(self) -> Iterator[None]:
        self._local.cache_only = True
        try:
            yield
        finally:
            self._local.cache_only = False

    def _read(self) -> None:
        from daimm.relayer.chain import CacheMiss

        if getattr(self._local, "cache_only", False):
            raise CacheMiss("cold")
        super()._read()


class ThreadedUvicorn:
    """A uvicorn server for ``app`` on 127.0.0.1 in a background thread (its own event loop).

    Args:
        app: The ASGI app.
        port: TCP port (a free one by default).
        settings: Relayer settings: serve with the daemon's own ``runner.uvicorn_config`` (its
            protocol, timeouts and limits) instead of uvicorn's defaults.
    """

    def __init__(self, app: Any, port: int | None = None, settings: Any = None) -> None:
        import uvicorn

        self.port = port or free_port()
        if settings is not None:
            from daimm.relayer.runner import uvicorn_config

            config = uvicorn_config(
                app, settings.model_copy(update={"host": "127.0.0.1", "port": self.port}),
                graceful_timeout_s=10,
            )  # fmt: skip
        else:
            config = uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_config=None, access_log=False,
                lifespan="on", timeout_graceful_shutdown=10,
            )  # fmt: skip
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="trust-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedUvicorn:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


@dataclass
class RelayerUnderTest:
    """An in-process relayer on loopback and the parties around it.

    Attributes:
        url: Base URL of the uvicorn server.
        services: The app's services (models, store, policy).
        chain: The chain double (grant access, break it).
        relayer: The relayer's Ethereum account.
        user: A wallet holding a licence for every served model.
    """

    url: str
    services: RelayerServices
    chain: Any
    relayer: Any
    user: Any

    def client(self, account: Any | None = None, **kwargs: Any) -> Any:
        """A ``RelayerClient`` signing as ``account`` (the licensed user by default)."""
        from daimm.client import KeySigner, RelayerClient

        signer = KeySigner(bytes((account or self.user).key))
        return RelayerClient(self.url, signer, expected_relayer=self.relayer.address, **kwargs)


@pytest.fixture
def relayer_server(tmp_path: Path) -> Callable[..., Any]:
    """Factory: ``with relayer_server({model_id: onnx_bytes}) as relayer: ...``.

    Every model id given is authorised and licensed to ``relayer.user``; ``cold_chain=True`` makes
    every chain read miss the cache (see :class:`ColdChainDouble`); rate limits are lifted
    (they are tested in tests/unit/relayer) so fuzz and races measure what they name, unless
    ``limiters=(per_ip, per_wallet)`` sets them; ``settings`` serves with the daemon's uvicorn
    config (see :class:`ThreadedUvicorn`); ``chain`` replaces the chain double (a real reader).
    """

    @contextlib.contextmanager
    def serve(
        models: dict[int, bytes],
        *,
        cold_chain: bool = False,
        limiters: tuple[RateLimiter, RateLimiter] | None = None,
        settings: Any = None,
        chain: Any = None,
        **manager_kwargs: Any,
    ) -> Iterator[RelayerUnderTest]:
        chain = chain or (ColdChainDouble() if cold_chain else ChainDouble())
        relayer, user = Account.create(), Account.create()
        for model_id in models:
            if isinstance(chain, ChainDouble):
                chain.authorised.add(model_id)
                chain.access.add((model_id, user.address))
        store = VoucherStore(tmp_path / f"relayer-{len(models)}-{time.monotonic_ns()}.sqlite3")
        policy = AccessPolicy(
            chain, store, relayer=relayer.address, chain_id=CHAIN_ID, registry=REGISTRY,
            escrow=ESCROW,
        )  # fmt: skip
        manager_kwargs.setdefault("budget_bytes", 1 << 30)
        manager_kwargs.setdefault("load_retry_s", 30.0)
        services = RelayerServices(
            policy=policy,
            models=ModelManager(StaticSource(models), **manager_kwargs),
            store=store,
            reader=chain,
            private_key=bytes(relayer.key),
            ip_limiter=limiters[0] if limiters else RateLimiter(1e9, 1_000_000),
            address_limiter=limiters[1] if limiters else RateLimiter(1e9, 1_000_000),
        )
        with ThreadedUvicorn(create_app(services), settings=settings) as server:
            yield RelayerUnderTest(server.url, services, chain, relayer, user)

    return serve


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop (the server has its own loop in its thread)."""
    return asyncio.run(coro)
