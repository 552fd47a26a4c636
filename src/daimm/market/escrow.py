"""The marketplace escrow: offers, splits, rentals, purchases, disputes, settlement, withdrawal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from daimm.errors import (
    AllowanceError,
    InsufficientBalanceError,
    NoLicenceError,
    NotOwnerError,
    OfferError,
    PreflightError,
    ValidationError,
)
from daimm.market._base import ContractClient
from daimm.market._tx import (
    Plan,
    Step,
    checksum,
    field_of,
    first_event,
    logs,
    same_address,
    tx_hash,
)
from daimm.market.licences import Licences
from daimm.market.registry import Models
from daimm.market.token import Token
from daimm.market.types import (
    ETH_ADDRESS,
    Currency,
    DisputeOpened,
    DisputeResolved,
    Listing,
    Offer,
    Purchase,
    Rental,
    Resale,
    Resolution,
    Settlement,
    Split,
    Withdrawal,
)
from daimm.units import format_duration, format_time

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

__all__ = ["Escrow"]

BPS = 10_000

T = TypeVar("T")


def _now() -> int:
    from ape import chain

    return int(chain.pending_timestamp)


class Escrow(ContractClient):
    """The RentalEscrow contract.

    Args:
        contract: The ape contract instance.
        models: The registry client (ownership checks).
        licences: The licence client (holder checks).
        currency_of: Address -> :class:`Currency` (symbol and decimals for messages).
        erc20: Address -> :class:`Token` client, for allowance and balance checks.
        start_block: Where event scans start (the deploy block).
    """

    NAME = "RentalEscrow"

    def __init__(
        self,
        contract: ContractInstance,
        *,
        models: Models,
        licences: Licences,
        currency_of: Callable[[str], Currency],
        erc20: Callable[[str], Token],
        start_block: int = 0,
    ) -> None:
        super().__init__(contract)
        self.models = models
        self.licences = licences
        self.currency_of = currency_of
        self.erc20 = erc20
        self.start_block = start_block

    # ------------------------------------------------------------------ views
    @cached_property
    def max_payees(self) -> int:
        """Most payees a split may name."""
        return int(self._call("MAX_PAYEES"))

    @cached_property
    def max_fee_bps(self) -> int:
        """The platform fee cap, basis points."""
        return int(self._call("MAX_FEE_BPS"))

    def fee_bps(self) -> int:
        """The platform fee, basis points."""
        return int(self._call("feeBps"))

    def treasury(self) -> str:
        """Where platform fees go."""
        return checksum(self._call("treasury"))

    def dispute_window(self) -> int:
        """How long payments are held, in seconds."""
        return int(self._call("disputeWindow"))

    def is_currency_allowed(self, currency: str) -> bool:
        """Whether offers may be priced in ``currency`` (an address; zero for ETH)."""
        return bool(self._call("isCurrencyAllowed", checksum(currency)))

    def offer(self, model_id: int) -> Offer:
        """The offer of ``model_id`` (all zeros if its owner never set one)."""
        raw = self._call("offerOf", model_id)
        names = (
            "currency",
            "pricePerPeriod",
            "periodSeconds",
            "minPeriods",
            "maxPeriods",
            "active",
            "perpetualPrice",
            "pricePerCall",
        )
        values = [field_of(raw, name, i) for i, name in enumerate(names)]
        return Offer(
            checksum(values[0]),
            int(values[1]),
            int(values[2]),
            int(values[3]),
            int(values[4]),
            bool(values[5]),
            int(values[6]),
            int(values[7]),
        )

    def payees(self, payee_set: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Payees and basis points of ``payee_set``."""
        payees, bps = self._call("payeesOf", payee_set)
        return tuple(checksum(p) for p in payees), tuple(int(b) for b in bps)

    def owed(self, account: Any, currency: str = ETH_ADDRESS) -> int:
        """What ``account`` may withdraw now in ``currency``, smallest unit."""
        return int(self._call("owed", checksum(account), checksum(currency)))

    def dispute(self, dispute_id: int) -> dict[str, Any]:
        """The record of dispute ``dispute_id`` (field names as in ``IRentalEscrow.Dispute``)."""
        raw = self._call("disputeOf", dispute_id)
        names = ("licenceId", "payer", "currency", "payeeSet", "amount", "fee", "open")
        return {name: field_of(raw, name, i) for i, name in enumerate(names)}

    def has_role(self, role: str, account: Any) -> bool:
        """Whether ``account`` holds AccessControl role ``role`` (e.g. ``ARBITER_ROLE``)."""
        role_id = self._call(role)
        return bool(self._call("hasRole", role_id, checksum(account)))

    # ------------------------------------------------------------------ model owner
    def plan_set_offer(self, model_id: int, offer: Offer, *, sender: AccountAPI) -> Plan[Offer]:
        """Plan setting the offer of ``model_id``.

        Raises:
            NotOwnerError: ``sender`` does not own the model.
            OfferError: The currency is not allowed or the terms are inconsistent.
        """
        self.models.require_owner(model_id, sender)
        self.check_offer(offer)
        step = self._step(
            f"set the offer of model {model_id}",
            "setOffer",
            model_id,
            offer.as_tuple(),
            sender=sender,
        )
        return Plan(step.label, (step,), lambda receipts: self.offer(model_id))

    def check_offer(self, offer: Offer) -> None:
        """Check an offer's terms as ``setOffer`` would, before any model or transaction exists.

        Raises:
            OfferError: The currency is not allowed or the terms are inconsistent.
        """
        if not self.is_currency_allowed(offer.currency):
            raise OfferError(
                f"currency {offer.currency} is not allowed by this marketplace: price the offer in"
                " ETH, AIMT or another allowed currency"
            )
        if offer.price_per_period:
            if offer.period_seconds <= 0:
                raise OfferError("a rental offer needs a period longer than 0 seconds")
            if not 1 <= offer.min_periods <= offer.max_periods:
                raise OfferError(
                    f"rental periods must satisfy 1 <= min ({offer.min_periods}) <= max"
                    f" ({offer.max_periods})"
                )

    def set_offer(self, model_id: int, offer: Offer, *, sender: AccountAPI) -> Offer:
        """Set the offer; see :meth:`plan_set_offer`."""
        return self.plan_set_offer(model_id, offer, sender=sender).execute()

    def plan_set_split(
        self, model_id: int, payees: Sequence[Any], bps: Sequence[int], *, sender: AccountAPI
    ) -> Plan[Split]:
        """Plan splitting future revenue of ``model_id``.

        Raises:
            ValidationError: Shares that do not sum to 10,000 bps, too many payees, or mismatched
                lists.
            NotOwnerError: ``sender`` does not own the model.
        """
        if len(payees) != len(bps) or not payees:
            raise ValidationError("give one share (bps) per payee")
        if len(payees) > self.max_payees:
            raise ValidationError(f"at most {self.max_payees} payees, got {len(payees)}")
        if sum(bps) != BPS or any(b <= 0 for b in bps):
            raise ValidationError(f"shares must be positive and sum to 10000 bps, got {sum(bps)}")
        self.models.require_owner(model_id, sender)
        addresses = [checksum(p) for p in payees]
        step = self._step(
            f"split model {model_id} among {len(addresses)} payees",
            "setSplit",
            model_id,
            addresses,
            list(bps),
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> Split:
            event = first_event(receipts[-1], self.contract, "SplitSet")
            return Split(
                int(event.modelId),
                int(event.payeeSet),
                tuple(checksum(p) for p in event.payees),
                tuple(int(b) for b in event.bps),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def set_split(
        self, model_id: int, payees: Sequence[Any], bps: Sequence[int], *, sender: AccountAPI
    ) -> Split:
        """Set the split; see :meth:`plan_set_split`."""
        return self.plan_set_split(model_id, payees, bps, sender=sender).execute()

    # ------------------------------------------------------------------ buyers
    def _payment_steps(
        self,
        currency: Currency,
        amount: int,
        sender: AccountAPI,
        *,
        approve: bool,
        spender: str | None = None,
        spender_name: str = "escrow",
        what: str = "payment",
    ) -> list[Step]:
        """Check ``sender`` can pay ``amount`` to ``spender`` (this escrow by default).

        Returns the approval step an ERC-20 still needs (with ``approve``), or none.

        Raises:
            InsufficientBalanceError, AllowanceError: See :meth:`Token.payment_steps`.
        """
        if currency.is_eth:
            balance = int(sender.balance)
            if balance < amount:
                raise InsufficientBalanceError(
                    f"{checksum(sender)} holds {currency.format(balance)} but the {what} is"
                    f" {currency.format(amount)} plus gas: fund the account"
                )
            return []
        return self.erc20(currency.address).payment_steps(
            sender, spender or self.address, amount, approve=approve, spender_name=spender_name
        )

    def _live_offer(self, model_id: int) -> Offer:
        self.models.require(model_id)
        offer = self.offer(model_id)
        if not offer.active:
            raise OfferError(
                f"model {model_id} has no active offer: its owner must set one (`daimm offer set`)"
            )
        return offer

    @staticmethod
    def _check_max(price: int, max_price: int | None, currency: Currency) -> int:
        if max_price is None:
            return price
        if price > max_price:
            raise OfferError(
                f"the price is {currency.format(price)}, above your maximum of"
                f" {currency.format(max_price)}: raise --max-price if you accept it"
            )
        return max_price

    def _payment_plan(
        self,
        currency_address: str,
        price: int,
        label: str,
        method: str,
        *args: Any,
        parse: Callable[[Sequence[ReceiptAPI]], T],
        sender: AccountAPI,
        max_price: int | None,
        approve: bool,
    ) -> Plan[T]:
        """Plan paying ``price`` (smallest unit of ``currency_address``) into ``method``.

        Checks ``max_price``, the sender's balance and allowance (adding an approval step if
        ``approve``), then calls ``method(*args, ceiling)`` with the ETH value when the price is in
        ETH; ``ceiling`` is ``max_price`` if given, else ``price``.
        """
        currency = self.currency_of(currency_address)
        ceiling = self._check_max(price, max_price, currency)
        steps = self._payment_steps(currency, price, sender, approve=approve)
        action = self._step(
            label, method, *args, ceiling, sender=sender, value=price if currency.is_eth else 0
        )
        return Plan(action.label, (*steps, action), parse, payment=price, currency=currency)

    def plan_rent(
        self,
        model_id: int,
        periods: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Plan[Rental]:
        """Plan renting ``model_id`` for ``periods`` periods (or extending the sender's rental).

        Args:
            model_id: The model.
            periods: Rental periods to buy (see the offer's ``period_seconds``).
            sender: The renter.
            max_price: Most the renter accepts to pay, smallest unit; the current price when None.
            approve: Approve the escrow for the price first if the allowance is short.

        Raises:
            OfferError: No active rental offer, periods out of range, or price above ``max_price``.
            InsufficientBalanceError: The renter holds too little.
            AllowanceError: The allowance is short and ``approve`` is not set.
        """
        offer = self._live_offer(model_id)
        if offer.price_per_period == 0:
            raise OfferError(f"model {model_id} is not for rent (its offer has no rental price)")
        if not offer.min_periods <= periods <= offer.max_periods:
            raise OfferError(
                f"model {model_id} rents for {offer.min_periods} to {offer.max_periods} periods"
                f" of {offer.period_seconds} s, not {periods}"
            )

        def parse(receipts: Sequence[ReceiptAPI]) -> Rental:
            rented = first_event(receipts[-1], self.contract, "Rented")
            held = first_event(receipts[-1], self.contract, "PaymentHeld")
            return Rental(
                int(rented.licenceId),
                int(rented.modelId),
                checksum(rented.renter),
                int(rented.periods),
                int(rented.expires),
                int(rented.price),
                checksum(held.currency),
                int(held.releaseAt),
                tx_hash(receipts[-1]),
            )

        return self._payment_plan(
            offer.currency,
            offer.rental_price(periods),
            f"rent model {model_id} for {periods} period(s)",
            "rent",
            model_id,
            periods,
            parse=parse,
            sender=sender,
            max_price=max_price,
            approve=approve,
        )

    def rent(
        self,
        model_id: int,
        periods: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Rental:
        """Rent or extend; see :meth:`plan_rent`."""
        return self.plan_rent(
            model_id, periods, sender=sender, max_price=max_price, approve=approve
        ).execute()

    def plan_buy(
        self,
        model_id: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Plan[Purchase]:
        """Plan buying a perpetual licence for ``model_id``.

        Raises:
            OfferError: No active offer, not for sale, or price above ``max_price``.
            InsufficientBalanceError: The buyer holds too little.
            AllowanceError: The allowance is short and ``approve`` is not set.
        """
        offer = self._live_offer(model_id)
        if offer.perpetual_price == 0:
            raise OfferError(f"model {model_id} is not for sale (its offer has no perpetual price)")

        def parse(receipts: Sequence[ReceiptAPI]) -> Purchase:
            bought = first_event(receipts[-1], self.contract, "Bought")
            held = first_event(receipts[-1], self.contract, "PaymentHeld")
            return Purchase(
                int(bought.licenceId),
                int(bought.modelId),
                checksum(bought.buyer),
                int(bought.price),
                checksum(held.currency),
                int(held.releaseAt),
                tx_hash(receipts[-1]),
            )

        return self._payment_plan(
            offer.currency,
            offer.perpetual_price,
            f"buy a perpetual licence for model {model_id}",
            "buy",
            model_id,
            parse=parse,
            sender=sender,
            max_price=max_price,
            approve=approve,
        )

    def buy(
        self,
        model_id: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Purchase:
        """Buy a perpetual licence; see :meth:`plan_buy`."""
        return self.plan_buy(
            model_id, sender=sender, max_price=max_price, approve=approve
        ).execute()

    # ------------------------------------------------------------------ resales
    def listing(self, licence_id: int) -> Listing | None:
        """The live listing of ``licence_id``, or None (never listed, delisted, sold, or stale:
        the licence changed hands since it was listed)."""
        raw = self._call("listingOf", licence_id)
        seller = checksum(field_of(raw, "seller", 0))
        if int(seller, 16) == 0:
            return None
        return Listing(
            licence_id,
            seller,
            checksum(field_of(raw, "currency", 1)),
            int(field_of(raw, "price", 2)),
        )

    def plan_list(
        self,
        licence_id: int,
        price: int,
        currency: str = ETH_ADDRESS,
        *,
        sender: AccountAPI,
        approve: bool = False,
    ) -> Plan[Listing]:
        """Plan putting licence ``licence_id`` up for resale at ``price`` in ``currency``.

        The buyer pays ``price``; the model owner's ERC-2981 royalty and the platform fee come
        out of it, the rest is held for the seller like any payment.

        Args:
            licence_id: A licence ``sender`` holds.
            price: Asked price, smallest unit of ``currency``.
            currency: Currency address (``ETH_ADDRESS`` for ether); must be allowed.
            sender: The holder.
            approve: Let the escrow transfer the licence first if it may not yet.

        Raises:
            ValidationError: A price of 0 or above 2**128 - 1.
            NoLicenceError: ``sender`` does not hold the licence.
            OfferError: The currency is not allowed.
            AllowanceError: The escrow may not transfer the licence and ``approve`` is not set.
        """
        if not 0 < price < 2**128:
            raise ValidationError(
                f"a listing needs a price above 0 (and below 2**128), not {price}"
            )
        self.licences.require_holder(licence_id, sender)
        cur = self.currency_of(currency)
        if not self.is_currency_allowed(cur.address):
            raise OfferError(f"currency {cur.address} is not allowed by this marketplace")
        steps = []
        if not self.licences.is_approved(licence_id, self.address):
            if not approve:
                raise AllowanceError(
                    f"the escrow may not transfer licence {licence_id} when it sells: approve it"
                    " first (--approve, or approve=True)"
                )
            steps.append(
                self.licences._step(
                    f"let the escrow transfer licence {licence_id} when it sells",
                    "approve",
                    self.address,
                    licence_id,
                    sender=sender,
                )
            )
        action = self._step(
            f"list licence {licence_id} for {cur.format(price)}",
            "list",
            licence_id,
            cur.address,
            price,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> Listing:
            event = first_event(receipts[-1], self.contract, "Listed")
            return Listing(
                int(event.licenceId),
                checksum(event.seller),
                checksum(event.currency),
                int(event.price),
                tx_hash(receipts[-1]),
            )

        return Plan(action.label, (*steps, action), parse)

    def list_licence(
        self,
        licence_id: int,
        price: int,
        currency: str = ETH_ADDRESS,
        *,
        sender: AccountAPI,
        approve: bool = False,
    ) -> Listing:
        """List a licence for resale; see :meth:`plan_list`."""
        return self.plan_list(licence_id, price, currency, sender=sender, approve=approve).execute()

    def plan_delist(self, licence_id: int, *, sender: AccountAPI) -> Plan[None]:
        """Plan withdrawing the listing of ``licence_id`` (its seller or current holder).

        Raises:
            PreflightError: It is not listed.
            NoLicenceError: ``sender`` is neither the seller nor the holder.
        """
        listing = self.listing(licence_id)
        if listing is None:
            raise PreflightError(f"licence {licence_id} is not listed for sale")
        if not same_address(listing.seller, sender):
            self.licences.require_holder(licence_id, sender)
        step = self._step(f"delist licence {licence_id}", "delist", licence_id, sender=sender)
        return Plan(step.label, (step,), lambda receipts: None)

    def delist(self, licence_id: int, *, sender: AccountAPI) -> None:
        """Withdraw a listing; see :meth:`plan_delist`."""
        self.plan_delist(licence_id, sender=sender).execute()

    def plan_buy_listed(
        self,
        licence_id: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Plan[Resale]:
        """Plan buying the listed licence ``licence_id`` at its asked price.

        Args:
            licence_id: The listed licence.
            sender: The buyer.
            max_price: Most the buyer accepts to pay, smallest unit; the listed price when None.
            approve: Approve the escrow for the price first if the allowance is short.

        Raises:
            OfferError: Not listed (or the listing is stale), or priced above ``max_price``.
            InsufficientBalanceError: The buyer holds too little.
            AllowanceError: The allowance is short and ``approve`` is not set.
        """
        listing = self.listing(licence_id)
        if listing is None:
            raise OfferError(
                f"licence {licence_id} is not for sale: it was never listed, was delisted or"
                " sold, or changed hands since it was listed"
            )

        def parse(receipts: Sequence[ReceiptAPI]) -> Resale:
            event = first_event(receipts[-1], self.contract, "Resold")
            return Resale(
                int(event.licenceId),
                int(event.modelId),
                checksum(event.buyer),
                checksum(event.seller),
                int(event.price),
                int(event.royalty),
                listing.currency,
                tx_hash(receipts[-1]),
            )

        asked = self.currency_of(listing.currency).format(listing.price)
        return self._payment_plan(
            listing.currency,
            listing.price,
            f"buy licence {licence_id} for {asked}",
            "buyListed",
            licence_id,
            parse=parse,
            sender=sender,
            max_price=max_price,
            approve=approve,
        )

    def buy_listed(
        self,
        licence_id: int,
        *,
        sender: AccountAPI,
        max_price: int | None = None,
        approve: bool = False,
    ) -> Resale:
        """Buy a listed licence; see :meth:`plan_buy_listed`."""
        return self.plan_buy_listed(
            licence_id, sender=sender, max_price=max_price, approve=approve
        ).execute()

    # ------------------------------------------------------------------ disputes
    def plan_open_dispute(self, licence_id: int, *, sender: AccountAPI) -> Plan[DisputeOpened]:
        """Plan opening a dispute over the latest held payment for ``licence_id``.

        Raises:
            NoLicenceError: ``sender`` does not hold the licence.
        """
        self.licences.require_holder(licence_id, sender)
        step = self._step(
            f"open a dispute over licence {licence_id}", "openDispute", licence_id, sender=sender
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> DisputeOpened:
            event = first_event(receipts[-1], self.contract, "DisputeOpened")
            return DisputeOpened(
                int(event.disputeId),
                int(event.licenceId),
                checksum(event.payer),
                int(event.amount),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def open_dispute(self, licence_id: int, *, sender: AccountAPI) -> DisputeOpened:
        """Open a dispute; see :meth:`plan_open_dispute`."""
        return self.plan_open_dispute(licence_id, sender=sender).execute()

    def plan_resolve_dispute(
        self,
        dispute_id: int,
        resolution: Resolution,
        *,
        refund_bps: int = 0,
        sender: AccountAPI,
    ) -> Plan[DisputeResolved]:
        """Plan resolving dispute ``dispute_id`` (arbiter only).

        Args:
            dispute_id: The dispute.
            resolution: Refund, release or split.
            refund_bps: With ``SPLIT``, the payer's share in basis points (1 to 9,999).
            sender: The arbiter.

        Raises:
            ValidationError: A split without a share strictly between 0 and 10,000 bps.
            PreflightError: The dispute is not open, or ``sender`` is not an arbiter.
        """
        if resolution is Resolution.SPLIT and not 0 < refund_bps < BPS:
            raise ValidationError("a split needs --refund-bps between 1 and 9999")
        if not self.dispute(dispute_id)["open"]:
            raise PreflightError(f"dispute {dispute_id} is not open")
        if not self.has_role("ARBITER_ROLE", sender):
            raise NotOwnerError(
                f"{checksum(sender)} is not an arbiter of this marketplace: use the arbiter account"
            )
        step = self._step(
            f"resolve dispute {dispute_id} ({resolution.name.lower()})",
            "resolveDispute",
            dispute_id,
            int(resolution),
            refund_bps,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> DisputeResolved:
            event = first_event(receipts[-1], self.contract, "DisputeResolved")
            return DisputeResolved(
                int(event.disputeId),
                Resolution(int(event.resolution)),
                int(event.refunded),
                int(event.released),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def resolve_dispute(
        self, dispute_id: int, resolution: Resolution, *, refund_bps: int = 0, sender: AccountAPI
    ) -> DisputeResolved:
        """Resolve a dispute; see :meth:`plan_resolve_dispute`."""
        return self.plan_resolve_dispute(
            dispute_id, resolution, refund_bps=refund_bps, sender=sender
        ).execute()

    # ------------------------------------------------------------------ settlement and withdrawal
    def matured(self, currency: str, account: Any | None = None) -> list[tuple[int, str, int]]:
        """Held payments in ``currency`` whose window has passed and that are not settled yet.

        Args:
            currency: Currency address.
            account: Only payments that pay ``account`` (as a payee or the treasury).

        Returns:
            ``(payee_set, currency, release_at)`` keys to pass to ``settle``.
        """
        now = _now()
        return [key for key in self.held_for(currency, account) if key[2] <= now]

    def held_for(self, currency: str, account: Any | None = None) -> list[tuple[int, str, int]]:
        """Held payments in ``currency`` not settled yet, matured or not.

        Args:
            currency: Currency address.
            account: Only payments that pay ``account`` (as a payee or the treasury).

        Returns:
            ``(payee_set, currency, release_at)`` keys; ``release_at`` is in seconds.
        """
        treasury = self.treasury()
        keys: list[tuple[int, str, int]] = []
        for log in logs(self.contract, "PaymentHeld", self.start_block):
            key = (int(log.payeeSet), checksum(log.currency), int(log.releaseAt))
            if key in keys or not same_address(key[1], currency):
                continue
            if account is not None and not same_address(account, treasury):
                payees, _ = self.payees(key[0])
                if not any(same_address(p, account) for p in payees):
                    continue
            amount, fee = self._call("held", *key)
            if int(amount) or int(fee):
                keys.append(key)
        return keys

    def plan_withdraw(
        self, currency: str = ETH_ADDRESS, *, sender: AccountAPI, settle: bool = True
    ) -> Plan[Withdrawal]:
        """Plan withdrawing everything owed to ``sender`` in ``currency``.

        Args:
            currency: Currency address (``ETH_ADDRESS`` for ether).
            sender: The payee.
            settle: First settle matured held payments that pay ``sender``.

        Raises:
            PreflightError: Nothing is owed and nothing matured to settle.
        """
        cur = self.currency_of(currency)
        held = self.held_for(cur.address, sender) if settle else []
        now = _now()
        keys = [key for key in held if key[2] <= now]
        if not keys and self.owed(sender, cur.address) == 0:
            window = f"the dispute window ({format_duration(self.dispute_window())})"
            if held:
                release = format_time(min(key[2] for key in held))
                raise PreflightError(
                    f"nothing to withdraw in {cur.symbol} for {checksum(sender)} yet: payments are"
                    f" held for {window}, rounded up to the hour; the first is released at"
                    f" {release}: withdraw again then"
                )
            raise PreflightError(
                f"nothing to withdraw in {cur.symbol} for {checksum(sender)}: no payment to you"
                f" is held or owed (payments are held for {window} before payees can withdraw)"
            )
        steps = [
            self._step(f"settle payee set {k[0]}", "settle", k[0], k[1], k[2], sender=sender)
            for k in keys
        ]
        steps.append(self._step(f"withdraw {cur.symbol}", "withdraw", cur.address, sender=sender))

        def parse(receipts: Sequence[ReceiptAPI]) -> Withdrawal:
            settlements = tuple(
                Settlement(
                    int(e.payeeSet),
                    checksum(e.currency),
                    int(e.releaseAt),
                    int(e.amount),
                    int(e.fee),
                    tx_hash(r),
                )
                for r in receipts[:-1]
                for e in r.decode_logs(self.contract.Settled)
            )
            event = first_event(receipts[-1], self.contract, "Withdrawn")
            return Withdrawal(
                checksum(event.account),
                checksum(event.currency),
                int(event.amount),
                tx_hash(receipts[-1]),
                settlements,
            )

        return Plan(f"withdraw {cur.symbol}", tuple(steps), parse)

    def withdraw(
        self, currency: str = ETH_ADDRESS, *, sender: AccountAPI, settle: bool = True
    ) -> Withdrawal:
        """Settle matured payments and withdraw; see :meth:`plan_withdraw`."""
        return self.plan_withdraw(currency, sender=sender, settle=settle).execute()

    def require_access(self, model_id: int, account: Any) -> None:
        """Raise unless ``account`` may use ``model_id`` now.

        Raises:
            NoLicenceError: No perpetual licence and no live rental.
        """
        if not self.licences.has_access(model_id, account):
            raise NoLicenceError(
                f"{checksum(account)} has no live licence for model {model_id}: rent it"
                f" (`daimm rent {model_id} --periods 1`) or buy it (`daimm buy {model_id}`)"
            )
