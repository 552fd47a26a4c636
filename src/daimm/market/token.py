"""ERC-20 tokens: the AIMT utility token and any other allowed currency."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from daimm.errors import AllowanceError, InsufficientBalanceError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, Step, checksum, first_event, tx_hash
from daimm.market.types import Approval, Currency, Transfer

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI

__all__ = ["Token"]


class Token(ContractClient):
    """An ERC-20 (AIModelToken's ABI, which is a plain ERC-20 with permit)."""

    NAME = "AIModelToken"

    @cached_property
    def symbol(self) -> str:
        """The token's symbol."""
        return str(self._call("symbol"))

    @cached_property
    def decimals(self) -> int:
        """The token's decimals."""
        return int(self._call("decimals"))

    @property
    def currency(self) -> Currency:
        """This token as a payment currency."""
        return Currency(self.address, self.symbol, self.decimals)

    def balance_of(self, account: Any) -> int:
        """Balance of ``account``, in the token's smallest unit."""
        return int(self._call("balanceOf", checksum(account)))

    def allowance(self, owner: Any, spender: Any) -> int:
        """What ``spender`` may move from ``owner``, smallest unit."""
        return int(self._call("allowance", checksum(owner), checksum(spender)))

    def total_supply(self) -> int:
        """Total supply, smallest unit."""
        return int(self._call("totalSupply"))

    def format(self, value: int) -> str:
        """``value`` for people, e.g. ``"10 AIMT"``."""
        return self.currency.format(value)

    # ------------------------------------------------------------------ transactions
    def plan_approve(self, spender: Any, amount: int, *, sender: AccountAPI) -> Plan[Approval]:
        """Plan an approval of ``amount`` (smallest unit) for ``spender``."""
        step = self.approve_step(spender, amount, sender=sender)

        def parse(receipts: Sequence[ReceiptAPI]) -> Approval:
            event = first_event(receipts[-1], self.contract, "Approval")
            return Approval(
                self.address,
                checksum(event.owner),
                checksum(event.spender),
                int(event.value),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def approve(self, spender: Any, amount: int, *, sender: AccountAPI) -> Approval:
        """Approve ``spender`` for ``amount`` (smallest unit)."""
        return self.plan_approve(spender, amount, sender=sender).execute()

    def approve_step(self, spender: Any, amount: int, *, sender: AccountAPI) -> Step:
        """The approval as one step of a larger plan."""
        label = f"approve {self.format(amount)} for {checksum(spender)}"
        return self._step(label, "approve", checksum(spender), amount, sender=sender)

    def plan_transfer(self, to: Any, amount: int, *, sender: AccountAPI) -> Plan[Transfer]:
        """Plan a transfer of ``amount`` (smallest unit) to ``to``.

        Raises:
            InsufficientBalanceError: ``sender`` holds less than ``amount``.
        """
        self.require_balance(sender, amount)
        step = self._step(
            f"transfer {self.format(amount)} to {checksum(to)}",
            "transfer",
            checksum(to),
            amount,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> Transfer:
            args = first_event(receipts[-1], self.contract, "Transfer").event_arguments
            return Transfer(
                self.address,
                checksum(args["from"]),
                checksum(args["to"]),
                int(args["value"]),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse, payment=amount, currency=self.currency)

    def transfer(self, to: Any, amount: int, *, sender: AccountAPI) -> Transfer:
        """Transfer ``amount`` (smallest unit) to ``to``."""
        return self.plan_transfer(to, amount, sender=sender).execute()

    # ------------------------------------------------------------------ pre-flight
    def require_balance(self, owner: Any, amount: int) -> None:
        """Raise unless ``owner`` holds at least ``amount``.

        Raises:
            InsufficientBalanceError: With the balance and what is missing.
        """
        balance = self.balance_of(owner)
        if balance < amount:
            raise InsufficientBalanceError(
                f"{checksum(owner)} holds {self.format(balance)} but needs {self.format(amount)}:"
                f" get {self.format(amount - balance)} more"
            )

    def payment_steps(
        self, owner: AccountAPI, spender: Any, amount: int, *, approve: bool, spender_name: str
    ) -> list[Step]:
        """Check balance and allowance for paying ``amount`` to ``spender``.

        Args:
            owner: The payer.
            spender: The contract that pulls the tokens.
            amount: Smallest unit.
            approve: Add an approval step when the allowance is short, instead of raising.
            spender_name: How the CLI names the spender (``escrow``, ``credit``).

        Returns:
            ``[approval]`` when one is needed and ``approve`` is set, else ``[]``.

        Raises:
            InsufficientBalanceError: The payer holds too little.
            AllowanceError: The allowance is short and ``approve`` is not set.
        """
        self.require_balance(owner, amount)
        allowance = self.allowance(owner, spender)
        if allowance >= amount:
            return []
        if not approve:
            raise AllowanceError(
                f'approve {self.format(amount)} first: `daimm token approve "{self.format(amount)}"'
                f" --spender {spender_name}` (allowance is {self.format(allowance)}),"
                " or pass --approve"
            )
        return [self.approve_step(spender, amount, sender=owner)]
