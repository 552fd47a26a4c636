"""Fixtures for relayer tests that need no chain.

The chain is replaced by :class:`ChainDouble`, which answers the few reads the access policy makes
from plain dicts. NOTE: a test double, used because these tests check the relayer's own logic; the
real chain reader is tested against a local HTTP stand-in (test_chain.py) and against anvil
(tests/e2e/test_relayer.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tests.utils import load_by_path

from daimm.errors import ChainUnavailableError
from daimm.relayer.access import AccessPolicy, RateLimiter
from daimm.relayer.app import RelayerServices, create_app
from daimm.relayer.chain import Channel, ModelVersion
from daimm.relayer.models import ModelManager, StaticSource
from daimm.relayer.sessions import SessionGate, SessionStore
from daimm.relayer.vouchers import VoucherStore

CHAIN_ID = 31337
REGISTRY = "0x" + "12" * 20
ESCROW = "0x" + "34" * 20
SESSION_REGISTRY = "0x" + "56" * 20


onnx_models = load_by_path("tests/utils/onnx_models.py", "daimm_test_onnx_models")


class ChainDouble:
    """Answers the reads ``AccessPolicy`` makes; ``down = True`` makes every read fail."""

    def __init__(self) -> None:
        self.access: set[tuple[int, str]] = set()
        self.authorised: set[int] = set()
        self.prices: dict[int, int] = {}
        self.channels: dict[tuple[str, int], Channel] = {}
        self.now = int(time.time())
        self.down = False
        self.revoked: set[tuple[str, bytes]] = set()
        self.session_nonces: dict[str, int] = {}
        self.latest_block: int | None = 1
        self.latest_block_hash: str | None = "0x" + "ab" * 32
        self.calls = 0

    def _read(self) -> None:
        self.calls += 1
        if self.down:
            raise ChainUnavailableError("stand-in chain is down")

    def has_access(self, model_id: int, account: str) -> bool:
        self._read()
        return (model_id, account) in self.access

    def is_authorised(self, model_id: int, relayer: str) -> bool:
        self._read()
        return model_id in self.authorised

    def latest_version(self, model_id: int) -> ModelVersion:
        self._read()
        return ModelVersion(model_id, 0, f"bafy-model-{model_id}")

    def envelope_of(self, model_id: int, relayer: str) -> str:
        self._read()
        return f"bafy-envelope-{model_id}"

    def price_per_call(self, model_id: int) -> int:
        self._read()
        return self.prices.get(model_id, 0)

    def channel_of(self, payer: str, model_id: int, relayer: str) -> Channel:
        self._read()
        return self.channels.get((payer, model_id), Channel("0x" + "00" * 20, 0, 0, 0))

    def currency_units(self, currency: str) -> tuple[str, int]:
        self._read()
        return ("ETH", 18) if int(currency, 16) == 0 else ("AIMT", 18)

    def session_state(self, holder: str, session_hash: bytes) -> tuple[bool, int]:
        self._read()
        return (holder, session_hash) in self.revoked, self.session_nonces.get(holder, 0)

    def chain_time(self) -> int:
        self._read()
        return self.now

    def cache_only(self) -> Any:
        # NOTE: the double has no cache; it answers inline like a warm reader would.
        return contextlib.nullcontext()


@pytest.fixture(scope="session")
def iris() -> tuple[bytes, Any]:
    return onnx_models.iris_classifier()


@pytest.fixture
def relayer_account() -> Any:
    return Account.create()


@pytest.fixture
def user() -> Any:
    return Account.create()


@pytest.fixture
def chain() -> ChainDouble:
    return ChainDouble()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VoucherStore]:
    db = VoucherStore(tmp_path / "relayer.sqlite3")
    yield db


@pytest.fixture
def create_services(
    tmp_path: Path, chain: ChainDouble, relayer_account: Any, store: VoucherStore, iris: Any
) -> Iterator[Callable[..., RelayerServices]]:
    made: list[RelayerServices] = []

    def create(models: dict[int, bytes] | None = None, **kwargs: Any) -> RelayerServices:
        sessions = SessionGate(
            chain,  # type: ignore[arg-type]
            SessionStore(tmp_path / "relayer.sqlite3"),
            relayer=relayer_account.address,
            chain_id=CHAIN_ID,
            registry=kwargs.pop("session_registry", SESSION_REGISTRY),
            clock=lambda: chain.now,
        )
        policy = AccessPolicy(
            chain,  # type: ignore[arg-type]
            store,
            relayer=relayer_account.address,
            chain_id=CHAIN_ID,
            registry=REGISTRY,
            escrow=ESCROW,
            clock=lambda: chain.now,
            sessions=sessions,
        )
        manager = ModelManager(
            StaticSource(
                models if models is not None else {1: iris[0]},
                kwargs.pop("cards", None),
                kwargs.pop("tokenizers", None),
            ),
            budget_bytes=kwargs.pop("budget_bytes", 1 << 30),
            load_retry_s=kwargs.pop("load_retry_s", 30.0),
        )
        services = RelayerServices(
            policy=policy,
            models=manager,
            store=store,
            reader=chain,  # type: ignore[arg-type]
            private_key=bytes(relayer_account.key),
            **kwargs,
        )
        made.append(services)
        return services

    yield create
    for services in made:
        services.models.close()


@pytest.fixture
def make_client(relayer_account: Any) -> Callable[..., Any]:
    """A ``RelayerClient`` bound to an app through FastAPI's TestClient."""
    from fastapi.testclient import TestClient

    from daimm.client import KeySigner, RelayerClient

    def make(services: RelayerServices, signer_key: bytes) -> tuple[Any, Any]:
        http = TestClient(create_app(services))
        client = RelayerClient(
            "http://testserver",
            KeySigner(signer_key),
            expected_relayer=relayer_account.address,
            http=http,  # type: ignore[arg-type]
        )
        return client, http

    return make


def unlimited() -> RateLimiter:
    return RateLimiter(1e9, 1_000_000)
