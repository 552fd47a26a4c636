"""Session-signed requests: the checks, their cache, and the per-session call counts.

A request signed by a session key carries ``X-Daimm-Session`` (:func:`daimm.sessions.
encode_session_token`): the session and its holder's signature. ``X-Daimm-Address`` is then the
session key, which signs the ``PredictRequest`` as any caller does (so nonces, replay and the
per-wallet rate limit work per key). After that signature verifies, :class:`SessionGate` checks, in
this order, each refusal with its own code:

1. the header parses (401 ``session_malformed``) and names this key (401 ``session_key_mismatch``);
2. the rules of :func:`daimm.sessions.check_session`: domain, expiry (401), model and relayer scope
   (403 ``session_wrong_model`` / ``session_wrong_relayer``);
3. the holder's signature (401 ``session_bad_signature``), and no delegation: a holder this relayer
   knows as the key of another session is refused (401 ``session_delegation``);
4. the chain (cached like every read, see ``chain.py``): ``SessionRegistry.sessionState`` says the
   session is not revoked (401 ``session_revoked``) and was signed under the holder's current nonce
   (401 ``session_revoked_all``); a chain that cannot be read: 503, as for licences;
5. then the holder's own access is decided as for a plain request (licence or rental; 403
   ``no_licence`` names the holder). Without a licence, a voucher signed by the session key pays
   from the holder's credit channel (``access.py``): the session needs a spend cap (402
   ``session_no_spend``; a cap needs one named relayer, 401 ``session_spend_needs_relayer``) and
   the voucher must keep the session within it (402 ``session_spend_cap``), checked before the
   model runs and again, atomically, when the call is charged (``vouchers.py``).

Steps 1 to 3 are cached per header value after their first success (a dictionary lookup after
that); step 4 is the reader's cache, which the log watcher drops on ``SessionRevoked`` and
``SessionsRevokedAll``. Before the model runs, the call is counted in the state store
(:class:`SessionStore`, committed before the answer): past ``max_calls``, 403
``session_call_cap``. After the model runs and before the answer is signed, step 4 is asked again
(from the cache when warm), so a revocation the relayer sees while a request is in flight stops it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daimm import eip712, sqlitefile
from daimm.errors import RequestRefusedError, SessionError, SignatureError
from daimm.sessions import check_session, decode_session_token

__all__ = ["HEADER_SESSION", "SESSION_STATUS", "SessionGate", "SessionGrant", "SessionStore"]

#: The header carrying the session and its holder's signature (base64url).
HEADER_SESSION = "x-daimm-session"

#: HTTP status of each session refusal.
SESSION_STATUS: dict[str, int] = {
    "session_malformed": 401,
    "session_key_mismatch": 401,
    "session_wrong_domain": 401,
    "session_expired": 401,
    "session_key_is_holder": 401,
    "session_no_calls": 401,
    "session_spend_needs_relayer": 401,
    "session_bad_signature": 401,
    "session_delegation": 401,
    "session_revoked": 401,
    "session_revoked_all": 401,
    "sessions_unsupported": 401,
    "session_wrong_model": 403,
    "session_wrong_relayer": 403,
    "session_call_cap": 403,
    "session_no_spend": 402,
    "session_spend_cap": 402,
}


def _refuse(code: str, detail: str) -> RequestRefusedError:
    return RequestRefusedError(SESSION_STATUS[code], code, detail)


@dataclass(frozen=True)
class SessionGrant:
    """A session that passed the checks that need no chain.

    Attributes:
        session: The session.
        hash: Its EIP-712 digest (the hash ``SessionRegistry`` revokes).
    """

    session: eip712.Session
    hash: bytes

    @property
    def holder(self) -> str:
        """The holder, whose access the request uses."""
        return self.session.holder


class SessionStore:
    """Calls served per session, and the session keys seen: in the relayer's SQLite file, or in
    the PostgreSQL state store replicas share (``state_url``), so a call cap holds across them.

    NOTE: its own connection with ``synchronous=NORMAL``, as for nonces: a count survives a crash
    of the process (~15 us a call instead of ~200 us with FULL); a crash of the operating system
    could forget the last counts, so a session might get a few calls past its cap there. On
    PostgreSQL the count is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE calls < cap`` on the
    nonces' connection (``synchronous_commit = off``, the same trade-off).
    NOTE: the session keys known (for ``session_delegation``) are those in the store when the
    process started plus those it counted since; a key first seen by another replica meanwhile is
    not known here until a restart. That check only names a mistake: a chained session is
    refused anyway, as its holder (a session key) holds no access of its own.

    Args:
        location: The SQLite file (the relayer's ``db_path``), or the PostgreSQL ``state_url``.
    """

    def __init__(self, location: str | Path) -> None:
        from daimm.relayer.vouchers import VoucherStore, is_postgres_url

        self._lock = threading.Lock()
        # session hash -> [last call number served, last number reserved]
        self._leases: OrderedDict[bytes, list[int]] = OrderedDict()
        self._shared: VoucherStore | None = None
        if is_postgres_url(location):
            self._shared = VoucherStore(location)
            self._keys = self._shared.session_keys()
            return
        self.path = Path(location)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlitefile.connect(self.path, "NORMAL")
        self._conn.executescript(
            "CREATE TABLE IF NOT EXISTS session_calls (session_hash BLOB PRIMARY KEY,"
            " key TEXT NOT NULL, holder TEXT NOT NULL, calls INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS session_calls_key ON session_calls (key);"
        )
        self._keys = {
            row[0] for row in self._conn.execute("SELECT DISTINCT key FROM session_calls")
        }

    def close(self) -> None:
        """Close the connection (everything is committed already)."""
        if self._shared is not None:
            self._shared.close()
            return
        with self._lock:
            self._conn.close()

    def is_session_key(self, address: str) -> bool:
        """Whether ``address`` is the key of a session this relayer has served (memory only)."""
        return address in self._keys

    def calls(self, session_hash: bytes) -> int:
        """Calls reserved on the session so far (SQLite; tests and tools): the calls served, plus
        any of a reservation not used yet (none while fewer than 512 calls are left)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT calls FROM session_calls WHERE session_hash = ?", (session_hash,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def use_call(self, grant: SessionGrant) -> int | None:
        """Count one call on the session, durably; None when ``max_calls`` were counted.

        Calls are reserved in the store in blocks (see :func:`lease_block`) and served from the
        reservation in memory, so a warm session pays one write every block of calls, not one
        per call. The store's count is what was reserved: never above ``max_calls``, whatever
        the replicas, threads or crashes (a crash forgets at most its unused reservation).
        """
        session = grant.session
        # NOTE: SQLite/PostgreSQL integers are signed 64-bit; maxCalls is uint64, and 2**63-1
        # calls is as good as unbounded.
        cap = min(session.max_calls, 2**63 - 1)
        with self._lock:
            lease = self._leases.get(grant.hash)
            if lease is not None and lease[0] < lease[1]:
                lease[0] += 1
                return lease[0]
            block = lease_block(cap - lease[1]) if lease is not None else 1
            total = self._reserve(grant, cap, block)
            if total is None and block > 1:
                block, total = 1, self._reserve(grant, cap, 1)
            if total is None:
                return None
            self._leases[grant.hash] = [total - block + 1, total]
            self._leases.move_to_end(grant.hash)
            while len(self._leases) > _MAX_LEASES:
                self._leases.popitem(last=False)  # its unused calls are forgone, never exceeded
            self._keys.add(session.key)
        return total - block + 1

    def _reserve(self, grant: SessionGrant, cap: int, block: int) -> int | None:
        """Add ``block`` calls to the store's count if that stays within ``cap``; the new count."""
        session = grant.session
        if self._shared is not None:
            return self._shared.use_session_call(
                grant.hash, session.key, session.holder, cap, block
            )
        # NOTE: one statement in autocommit mode is one transaction: the count and the cap
        # check cannot be split by another request, and no BEGIN/COMMIT round trips are paid.
        row = self._conn.execute(
            "INSERT INTO session_calls (session_hash, key, holder, calls) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (session_hash) DO UPDATE SET calls = calls + excluded.calls"
            " WHERE calls + excluded.calls <= ? RETURNING calls",
            (grant.hash, session.key, session.holder, block, cap),
        ).fetchone()
        return None if row is None else int(row[0])


#: The most calls one reservation takes, and the share of what is left it may take (1/256).
LEASE_MAX, LEASE_SHARE = 64, 256
#: Sessions whose reservations a process keeps (least recently used dropped first).
_MAX_LEASES = 10_000


def lease_block(remaining: int) -> int:
    """Calls to reserve at once for a session with ``remaining`` calls not yet reserved.

    One while fewer than ``2 * LEASE_SHARE`` are left, so small caps are counted call by call and
    stay exact across replicas; at most ``LEASE_MAX``, and at most 1/``LEASE_SHARE`` of what is
    left, so the calls another replica holds unused, or a crashed process forgot, are a small
    share of the cap and never make it larger.
    """
    return max(1, min(LEASE_MAX, remaining // LEASE_SHARE))


class _SessionReader(Protocol):
    """What the gate reads from the chain (``ChainReader.session_state``)."""

    def session_state(self, holder: str, session_hash: bytes) -> tuple[bool, int]:
        """(revoked, the holder's current nonce)."""
        ...


class SessionGate:
    """The session checks of one relayer.

    Args:
        reader: The chain reader (``session_state``, cached and fail-closed).
        store: Call counts and known session keys.
        relayer: This relayer's address (checksummed).
        chain_id: The chain it serves.
        registry: The SessionRegistry it trusts, or None when the deployment has none (then every
            session is refused with ``sessions_unsupported``).
        clock: Wall clock in seconds.
        max_cached: Session headers whose checks stay cached (LRU).
    """

    def __init__(
        self,
        reader: _SessionReader,
        store: SessionStore,
        *,
        relayer: str,
        chain_id: int,
        registry: str | None,
        clock: Callable[[], float],
        max_cached: int = 10_000,
    ) -> None:
        from eth_utils import to_checksum_address

        from daimm.relayer.signing import SignatureVerifier

        self.reader, self.store = reader, store
        self.relayer, self.chain_id = relayer, chain_id
        self.registry = None if registry is None else to_checksum_address(registry)
        self.clock = clock
        self._verifier = SignatureVerifier()
        self._cache: OrderedDict[str, SessionGrant] = OrderedDict()
        self._max_cached = max_cached
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ without the chain
    def _grant(self, token: str) -> SessionGrant:
        with self._lock:
            grant = self._cache.get(token)
            if grant is not None:
                self._cache.move_to_end(token)
                return grant
        try:
            session, signature = decode_session_token(token)
        except SessionError as exc:
            raise _refuse(exc.code, exc.detail) from None
        digest = eip712.session_digest(session)
        try:
            valid = self._verifier.is_signed_by(digest, signature, session.holder)
        except SignatureError as exc:
            raise _refuse("session_bad_signature", f"the session signature: {exc}") from None
        if not valid:
            raise _refuse(
                "session_bad_signature",
                f"the session was not signed by its holder {session.holder}",
            )
        grant = SessionGrant(session, digest)
        with self._lock:
            self._cache[token] = grant
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return grant

    def check(self, token: str, model_id: int, key: str) -> SessionGrant:
        """Every check but the chain's, for a request signed by ``key`` (already verified).

        Raises:
            RequestRefusedError: The session's own code (see the module docstring).
        """
        if self.registry is None:
            raise _refuse(
                "sessions_unsupported",
                "this relayer's deployment has no SessionRegistry: sign with the wallet itself",
            )
        grant = self._grant(token)
        session = grant.session
        if session.key != key:
            raise _refuse(
                "session_key_mismatch",
                f"the request is signed by {key}, but the session is for key {session.key}",
            )
        try:
            check_session(
                session,
                now=int(self.clock()),
                model_id=model_id,
                relayer=self.relayer,
                chain_id=self.chain_id,
                registry=self.registry,
            )
        except SessionError as exc:
            raise _refuse(exc.code, exc.detail) from None
        if self.store.is_session_key(session.holder):
            raise _refuse(
                "session_delegation",
                f"the session's holder {session.holder} is itself a session key: sessions cannot"
                " be chained; the licence holder's wallet must sign the session",
            )
        return grant

    # ------------------------------------------------------------------ the chain
    def check_live(self, grant: SessionGrant) -> None:
        """Not revoked, and signed under the holder's current nonce (cached chain read).

        Raises:
            RequestRefusedError: 401 ``session_revoked`` / ``session_revoked_all``.
            ChainError: The chain cannot be read (the caller answers 503).
        """
        revoked, nonce = self.reader.session_state(grant.holder, grant.hash)
        if revoked:
            raise _refuse(
                "session_revoked",
                f"the holder revoked session 0x{grant.hash.hex()}: ask for a new API key",
            )
        if nonce != grant.session.nonce:
            raise _refuse(
                "session_revoked_all",
                f"the holder revoked all sessions signed before nonce {nonce} (this one has"
                f" {grant.session.nonce}): ask for a new API key",
            )

    def use_call(self, grant: SessionGrant) -> None:
        """Count the call, committed before the answer.

        Raises:
            RequestRefusedError: 403 ``session_call_cap`` once ``max_calls`` were served here.
        """
        if self.store.use_call(grant) is None:
            raise _refuse(
                "session_call_cap",
                f"the session's {grant.session.max_calls} calls at this relayer are used up:"
                " ask for a new API key",
            )
