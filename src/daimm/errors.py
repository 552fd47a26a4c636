"""One exception tree for daimm. Every message says what happened and what to do next."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CryptoError",
    "DaimmError",
    "IntegrityError",
    "StorageError",
    "ChainError",
    "ChainUnavailableError",
    "TransactionError",
    "ValidationError",
]


class DaimmError(Exception):
    """Root of every error daimm raises on purpose. The CLI prints it as one line."""


class ConfigError(DaimmError):
    """A setting, config file or deployments file is missing or wrong."""


class ValidationError(DaimmError):
    """Input given by a user (a file, an amount, a metadata document) is not acceptable."""


class CryptoError(DaimmError):
    """Encryption, decryption or key handling failed."""


class IntegrityError(CryptoError):
    """Data failed authentication or did not match its content address: it must not be used."""


class StorageError(DaimmError):
    """A storage backend (local blockstore, Kubo, pinning service, gateway) failed."""


class ChainError(DaimmError):
    """A chain read or a transaction failed."""


class ChainUnavailableError(ChainError):
    """The chain could not be read. Callers fail closed: no access is granted on stale belief."""


class TransactionError(ChainError):
    """A transaction reverted or would revert; the message names the contract's custom error."""


# ------------------------------------------------------------------ marketplace (daimm.market)
class DeploymentNotFoundError(ConfigError):
    """The deployments file has no deployment for the connected network, or one of another chain."""


class ContractRevertError(TransactionError):
    """A contract reverted with a custom error; `error_name` and `error_args` say which.

    Args:
        contract: Name of the contract that reverted (e.g. ``RentalEscrow``).
        error_name: The custom error's name (e.g. ``PriceAboveMax``).
        error_args: The custom error's arguments, in ABI order.
    """

    def __init__(self, contract: str, error_name: str, error_args: dict[str, object]) -> None:
        self.contract = contract
        self.error_name = error_name
        self.error_args = dict(error_args)
        shown = ", ".join(f"{k}={v}" for k, v in self.error_args.items())
        super().__init__(f"{contract} reverted with {error_name}({shown})")


class PreflightError(TransactionError):
    """A check before sending failed, so nothing was sent; the message says what to do."""


class AllowanceError(PreflightError):
    """The spender may not move enough of the caller's tokens: approve first."""


class InsufficientBalanceError(PreflightError):
    """The caller holds less than the transaction needs."""


class OfferError(PreflightError):
    """The model's offer does not allow this purchase (inactive, currency, duration, price)."""


class NoLicenceError(PreflightError):
    """The caller holds no (live) licence that this action requires."""


class NotOwnerError(PreflightError):
    """The caller does not own the model, relayer or licence the action needs."""


class ModelValidationError(ValidationError):
    """An ONNX model failed validation against its metadata (load, schema, sample run)."""


class PartialProvisionError(TransactionError):
    """A model was minted but a later step of provisioning it (authorising a relayer, setting
    its offer) failed; ``model_id`` names it and the message says how to finish. Its offer is
    set last, so it is not for sale."""

    def __init__(self, message: str, model_id: int) -> None:
        super().__init__(message)
        self.model_id = model_id


__all__ += [
    "AllowanceError",
    "ContractRevertError",
    "DeploymentNotFoundError",
    "InsufficientBalanceError",
    "ModelValidationError",
    "NoLicenceError",
    "NotOwnerError",
    "OfferError",
    "PartialProvisionError",
    "PreflightError",
]


# ------------------------------------------------------------------ signatures (daimm.eip712)
class SignatureError(CryptoError):
    """A signature is malformed, uses the high-s form, or was not made by the expected signer."""


__all__ += ["SignatureError"]


# ------------------------------------------------------------------ catalog (daimm.catalog)
class CatalogError(DaimmError):
    """The catalog database cannot be opened or used, or does not hold what was asked for."""


class CatalogUnavailableError(CatalogError):
    """The catalog database could not be reached, or went away (what was committed stays)."""


__all__ += ["CatalogError", "CatalogUnavailableError"]


# ------------------------------------------------------------------ relayer (daimm.relayer)
class RelayerError(DaimmError):
    """The inference relayer (or a client talking to one) failed; the message says what to do."""


class RequestRefusedError(RelayerError):
    """The relayer refuses one request; `status` is the HTTP status and `code` the JSON error code.

    Args:
        status: HTTP status code (401, 402, 403, 413, 422, 429, 503, ...).
        code: Short machine-readable code, e.g. ``no_licence``.
        detail: One sentence saying what happened and what to do.
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        super().__init__(f"{code} ({status}): {detail}")


class ModelUnavailableError(RelayerError):
    """A model cannot be served right now (failed to load, its worker crashed, budget exhausted)."""


class ReceiptError(SignatureError):
    """A relayer receipt does not verify: wrong signer, or hashes that do not match the answer."""


__all__ += ["ModelUnavailableError", "ReceiptError", "RelayerError", "RequestRefusedError"]


# ------------------------------------------------------------------ proofs (daimm.zk)
class ProofError(DaimmError):
    """A zero-knowledge proof could not be made, or does not verify, or is bound to other data."""


class SrsError(ProofError):
    """The structured reference string is missing, or is not the pinned public ceremony file."""


class CircuitTooLargeError(ValidationError):
    """A model is too large to prove on this machine; the message names the limit."""


__all__ += ["CircuitTooLargeError", "ProofError", "SrsError"]


# ------------------------------------------------------------------ sessions (daimm.sessions)
class SessionError(ValidationError):
    """A session (or an API key holding one) breaks a rule; ``code`` names which.

    Args:
        code: Short machine-readable code, e.g. ``session_expired`` (the relayer answers with it).
        detail: One sentence saying what happened and what to do.
    """

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


class ApiKeyError(SessionError):
    """A pasted ``daimm_sk_...`` API key is malformed, mangled or inconsistent: make a new one."""


__all__ += ["ApiKeyError", "SessionError"]
