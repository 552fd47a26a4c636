"""The marketplace from Python: one typed class per contract, and a facade bundling them.

Each action is *planned* first (``plan_rent``, ``plan_buy``, ...): the plan runs the pre-flight
checks (allowance, balance, offer, licence) and raises a :class:`~daimm.errors.PreflightError` that
says what to do, and it can be priced (``plan.cost()``) before ``plan.execute()`` sends it and
returns a frozen dataclass built from the transaction's events. The short forms (``rent``, ``buy``,
...) plan and execute in one call. A revert becomes a :class:`~daimm.errors.ContractRevertError`
naming the contract's custom error and its arguments.

Example:
    >>> from daimm.market import Marketplace
    >>> market = Marketplace.connect()
    >>> offer = market.escrow.offer(1)
    >>> rental = market.escrow.rent(1, 2, sender=me, approve=True)
    >>> rental.licence_id, rental.expires
"""

from daimm.market._tx import Cost, Plan, Step
from daimm.market.credit import Credit
from daimm.market.escrow import Escrow
from daimm.market.licences import Licences
from daimm.market.marketplace import Marketplace
from daimm.market.registry import Models
from daimm.market.relayers import Relayers
from daimm.market.reviews import Rating, Reviews
from daimm.market.token import Token
from daimm.market.types import (
    ETH_ADDRESS,
    PERPETUAL_EXPIRY,
    Approval,
    Authorisation,
    Channel,
    CreditDeposit,
    CreditReclaim,
    Currency,
    DisputeOpened,
    DisputeResolved,
    Licence,
    LicenceKind,
    Listing,
    Model,
    ModelVersion,
    Offer,
    PublishedModel,
    PublishedVersion,
    Purchase,
    RelayerInfo,
    RelayerRegistration,
    Rental,
    Resale,
    Resolution,
    Review,
    Settlement,
    Split,
    Transfer,
    Withdrawal,
)

__all__ = [
    "ETH_ADDRESS",
    "PERPETUAL_EXPIRY",
    "Approval",
    "Authorisation",
    "Channel",
    "Cost",
    "Credit",
    "CreditDeposit",
    "CreditReclaim",
    "Currency",
    "DisputeOpened",
    "DisputeResolved",
    "Escrow",
    "Licence",
    "LicenceKind",
    "Licences",
    "Listing",
    "Marketplace",
    "Model",
    "ModelVersion",
    "Models",
    "Offer",
    "Plan",
    "PublishedModel",
    "PublishedVersion",
    "Purchase",
    "Rating",
    "RelayerInfo",
    "RelayerRegistration",
    "Relayers",
    "Rental",
    "Resale",
    "Resolution",
    "Review",
    "Reviews",
    "Settlement",
    "Split",
    "Step",
    "Token",
    "Transfer",
    "Withdrawal",
]
