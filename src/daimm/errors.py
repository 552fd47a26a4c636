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
