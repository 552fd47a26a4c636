"""Fixtures for the market library and the marketplace CLI: a full deployment (core + extensions)
seen through :class:`daimm.market.Marketplace`, built from the contract types the package ships.

Used by tests/unit/market/conftest.py and tests/unit/cli/test_market_cli.py (``from ... import *``).

Role-named accounts (`deployer`, `treasury`, `arbiter`, `creator`, `renter`, `buyer`, `stranger`)
and the core deployment (`contracts`) come from tests/conftest.py; there `renter` and `buyer` have
approved the escrow without limit, so allowance checks use `newcomer`, who has not.
"""

from __future__ import annotations

import pytest

from daimm.deployments import Deployment, DeploymentsFile, provider_key
from daimm.market import ETH_ADDRESS, Marketplace, Offer
from daimm.market.deploy_extensions import deploy_extensions

#: Seconds a pay-per-use channel stays redeemable after its last deposit.
CREDIT_TIMEOUT = 3600
#: One rental period, in seconds.
PERIOD = 24 * 3600
#: AIMT each user gets from the treasury, smallest unit.
USER_AIMT = 1_000 * 10**18
AIMT = 10**18


def _funded_account(accounts, deployer):
    account = accounts.generate_test_account()
    deployer.transfer(account, 10 * 10**18)
    return account


@pytest.fixture(scope="session")
def operator(accounts, deployer):
    """Operates the relayer: registers it."""
    return _funded_account(accounts, deployer)


@pytest.fixture(scope="session")
def relayer(accounts, deployer):
    """The relayer's signing address (an account of its own)."""
    return _funded_account(accounts, deployer)


@pytest.fixture(scope="session")
def newcomer(accounts, deployer, contracts, treasury):
    """Holds USER_AIMT and ETH but has approved nothing."""
    account = _funded_account(accounts, deployer)
    contracts.token.transfer(account, USER_AIMT, sender=treasury)
    return account


@pytest.fixture(scope="session")
def core(contracts):
    """The core deployment of tests/conftest.py."""
    return contracts


@pytest.fixture(scope="session")
def extensions(project, deployer, core):
    return deploy_extensions(project, deployer, core, credit_timeout=CREDIT_TIMEOUT)


@pytest.fixture(scope="session")
def deployment(chain, core, extensions, stablecoin):
    """The deployment as the deployments file records it."""
    return Deployment(
        network=provider_key(chain.provider),
        chain_id=chain.chain_id,
        block=0,
        contracts={**core.addresses(), **extensions.addresses()},
        currencies={
            "ETH": ETH_ADDRESS,
            "AIMT": str(core.token.address),
            "mUSD": str(stablecoin.address),
        },
    )


@pytest.fixture(scope="session")
def deployments_path(tmp_path_factory, deployment):
    """A deployments file holding `deployment`."""
    path = tmp_path_factory.mktemp("deployments") / "deployments.json"
    DeploymentsFile(path).put(deployment)
    return path


@pytest.fixture(scope="session")
def market(deployment):
    """The marketplace through the shipped contract types (as an installed package sees it)."""
    return Marketplace(deployment)


@pytest.fixture
def publish_model(market, creator):
    """Factory: publish a model as `creator` (or `owner`) and return its id."""

    def create(owner=None, weights="bafyweights", metadata="bafymetadata"):
        published = market.models.publish(
            weights, metadata, royalty_bps=500, sender=owner or creator
        )
        return published.model_id

    return create


@pytest.fixture
def put_offer(market, creator, core):
    """Factory: set an offer on a model; defaults: 2 AIMT a day for 1..30 days, 50 AIMT perpetual,
    0.01 AIMT a call."""

    def create(model_id, *, currency=None, owner=None, **terms):
        values = dict(
            currency=str(core.token.address) if currency is None else currency,
            price_per_period=2 * AIMT,
            period_seconds=PERIOD,
            min_periods=1,
            max_periods=30,
            active=True,
            perpetual_price=50 * AIMT,
            price_per_call=AIMT // 100,
        )
        values.update(terms)
        return market.escrow.set_offer(model_id, Offer(**values), sender=owner or creator)

    return create


@pytest.fixture
def model_id(publish_model, put_offer):
    """A model of `creator` with the default AIMT offer."""
    model = publish_model()
    put_offer(model)
    return model


# ------------------------------------------------------------------ models and keys
@pytest.fixture(scope="session")
def iris(tmp_path_factory):
    """A tiny real model (logistic regression on scikit-learn's iris data, exported with skl2onnx):
    its ONNX file and a matching metadata document."""
    from tests.utils.onnx_models import iris_classifier

    onnx_bytes, rows = iris_classifier()
    folder = tmp_path_factory.mktemp("iris")
    path = folder / "iris.onnx"
    path.write_bytes(onnx_bytes)
    metadata = {
        "name": "Iris classifier",
        "description": "Logistic regression on the iris data set",
        "task": "tabular-classification",
        "framework": "onnx",
        "tags": ["iris", "sklearn"],
        "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 4]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [None]},
            {"name": "probabilities", "dtype": "float32", "shape": [None, 3]},
        ],
        "sample_input": {"input": rows[:2].tolist()},
    }
    return path, metadata


@pytest.fixture
def write_meta(tmp_path):
    """Factory: write a metadata document to a file and return its path."""
    import json

    def write(document, name="meta.json"):
        path = tmp_path / name
        path.write_text(json.dumps(document))
        return path

    return write


@pytest.fixture
def creator_key(tmp_path):
    """The creator's X25519 key pair: (private key, key file)."""
    from daimm.crypto import generate_private_key, save_private_key

    private = generate_private_key()
    path = tmp_path / "creator.key"
    save_private_key(path, private)
    return private, path


@pytest.fixture
def relayer_key(tmp_path):
    """The relayer's X25519 key pair: (private key, key file)."""
    from daimm.crypto import generate_private_key, save_private_key

    private = generate_private_key()
    path = tmp_path / "relayer.key"
    save_private_key(path, private)
    return private, path


@pytest.fixture
def store(tmp_path):
    """The embedded block store, in a fresh folder."""
    from daimm.ipfs import LocalBlockstore

    return LocalBlockstore(tmp_path / "blocks")
