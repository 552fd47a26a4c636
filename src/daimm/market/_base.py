"""The base of the per-contract classes: an ape contract instance and helpers to plan and call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from daimm.market._tx import Step, checksum, translate_revert

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.contracts import ContractInstance

__all__ = ["ContractClient", "instance_at"]


def instance_at(name: str, address: str) -> ContractInstance:
    """An ape contract instance of shipped contract type ``name`` at ``address``."""
    from ape.contracts import ContractInstance

    from daimm import contracts

    return ContractInstance(checksum(address), contract_type=contracts.load(name))


class ContractClient:
    """One daimm contract seen from Python.

    Args:
        contract: The ape contract instance (from a deployment or a test fixture).
    """

    #: The Solidity contract's name, for messages and shipped types.
    NAME: ClassVar[str] = ""

    def __init__(self, contract: ContractInstance) -> None:
        self.contract = contract

    @classmethod
    def at(cls, address: str, **kwargs: Any) -> Any:
        """The client for the contract at ``address``, using the shipped contract type."""
        return cls(instance_at(cls.NAME, address), **kwargs)

    @property
    def address(self) -> str:
        """The contract's checksummed address."""
        return checksum(self.contract.address)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.NAME} at {self.address}>"

    def _call(self, method: str, *args: Any) -> Any:
        """Call view ``method``; a revert becomes a TransactionError naming the custom error."""
        from ape.exceptions import ContractLogicError

        try:
            return getattr(self.contract, method)(*args)
        except ContractLogicError as exc:
            raise translate_revert(exc, self.NAME) from exc

    def _step(
        self, label: str, method: str, *args: Any, sender: AccountAPI, value: int = 0
    ) -> Step:
        return Step(label, self.contract, self.NAME, method, tuple(args), sender, value)
