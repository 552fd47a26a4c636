"""Fixtures for the catalog tests: the whole marketplace on ape's local chain, a real local block
store holding metadata documents, and an indexer over both.

Every test using ``store`` runs twice, on SQLite and on PostgreSQL (``catalog_backend`` from
tests/utils/catalog_db.py, loaded by tests/conftest.py).

The core comes from tests/conftest.py (`deploy_all`), the extensions from `deploy_extensions`; the
chain state a test needs is arranged with raw contract calls (the catalog is what is under test).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from daimm.catalog import CatalogContracts, CatalogStore, ChainReader, Indexer, ipfs_fetcher
from daimm.ipfs import LocalBlockstore, add_file

ETH = "0x0000000000000000000000000000000000000000"
AIMT = 10**18
HOUR = 3600


# deployer, treasury, arbiter, creator, renter (AIMT funded, escrow approved) and buyer come from
# tests/conftest.py, with `contracts` (the core deployed by `deploy_all`).


@pytest.fixture(scope="session")
def rival(accounts: Any) -> Any:
    """A second creator."""
    return accounts[6]


@pytest.fixture(scope="session")
def relayer(accounts: Any) -> Any:
    """A relayer's signing account (it registers itself as its own operator)."""
    return accounts[7]


@pytest.fixture(scope="session")
def market(project: Any, chain: Any, deployer: Any, contracts: Any) -> Any:
    """Core (from tests/conftest.py) + extensions, and the block the deployment started at."""
    from daimm.market.deploy_extensions import deploy_extensions

    ext = deploy_extensions(project, deployer, contracts)
    core = contracts

    class Market:
        token = core.token
        registry = core.registry
        licences = core.licences
        escrow = core.escrow
        relayers = ext.relayer_registry
        credit = ext.credit_escrow
        reviews = ext.review_registry
        # Everything before the extensions is core deployment and funding: start at block 1.
        start_block = 1
        addresses = {**core.addresses(), **ext.addresses()}

    return Market


@pytest.fixture(scope="module")
def blockstore(tmp_path_factory: pytest.TempPathFactory) -> LocalBlockstore:
    """A real local block store, shared by a module's tests (blocks are content-addressed)."""
    return LocalBlockstore(tmp_path_factory.mktemp("blocks"))


@pytest.fixture(scope="module")
def put_json(blockstore: LocalBlockstore) -> Callable[[dict[str, Any]], str]:
    """Store a JSON document in the block store; returns its CID."""

    def put(doc: dict[str, Any]) -> str:
        return str(add_file(io.BytesIO(json.dumps(doc).encode()), blockstore).cid)

    return put


@pytest.fixture(scope="module")
def publish(market: Any, put_json: Callable[[dict[str, Any]], str]) -> Callable[..., int]:
    """Publish a model whose metadata is stored; returns its id."""

    def publish_model(
        owner: Any,
        doc: dict[str, Any] | None = None,
        *,
        cid: str | None = None,
        royalty_bps: int = 500,
    ) -> int:
        metadata_cid = cid if cid is not None else put_json(doc or {"name": "unnamed"})
        market.registry.publishModel(
            "bafyweights" + metadata_cid[-8:], metadata_cid, royalty_bps, sender=owner
        )
        return int(market.registry.modelCount())

    return publish_model


@pytest.fixture(scope="module")
def set_offer(market: Any) -> Callable[..., None]:
    """Set a model's offer in AIMT (prices in whole AIMT unless `currency` says otherwise)."""

    def offer(
        owner: Any,
        model_id: int,
        *,
        rent: int = 0,
        buy: int = 0,
        call: int = 0,
        currency: str | None = None,
        period: int = HOUR,
        active: bool = True,
        unit: int = AIMT,
    ) -> None:
        market.escrow.setOffer(
            model_id,
            (
                currency or market.token.address,
                rent * unit,
                period,
                1,
                100,
                active,
                buy * unit,
                call * unit,
            ),
            sender=owner,
        )

    return offer


@pytest.fixture(scope="module")
def fund(market: Any, treasury: Any) -> Callable[[Any, int], None]:
    """Give an account AIMT (whole tokens) and approve the escrows to spend it."""

    def give(account: Any, tokens: int) -> None:
        if int(market.token.balanceOf(account)) >= tokens * AIMT:
            market.token.approve(market.credit.address, 2**256 - 1, sender=account)
            return
        market.token.transfer(account, tokens * AIMT, sender=treasury)
        market.token.approve(market.escrow.address, 2**256 - 1, sender=account)
        market.token.approve(market.credit.address, 2**256 - 1, sender=account)

    return give


@pytest.fixture
def store(catalog_url: str) -> Iterator[CatalogStore]:
    """An empty catalog on the backend under test."""
    catalog = CatalogStore(catalog_url)
    yield catalog
    catalog.close()


@pytest.fixture
def new_store(catalog_backend: str, catalog_databases: Any) -> Iterator[Callable[[], CatalogStore]]:
    """Another empty catalog on the same backend (a reference built by a clean sync)."""
    made: list[CatalogStore] = []

    def make() -> CatalogStore:
        made.append(CatalogStore(catalog_databases.url(catalog_backend)))
        return made[-1]

    yield make
    for catalog in made:
        catalog.close()


@pytest.fixture(scope="module")
def catalog_contracts(market: Any, chain: Any) -> CatalogContracts:
    return CatalogContracts(market.addresses, market.start_block, chain.chain_id)


@pytest.fixture
def make_indexer(
    store: CatalogStore,
    chain: Any,
    catalog_contracts: CatalogContracts,
    blockstore: LocalBlockstore,
) -> Callable[..., Indexer]:
    """An indexer over the local chain and the block store (keyword arguments pass through)."""

    def make(**kwargs: Any) -> Indexer:
        kwargs.setdefault("fetch_metadata", ipfs_fetcher(blockstore))
        fetch = kwargs.pop("fetch_metadata")
        target = kwargs.pop("store", store)
        reader = ChainReader(chain.provider.web3)
        return Indexer(target, reader, catalog_contracts, fetch, **kwargs)

    return make
