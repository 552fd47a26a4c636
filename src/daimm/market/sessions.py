"""Sessions: make a session key for an application, revoke one session, or revoke them all.

The session itself is signed off chain (:mod:`daimm.sessions`); the SessionRegistry only records
revocations, so this class sends at most one transaction per revocation and none to create a key.

Example:
    >>> api_key = market.sessions.create(holder, model_id=1)     # one signature, no transaction
    >>> api_key.encode()                                          # "daimm_sk_..." (show it once)
    >>> market.sessions.revoke(api_key.hash, sender=holder)       # one transaction
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daimm import eip712
from daimm.errors import PreflightError, SignatureError
from daimm.market._base import ContractClient
from daimm.market._tx import Plan, checksum, first_event, tx_hash
from daimm.sessions import DEFAULT_MAX_CALLS, DEFAULT_TTL_S, ApiKey, new_session

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI
    from ape.api.transactions import ReceiptAPI

__all__ = ["SessionRevocation", "Sessions", "SessionsRevokedAll"]


@dataclass(frozen=True)
class SessionRevocation:
    """A session revoked on chain (from the ``SessionRevoked`` event)."""

    holder: str
    session_hash: bytes
    tx_hash: str


@dataclass(frozen=True)
class SessionsRevokedAll:
    """Every session of ``holder`` signed with a nonce below ``nonce`` was revoked."""

    holder: str
    nonce: int
    tx_hash: str


def _hash32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise PreflightError("a session hash is 32 bytes (64 hex digits)")
    return raw


class Sessions(ContractClient):
    """The SessionRegistry contract, and session keys signed by an ape account.

    Args:
        contract: The ape contract instance.
        chain_id: The chain's id (the session domain's ``chainId``).
    """

    NAME = "SessionRegistry"

    def __init__(self, contract: Any, *, chain_id: int) -> None:
        super().__init__(contract)
        self.chain_id = chain_id

    # ------------------------------------------------------------------ reads
    def nonce_of(self, holder: str) -> int:
        """The nonce ``holder``'s new sessions carry."""
        return int(self._call("nonceOf", checksum(holder)))

    def is_revoked(self, holder: str, session_hash: bytes | str) -> bool:
        """Whether ``holder`` revoked the session ``session_hash``."""
        return bool(self._call("isRevoked", checksum(holder), _hash32(session_hash)))

    def is_live(self, session: eip712.Session) -> bool:
        """Whether ``session`` is neither revoked nor signed under an old nonce (on chain)."""
        return bool(self._call("isLive", session.as_tuple()))

    def session_digest(self, session: eip712.Session) -> bytes:
        """The session's hash as the contract computes it (equals ``eip712.session_digest``)."""
        return bytes(self._call("sessionDigest", session.as_tuple()))

    # ------------------------------------------------------------------ create (no transaction)
    def create(
        self,
        holder: AccountAPI,
        *,
        model_id: int | None,
        relayer: str | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        max_calls: int = DEFAULT_MAX_CALLS,
        spend_cap: int = 0,
    ) -> ApiKey:
        """A fresh session key and its session, signed by ``holder`` (one signature, no gas).

        Args:
            holder: The account holding the licence, rental or credit (it may prompt to sign).
            model_id: The model, or None for any model.
            relayer: One relayer, or None for any.
            ttl_s: Lifetime in seconds (default 24 h).
            max_calls: Calls each relayer serves on it.
            spend_cap: Pay-per-use value it may spend (needs ``relayer``).

        Raises:
            SessionError: The session breaks a rule (``daimm.sessions``).
            SignatureError: The account declined to sign.
        """
        from eth_account import Account

        private_key = secrets.token_bytes(32)
        key = Account.from_key(private_key).address
        session = new_session(
            checksum(holder.address),
            key,
            model_id=model_id,
            nonce=self.nonce_of(holder.address),
            chain_id=self.chain_id,
            registry=self.address,
            relayer=relayer,
            ttl_s=ttl_s,
            max_calls=max_calls,
            spend_cap=spend_cap,
        )
        signed = holder.sign_message(eip712.signable_session(session))
        if signed is None:
            raise SignatureError("the account declined to sign the session")
        signature = bytes(signed.encode_rsv())
        eip712.verify_session(session, signature)
        return ApiKey(private_key, session, signature)

    # ------------------------------------------------------------------ revoke
    def plan_revoke(
        self, session_hash: bytes | str, *, sender: AccountAPI
    ) -> Plan[SessionRevocation]:
        """Plan revoking ``sender``'s session ``session_hash``.

        Raises:
            PreflightError: Not a 32-byte hash, or revoked already (nothing is sent).
        """
        digest = _hash32(session_hash)
        if self.is_revoked(sender.address, digest):
            raise PreflightError(f"session 0x{digest.hex()} is revoked already")
        step = self._step(f"revoke session 0x{digest.hex()[:12]}...", "revoke", digest,
                          sender=sender)  # fmt: skip

        def parse(receipts: Sequence[ReceiptAPI]) -> SessionRevocation:
            event = first_event(receipts[-1], self.contract, "SessionRevoked")
            return SessionRevocation(
                checksum(event.holder), bytes(event.sessionHash), tx_hash(receipts[-1])
            )

        return Plan(step.label, (step,), parse)

    def revoke(self, session_hash: bytes | str, *, sender: AccountAPI) -> SessionRevocation:
        """Revoke one session; see :meth:`plan_revoke`."""
        return self.plan_revoke(session_hash, sender=sender).execute()

    def plan_revoke_all(self, *, sender: AccountAPI) -> Plan[SessionsRevokedAll]:
        """Plan revoking every session ``sender`` has signed (its nonce goes up by one)."""
        step = self._step("revoke all sessions", "revokeAll", sender=sender)

        def parse(receipts: Sequence[ReceiptAPI]) -> SessionsRevokedAll:
            event = first_event(receipts[-1], self.contract, "SessionsRevokedAll")
            return SessionsRevokedAll(
                checksum(event.holder), int(event.nonce), tx_hash(receipts[-1])
            )

        return Plan(step.label, (step,), parse)

    def revoke_all(self, *, sender: AccountAPI) -> SessionsRevokedAll:
        """Revoke every session; see :meth:`plan_revoke_all`."""
        return self.plan_revoke_all(sender=sender).execute()
