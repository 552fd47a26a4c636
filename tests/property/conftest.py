"""Fixtures of the stateful property tests: a market of its own, with a short dispute window, a
fee-on-transfer token, two models and a relayer, and a faster secp256k1 recovery.

The market is deployed with the library's ``deploy_all`` and ``deploy_extensions`` (as the unit
tests' fixtures are) but with short windows, so that random time jumps cross them often.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import pytest

from daimm.market.deploy import deploy_all
from daimm.market.deploy_extensions import deploy_extensions

#: Long runs (``make fuzz`` sets ``DAIMM_FUZZ=long``).
LONG = os.environ.get("DAIMM_FUZZ", "") == "long"
#: Dispute window and credit timeout of the property market, in seconds.
WINDOW = 3600
CREDIT_TIMEOUT = 3600
FEE_BPS = 250
FUNDS = 10**24


@dataclass(frozen=True)
class Market:
    """The deployed property-test market and its actors (ape accounts)."""

    token: Any
    fee_token: Any
    registry: Any
    licences: Any
    escrow: Any
    credit: Any
    relayers: Any
    deployer: Any
    treasury: Any
    arbiter: Any
    relayer: Any
    creators: tuple[Any, ...]
    collaborator: Any
    users: tuple[Any, ...]


@pytest.fixture(scope="module")
def fast_ecrecover() -> Any:
    """Memoise eth_keys' pure-Python public-key recovery for the module.

    NOTE: eth-tester recovers each transaction's sender several times (validation, mining,
    receipts) with the pure-Python secp256k1 backend; caching the (hash, signature) -> key result
    halves the time per transaction and changes no result (recovery is a pure function).
    """
    import eth_keys.backends.native.main as native

    original = native.ecdsa_raw_recover
    native.ecdsa_raw_recover = functools.lru_cache(maxsize=65536)(original)
    yield
    native.ecdsa_raw_recover = original


@pytest.fixture(scope="module")
def market(project: Any, accounts: Any, chain: Any, fast_ecrecover: Any) -> Market:
    deployer, treasury, arbiter, creator, renter, buyer = (accounts[i] for i in range(6))
    collaborator, creator2, stranger = accounts[6], accounts[7], accounts[9]
    fee_token = project.MockFeeToken.deploy(sender=deployer)
    core = deploy_all(
        project,
        deployer,
        treasury=treasury,
        arbiter=arbiter,
        fee_bps=FEE_BPS,
        dispute_window=WINDOW,
        extra_currencies=(fee_token,),
    )
    ext = deploy_extensions(project, deployer, core, credit_timeout=CREDIT_TIMEOUT)
    relayer = accounts.generate_test_account()
    deployer.transfer(relayer, 10**20)
    ext.relayer_registry.register(relayer, b"\x11" * 32, "https://relayer.test", sender=relayer)
    users = (renter, buyer, stranger)
    for user in users:
        core.token.transfer(user, FUNDS, sender=treasury)
        fee_token.mint(user, FUNDS, sender=deployer)
        for erc20 in (core.token, fee_token):
            erc20.approve(core.escrow, 2**256 - 1, sender=user)
            erc20.approve(ext.credit_escrow, 2**256 - 1, sender=user)
        core.licences.setApprovalForAll(core.escrow, True, sender=user)
    return Market(
        token=core.token,
        fee_token=fee_token,
        registry=core.registry,
        licences=core.licences,
        escrow=core.escrow,
        credit=ext.credit_escrow,
        relayers=ext.relayer_registry,
        deployer=deployer,
        treasury=treasury,
        arbiter=arbiter,
        relayer=relayer,
        creators=(creator, creator2),
        collaborator=collaborator,
        users=users,
    )
