"""Deploy the core marketplace contracts and wire their roles.

The core is AIModelToken, ModelRegistry, LicenseNFT and RentalEscrow. :func:`deploy_all` deploys
them in dependency order, gives the arbiter its role, and allows ETH and AIMT (and any
``extra_currencies``) as payment currencies. LicenseNFT takes its marketplace (the escrow) as an
immutable constructor argument, so it is deployed for the escrow's address, predicted from the
deployer's nonce (the escrow is the deployer's next contract creation).

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

from daimm.errors import ChainError, ConfigError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.contracts import ContractInstance

__all__ = [
    "DEFAULT_TOKEN_SUPPLY",
    "ETH",
    "MAX_FEE_BPS",
    "Deployment",
    "create_address",
    "deploy_all",
]

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
        licences: LicenseNFT; its immutable ``marketplace()`` is the escrow.
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


def create_address(sender: str, nonce: int) -> str:
    """The address of the contract that ``sender`` creates with a transaction of nonce ``nonce``.

    Args:
        sender: The deploying account's address.
        nonce: The nonce of the deploying transaction.

    Returns:
        The checksummed address: the last 20 bytes of ``keccak256(rlp([sender, nonce]))``.
    """
    import rlp
    from eth_utils import keccak, to_canonical_address, to_checksum_address

    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


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

    The deployer keeps ``DEFAULT_ADMIN_ROLE`` on RentalEscrow (hand it to a multisig afterwards
    with ``grantRole``/``renounceRole``). LicenseNFT has no admin: its marketplace is fixed at
    deployment.
    NOTE: nothing else may send from ``deployer`` while this runs, since the escrow's address is
    predicted from its nonce; a mismatch raises before any wiring.

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
        ChainError: The escrow did not land at the address the LicenseNFT was deployed for (another
            transaction from ``deployer`` was mined in between); deploy again.
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
    # The escrow is created by the deployer's transaction after the licences'.
    expected_escrow = create_address(deployer.address, deployer.nonce + 1)
    licences = deploy(project.LicenseNFT, expected_escrow)
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
    if str(escrow.address) != expected_escrow:
        raise ChainError(
            f"RentalEscrow was deployed at {escrow.address}, not at {expected_escrow} that "
            f"LicenseNFT {licences.address} accepts as its marketplace (another transaction from "
            f"{deployer.address} was mined in between); deploy again from an account nothing else "
            "uses meanwhile"
        )
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
