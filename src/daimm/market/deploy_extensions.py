"""Deploy the extension contracts (RelayerRegistry, CreditEscrow, ReviewRegistry, SessionRegistry,
ProofChallenges).

The core (AIModelToken, ModelRegistry, LicenseNFT, RentalEscrow) is the
:class:`~daimm.market.deploy.Deployment` returned by :func:`daimm.market.deploy.deploy_all`; this
module adds the contracts that build on it (and SessionRegistry, which needs nothing) and grants
CreditEscrow the RentalEscrow's ``REVENUE_SOURCE_ROLE``, so redeemed vouchers are booked as revenue
(fee, split and dispute window apply), and ProofChallenges its ``ARBITER_ROLE``, so a challenge of a
provable model's receipt resolves the dispute it names (docs/ZK.md). The deployer must hold the
RentalEscrow's ``DEFAULT_ADMIN_ROLE``.

Example:
    >>> core = deploy_all(project, deployer, ...)
    >>> ext = deploy_extensions(project, deployer, core)
    >>> ext.credit_escrow.timeout()
    604800
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daimm.errors import ConfigError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.contracts import ContractInstance

    from daimm.market.deploy import Deployment

__all__ = [
    "DEFAULT_ANSWER_WINDOW",
    "DEFAULT_CREDIT_TIMEOUT",
    "Extensions",
    "deploy_extensions",
    "verify_extensions",
]

log = logging.getLogger(__name__)

#: Seconds a pay-per-use channel stays redeemable after its last deposit (7 days).
DEFAULT_CREDIT_TIMEOUT = 7 * 24 * 3600
#: Seconds a proof challenge may be answered after it opens (one day; a proof takes seconds).
DEFAULT_ANSWER_WINDOW = 24 * 3600


@dataclass(frozen=True)
class Extensions:
    """The deployed extension contracts.

    Attributes:
        relayer_registry: RelayerRegistry, reading model owners from the core ModelRegistry.
        credit_escrow: CreditEscrow, paying redeemed vouchers into the core RentalEscrow.
        review_registry: ReviewRegistry, reading licence holders from the core LicenseNFT.
        session_registry: SessionRegistry, where holders revoke session keys (stands alone).
        proof_challenges: ProofChallenges, resolving disputes answered (or not) by proofs; None
            only for an Extensions built by hand from an older deployment.
        gas_used: Gas used by the deployment and wiring transactions, in gas units.
    """

    relayer_registry: ContractInstance
    credit_escrow: ContractInstance
    review_registry: ContractInstance
    session_registry: ContractInstance
    gas_used: int = 0
    proof_challenges: ContractInstance | None = None

    def addresses(self) -> dict[str, str]:
        """Contract name to address, as the deployments file records them."""
        return {
            "RelayerRegistry": str(self.relayer_registry.address),
            "CreditEscrow": str(self.credit_escrow.address),
            "ReviewRegistry": str(self.review_registry.address),
            "SessionRegistry": str(self.session_registry.address),
        } | (
            {"ProofChallenges": str(self.proof_challenges.address)}
            if self.proof_challenges is not None
            else {}
        )


def deploy_extensions(
    project: Any,
    deployer: AccountAPI,
    core: Deployment,
    *,
    credit_timeout: int = DEFAULT_CREDIT_TIMEOUT,
    answer_window: int = DEFAULT_ANSWER_WINDOW,
) -> Extensions:
    """Deploy RelayerRegistry, CreditEscrow, ReviewRegistry, SessionRegistry, ProofChallenges;
    wire them.

    Args:
        project: ape's project manager (``ape.project``), holding the compiled contract types.
        deployer: The account that deploys; it must hold the RentalEscrow's ``DEFAULT_ADMIN_ROLE``.
        core: The core deployment returned by ``deploy_all``.
        credit_timeout: Seconds a pay-per-use channel stays redeemable after its last deposit.
        answer_window: Seconds a proof challenge may be answered after it opens.

    Returns:
        The deployed contracts.

    Raises:
        ConfigError: ``credit_timeout`` or ``answer_window`` is out of range, the deployer
            cannot grant the roles, or the wiring check fails afterwards.
    """
    if not 0 < credit_timeout < 2**32:  # CreditEscrow stores expiries as uint40
        raise ConfigError(f"credit_timeout must be 1..2**32-1 seconds, got {credit_timeout}")
    if not 0 < answer_window < 2**32:  # ProofChallenges stores it as uint64; a day by default
        raise ConfigError(f"answer_window must be 1..2**32-1 seconds, got {answer_window}")
    escrow = core.escrow
    if not escrow.hasRole(escrow.DEFAULT_ADMIN_ROLE(), deployer):
        raise ConfigError(
            f"{deployer.address} cannot grant REVENUE_SOURCE_ROLE on RentalEscrow "
            f"{escrow.address}: deploy with the account that holds its DEFAULT_ADMIN_ROLE"
        )

    receipts: list[Any] = []

    def deploy(contract_type: Any, *args: Any) -> Any:
        instance = contract_type.deploy(*args, sender=deployer)
        receipts.append(deployer.provider.get_receipt(instance.txn_hash))
        return instance

    relayer_registry = deploy(project.RelayerRegistry, core.registry.address)
    session_registry = deploy(project.SessionRegistry)
    credit_escrow = deploy(
        project.CreditEscrow,
        escrow.address,
        relayer_registry.address,
        session_registry.address,
        credit_timeout,
    )
    review_registry = deploy(project.ReviewRegistry, core.licences.address)
    proof_challenges = deploy(
        project.ProofChallenges,
        escrow.address,
        core.licences.address,
        relayer_registry.address,
        answer_window,
    )
    receipts.append(
        escrow.grantRole(escrow.REVENUE_SOURCE_ROLE(), credit_escrow.address, sender=deployer)
    )
    receipts.append(
        escrow.grantRole(escrow.ARBITER_ROLE(), proof_challenges.address, sender=deployer)
    )

    ext = Extensions(
        relayer_registry=relayer_registry,
        credit_escrow=credit_escrow,
        review_registry=review_registry,
        session_registry=session_registry,
        proof_challenges=proof_challenges,
        gas_used=sum(int(r.gas_used) for r in receipts),
    )
    verify_extensions(core, ext)
    log.info("deployed extensions %s (gas %d)", ext.addresses(), ext.gas_used)
    return ext


def verify_extensions(core: Deployment, ext: Extensions) -> None:
    """Check that ``ext`` points at ``core`` and CreditEscrow and ProofChallenges hold their roles.

    Args:
        core: The core deployment returned by ``deploy_all``.
        ext: The extension contracts.

    Raises:
        ConfigError: A contract points elsewhere, or CreditEscrow or ProofChallenges lacks its role.
    """
    escrow = core.escrow
    checks = [
        (
            "RelayerRegistry.modelRegistry",
            ext.relayer_registry.modelRegistry(),
            core.registry.address,
        ),
        ("CreditEscrow.rentalEscrow", ext.credit_escrow.rentalEscrow(), escrow.address),
        (
            "CreditEscrow.relayerRegistry",
            ext.credit_escrow.relayerRegistry(),
            ext.relayer_registry.address,
        ),
        (
            "CreditEscrow.sessionRegistry",
            ext.credit_escrow.sessionRegistry(),
            ext.session_registry.address,
        ),
        ("ReviewRegistry.licenceNFT", ext.review_registry.licenceNFT(), core.licences.address),
    ]
    proofs = ext.proof_challenges
    if proofs is not None:
        checks += [
            ("ProofChallenges.escrow", proofs.escrow(), escrow.address),
            ("ProofChallenges.relayers", proofs.relayers(), ext.relayer_registry.address),
            ("ProofChallenges.licences", proofs.licences(), core.licences.address),
        ]
    for what, actual, expected in checks:
        if str(actual).lower() != str(expected).lower():
            raise ConfigError(f"{what} is {actual}, expected {expected}: redeploy the extensions")
    if not escrow.hasRole(escrow.REVENUE_SOURCE_ROLE(), ext.credit_escrow.address):
        raise ConfigError(
            f"CreditEscrow {ext.credit_escrow.address} lacks RentalEscrow's REVENUE_SOURCE_ROLE: "
            "grant it with the admin account, or every voucher redemption reverts"
        )
    if proofs is not None and not escrow.hasRole(escrow.ARBITER_ROLE(), proofs.address):
        raise ConfigError(
            f"ProofChallenges {proofs.address} lacks RentalEscrow's ARBITER_ROLE: grant it with"
            " the admin account, or no proof challenge can resolve its dispute"
        )
