"""The model registry: one ERC-721 token per model, with its version history."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from daimm.errors import NotOwnerError, ValidationError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, field_of, first_event, same_address, tx_hash
from daimm.market.types import Model, ModelVersion, PublishedModel, PublishedVersion

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI

__all__ = ["Models"]


class Models(ContractClient):
    """The ModelRegistry contract: publish models and versions, read their records."""

    NAME = "ModelRegistry"

    @cached_property
    def max_royalty_bps(self) -> int:
        """The royalty cap, in basis points."""
        return int(self._call("MAX_ROYALTY_BPS"))

    def count(self) -> int:
        """Number of models minted (the highest model id)."""
        return int(self._call("modelCount"))

    def exists(self, model_id: int) -> bool:
        """Whether ``model_id`` has been minted."""
        return bool(self._call("exists", model_id))

    def require(self, model_id: int) -> None:
        """Raise unless ``model_id`` exists.

        Raises:
            ValidationError: It does not.
        """
        if model_id <= 0 or not self.exists(model_id):
            raise ValidationError(
                f"model {model_id} does not exist (models are numbered 1 to {self.count()})"
            )

    def owner_of(self, model_id: int) -> str:
        """Who owns ``model_id`` now."""
        self.require(model_id)
        return checksum(self._call("ownerOf", model_id))

    def require_owner(self, model_id: int, account: Any) -> None:
        """Raise unless ``account`` owns ``model_id``.

        Raises:
            NotOwnerError: Someone else owns it.
        """
        owner = self.owner_of(model_id)
        if not same_address(owner, account):
            raise NotOwnerError(
                f"{checksum(account)} does not own model {model_id} (its owner is {owner}):"
                " use the owner's account (--account)"
            )

    def version(self, model_id: int, index: int) -> ModelVersion:
        """Version ``index`` of ``model_id``."""
        return self._version(index, self._call("versionOf", model_id, index))

    def versions(self, model_id: int) -> list[ModelVersion]:
        """Every version of ``model_id``, oldest first."""
        self.require(model_id)
        return [self.version(model_id, i) for i in range(int(self._call("versionCount", model_id)))]

    def model(self, model_id: int) -> Model:
        """The model's owner and latest version."""
        self.require(model_id)
        count = int(self._call("versionCount", model_id))
        latest = self._version(count - 1, self._call("latestVersion", model_id))
        return Model(model_id, self.owner_of(model_id), latest, count)

    def royalty(self, model_id: int, sale_price: int) -> tuple[str, int]:
        """ERC-2981 receiver and royalty (smallest unit) on a resale at ``sale_price``."""
        receiver, amount = self._call("royaltyInfo", model_id, sale_price)
        return checksum(receiver), int(amount)

    @staticmethod
    def _version(index: int, raw: Any) -> ModelVersion:
        return ModelVersion(
            index,
            str(field_of(raw, "weightsCid", 0)),
            str(field_of(raw, "metadataCid", 1)),
            int(field_of(raw, "publishedAt", 2)),
        )

    # ------------------------------------------------------------------ transactions
    def plan_publish(
        self, weights_cid: str, metadata_cid: str, *, royalty_bps: int = 0, sender: AccountAPI
    ) -> Plan[PublishedModel]:
        """Plan minting a model to ``sender`` with its first version.

        Args:
            weights_cid: CID of the encrypted weights.
            metadata_cid: CID of the metadata document.
            royalty_bps: Royalty on licence resales, basis points (at most ``max_royalty_bps``).
            sender: The creator.

        Raises:
            ValidationError: An empty CID or a royalty above the cap.
        """
        self._check_cids(weights_cid, metadata_cid)
        if not 0 <= royalty_bps <= self.max_royalty_bps:
            raise ValidationError(
                f"royalty {royalty_bps} bps is above the cap of {self.max_royalty_bps} bps"
            )
        step = self._step(
            f"publish model (weights {weights_cid})",
            "publishModel",
            weights_cid,
            metadata_cid,
            royalty_bps,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> PublishedModel:
            event = first_event(receipts[-1], self.contract, "ModelPublished")
            return PublishedModel(
                int(event.modelId),
                checksum(event.creator),
                str(event.weightsCid),
                str(event.metadataCid),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def publish(
        self, weights_cid: str, metadata_cid: str, *, royalty_bps: int = 0, sender: AccountAPI
    ) -> PublishedModel:
        """Mint a model; see :meth:`plan_publish`."""
        plan = self.plan_publish(weights_cid, metadata_cid, royalty_bps=royalty_bps, sender=sender)
        return plan.execute()

    def plan_publish_version(
        self, model_id: int, weights_cid: str, metadata_cid: str, *, sender: AccountAPI
    ) -> Plan[PublishedVersion]:
        """Plan appending a version to ``model_id``.

        Raises:
            ValidationError: Unknown model or empty CID.
            NotOwnerError: ``sender`` does not own the model.
        """
        self._check_cids(weights_cid, metadata_cid)
        self.require_owner(model_id, sender)
        step = self._step(
            f"publish a version of model {model_id}",
            "publishVersion",
            model_id,
            weights_cid,
            metadata_cid,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> PublishedVersion:
            event = first_event(receipts[-1], self.contract, "VersionPublished")
            return PublishedVersion(
                int(event.modelId),
                int(event.version),
                str(event.weightsCid),
                str(event.metadataCid),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def publish_version(
        self, model_id: int, weights_cid: str, metadata_cid: str, *, sender: AccountAPI
    ) -> PublishedVersion:
        """Append a version; see :meth:`plan_publish_version`."""
        return self.plan_publish_version(
            model_id, weights_cid, metadata_cid, sender=sender
        ).execute()

    @staticmethod
    def _check_cids(*cids: str) -> None:
        if any(not cid for cid in cids):
            raise ValidationError("a CID is empty: store the weights and metadata first")
