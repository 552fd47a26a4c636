"""Licences: the ERC-721 tokens that grant access to a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daimm.errors import NoLicenceError, ValidationError
from daimm.market._base import ContractClient
from daimm.market._tx import checksum, field_of, logs, same_address
from daimm.market.types import Licence, LicenceKind

if TYPE_CHECKING:
    from ape.contracts import ContractInstance

__all__ = ["Licences"]


class Licences(ContractClient):
    """The LicenseNFT contract (read side; licences are minted by the escrow).

    Args:
        contract: The ape contract instance.
        start_block: Where to start scanning events (the deploy block).
    """

    NAME = "LicenseNFT"

    def __init__(self, contract: ContractInstance, *, start_block: int = 0) -> None:
        super().__init__(contract)
        self.start_block = start_block

    def has_access(self, model_id: int, account: Any) -> bool:
        """Whether ``account`` may use ``model_id`` now (what the relayer asks)."""
        return bool(self._call("hasAccess", model_id, checksum(account)))

    def holder(self, licence_id: int) -> str:
        """Who holds licence ``licence_id``.

        Raises:
            ValidationError: No such licence.
        """
        from ape.exceptions import ContractLogicError

        try:
            return checksum(self.contract.ownerOf(licence_id))
        except ContractLogicError as exc:
            raise ValidationError(f"licence {licence_id} does not exist") from exc

    def licence(self, licence_id: int) -> Licence:
        """The record of licence ``licence_id`` and its holder."""
        holder = self.holder(licence_id)
        raw = self._call("licenceOf", licence_id)
        return Licence(
            licence_id,
            int(field_of(raw, "modelId", 0)),
            holder,
            LicenceKind(int(field_of(raw, "kind", 2))),
            int(field_of(raw, "expires", 1)),
        )

    def is_approved(self, licence_id: int, operator: Any) -> bool:
        """Whether ``operator`` may transfer licence ``licence_id`` for its holder (approved for
        that licence, or for all of the holder's)."""
        holder = self.holder(licence_id)
        return same_address(self._call("getApproved", licence_id), operator) or bool(
            self._call("isApprovedForAll", holder, checksum(operator))
        )

    def rental_of(self, model_id: int, account: Any) -> int:
        """The rental licence id ``account`` holds for ``model_id``, or 0."""
        return int(self._call("rentalOf", model_id, checksum(account)))

    def licences_of(self, account: Any, model_id: int | None = None) -> list[Licence]:
        """Licences ``account`` holds now (optionally for one model), found from Transfer events."""
        ids: list[int] = []
        for log in logs(self.contract, "Transfer", self.start_block, to=checksum(account)):
            licence_id = int(log.event_arguments["tokenId"])
            if licence_id not in ids:
                ids.append(licence_id)
        found = []
        for licence_id in ids:
            try:
                licence = self.licence(licence_id)
            except ValidationError:
                continue  # terminated after a refund
            if same_address(licence.holder, account) and model_id in (None, licence.model_id):
                found.append(licence)
        return found

    def require_holder(self, licence_id: int, account: Any) -> Licence:
        """The licence, if ``account`` holds it.

        Raises:
            NoLicenceError: Someone else holds it.
        """
        licence = self.licence(licence_id)
        if not same_address(licence.holder, account):
            raise NoLicenceError(
                f"{checksum(account)} does not hold licence {licence_id} (held by"
                f" {licence.holder}): use the holder's account"
            )
        return licence
