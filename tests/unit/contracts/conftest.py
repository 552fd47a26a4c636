"""Fixtures for the extension contracts (RelayerRegistry, CreditEscrow, ReviewRegistry, Sessions).

Built on the core deployment (``contracts``, ``registry``, ``licences``, ``escrow``, ``token``) and
the role-named accounts of ``tests/conftest.py``. The extensions are deployed once per session with
:func:`daimm.market.deploy_extensions.deploy_extensions`; ape's isolation rolls every test back.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.utils.chain import DAY, ETH

from daimm.market.deploy_extensions import deploy_extensions

#: Seconds a pay-per-use channel stays redeemable after its last deposit (the tests' value).
CREDIT_TIMEOUT = 3600
#: Price of one relayer call in the pay-per-use offers, in the currency's smallest unit.
PRICE_PER_CALL = 10**12
#: The terms the offers here use besides the price per call: day rentals and a perpetual price.
PERIOD_PRICE = 10**15
PERPETUAL_PRICE = 10**16
ENVELOPE_CID = "bafkreienvelope1"
X25519_KEY = b"\x11" * 32


def _funded_account(accounts: Any, deployer: Any) -> Any:
    """A fresh test account with 10 ETH for gas (the ten mnemonic accounts all have roles)."""
    account = accounts.generate_test_account()
    deployer.transfer(account, 10 * 10**18)
    return account


# ------------------------------------------------------------------ roles
@pytest.fixture(scope="session")
def relayer(accounts: Any, deployer: Any) -> Any:
    """The relayer's signing account: it redeems vouchers and signs receipts."""
    return _funded_account(accounts, deployer)


@pytest.fixture(scope="session")
def operator(accounts: Any, deployer: Any) -> Any:
    """Runs the relayer: registers it and alone may update or retire it."""
    return _funded_account(accounts, deployer)


@pytest.fixture(scope="session")
def collaborator(payees: list[Any]) -> Any:
    """Shares 30% of a model's revenue with its creator."""
    return payees[0]


# ------------------------------------------------------------------ contracts
@pytest.fixture(scope="session")
def ext(project: Any, deployer: Any, contracts: Any) -> Any:
    return deploy_extensions(project, deployer, contracts, credit_timeout=CREDIT_TIMEOUT)


@pytest.fixture(scope="session")
def relayer_registry(ext: Any) -> Any:
    return ext.relayer_registry


@pytest.fixture(scope="session")
def credit_escrow(ext: Any) -> Any:
    return ext.credit_escrow


@pytest.fixture(scope="session")
def review_registry(ext: Any) -> Any:
    return ext.review_registry


@pytest.fixture
def fresh_deployer(accounts: Any, deployer: Any) -> Any:
    """A new funded account for a deployment that must revert.

    NOTE: ape remembers the contract type of every address it deployed to; a reverting deployment
    from `deployer` after a rollback lands on an address a session fixture (the zk verifier,
    ProofChallenges) once held, and ape decodes the revert with that contract's ABI
    (``InvalidPointer``). A new account's first deployment address was never used.
    """
    return _funded_account(accounts, deployer)


@pytest.fixture(scope="session")
def session_registry(ext: Any) -> Any:
    return ext.session_registry


@pytest.fixture(scope="session")
def other_credit_escrow(
    project: Any, deployer: Any, escrow: Any, relayer_registry: Any, session_registry: Any
) -> Any:
    """A second, real CreditEscrow on the same chain (for cross-escrow replay tests)."""
    return project.CreditEscrow.deploy(
        escrow, relayer_registry, session_registry, CREDIT_TIMEOUT, sender=deployer
    )


# ------------------------------------------------------------------ state
@pytest.fixture
def model_id(create_model: Any) -> int:
    """A model published by `creator`, without an offer."""
    return create_model()


@pytest.fixture
def registered_relayer(relayer_registry: Any, operator: Any, relayer: Any) -> Any:
    """`relayer`, registered by `operator` with the relayer's consent."""
    relayer_registry.approveOperator(operator, sender=relayer)
    relayer_registry.register(relayer, X25519_KEY, "https://relayer.example", sender=operator)
    return relayer


@pytest.fixture
def authorised_relayer(
    relayer_registry: Any, registered_relayer: Any, model_id: int, creator: Any
) -> Any:
    """`relayer`, registered and authorised by `creator` for `model_id`."""
    relayer_registry.authorise(model_id, registered_relayer, ENVELOPE_CID, sender=creator)
    return registered_relayer


@pytest.fixture
def set_offer(escrow: Any, creator: Any) -> Any:
    """Set `creator`'s offer for a model: day rentals, a perpetual price and a price per call."""

    def _set_offer(
        model_id: int, currency: Any, *, price_per_call: int = PRICE_PER_CALL, active: bool = True
    ) -> None:
        address = str(getattr(currency, "address", currency))
        terms = (address, PERIOD_PRICE, DAY, 1, 30, active, PERPETUAL_PRICE, price_per_call)
        escrow.setOffer(model_id, terms, sender=creator)

    return _set_offer


@pytest.fixture
def eth_ppu_model(
    model_id: int,
    set_offer: Any,
    escrow: Any,
    creator: Any,
    collaborator: Any,
    authorised_relayer: Any,
) -> int:
    """`model_id` with an ETH offer priced per call, a 70/30 split and `relayer` authorised."""
    set_offer(model_id, ETH)
    escrow.setSplit(model_id, [creator, collaborator], [7_000, 3_000], sender=creator)
    return model_id


@pytest.fixture
def token_ppu_model(model_id: int, set_offer: Any, token: Any, authorised_relayer: Any) -> int:
    """`model_id` with an AIMT offer priced per call and `relayer` authorised."""
    set_offer(model_id, token)
    return model_id


@pytest.fixture
def rented_licence(escrow: Any, model_id: int, set_offer: Any, renter: Any) -> tuple[int, int]:
    """(licenceId, modelId): `renter` rented `model_id` for one day in ETH."""
    set_offer(model_id, ETH)
    tx = escrow.rent(model_id, 1, PERIOD_PRICE, value=PERIOD_PRICE, sender=renter)
    return int(tx.events.filter(escrow.Rented)[0].licenceId), model_id


@pytest.fixture
def bought_licence(escrow: Any, rented_licence: tuple[int, int], buyer: Any) -> tuple[int, int]:
    """(licenceId, modelId): `buyer` bought a perpetual licence for the rented model."""
    _, model_id = rented_licence
    tx = escrow.buy(model_id, PERPETUAL_PRICE, value=PERPETUAL_PRICE, sender=buyer)
    return int(tx.events.filter(escrow.Bought)[0].licenceId), model_id
