"""Sending transactions: plans that can be priced before they are sent, and reverts made readable.

Every action of the market library is first *planned*: pre-flight checks run (allowance, balance,
offer, licence) and raise a :class:`~daimm.errors.PreflightError` that says what to do; the plan
then knows its payment and can estimate its gas, so the CLI prints the cost before asking.
``execute`` sends the steps (an approval first, when asked for) and builds a typed result from the
events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from daimm.errors import ContractRevertError, TransactionError

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

    from daimm.market.types import Currency

__all__ = ["Cost", "Plan", "Step", "translate_revert"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _selector(abi: Any) -> bytes:
    """The 4-byte selector of an error ABI."""
    from eth_utils import keccak

    return keccak(text=abi.selector)[:4]


@cache
def _error_index() -> dict[bytes, tuple[str, Any]]:
    """Selector -> (contract name, ErrorABI) over every shipped contract type."""
    from daimm import contracts

    index: dict[bytes, tuple[str, Any]] = {}
    for name in contracts.names():
        for abi in contracts.load(name).errors:
            index.setdefault(_selector(abi), (name, abi))
    return index


def _revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data of an ape/web3 error, when one can be found."""
    for candidate in (getattr(exc, "revert_message", None), *getattr(exc, "args", ())):
        if isinstance(candidate, bytes) and len(candidate) >= 4:
            return candidate
        if isinstance(candidate, str) and candidate.startswith("0x") and len(candidate) >= 10:
            try:
                return bytes.fromhex(candidate[2:])
            except ValueError:
                continue
    return None


def _decode_raw(data: bytes) -> ContractRevertError | None:
    from eth_abi import decode

    found = _error_index().get(data[:4])
    if found is None:
        return None
    contract, abi = found
    types = [item.canonical_type for item in abi.inputs]
    try:
        values = decode(types, data[4:])
    except Exception:  # noqa: BLE001 - undecodable data: fall back to the raw message
        return None
    return ContractRevertError(
        contract,
        abi.name,
        {
            item.name or f"arg{i}": v
            for i, (item, v) in enumerate(zip(abi.inputs, values, strict=True))
        },
    )


def translate_revert(exc: BaseException, contract_name: str) -> TransactionError:
    """Turn an ape revert into a :class:`TransactionError` that names the custom error.

    Args:
        exc: What ape raised (``CustomError``, ``ContractLogicError``, a VM error).
        contract_name: The contract that was called, named when the error does not say.
    """
    from ape.exceptions import CustomError

    if isinstance(exc, CustomError):
        name = exc.abi.name
        inputs = dict(exc.inputs)
        # ABI order, not ape's sorted message order.
        ordered = {
            item.name: inputs.get(item.name) for item in exc.abi.inputs if item.name in inputs
        }
        ordered.update({k: v for k, v in inputs.items() if k not in ordered})
        owner = contract_name
        found = _error_index().get(_selector(exc.abi))
        if found is not None and found[1].name == name and name not in _own_errors(contract_name):
            owner = found[0]
        return ContractRevertError(owner, name, ordered)
    data = _revert_data(exc)
    if data is not None and (decoded := _decode_raw(data)) is not None:
        return decoded
    message = str(getattr(exc, "revert_message", None) or exc) or type(exc).__name__
    return TransactionError(f"{contract_name} transaction failed: {message}")


@cache
def _own_errors(contract_name: str) -> frozenset[str]:
    from daimm import contracts
    from daimm.errors import ConfigError

    try:
        return frozenset(abi.name for abi in contracts.load(contract_name).errors)
    except ConfigError:
        return frozenset()


def _gas_price(provider: Any) -> int:
    """What one gas costs now, in wei: the node's gas price, or base fee plus tip if higher."""
    price = int(provider.gas_price or 0)
    try:
        return max(price, int(provider.base_fee) + int(provider.priority_fee))
    except Exception:  # noqa: BLE001 - a provider without EIP-1559 fee data
        return price


@dataclass(frozen=True)
class Cost:
    """What a plan will cost.

    Attributes:
        payment: The amount paid to the marketplace, smallest unit of ``currency`` (0 if none).
        currency: The payment's currency, or None when nothing is paid.
        gas: Estimated gas units of the plan, or None when it has several steps (later ones can
            be estimated only once the first is mined).
        gas_price: Current gas price, in wei.
        first_gas: Estimated gas units of the first step.
    """

    payment: int
    currency: Currency | None
    gas: int | None
    gas_price: int
    first_gas: int = 0

    @property
    def gas_wei(self) -> int | None:
        """Estimated gas fee in wei."""
        return None if self.gas is None else self.gas * self.gas_price

    def describe(self) -> str:
        """One line for people: ``"pays 10 AIMT + gas ~123,456 (0.0002 ETH)"``."""
        from daimm.units import format_amount

        parts = []
        if self.currency is not None and self.payment:
            parts.append(f"pays {self.currency.format(self.payment)}")
        if self.gas is None:
            fee = format_amount(self.first_gas * self.gas_price, 18, "ETH")
            parts.append(
                f"gas ~{self.first_gas:,} ({fee}) for the first transaction, the rest once it is"
                " mined"
            )
        else:
            fee = format_amount(self.gas * self.gas_price, 18, "ETH")
            parts.append(f"gas ~{self.gas:,} ({fee} at {self.gas_price:,} wei/gas)")
        return " + ".join(parts)


@dataclass(frozen=True)
class Step:
    """One transaction: a contract method with its arguments, sent by ``sender``.

    Attributes:
        label: What it does, for people ("approve 10 AIMT for RentalEscrow").
        contract: The ape contract instance.
        contract_name: The contract's name, for error messages.
        method: The method's name.
        args: Positional arguments in ABI order.
        sender: The ape account that signs.
        value: Ether sent with it, in wei.
    """

    label: str
    contract: ContractInstance
    contract_name: str
    method: str
    args: tuple[Any, ...]
    sender: AccountAPI
    value: int = 0

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"sender": self.sender}
        if self.value:
            kwargs["value"] = self.value
        return kwargs

    def estimate_gas(self) -> int:
        """Estimated gas units.

        Raises:
            TransactionError: The transaction would revert (naming the custom error).
        """
        from ape.exceptions import ApeException

        handler = getattr(self.contract, self.method)
        try:
            return int(handler.estimate_gas_cost(*self.args, **self._kwargs()))
        except ApeException as exc:
            raise translate_revert(exc, self.contract_name) from exc

    def send(self) -> ReceiptAPI:
        """Sign and send; wait for the receipt.

        Raises:
            TransactionError: It reverted (naming the custom error) or could not be sent.
        """
        from ape.exceptions import ApeException

        handler = getattr(self.contract, self.method)
        log.info("sending %s.%s (%s)", self.contract_name, self.method, self.label)
        try:
            receipt = handler(*self.args, **self._kwargs())
        except ApeException as exc:
            raise translate_revert(exc, self.contract_name) from exc
        if getattr(receipt, "failed", False):
            raise TransactionError(f"{self.contract_name}.{self.method} failed: {receipt.txn_hash}")
        return receipt


@dataclass(frozen=True)
class Plan(Generic[T]):
    """Checked transactions ready to price and send; ``execute`` returns the typed result.

    Attributes:
        description: What the plan does, for people.
        steps: Transactions in order (approvals first); the last is the action.
        parse: Builds the result from the receipts of every step (the action's is last).
        payment: Amount paid, smallest unit of ``currency``.
        currency: Currency of the payment, or None.
    """

    description: str
    steps: tuple[Step, ...]
    parse: Callable[[Sequence[ReceiptAPI]], T]
    payment: int = 0
    currency: Currency | None = None
    notes: tuple[str, ...] = field(default=())

    def cost(self) -> Cost:
        """Price the plan: payment, estimated gas and gas price.

        Raises:
            TransactionError: The action would revert now (naming the custom error).
        """
        from ape import chain

        # NOTE: only the first step is estimated when there are several: the later ones (the
        # action after an approval, a withdrawal after its settlements) revert until it is mined.
        first = self.steps[0].estimate_gas()
        gas = first if len(self.steps) == 1 else None
        return Cost(self.payment, self.currency, gas, _gas_price(chain.provider), first)

    def execute(self) -> T:
        """Send every step in order and build the result from the receipts."""
        receipts = [step.send() for step in self.steps]
        return self.parse(receipts)


def events(receipt: ReceiptAPI, contract: ContractInstance, name: str) -> list[Any]:
    """Decoded logs of event ``name`` of ``contract`` in ``receipt``."""
    return list(receipt.decode_logs(getattr(contract, name)))


def first_event(receipt: ReceiptAPI, contract: ContractInstance, name: str) -> Any:
    """The first ``name`` event of ``contract`` in ``receipt``.

    Raises:
        TransactionError: The transaction emitted no such event.
    """
    found = events(receipt, contract, name)
    if not found:
        raise TransactionError(f"transaction {receipt.txn_hash} emitted no {name} event")
    return found[0]


def field_of(struct: Any, name: str, index: int) -> Any:
    """A struct field from an ape call result, by name or, failing that, by position."""
    if isinstance(struct, Mapping):
        return struct[name]
    if hasattr(struct, name):
        return getattr(struct, name)
    return struct[index]


def tx_hash(receipt: ReceiptAPI) -> str:
    """The receipt's transaction hash as 0x-hex."""
    value = receipt.txn_hash
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def checksum(address: Any) -> str:
    """A checksummed address from an account, contract or string."""
    from eth_utils import to_checksum_address

    return to_checksum_address(getattr(address, "address", address))


def same_address(a: Any, b: Any) -> bool:
    """Whether two addresses (accounts, contracts or strings) are equal."""
    return checksum(a) == checksum(b)


def unique(items: Iterable[T]) -> list[T]:
    """Items without repeats, first occurrence kept."""
    seen: list[T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def logs(contract: ContractInstance, event: str, start_block: int, **topics: Any) -> list[Any]:
    """Logs of ``event`` of ``contract`` from ``start_block`` to the head, filtered by indexed
    arguments given as keywords."""
    from ape import chain

    head = chain.blocks.height
    if head < start_block:
        return []
    handler = getattr(contract, event)
    return list(handler.range(start_block, head + 1, search_topics=topics or None))
