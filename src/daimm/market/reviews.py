"""Reviews: 1 to 5 stars once per licence, from its holder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daimm.errors import PreflightError, ValidationError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, first_event, tx_hash
from daimm.market.licences import Licences
from daimm.market.types import Review

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

__all__ = ["Rating", "Reviews"]


@dataclass(frozen=True)
class Rating:
    """A model's on-chain rating aggregate: ``count`` ratings summing to ``total`` stars."""

    count: int
    total: int

    @property
    def average(self) -> float | None:
        """Mean stars, or None without ratings."""
        return self.total / self.count if self.count else None


class Reviews(ContractClient):
    """The ReviewRegistry contract.

    Args:
        contract: The ape contract instance.
        licences: The licence client (holder checks).
    """

    NAME = "ReviewRegistry"

    def __init__(self, contract: ContractInstance, *, licences: Licences) -> None:
        super().__init__(contract)
        self.licences = licences

    def rating_of(self, model_id: int) -> Rating:
        """The rating aggregate of ``model_id``."""
        count, total = self._call("ratingOf", model_id)
        return Rating(int(count), int(total))

    def reviewed(self, licence_id: int) -> bool:
        """Whether licence ``licence_id`` was used for a review already."""
        return bool(self._call("reviewed", licence_id))

    def plan_review(
        self, licence_id: int, rating: int, comment_cid: str = "", *, sender: AccountAPI
    ) -> Plan[Review]:
        """Plan rating the model of ``licence_id``.

        Args:
            licence_id: A licence ``sender`` holds.
            rating: 1 to 5 stars.
            comment_cid: CID of the comment text ("" for none).
            sender: The licence holder.

        Raises:
            ValidationError: A rating outside 1..5.
            NoLicenceError: ``sender`` does not hold the licence.
            PreflightError: The licence was used for a review already.
        """
        if not 1 <= rating <= 5:
            raise ValidationError(f"a rating is 1 to 5 stars, not {rating}")
        licence = self.licences.require_holder(licence_id, sender)
        if self.reviewed(licence_id):
            raise PreflightError(f"licence {licence_id} was already used for a review (one each)")
        step = self._step(
            f"rate model {licence.model_id} {rating}/5",
            "review",
            licence_id,
            rating,
            comment_cid,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> Review:
            event = first_event(receipts[-1], self.contract, "Reviewed")
            return Review(
                int(event.modelId),
                int(event.licenceId),
                checksum(event.reviewer),
                int(event.rating),
                str(event.commentCid),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def review(
        self, licence_id: int, rating: int, comment_cid: str = "", *, sender: AccountAPI
    ) -> Review:
        """Rate a model; see :meth:`plan_review`."""
        return self.plan_review(licence_id, rating, comment_cid, sender=sender).execute()
