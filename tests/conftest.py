"""Shared fixtures: role-named accounts, the deployed core contracts, and model factories.

Session-scoped fixtures deploy once; ape's test isolation rolls the chain back after every test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from daimm.market.deploy import Deployment, deploy_all
from tests.utils.catalog_db import catalog_backend, catalog_databases, catalog_url  # noqa: F401
from tests.utils.chain import ETH
from tests.utils.market import (
    DISPUTE_WINDOW,
    ETH_FUNDS,
    FEE_BPS,
    FUNDS,
    METADATA_CID,
    ROYALTY_BPS,
    WEIGHTS_CID,
    offer,
)
from tests.utils.zk import zk_sample  # noqa: F401

__all__ = ["ETH_FUNDS"]


@pytest.fixture(scope="session")
def deployer(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def treasury(accounts: Any) -> Any:
    return accounts[1]


@pytest.fixture(scope="session")
def arbiter(accounts: Any) -> Any:
    return accounts[2]


@pytest.fixture(scope="session")
def creator(accounts: Any) -> Any:
    return accounts[3]


@pytest.fixture(scope="session")
def renter(accounts: Any) -> Any:
    return accounts[4]


@pytest.fixture(scope="session")
def buyer(accounts: Any) -> Any:
    return accounts[5]


@pytest.fixture(scope="session")
def payees(accounts: Any) -> list[Any]:
    return [accounts[6], accounts[7], accounts[8]]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[9]


@pytest.fixture(scope="session")
def stablecoin(project: Any, deployer: Any) -> Any:
    """A mock 6-decimal stablecoin (no real stablecoin runs on a local chain)."""
    return project.MockERC20.deploy("Mock USD", "mUSD", 6, sender=deployer)


@pytest.fixture(scope="session")
def contracts(
    project: Any,
    deployer: Any,
    treasury: Any,
    arbiter: Any,
    renter: Any,
    buyer: Any,
    stablecoin: Any,
) -> Deployment:
    """The core deployed by the library's ``deploy_all``; renter and buyer hold AIMT and mUSD and
    have approved the escrow for both without limit."""
    core = deploy_all(
        project,
        deployer,
        treasury=treasury,
        arbiter=arbiter,
        fee_bps=FEE_BPS,
        dispute_window=DISPUTE_WINDOW,
        extra_currencies=(stablecoin,),
    )
    for account in (renter, buyer):
        core.token.transfer(account, FUNDS, sender=treasury)
        core.token.approve(core.escrow, 2**256 - 1, sender=account)
        stablecoin.mint(account, FUNDS, sender=deployer)
        stablecoin.approve(core.escrow, 2**256 - 1, sender=account)
    return core


@pytest.fixture(scope="session")
def token(contracts: Deployment) -> Any:
    return contracts.token


@pytest.fixture(scope="session")
def registry(contracts: Deployment) -> Any:
    return contracts.registry


@pytest.fixture(scope="session")
def licences(contracts: Deployment) -> Any:
    return contracts.licences


@pytest.fixture(scope="session")
def escrow(contracts: Deployment) -> Any:
    return contracts.escrow


@pytest.fixture(scope="session")
def create_model(registry: Any, escrow: Any, creator: Any) -> Callable[..., int]:
    """Factory: publish a model (by ``creator`` unless ``owner=`` is given) and, with ``currency=``,
    set its offer (keyword arguments as :func:`offer`). Returns the model id."""

    def _create(
        *, owner: Any = None, currency: Any = None, royalty_bps: int = ROYALTY_BPS, **terms: Any
    ) -> int:
        owner = owner or creator
        tx = registry.publishModel(WEIGHTS_CID, METADATA_CID, royalty_bps, sender=owner)
        model_id = int(tx.events.filter(registry.ModelPublished)[0].modelId)
        if currency is not None:
            escrow.setOffer(model_id, offer(currency, **terms), sender=owner)
        return model_id

    return _create


@pytest.fixture(scope="session")
def aimt_model(create_model: Callable[..., int], token: Any) -> int:
    """A model rented at 1 AIMT a day (1..30 days) or bought for 50 AIMT."""
    return create_model(currency=token)


@pytest.fixture(scope="session")
def eth_model(create_model: Callable[..., int]) -> int:
    """A model rented at 0.01 ETH a day or bought for 0.5 ETH."""
    return create_model(currency=ETH, price_per_period=10**16, perpetual_price=5 * 10**17)
