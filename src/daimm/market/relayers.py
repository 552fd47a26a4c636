"""The relayer registry: relayers, their X25519 keys, and which models they may serve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from daimm.errors import NotOwnerError, PreflightError, ValidationError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, field_of, first_event, same_address, tx_hash
from daimm.market.registry import Models
from daimm.market.types import Authorisation, RelayerInfo, RelayerRegistration

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI
    from ape.contracts import ContractInstance

__all__ = ["Relayers", "parse_address"]

_ZERO = "0x" + "00" * 20


def parse_address(value: Any, what: str = "address") -> str:
    """A checksummed address from an account, a contract or a 0x string.

    Raises:
        ValidationError: ``value`` is not a 20-byte 0x address (saying what was expected).
    """
    if not isinstance(value, str):
        return checksum(value)
    text = value.strip()
    if len(text) != 42 or not text.startswith(("0x", "0X")):
        raise ValidationError(
            f"{what} {value!r} is not an Ethereum address: give its 0x address (40 hex digits)"
        )
    try:
        address = checksum(text)
    except ValueError as exc:
        raise ValidationError(
            f"{what} {value!r} is not an Ethereum address (not hex): check it for a typo"
        ) from exc
    digits = text[2:]
    if digits != digits.lower() and digits != digits.upper() and address[2:] != digits:
        raise ValidationError(
            f"{what} {value!r} fails its checksum (mixed case that is not {address}): check it"
            " for a typo"
        )
    return address


class Relayers(ContractClient):
    """The RelayerRegistry contract.

    Args:
        contract: The ape contract instance.
        models: The registry client (model ownership checks).
    """

    NAME = "RelayerRegistry"

    def __init__(self, contract: ContractInstance, *, models: Models) -> None:
        super().__init__(contract)
        self.models = models

    def relayer(self, relayer: Any) -> RelayerInfo | None:
        """The registration of ``relayer``, or None if it never registered."""
        raw = self._call("relayerOf", checksum(relayer))
        operator = checksum(field_of(raw, "operator", 0))
        if operator == checksum(_ZERO):
            return None
        return RelayerInfo(
            checksum(relayer),
            operator,
            bytes(field_of(raw, "x25519PublicKey", 1)),
            str(field_of(raw, "endpoint", 2)),
            bool(field_of(raw, "active", 3)),
        )

    def require_active(self, relayer: Any) -> RelayerInfo:
        """The registration of ``relayer`` if it is registered and not retired.

        Raises:
            PreflightError: Unknown or retired relayer.
        """
        info = self.relayer(relayer)
        if info is None:
            raise PreflightError(
                f"relayer {checksum(relayer)} is not registered: its operator runs"
                " `daimm relayer register` first"
            )
        if not info.active:
            raise PreflightError(f"relayer {checksum(relayer)} is retired and serves no model")
        return info

    def require_servable(self, relayer: Any) -> RelayerInfo:
        """The registration of ``relayer`` if a model's key can be wrapped for it now: a
        well-formed address, registered, not retired, with a valid X25519 key.

        Raises:
            ValidationError: ``relayer`` is not an Ethereum address.
            PreflightError: Unknown or retired relayer, or its registered key is malformed.
        """
        from daimm.crypto import PublicKey
        from daimm.errors import CryptoError

        address = parse_address(relayer, "relayer")
        info = self.require_active(address)
        try:
            PublicKey(info.x25519_public_key)
        except CryptoError as exc:
            raise PreflightError(
                f"relayer {address} is registered with a malformed X25519 key"
                f" (0x{info.x25519_public_key.hex()}: {exc}); no key can be wrapped for it: its"
                " operator must update the registration (`daimm keys new`, then update)"
            ) from exc
        return info

    def approved_operator_of(self, relayer: Any) -> str:
        """The operator ``relayer`` consented to be registered by (the zero address if none)."""
        return checksum(self._call("approvedOperatorOf", checksum(relayer)))

    def plan_approve_operator(self, operator: Any, *, sender: AccountAPI) -> Plan[str]:
        """Plan consenting, as the relayer address ``sender``, to ``operator`` registering it.

        Returns:
            A plan whose result is the approved operator's address.
        """
        step = self._step(
            f"let {checksum(operator)} register relayer {checksum(sender)}",
            "approveOperator",
            checksum(operator),
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> str:
            event = first_event(receipts[-1], self.contract, "OperatorApproved")
            return checksum(event.operator)

        return Plan(step.label, (step,), parse)

    def approve_operator(self, operator: Any, *, sender: AccountAPI) -> str:
        """Consent to ``operator`` registering ``sender``; see :meth:`plan_approve_operator`."""
        return self.plan_approve_operator(operator, sender=sender).execute()

    def is_authorised(self, model_id: int, relayer: Any) -> bool:
        """Whether ``relayer`` is active and authorised for ``model_id``."""
        return bool(self._call("isAuthorised", model_id, checksum(relayer)))

    def envelope_of(self, model_id: int, relayer: Any) -> str:
        """CID of the key envelope for ``relayer`` on ``model_id`` ("" if none)."""
        return str(self._call("envelopeOf", model_id, checksum(relayer)))

    def relayers_of(self, model_id: int) -> list[str]:
        """Relayers authorised for ``model_id``."""
        return [checksum(r) for r in self._call("relayersOf", model_id)]

    # ------------------------------------------------------------------ transactions
    def plan_register(
        self, relayer: Any, x25519_public_key: bytes, endpoint: str, *, sender: AccountAPI
    ) -> Plan[RelayerRegistration]:
        """Plan registering ``relayer`` with ``sender`` as its operator.

        Args:
            relayer: The relayer's signing address; it must be ``sender`` or have approved
                ``sender`` as its operator (:meth:`plan_approve_operator`).
            x25519_public_key: Its 32-byte X25519 public key (key envelopes are wrapped for it).
            endpoint: Its HTTP(S) endpoint.
            sender: The operator.

        Raises:
            ValidationError: A key that is not 32 non-zero bytes, or an endpoint that is not a URL.
            PreflightError: The relayer is already registered, or has not consented.
        """
        if len(x25519_public_key) != 32 or not any(x25519_public_key):
            raise ValidationError("the relayer's X25519 public key must be 32 non-zero bytes")
        if not endpoint.startswith(("https://", "http://")):
            raise ValidationError(f"endpoint {endpoint!r} must be an http(s):// URL")
        if self.relayer(relayer) is not None:
            raise PreflightError(
                f"relayer {checksum(relayer)} is already registered: its operator may update it"
            )
        if not same_address(relayer, sender) and not same_address(
            self.approved_operator_of(relayer), sender
        ):
            raise PreflightError(
                f"relayer {checksum(relayer)} has not consented to {checksum(sender)} registering"
                " it: register from the relayer's own account, or let the relayer approve you first"
                f" (`daimm relayer approve-operator {checksum(sender)} --account <relayer>`)"
            )
        step = self._step(
            f"register relayer {checksum(relayer)} at {endpoint}",
            "register",
            checksum(relayer),
            bytes(x25519_public_key),
            endpoint,
            sender=sender,
        )

        def parse(receipts: Sequence[ReceiptAPI]) -> RelayerRegistration:
            event = first_event(receipts[-1], self.contract, "RelayerRegistered")
            return RelayerRegistration(
                checksum(event.relayer),
                checksum(event.operator),
                bytes(event.x25519PublicKey),
                str(event.endpoint),
                tx_hash(receipts[-1]),
            )

        return Plan(step.label, (step,), parse)

    def register(
        self, relayer: Any, x25519_public_key: bytes, endpoint: str, *, sender: AccountAPI
    ) -> RelayerRegistration:
        """Register a relayer; see :meth:`plan_register`."""
        return self.plan_register(relayer, x25519_public_key, endpoint, sender=sender).execute()

    def plan_authorise(
        self, model_id: int, relayer: Any, envelope_cid: str, *, sender: AccountAPI
    ) -> Plan[Authorisation]:
        """Plan authorising ``relayer`` for ``model_id`` with its key envelope's CID.

        An already authorised relayer gets its envelope replaced (``setEnvelope``) instead.

        Raises:
            NotOwnerError: ``sender`` does not own the model.
            PreflightError: The relayer is unknown or retired.
            ValidationError: Empty envelope CID.
        """
        if not envelope_cid:
            raise ValidationError("the key envelope CID is empty: store the envelope first")
        self.models.require_owner(model_id, sender)
        self.require_active(relayer)
        if self.is_authorised(model_id, relayer):
            method, event_name = "setEnvelope", "EnvelopeUpdated"
            label = f"replace the key envelope of relayer {checksum(relayer)} for model {model_id}"
        else:
            method, event_name = "authorise", "RelayerAuthorised"
            label = f"authorise relayer {checksum(relayer)} for model {model_id}"
        step = self._step(label, method, model_id, checksum(relayer), envelope_cid, sender=sender)

        def parse(receipts: Sequence[ReceiptAPI]) -> Authorisation:
            event = first_event(receipts[-1], self.contract, event_name)
            return Authorisation(
                int(event.modelId),
                checksum(event.relayer),
                str(event.envelopeCid),
                tx_hash(receipts[-1]),
            )

        return Plan(label, (step,), parse)

    def authorise(
        self, model_id: int, relayer: Any, envelope_cid: str, *, sender: AccountAPI
    ) -> Authorisation:
        """Authorise a relayer; see :meth:`plan_authorise`."""
        return self.plan_authorise(model_id, relayer, envelope_cid, sender=sender).execute()

    def plan_deauthorise(self, model_id: int, relayer: Any, *, sender: AccountAPI) -> Plan[None]:
        """Plan withdrawing ``relayer``'s authorisation for ``model_id``.

        Raises:
            NotOwnerError: ``sender`` does not own the model.
            PreflightError: The relayer is not authorised for it.
        """
        self.models.require_owner(model_id, sender)
        if not any(same_address(r, relayer) for r in self.relayers_of(model_id)):
            raise PreflightError(f"relayer {checksum(relayer)} is not authorised for {model_id}")
        step = self._step(
            f"deauthorise relayer {checksum(relayer)} for model {model_id}",
            "deauthorise",
            model_id,
            checksum(relayer),
            sender=sender,
        )
        return Plan(step.label, (step,), lambda receipts: None)

    def require_operator(self, relayer: Any, account: Any) -> RelayerInfo:
        """The registration of ``relayer`` if ``account`` operates it.

        Raises:
            NotOwnerError: Someone else operates it.
        """
        info = self.require_active(relayer)
        if not same_address(info.operator, account):
            raise NotOwnerError(f"{checksum(account)} does not operate relayer {info.address}")
        return info
