"""Pay-per-use credit: deposits for (model, relayer) channels, and reclaiming what was not spent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daimm.errors import OfferError, PreflightError, ValidationError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, field_of, first_event, tx_hash
from daimm.market.escrow import Escrow
from daimm.market.relayers import Relayers
from daimm.market.types import Channel, CreditDeposit, CreditReclaim, Currency
from daimm.units import format_duration, format_time

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

__all__ = ["Credit"]


class Credit(ContractClient):
    """The CreditEscrow contract.

    Args:
        contract: The ape contract instance.
        escrow: The marketplace escrow client (offers, currencies, token checks).
        relayers: The relayer registry client (authorisation checks).
        currency_of: Address -> :class:`Currency`.
    """

    NAME = "CreditEscrow"

    def __init__(
        self,
        contract: ContractInstance,
        *,
        escrow: Escrow,
        relayers: Relayers,
        currency_of: Callable[[str], Currency],
    ) -> None:
        super().__init__(contract)
        self.escrow = escrow
        self.relayers = relayers
        self.currency_of = currency_of

    def timeout(self) -> int:
        """Seconds a channel stays redeemable after its last deposit."""
        return int(self._call("timeout"))

    def channel(self, payer: Any, model_id: int, relayer: Any) -> Channel:
        """The channel of ``payer`` for ``model_id`` served by ``relayer``."""
        raw = self._call("channelOf", checksum(payer), model_id, checksum(relayer))
        return Channel(
            checksum(field_of(raw, "currency", 0)),
            int(field_of(raw, "deposited", 1)),
            int(field_of(raw, "redeemed", 2)),
            int(field_of(raw, "expiresAt", 3)),
        )

    def plan_deposit(
        self,
        model_id: int,
        relayer: Any,
        amount: int,
        *,
        sender: AccountAPI,
        approve: bool = False,
    ) -> Plan[CreditDeposit]:
        """Plan depositing ``amount`` of credit for calls to ``model_id`` through ``relayer``.

        Args:
            model_id: The model.
            relayer: The relayer that will serve and redeem.
            amount: Credit in the offer's currency, smallest unit.
            sender: The payer.
            approve: Approve the credit escrow first if the allowance is short.

        Raises:
            OfferError: No active pay-per-use offer.
            PreflightError: The relayer is not authorised for the model.
            InsufficientBalanceError, AllowanceError: See :meth:`Token.payment_steps`.
        """
        if amount <= 0:
            raise ValidationError("deposit a positive amount")
        offer = self.escrow._live_offer(model_id)
        if offer.price_per_call == 0:
            raise OfferError(f"model {model_id} has no pay-per-use price: rent or buy it instead")
        if not self.relayers.is_authorised(model_id, relayer):
            raise PreflightError(
                f"relayer {checksum(relayer)} is not authorised for model {model_id}: pick one of"
                f" {', '.join(self.relayers.relayers_of(model_id)) or 'none yet'}"
            )
        currency = self.currency_of(offer.currency)
        steps = self.escrow._payment_steps(
            currency,
            amount,
            sender,
            approve=approve,
            spender=self.address,
            spender_name="credit",
            what="deposit",
        )
        action = self._step(
            f"deposit {currency.format(amount)} of credit for model {model_id}",
            "deposit",
            model_id,
            checksum(relayer),
            amount,
            sender=sender,
            value=amount if currency.is_eth else 0,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> CreditDeposit:
            event = first_event(receipts[-1], self.contract, "CreditDeposited")
            return CreditDeposit(
                checksum(event.payer),
                int(event.modelId),
                checksum(event.relayer),
                checksum(event.currency),
                int(event.amount),
                int(event.expiresAt),
                tx_hash(receipts[-1]),
            )

        return Plan(action.label, (*steps, action), parse, payment=amount, currency=currency)

    def deposit(
        self, model_id: int, relayer: Any, amount: int, *, sender: AccountAPI, approve: bool = False
    ) -> CreditDeposit:
        """Deposit credit; see :meth:`plan_deposit`."""
        return self.plan_deposit(
            model_id, relayer, amount, sender=sender, approve=approve
        ).execute()

    def plan_reclaim(
        self, model_id: int, relayer: Any, *, sender: AccountAPI
    ) -> Plan[CreditReclaim]:
        """Plan reclaiming unredeemed credit once the channel has timed out.

        Raises:
            PreflightError: Nothing left, or the channel is still live (with when it expires).
        """
        from ape import chain

        channel = self.channel(sender, model_id, relayer)
        if channel.remaining == 0:
            raise PreflightError(
                f"no unspent credit for model {model_id} through relayer {checksum(relayer)}"
            )
        now = int(chain.pending_timestamp)
        if now <= channel.expires_at:
            raise PreflightError(
                f"the channel is live until {format_time(channel.expires_at)} (in"
                f" {format_duration(channel.expires_at - now + 1)}) so the relayer can redeem your"
                " vouchers: reclaim after that"
            )
        step = self._step(
            f"reclaim credit for model {model_id}",
            "reclaim",
            model_id,
            checksum(relayer),
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> CreditReclaim:
            event = first_event(receipts[-1], self.contract, "CreditReclaimed")
            return CreditReclaim(
                checksum(event.payer),
                int(event.modelId),
                checksum(event.relayer),
                int(event.amount),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def reclaim(self, model_id: int, relayer: Any, *, sender: AccountAPI) -> CreditReclaim:
        """Reclaim unspent credit; see :meth:`plan_reclaim`."""
        return self.plan_reclaim(model_id, relayer, sender=sender).execute()
