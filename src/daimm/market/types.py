"""Typed values the market library returns: frozen dataclasses built from calls and events.

Amounts are integers in the currency's smallest unit (wei for ETH), shares in basis points, times in
seconds since the epoch; see :mod:`daimm.units` to show them to people.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from daimm.units import format_amount

__all__ = [
    "ETH_ADDRESS",
    "PERPETUAL_EXPIRY",
    "Approval",
    "Authorisation",
    "Channel",
    "CreditDeposit",
    "CreditReclaim",
    "Currency",
    "DisputeOpened",
    "DisputeResolved",
    "Licence",
    "LicenceKind",
    "Model",
    "ModelVersion",
    "Offer",
    "PublishedModel",
    "PublishedVersion",
    "Purchase",
    "RelayerInfo",
    "RelayerRegistration",
    "Rental",
    "Resolution",
    "Review",
    "Settlement",
    "Split",
    "Transfer",
    "Withdrawal",
]

#: ``address(0)``: the currency address meaning ether.
ETH_ADDRESS = "0x0000000000000000000000000000000000000000"
#: The expiry of a perpetual licence (``type(uint64).max``).
PERPETUAL_EXPIRY = 2**64 - 1


class LicenceKind(IntEnum):
    """Kind of a licence (``ILicenseNFT.Kind``)."""

    RENTAL = 0
    PERPETUAL = 1


class Resolution(IntEnum):
    """How an arbiter settles a dispute (``IRentalEscrow.Resolution``)."""

    REFUND = 0
    RELEASE = 1
    SPLIT = 2


@dataclass(frozen=True)
class Currency:
    """A payment currency.

    Attributes:
        address: ``ETH_ADDRESS`` for ether, else the ERC-20's address.
        symbol: ``ETH`` or the token's symbol.
        decimals: 18 for ether, else the token's decimals.
    """

    address: str
    symbol: str
    decimals: int

    @property
    def is_eth(self) -> bool:
        """Whether this is ether (paid as transaction value, no approval)."""
        return int(self.address, 16) == 0

    def format(self, value: int) -> str:
        """``value`` (smallest unit) for people, e.g. ``"2.5 AIMT"``."""
        return format_amount(value, self.decimals, self.symbol)


@dataclass(frozen=True)
class ModelVersion:
    """One published version of a model.

    Attributes:
        index: Version index (the first is 0).
        weights_cid: CID of the encrypted weights.
        metadata_cid: CID of the metadata document.
        published_at: Block timestamp, in seconds.
    """

    index: int
    weights_cid: str
    metadata_cid: str
    published_at: int


@dataclass(frozen=True)
class Model:
    """A model token as the registry sees it now.

    Attributes:
        model_id: The token id.
        owner: Who owns the model (and its revenue) now.
        latest: Its latest version.
        version_count: How many versions it has.
    """

    model_id: int
    owner: str
    latest: ModelVersion
    version_count: int


@dataclass(frozen=True)
class PublishedModel:
    """A newly minted model (from ``ModelPublished``)."""

    model_id: int
    creator: str
    weights_cid: str
    metadata_cid: str
    tx_hash: str


@dataclass(frozen=True)
class PublishedVersion:
    """A newly published version (from ``VersionPublished``)."""

    model_id: int
    version: int
    weights_cid: str
    metadata_cid: str
    tx_hash: str


@dataclass(frozen=True)
class Offer:
    """A model's terms of sale (``IRentalEscrow.Offer``).

    Attributes:
        currency: Address of the currency (``ETH_ADDRESS`` for ether).
        price_per_period: Price of one rental period, smallest unit (0 = no rentals).
        period_seconds: Length of one period, in seconds.
        min_periods: Fewest periods one rental may buy.
        max_periods: Most periods one rental may buy.
        active: Whether it takes new rentals, purchases and credit.
        perpetual_price: Price of a perpetual licence, smallest unit (0 = not for sale).
        price_per_call: Price of one relayer call, smallest unit (0 = no pay-per-use).
    """

    currency: str
    price_per_period: int
    period_seconds: int
    min_periods: int
    max_periods: int
    active: bool
    perpetual_price: int
    price_per_call: int

    def as_tuple(self) -> tuple[str, int, int, int, int, bool, int, int]:
        """The struct in ABI order, for ``setOffer``."""
        return (
            self.currency,
            self.price_per_period,
            self.period_seconds,
            self.min_periods,
            self.max_periods,
            self.active,
            self.perpetual_price,
            self.price_per_call,
        )

    def rental_price(self, periods: int) -> int:
        """Price of ``periods`` rental periods, smallest unit."""
        return periods * self.price_per_period


@dataclass(frozen=True)
class Split:
    """A revenue split (from ``SplitSet``): payees and their basis points (summing to 10,000)."""

    model_id: int
    payee_set: int
    payees: tuple[str, ...]
    bps: tuple[int, ...]
    tx_hash: str


@dataclass(frozen=True)
class Licence:
    """A licence record (``ILicenseNFT.Licence``) with its holder.

    Attributes:
        licence_id: The licence token id.
        model_id: The licensed model.
        holder: Who holds the licence token now.
        kind: Rental or perpetual.
        expires: End of a rental in seconds; ``PERPETUAL_EXPIRY`` for a perpetual licence.
    """

    licence_id: int
    model_id: int
    holder: str
    kind: LicenceKind
    expires: int


@dataclass(frozen=True)
class Rental:
    """A rental or its extension (from ``Rented`` and ``PaymentHeld``).

    Attributes:
        licence_id: The rental licence (the same token when a rental was extended).
        model_id: The rented model.
        renter: Who rented.
        periods: Periods bought by this payment.
        expires: New end of the rental, in seconds.
        price: Amount paid, smallest unit of ``currency``.
        currency: Currency address.
        release_at: When the payment leaves escrow (end of the dispute window), in seconds.
        tx_hash: The transaction.
    """

    licence_id: int
    model_id: int
    renter: str
    periods: int
    expires: int
    price: int
    currency: str
    release_at: int
    tx_hash: str


@dataclass(frozen=True)
class Purchase:
    """A perpetual licence bought (from ``Bought`` and ``PaymentHeld``)."""

    licence_id: int
    model_id: int
    buyer: str
    price: int
    currency: str
    release_at: int
    tx_hash: str


@dataclass(frozen=True)
class Listing:
    """A licence put up for resale (``IRentalEscrow.Listing``, or the ``Listed`` event).

    Attributes:
        licence_id: The licence.
        seller: The holder who listed it.
        currency: Currency address of the price (``ETH_ADDRESS`` for ether).
        price: Asked price, smallest unit, royalty and fee included.
        tx_hash: The listing transaction ("" when read from the contract's state).
    """

    licence_id: int
    seller: str
    currency: str
    price: int
    tx_hash: str = ""


@dataclass(frozen=True)
class Resale:
    """A listed licence bought (from ``Resold``); amounts in the currency's smallest unit.

    Attributes:
        licence_id: The licence, now the buyer's.
        model_id: Its model.
        buyer: Who bought it.
        seller: Who sold it.
        price: What the buyer paid (royalty and fee included).
        royalty: The part held for the model owner's ERC-2981 royalty.
        currency: The currency paid in.
        tx_hash: The purchase transaction.
    """

    licence_id: int
    model_id: int
    buyer: str
    seller: str
    price: int
    royalty: int
    currency: str
    tx_hash: str


@dataclass(frozen=True)
class Approval:
    """An ERC-20 approval (from ``Approval``); ``amount`` in the token's smallest unit."""

    token: str
    owner: str
    spender: str
    amount: int
    tx_hash: str


@dataclass(frozen=True)
class Transfer:
    """An ERC-20 transfer (from ``Transfer``); ``amount`` in the token's smallest unit."""

    token: str
    sender: str
    to: str
    amount: int
    tx_hash: str


@dataclass(frozen=True)
class Settlement:
    """Held payments released to payees' balances (from ``Settled``)."""

    payee_set: int
    currency: str
    release_at: int
    amount: int
    fee: int
    tx_hash: str


@dataclass(frozen=True)
class Withdrawal:
    """A pull payment (from ``Withdrawn``), with the settlements done just before it."""

    account: str
    currency: str
    amount: int
    tx_hash: str
    settlements: tuple[Settlement, ...] = ()


@dataclass(frozen=True)
class DisputeOpened:
    """A dispute opened (from ``DisputeOpened``); ``amount`` is the held payment in dispute."""

    dispute_id: int
    licence_id: int
    payer: str
    amount: int
    tx_hash: str


@dataclass(frozen=True)
class DisputeResolved:
    """A dispute resolved (from ``DisputeResolved``); amounts in the payment's smallest unit."""

    dispute_id: int
    resolution: Resolution
    refunded: int
    released: int
    tx_hash: str


@dataclass(frozen=True)
class RelayerInfo:
    """A registered relayer (``IRelayerRegistry.Relayer``).

    Attributes:
        address: The relayer's signing address.
        operator: Who registered it and may update or retire it.
        x25519_public_key: 32-byte X25519 key that key envelopes are wrapped for.
        endpoint: Its HTTPS endpoint.
        active: False once retired.
    """

    address: str
    operator: str
    x25519_public_key: bytes
    endpoint: str
    active: bool


@dataclass(frozen=True)
class RelayerRegistration:
    """A relayer registered (from ``RelayerRegistered``)."""

    relayer: str
    operator: str
    x25519_public_key: bytes
    endpoint: str
    tx_hash: str


@dataclass(frozen=True)
class Authorisation:
    """A relayer authorised for a model, or its envelope replaced (``RelayerAuthorised``/
    ``EnvelopeUpdated``)."""

    model_id: int
    relayer: str
    envelope_cid: str
    tx_hash: str


@dataclass(frozen=True)
class Channel:
    """A pay-per-use credit channel (``ICreditEscrow.Channel``); amounts in the smallest unit.

    Attributes:
        currency: Currency address of the deposits.
        deposited: Everything deposited.
        redeemed: Everything the relayer redeemed.
        expires_at: After this time (seconds) the payer may reclaim the rest.
    """

    currency: str
    deposited: int
    redeemed: int
    expires_at: int

    @property
    def remaining(self) -> int:
        """Unredeemed credit, smallest unit."""
        return self.deposited - self.redeemed


@dataclass(frozen=True)
class CreditDeposit:
    """Credit deposited (from ``CreditDeposited``)."""

    payer: str
    model_id: int
    relayer: str
    currency: str
    amount: int
    expires_at: int
    tx_hash: str


@dataclass(frozen=True)
class CreditReclaim:
    """Unspent credit reclaimed (from ``CreditReclaimed``)."""

    payer: str
    model_id: int
    relayer: str
    amount: int
    tx_hash: str


@dataclass(frozen=True)
class Review:
    """A rating (from ``Reviewed``): 1 to 5 stars, the comment stored by CID."""

    model_id: int
    licence_id: int
    reviewer: str
    rating: int
    comment_cid: str
    tx_hash: str
