"""Deploy the core marketplace contracts and wire their roles.

The core is AIModelToken, ModelRegistry, LicenseNFT and RentalEscrow. :func:`deploy_all` deploys
them in dependency order, makes the escrow the licence minter, gives the arbiter its role, and
allows ETH and AIMT (and any ``extra_currencies``) as payment currencies.

NOTE (extension contracts): RelayerRegistry, CreditEscrow and ReviewRegistry are deployed by
:func:`daimm.market.deploy_extensions.deploy_extensions`, which takes the :class:`Deployment`
returned here. Keep this module to the core so the two can be run separately (e.g. a redeploy of the
extensions against an existing core).

Example:
    >>> from ape import accounts, project
    >>> core = deploy_all(project, accounts.test_accounts[0], treasury=t, arbiter=a,
    ...                   fee_bps=250, dispute_window=3 * 24 * 3600)
    >>> core.escrow.feeBps()
    250
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daimm.errors import ConfigError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.contracts import ContractInstance

__all__ = ["DEFAULT_TOKEN_SUPPLY", "ETH", "MAX_FEE_BPS", "Deployment", "deploy_all"]

log = logging.getLogger(__name__)

#: The AIMT supply minted to the treasury: one billion tokens of 18 decimals, in the smallest unit.
DEFAULT_TOKEN_SUPPLY = 1_000_000_000 * 10**18
#: The currency address that means ETH in offers, listings and balances.
ETH = "0x0000000000000000000000000000000000000000"
#: RentalEscrow's fee cap, in basis points (mirrors ``RentalEscrow.MAX_FEE_BPS``).
MAX_FEE_BPS = 1_000


@dataclass(frozen=True)
class Deployment:
    """The deployed core contracts.

    Attributes:
        token: AIModelToken (AIMT), whole supply at the treasury.
        registry: ModelRegistry.
        licences: LicenseNFT; the escrow holds its ``MINTER_ROLE``.
        escrow: RentalEscrow; the arbiter holds its ``ARBITER_ROLE``.
        gas_used: Gas used by the deployment and wiring transactions, in gas units.
    """

    token: ContractInstance
    registry: ContractInstance
    licences: ContractInstance
    escrow: ContractInstance
    gas_used: int = 0

    def addresses(self) -> dict[str, str]:
        """Contract name to address, as the deployments file records them."""
        return {
            "AIModelToken": str(self.token.address),
            "ModelRegistry": str(self.registry.address),
            "LicenseNFT": str(self.licences.address),
            "RentalEscrow": str(self.escrow.address),
        }


def _address(value: Any) -> str:
    return str(getattr(value, "address", value))


def deploy_all(
    project: Any,
    deployer: AccountAPI,
    *,
    treasury: Any,
    arbiter: Any,
    fee_bps: int,
    dispute_window: int,
    extra_currencies: Iterable[Any] = (),
    token_supply: int = DEFAULT_TOKEN_SUPPLY,
) -> Deployment:
    """Deploy AIModelToken, ModelRegistry, LicenseNFT and RentalEscrow, and wire their roles.

    The deployer keeps ``DEFAULT_ADMIN_ROLE`` on LicenseNFT and RentalEscrow (hand it to a multisig
    afterwards with ``grantRole``/``renounceRole``).

    Args:
        project: ape's project manager (``ape.project``), holding the compiled contract types.
        deployer: The account that sends every transaction.
        treasury: Account or address receiving the AIMT supply and the platform fee.
        arbiter: Account or address that resolves disputes (``ARBITER_ROLE``).
        fee_bps: Platform fee, in basis points (0..1,000).
        dispute_window: How long payments are held before payees may withdraw, in seconds.
        extra_currencies: ERC-20 addresses (or contracts) allowed as payment besides ETH and AIMT.
        token_supply: AIMT total supply, in the smallest unit (10**18 per token).

    Returns:
        The deployed contracts and the gas their deployment used.

    Raises:
        ConfigError: A parameter is out of range.
    """
    if not 0 <= fee_bps <= MAX_FEE_BPS:
        raise ConfigError(f"fee_bps must be 0..{MAX_FEE_BPS} basis points, got {fee_bps}")
    if not 0 <= dispute_window < 2**64:
        raise ConfigError(f"dispute_window must be 0..2**64-1 seconds, got {dispute_window}")
    if token_supply <= 0:
        raise ConfigError(f"token_supply must be positive, got {token_supply}")
    treasury_address, arbiter_address = _address(treasury), _address(arbiter)
    if ETH in (treasury_address, arbiter_address):
        raise ConfigError("treasury and arbiter must be non-zero addresses")

    receipts: list[Any] = []

    def deploy(contract_type: Any, *args: Any) -> Any:
        instance = contract_type.deploy(*args, sender=deployer)
        receipts.append(deployer.provider.get_receipt(instance.txn_hash))
        return instance

    token = deploy(project.AIModelToken, treasury_address, token_supply)
    registry = deploy(project.ModelRegistry)
    licences = deploy(project.LicenseNFT, deployer.address)
    escrow = deploy(
        project.RentalEscrow,
        registry.address,
        licences.address,
        token.address,
        deployer.address,
        treasury_address,
        fee_bps,
        dispute_window,
    )
    receipts.append(licences.grantRole(licences.MINTER_ROLE(), escrow.address, sender=deployer))
    receipts.append(escrow.grantRole(escrow.ARBITER_ROLE(), arbiter_address, sender=deployer))
    for currency in (ETH, token.address, *map(_address, extra_currencies)):
        receipts.append(escrow.setCurrencyAllowed(currency, True, sender=deployer))

    deployment = Deployment(
        token=token,
        registry=registry,
        licences=licences,
        escrow=escrow,
        gas_used=sum(int(r.gas_used) for r in receipts),
    )
    log.info("deployed core %s (gas %d)", deployment.addresses(), deployment.gas_used)
    return deployment
