"""Durable relayer state: used request nonces, each payer's latest voucher, redemption.

The state lives in one SQLite file by default, or in PostgreSQL by URL (``state_url``), where
several relayer processes (replicas behind a load balancer) share it. Both keep the invariants
below, across threads and across processes: a nonce is accepted once, and a voucher's value is
charged once, whichever replica the requests reach.

INVARIANT: a call paid by voucher is recorded (committed with ``synchronous=FULL``, or on PostgreSQL
``synchronous_commit = on``, so it survives a crash of the process or of the machine) before its
answer is sent, and the record only grows: the latest voucher's ``cumulative`` never decreases and
``spent`` (the calls served) never exceeds it. So a restart never loses a redeemable voucher and
never serves two calls on one voucher.

Nonces are written with ``synchronous=NORMAL``: in WAL mode that survives a crash of the process
(the case that matters for replay within a request's deadline), and costs ~15 us instead of ~200.
NOTE: an operating-system crash could forget the last nonces; a replayed licence request then
yields the same answer to whoever captured it, which the licence holder already had.

Amounts and nonces are uint256, so they are stored as decimal TEXT (SQLite) or NUMERIC(78)
(PostgreSQL).

On PostgreSQL every change is one statement, committed before the call returns: a nonce is an
``INSERT ... ON CONFLICT DO NOTHING`` on its primary key (exactly one inserter wins); a call is one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that checks the voucher against the row it has
locked, so of two replicas charging one voucher only one passes the check. Voucher writes commit
with ``synchronous_commit = on`` (the server has flushed them), nonce writes with ``off`` (they
survive a replica's crash, which is what matters for replay; the SQLite ``NORMAL`` trade-off).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from daimm import sqlitefile
from daimm.errors import ChainError, RelayerError, RequestRefusedError, TransactionError

__all__ = ["Redeemer", "SessionCharge", "StoredVoucher", "VoucherStore", "is_postgres_url"]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    address TEXT NOT NULL,
    nonce TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    PRIMARY KEY (address, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_deadline ON nonces (deadline);
CREATE TABLE IF NOT EXISTS vouchers (
    payer TEXT NOT NULL,
    model_id TEXT NOT NULL,
    cumulative TEXT NOT NULL,
    signature BLOB NOT NULL,
    spent TEXT NOT NULL,
    redeemed TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (payer, model_id)
);
CREATE TABLE IF NOT EXISTS session_spend (
    session_hash BLOB PRIMARY KEY,
    spent TEXT NOT NULL
);
"""
#: Columns added after the first release (a file made before gets them at open).
_SESSION_COLUMNS = (("session_hash", "BLOB"), ("session_token", "TEXT"))


@dataclass(frozen=True)
class StoredVoucher:
    """A payer's channel as the relayer records it (amounts in the currency's smallest unit).

    Attributes:
        payer: The payer's checksummed address.
        model_id: The model.
        cumulative: The latest voucher's cumulative amount.
        signature: The payer's signature over that voucher (65 bytes).
        spent: Value of the calls served so far (never above ``cumulative``).
        redeemed: Amount already redeemed on chain.
        session_token: The ``X-Daimm-Session`` value when a session key signed the voucher (the
            channel is then the session holder's, and it is redeemed with the session).
    """

    payer: str
    model_id: int
    cumulative: int
    signature: bytes
    spent: int
    redeemed: int
    session_token: str | None = None


@dataclass(frozen=True)
class SessionCharge:
    """The session a voucher-paid call comes under (its key signed the voucher).

    Attributes:
        hash: The session's EIP-712 digest.
        cap: Its ``spendCap`` (smallest unit).
        token: Its ``X-Daimm-Session`` value (what the redemption needs).
    """

    hash: bytes
    cap: int
    token: str


def _session_spend(
    current: StoredVoucher, current_hash: bytes | None, cumulative: int, spent: int,
    session: SessionCharge,
) -> int:  # fmt: skip
    """The session's spend after this voucher becomes the channel's latest, or 402.

    The chain charges a session-signed voucher's redemption, ``cumulative - redeemed``, to the
    session (``CreditEscrow.redeemSessionBatch``). Counted here: what the voucher adds over the
    channel's latest voucher if this session signed that one too, else over what was redeemed.
    That is at least what the chain will charge (a part superseded by another signer's voucher is
    counted but never charged), so a call served here is never refused at redemption.

    Raises:
        RequestRefusedError: 402 ``session_spend_cap`` past the session's ``spendCap``.
    """
    base = current.cumulative if current_hash == session.hash else current.redeemed
    total = spent + cumulative - base
    if total > session.cap:
        raise RequestRefusedError(
            402,
            "session_spend_cap",
            f"this voucher would take the session's pay-per-use spend to {total}, past its cap"
            f" of {session.cap} ({spent} spent so far): ask the holder for a new session",
        )
    return total


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` is a PostgreSQL URL (``postgresql://...``) rather than a file."""
    return isinstance(location, str) and location.split(":", 1)[0] in (
        "postgres", "postgresql", "postgresql+psycopg",
    )  # fmt: skip


def _check_call(current: StoredVoucher, cumulative: int, price: int) -> None:
    """Refuse a call of ``price`` paid by the voucher for ``cumulative`` given the recorded channel.

    Raises:
        RequestRefusedError: 402 if the voucher is older (lower) than the latest one recorded, or
            does not cover what was spent plus ``price``.
    """
    if cumulative < current.cumulative:
        raise RequestRefusedError(
            402,
            "stale_voucher",
            f"this voucher is for {cumulative} but one for {current.cumulative} was"
            f" already received; sign one for at least {current.spent + price}",
        )
    if cumulative < current.spent + price:
        raise RequestRefusedError(
            402,
            "insufficient_voucher",
            f"the voucher covers {cumulative} but {current.spent} was spent and a call"
            f" costs {price}; sign one for at least {current.spent + price}",
        )


class _State(Protocol):
    """What a backend of :class:`VoucherStore` does (the public methods' contracts are there)."""

    def close(self) -> None: ...
    def nonce_used(self, address: str, nonce: int) -> bool: ...
    def use_nonce(self, address: str, nonce: int, deadline: int) -> bool: ...
    def prune_nonces(self, now: int) -> int: ...
    def get(self, payer: str, model_id: int) -> StoredVoucher | None: ...
    def record_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int
    ) -> StoredVoucher: ...
    def record_session_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int,
        session: SessionCharge,
    ) -> StoredVoucher: ...  # fmt: skip
    def check_session_spend(
        self, payer: str, model_id: int, cumulative: int, session: SessionCharge
    ) -> int: ...
    def use_session_call(
        self, session_hash: bytes, key: str, holder: str, cap: int, block: int
    ) -> int | None: ...
    def session_keys(self) -> set[str]: ...
    def unredeemed(self) -> list[StoredVoucher]: ...
    def mark_redeemed(self, payer: str, model_id: int, amount: int) -> None: ...
    def redemption_turn(self) -> Any: ...


class VoucherStore:
    """Nonces and vouchers: one SQLite file (WAL), or a PostgreSQL database shared by replicas.

    Args:
        location: A file path (or ``sqlite:///FILE``), created if missing; or a PostgreSQL URL
            (``postgresql://user@host:5432/db``, ``postgresql+psycopg://...`` too; a password is
            better kept in ``PGPASSWORD`` or ``~/.pgpass`` than in the URL). The tables are
            created if missing.

    Raises:
        RelayerError: The PostgreSQL database cannot be reached (or psycopg is not installed).
    """

    def __init__(self, location: str | Path) -> None:
        self._db: _State
        if is_postgres_url(location):
            self._db = _PostgresState(str(location))
        else:
            text = str(location)
            self._db = _SqliteState(Path(text.removeprefix("sqlite:///")))

    def close(self) -> None:
        """Close the connections (everything is already committed)."""
        self._db.close()

    def nonce_used(self, address: str, nonce: int) -> bool:
        """Whether ``address`` already spent ``nonce`` (a cheap early check)."""
        return self._db.nonce_used(address, nonce)

    def use_nonce(self, address: str, nonce: int, deadline: int) -> bool:
        """Spend ``nonce`` for ``address``; False if it was spent before (a replay).

        Atomic: of two identical requests arriving together (at one process or at two replicas
        sharing a PostgreSQL store) exactly one gets True.
        """
        return self._db.use_nonce(address, nonce, deadline)

    def prune_nonces(self, now: int) -> int:
        """Forget nonces whose deadline (seconds) has passed: such requests are refused anyway."""
        return self._db.prune_nonces(now)

    def get(self, payer: str, model_id: int) -> StoredVoucher | None:
        """The recorded channel of ``payer`` for ``model_id``, if any."""
        return self._db.get(payer, model_id)

    def record_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int
    ) -> StoredVoucher:
        """Record one call of value ``price`` paid by the voucher for ``cumulative``; durable.

        Atomic: two calls (in any processes sharing the store) never both spend the same value.

        Raises:
            RequestRefusedError: 402 if the voucher does not cover what was spent plus ``price``,
                or is older (lower) than the latest one recorded; 503 if PostgreSQL is unreachable.
        """
        return self._db.record_call(payer, model_id, cumulative, signature, price)

    def record_session_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int,
        session: SessionCharge,
    ) -> StoredVoucher:  # fmt: skip
        """As :meth:`record_call` for a voucher signed by ``session``'s key on ``payer``'s channel,
        and count the session's spend in the same transaction (see :func:`_session_spend`).

        Raises:
            RequestRefusedError: As :meth:`record_call`, and 402 ``session_spend_cap``.
        """
        return self._db.record_session_call(payer, model_id, cumulative, signature, price, session)

    def check_session_spend(
        self, payer: str, model_id: int, cumulative: int, session: SessionCharge
    ) -> int:
        """The session's spend if the voucher for ``cumulative`` were recorded now (no write).

        Raises:
            RequestRefusedError: 402 ``session_spend_cap``.
        """
        return self._db.check_session_spend(payer, model_id, cumulative, session)

    def use_session_call(
        self, session_hash: bytes, key: str, holder: str, cap: int, block: int = 1
    ) -> int | None:
        """Count ``block`` calls on a session (atomic, shared by replicas) and return the new
        total; None if that would pass ``cap`` (``block`` must be at most ``cap``)."""
        return self._db.use_session_call(session_hash, key, holder, cap, block)

    def session_keys(self) -> set[str]:
        """Every session key a call was counted for (to refuse sessions they sign)."""
        return self._db.session_keys()

    def unredeemed(self) -> list[StoredVoucher]:
        """Channels whose latest voucher holds value not yet redeemed on chain."""
        return self._db.unredeemed()

    def mark_redeemed(self, payer: str, model_id: int, amount: int) -> None:
        """Record that the voucher for ``amount`` was redeemed on chain (never decreases)."""
        self._db.mark_redeemed(payer, model_id, amount)

    def redemption_turn(self) -> Any:
        """A context manager yielding whether this process may run a redemption round now.

        On PostgreSQL one replica at a time gets True (a session advisory lock, released at the
        end of the round or when its process dies), so replicas do not send the same vouchers
        in competing transactions. With SQLite, which one process owns, it is always True.
        """
        return self._db.redemption_turn()


# ------------------------------------------------------------------ SQLite
class _SqliteState:
    """The state in one SQLite file (WAL): one connection for nonces, one for vouchers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._vouchers = sqlitefile.connect(self.path, "FULL")
        # Replicas opening one new file at once each see a column missing: one transaction.
        with sqlitefile.write_transaction(self._vouchers) as conn:
            for statement in _SCHEMA.split(";"):
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(vouchers)")}
            for name, kind in _SESSION_COLUMNS:
                if name not in columns:
                    conn.execute(f"ALTER TABLE vouchers ADD COLUMN {name} {kind}")
        self._nonces = sqlitefile.connect(self.path, "NORMAL")
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlitefile.write_transaction(conn):
            yield conn

    def close(self) -> None:
        with self._lock:
            self._nonces.close()
            self._vouchers.close()

    def nonce_used(self, address: str, nonce: int) -> bool:
        with self._lock:
            row = self._nonces.execute(
                "SELECT 1 FROM nonces WHERE address = ? AND nonce = ?", (address, str(nonce))
            ).fetchone()
        return row is not None

    def use_nonce(self, address: str, nonce: int, deadline: int) -> bool:
        try:
            with self._tx(self._nonces) as conn:
                conn.execute(
                    "INSERT INTO nonces (address, nonce, deadline) VALUES (?, ?, ?)",
                    (address, str(nonce), deadline),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def prune_nonces(self, now: int) -> int:
        with self._tx(self._nonces) as conn:
            return conn.execute("DELETE FROM nonces WHERE deadline < ?", (now,)).rowcount

    def get(self, payer: str, model_id: int) -> StoredVoucher | None:
        with self._lock:
            row = self._vouchers.execute(
                _SQLITE_SELECT + " FROM vouchers WHERE payer = ? AND model_id = ?",
                (payer, str(model_id)),
            ).fetchone()
        return None if row is None else _row(row)

    def record_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int
    ) -> StoredVoucher:
        return self.record_session_call(payer, model_id, cumulative, signature, price, None)

    def _current(
        self, conn: sqlite3.Connection, payer: str, model_id: int
    ) -> tuple[StoredVoucher, bytes | None]:
        row = conn.execute(
            _SQLITE_SELECT + ", session_hash FROM vouchers WHERE payer = ? AND model_id = ?",
            (payer, str(model_id)),
        ).fetchone()
        if row is None:
            return StoredVoucher(payer, model_id, 0, b"", 0, 0), None
        return _row(row), row[-1]

    def _session_spent(self, conn: sqlite3.Connection, session_hash: bytes) -> int:
        row = conn.execute(
            "SELECT spent FROM session_spend WHERE session_hash = ?", (session_hash,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def check_session_spend(
        self, payer: str, model_id: int, cumulative: int, session: SessionCharge
    ) -> int:
        with self._lock:
            current, current_hash = self._current(self._vouchers, payer, model_id)
            spent = self._session_spent(self._vouchers, session.hash)
        return _session_spend(current, current_hash, cumulative, spent, session)

    def record_session_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int,
        session: SessionCharge | None,
    ) -> StoredVoucher:  # fmt: skip
        with self._tx(self._vouchers) as conn:
            current, current_hash = self._current(conn, payer, model_id)
            _check_call(current, cumulative, price)
            if session is not None:
                total = _session_spend(
                    current, current_hash, cumulative,
                    self._session_spent(conn, session.hash), session,
                )  # fmt: skip
                conn.execute(
                    "INSERT INTO session_spend (session_hash, spent) VALUES (?, ?)"
                    " ON CONFLICT (session_hash) DO UPDATE SET spent = excluded.spent",
                    (session.hash, str(total)),
                )
            spent = current.spent + price
            conn.execute(
                "INSERT INTO vouchers (payer, model_id, cumulative, signature, spent, redeemed,"
                " updated_at, session_hash, session_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (payer, model_id) DO UPDATE SET cumulative = excluded.cumulative,"
                " signature = excluded.signature, spent = excluded.spent,"
                " updated_at = excluded.updated_at, session_hash = excluded.session_hash,"
                " session_token = excluded.session_token",
                (payer, str(model_id), str(cumulative), signature, str(spent),
                 str(current.redeemed), time.time(), session and session.hash,
                 session and session.token),
            )  # fmt: skip
        token = None if session is None else session.token
        return StoredVoucher(payer, model_id, cumulative, signature, spent, current.redeemed, token)

    def use_session_call(
        self, session_hash: bytes, key: str, holder: str, cap: int, block: int
    ) -> int | None:
        raise NotImplementedError("SQLite session calls are counted by relayer.sessions")

    def session_keys(self) -> set[str]:
        raise NotImplementedError("SQLite session calls are counted by relayer.sessions")

    def unredeemed(self) -> list[StoredVoucher]:
        with self._lock:
            rows = self._vouchers.execute(_SQLITE_SELECT + " FROM vouchers").fetchall()
        return [v for v in map(_row, rows) if v.cumulative > v.redeemed]

    def mark_redeemed(self, payer: str, model_id: int, amount: int) -> None:
        with self._tx(self._vouchers) as conn:
            row = conn.execute(
                "SELECT redeemed FROM vouchers WHERE payer = ? AND model_id = ?",
                (payer, str(model_id)),
            ).fetchone()
            if row is not None and int(row[0]) < amount:
                conn.execute(
                    "UPDATE vouchers SET redeemed = ? WHERE payer = ? AND model_id = ?",
                    (str(amount), payer, str(model_id)),
                )

    @contextmanager
    def redemption_turn(self) -> Iterator[bool]:
        yield True


_SQLITE_SELECT = "SELECT payer, model_id, cumulative, signature, spent, redeemed, session_token"


# ------------------------------------------------------------------ PostgreSQL
_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS relayer_nonces (
    address TEXT NOT NULL,
    nonce TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    PRIMARY KEY (address, nonce)
);
CREATE INDEX IF NOT EXISTS relayer_nonces_deadline ON relayer_nonces (deadline);
CREATE TABLE IF NOT EXISTS relayer_vouchers (
    payer TEXT NOT NULL,
    model_id TEXT NOT NULL,
    cumulative NUMERIC(78) NOT NULL,
    signature BYTEA NOT NULL,
    spent NUMERIC(78) NOT NULL CHECK (spent <= cumulative),
    redeemed NUMERIC(78) NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (payer, model_id)
);
ALTER TABLE relayer_vouchers ADD COLUMN IF NOT EXISTS session_hash BYTEA;
ALTER TABLE relayer_vouchers ADD COLUMN IF NOT EXISTS session_token TEXT;
CREATE TABLE IF NOT EXISTS relayer_session_spend (
    session_hash BYTEA PRIMARY KEY,
    spent NUMERIC(78) NOT NULL
);
CREATE TABLE IF NOT EXISTS relayer_session_calls (
    session_hash BYTEA PRIMARY KEY,
    key TEXT NOT NULL,
    holder TEXT NOT NULL,
    calls BIGINT NOT NULL
);
"""

#: Advisory lock keys (any two fixed bigints): creating the tables, a redemption round.
_SCHEMA_LOCK, _REDEEM_LOCK = 0x6461696D6D01, 0x6461696D6D02

#: One statement records a call: it inserts the channel, or updates it only if the voucher (the
#: row is locked by then, so the check sees every committed call) is not stale and covers it.
_RECORD_CALL = """
INSERT INTO relayer_vouchers AS v
    (payer, model_id, cumulative, signature, spent, redeemed, updated_at, session_hash,
     session_token)
VALUES (%(payer)s, %(model_id)s, %(cumulative)s, %(signature)s, %(price)s, 0, %(now)s, %(hash)s,
        %(token)s)
ON CONFLICT (payer, model_id) DO UPDATE
    SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature,
        spent = v.spent + %(price)s, updated_at = EXCLUDED.updated_at,
        session_hash = EXCLUDED.session_hash, session_token = EXCLUDED.session_token
    WHERE EXCLUDED.cumulative >= v.cumulative AND EXCLUDED.cumulative >= v.spent + %(price)s
RETURNING spent, redeemed
"""

_SELECT = (
    "SELECT payer, model_id, cumulative, signature, spent, redeemed, session_token"
    " FROM relayer_vouchers"
)

_SESSION_READ = (
    "SELECT spent FROM relayer_session_spend WHERE session_hash = %s",
    _SELECT.replace(" FROM", ", session_hash FROM") + " WHERE payer = %s AND model_id = %s",
)
_SESSION_LOCKED = (_SESSION_READ[0] + " FOR UPDATE", _SESSION_READ[1] + " FOR UPDATE")


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _libpq_url(url: str) -> str:
    """A URL libpq accepts: SQLAlchemy's ``postgresql+psycopg://`` names the driver too."""
    return "postgresql:" + url.split(":", 1)[1]


class _PostgresState:
    """The state in PostgreSQL: autocommit connections, one statement per change.

    Two connections as with SQLite (nonces with ``synchronous_commit = off``, vouchers with
    ``on``), each used under its own lock; a third, opened on first use, holds the redemption
    lock. A lost connection is reopened and the statement sent again, except a call's charge:
    whether it committed is unknown, and a retried charge could be paid twice, so that one
    answers 503 and the next call reconnects. (A nonce sent again after a commit whose answer was
    lost is refused as used: the caller retries with a new nonce, nothing is served twice.)
    """

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise RelayerError(
                "a PostgreSQL state_url needs psycopg: pip install 'daimm[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.url = _libpq_url(url)
        self._nonces = _PgConnection(self, "off")
        self._vouchers = _PgConnection(self, "on")
        self._turns: _PgConnection | None = None
        self._turn_lock = threading.Lock()
        # Replicas starting together would race on CREATE TABLE IF NOT EXISTS (both pass the
        # check, one fails on the catalog's unique index): the DDL runs under an advisory lock.
        try:
            with self._vouchers.conn.transaction():
                self._vouchers.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in filter(str.strip, _PG_SCHEMA.split(";")):
                    self._vouchers.conn.execute(statement)
        except psycopg.Error as exc:
            raise RelayerError(
                f"cannot create the relayer's tables in {_redacted(self.url)}: {exc}"
            ) from None

    def connect(self, synchronous_commit: str) -> Any:
        """A new autocommit connection, or RelayerError naming the database."""
        try:
            conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            conn.execute(f"SET synchronous_commit = {synchronous_commit}")
        except self._psycopg.Error as exc:
            raise RelayerError(
                f"cannot reach the relayer state database {_redacted(self.url)}: {exc}; check"
                " state_url and that PostgreSQL is running"
            ) from None
        return conn

    def close(self) -> None:
        for holder in (self._nonces, self._vouchers, self._turns):
            if holder is not None:
                holder.close()

    def nonce_used(self, address: str, nonce: int) -> bool:
        row = self._nonces.one(
            "SELECT 1 FROM relayer_nonces WHERE address = %s AND nonce = %s",
            (address, str(nonce)),
        )
        return row is not None

    def use_nonce(self, address: str, nonce: int, deadline: int) -> bool:
        row = self._nonces.one(
            "INSERT INTO relayer_nonces (address, nonce, deadline) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (address, str(nonce), deadline),
        )
        return row is not None

    def prune_nonces(self, now: int) -> int:
        return self._nonces.run(
            lambda conn: (
                conn.execute("DELETE FROM relayer_nonces WHERE deadline < %s", (now,)).rowcount
            )
        )

    def get(self, payer: str, model_id: int) -> StoredVoucher | None:
        row = self._vouchers.one(
            _SELECT + " WHERE payer = %s AND model_id = %s", (payer, str(model_id))
        )
        return None if row is None else _row(row)

    def record_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int
    ) -> StoredVoucher:
        _check_call(StoredVoucher(payer, model_id, 0, b"", 0, 0), cumulative, price)
        params = {"payer": payer, "model_id": str(model_id), "cumulative": cumulative,
                  "signature": signature, "price": price, "hash": None, "token": None}  # fmt: skip
        # NOTE: bounded: each pass that fails the statement's check but passes this one means
        # another call changed the channel in between; a channel cannot change forever.
        for _ in range(8):
            # NOTE: never retried: if the connection died after the commit, a retry would charge
            # the call twice.
            row = self._vouchers.one(_RECORD_CALL, {**params, "now": time.time()}, retry=False)
            if row is not None:
                return StoredVoucher(payer, model_id, cumulative, signature, int(row[0]),
                                     int(row[1]))  # fmt: skip
            current = self.get(payer, model_id)
            _check_call(current or StoredVoucher(payer, model_id, 0, b"", 0, 0), cumulative, price)
        raise RequestRefusedError(
            503, "state_busy", "this voucher's channel is changing under heavy load; retry"
        )

    def _session_state(
        self, conn: Any, payer: str, model_id: int, session: SessionCharge, lock: bool
    ) -> tuple[StoredVoucher, bytes | None, int]:
        spend_sql, channel_sql = _SESSION_LOCKED if lock else _SESSION_READ
        row = conn.execute(spend_sql, (session.hash,)).fetchone()
        spent = 0 if row is None else int(row[0])
        row = conn.execute(channel_sql, (payer, str(model_id))).fetchone()
        if row is None:
            return StoredVoucher(payer, model_id, 0, b"", 0, 0), None, spent
        return _row(row), None if row[-1] is None else bytes(row[-1]), spent

    def check_session_spend(
        self, payer: str, model_id: int, cumulative: int, session: SessionCharge
    ) -> int:
        current, current_hash, spent = self._vouchers.run(
            lambda conn: self._session_state(conn, payer, model_id, session, False)
        )
        return _session_spend(current, current_hash, cumulative, spent, session)

    def record_session_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int,
        session: SessionCharge,
    ) -> StoredVoucher:  # fmt: skip
        def work(conn: Any) -> StoredVoucher:
            with conn.transaction():
                # The session's row first: calls under one session, at any replica, queue here
                # and then each sees the channel as the one before left it.
                conn.execute(
                    "INSERT INTO relayer_session_spend (session_hash, spent) VALUES (%s, 0)"
                    " ON CONFLICT DO NOTHING",
                    (session.hash,),
                )
                current, current_hash, spent = self._session_state(
                    conn, payer, model_id, session, True
                )
                _check_call(current, cumulative, price)
                total = _session_spend(current, current_hash, cumulative, spent, session)
                conn.execute(
                    "UPDATE relayer_session_spend SET spent = %s WHERE session_hash = %s",
                    (total, session.hash),
                )
                row = conn.execute(
                    _RECORD_CALL,
                    {"payer": payer, "model_id": str(model_id), "cumulative": cumulative,
                     "signature": signature, "price": price, "now": time.time(),
                     "hash": session.hash, "token": session.token},
                ).fetchone()  # fmt: skip
                if row is None:  # a plain call changed the channel in between: roll back
                    raise RequestRefusedError(
                        503, "state_busy", "this voucher's channel changed meanwhile; retry"
                    )
            return StoredVoucher(payer, model_id, cumulative, signature, int(row[0]),
                                 int(row[1]), session.token)  # fmt: skip

        # NOTE: never retried, as record_call.
        return self._vouchers.run(work, retry=False)

    def use_session_call(
        self, session_hash: bytes, key: str, holder: str, cap: int, block: int
    ) -> int | None:
        row = self._nonces.one(
            "INSERT INTO relayer_session_calls AS s (session_hash, key, holder, calls)"
            " VALUES (%(hash)s, %(key)s, %(holder)s, %(block)s) ON CONFLICT (session_hash)"
            " DO UPDATE SET calls = s.calls + %(block)s WHERE s.calls + %(block)s <= %(cap)s"
            " RETURNING calls",
            {"hash": session_hash, "key": key, "holder": holder, "block": block, "cap": cap},
            retry=False,
        )
        return None if row is None else int(row[0])

    def session_keys(self) -> set[str]:
        rows = self._nonces.run(
            lambda conn: conn.execute("SELECT DISTINCT key FROM relayer_session_calls").fetchall()
        )
        return {row[0] for row in rows}

    def unredeemed(self) -> list[StoredVoucher]:
        rows = self._vouchers.run(
            lambda conn: conn.execute(_SELECT + " WHERE cumulative > redeemed").fetchall()
        )
        return [_row(row) for row in rows]

    def mark_redeemed(self, payer: str, model_id: int, amount: int) -> None:
        self._vouchers.run(
            lambda conn: conn.execute(
                "UPDATE relayer_vouchers SET redeemed = %s"
                " WHERE payer = %s AND model_id = %s AND redeemed < %s",
                (amount, payer, str(model_id), amount),
            )
        )

    @contextmanager
    def redemption_turn(self) -> Iterator[bool]:
        with self._turn_lock:
            if self._turns is None:
                self._turns = _PgConnection(self, "on")
            turns = self._turns
            got = turns.one("SELECT pg_try_advisory_lock(%s)", (_REDEEM_LOCK,))
            mine = bool(got and got[0])
            try:
                yield mine
            finally:
                if mine:
                    # NOTE: if the connection was lost meanwhile, the server released the lock.
                    with contextlib.suppress(RequestRefusedError):
                        turns.one("SELECT pg_advisory_unlock(%s)", (_REDEEM_LOCK,))


class _PgConnection:
    """One autocommit connection used by one thread at a time, reopened after it is lost."""

    def __init__(self, state: _PostgresState, synchronous_commit: str) -> None:
        self._state, self._sync = state, synchronous_commit
        self._lock = threading.Lock()
        self._conn: Any = state.connect(synchronous_commit)

    @property
    def conn(self) -> Any:
        """The open connection (at start, before any other thread uses it)."""
        return self._conn

    def run(self, work: Callable[[Any], _T], *, retry: bool = True) -> _T:
        """``work(connection)``; a database failure becomes 503 ``state_unavailable``.

        With ``retry``, a connection found lost (e.g. the server restarted since the last call)
        is reopened and ``work`` runs once more: only for work that is safe to repeat.
        """
        psycopg = self._state._psycopg
        with self._lock:
            for attempt in range(2 if retry else 1):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._state.connect(self._sync)
                    return work(self._conn)
                except RequestRefusedError:  # the work's own refusal (rolled back): not the link
                    raise
                except (psycopg.OperationalError, psycopg.InterfaceError, RelayerError) as exc:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
                    log.warning(
                        "relayer state database unreachable",
                        extra={"error": str(exc), "attempt": attempt + 1},
                    )
            raise RequestRefusedError(
                503,
                "state_unavailable",
                "the relayer cannot reach its state database (nonces, vouchers); retry shortly",
            )

    def one(self, sql: str, params: Any, *, retry: bool = True) -> tuple[Any, ...] | None:
        """The first row of ``sql`` (None if it returns none)."""
        row: tuple[Any, ...] | None = self.run(
            lambda conn: conn.execute(sql, params).fetchone(), retry=retry
        )
        return row

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _row(row: tuple) -> StoredVoucher:
    return StoredVoucher(
        payer=row[0],
        model_id=int(row[1]),
        cumulative=int(row[2]),
        signature=bytes(row[3]),
        spent=int(row[4]),
        redeemed=int(row[5]),
        session_token=row[6],
    )


class Redeemer:
    """Redeems the latest voucher of every channel with unredeemed value, in batched transactions.

    Every ``interval_s`` it redeems all channels; channels whose on-chain expiry is within
    ``margin_s`` of the chain's time are redeemed at the next check (every ``check_s``), well
    before the payer may reclaim.

    Args:
        store: The voucher store.
        reader: The chain reader (channel expiry, chain time).
        sender: Sends ``CreditEscrow.redeemBatch`` (``TransactionSender``).
        relayer: The relayer's address; ``chain_id`` and ``escrow`` complete each voucher.
        chain_id: The chain id the vouchers were signed for.
        escrow: The CreditEscrow address.
        interval_s: Seconds between full redemption rounds.
        margin_s: Redeem at once when a channel expires within this many seconds.
        check_s: Seconds between checks for channels close to expiry.
        batch_size: Vouchers per ``redeemBatch`` transaction.
    """

    def __init__(
        self,
        store: VoucherStore,
        reader: object,
        sender: object,
        *,
        relayer: str,
        chain_id: int,
        escrow: str,
        interval_s: float = 300.0,
        margin_s: int = 3600,
        check_s: float = 30.0,
        batch_size: int = 20,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.store, self.reader, self.sender = store, reader, sender
        self.relayer, self.chain_id, self.escrow = relayer, chain_id, escrow
        self.interval_s, self.margin_s, self.check_s = interval_s, margin_s, check_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def redeem_due(self, *, everything: bool = False) -> list[str]:
        """Redeem channels that are due (all if ``everything``); return the tx hashes sent.

        Due vouchers go out in ``redeemBatch`` transactions of up to ``batch_size``. A batch that
        reverts (one bad voucher reverts it all) is retried one voucher at a time, so a failure on
        one channel is logged and does not stop the others.
        """
        # Replicas sharing a PostgreSQL store take turns: one sends a round, the others skip it.
        with self.store.redemption_turn() as mine:
            if not mine:
                return []
            return self._redeem(everything)

    def _redeem(self, everything: bool) -> list[str]:
        due = [voucher for voucher in self.store.unredeemed() if self._is_due(voucher, everything)]
        # Vouchers signed by session keys go in batches of their own (redeemSessionBatch).
        plain = [voucher for voucher in due if voucher.session_token is None]
        signed_under_session = [voucher for voucher in due if voucher.session_token is not None]
        chunks = [
            group[start : start + self.batch_size]
            for group in (plain, signed_under_session)
            for start in range(0, len(group), self.batch_size)
        ]
        sent: list[str] = []
        for chunk in chunks:
            try:
                sent.append(self._send(chunk))
            except TransactionError as exc:
                if len(chunk) == 1:
                    self._log_failure(chunk[0], exc)
                    continue
                log.warning("batch redemption reverted; one by one", extra={"error": str(exc)})
                for voucher in chunk:
                    try:
                        sent.append(self._send([voucher]))
                    except ChainError as single:
                        self._log_failure(voucher, single)
            except ChainError as exc:  # the chain is unreachable: the next round retries
                for voucher in chunk:
                    self._log_failure(voucher, exc)
        return sent

    def _is_due(self, voucher: StoredVoucher, everything: bool) -> bool:
        try:
            channel = self.reader.channel_of(  # type: ignore[attr-defined]
                voucher.payer, voucher.model_id, self.relayer
            )
            if channel.redeemed >= voucher.cumulative:
                # Redeemed already (e.g. the relayer stopped between the transaction and
                # recording it): record it, send nothing.
                self.store.mark_redeemed(voucher.payer, voucher.model_id, voucher.cumulative)
                return False
            left = channel.expires_at - self.reader.chain_time()  # type: ignore[attr-defined]
        except ChainError as exc:
            self._log_failure(voucher, exc)
            return False
        return everything or left <= self.margin_s

    def _send(self, vouchers: list[StoredVoucher]) -> str:
        if vouchers[0].session_token is not None:
            from daimm.sessions import decode_session_token

            items = []
            for v in vouchers:
                assert v.session_token is not None
                session, session_signature = decode_session_token(v.session_token)
                items.append((session.as_tuple(), session_signature,
                              (v.model_id, self.relayer, v.cumulative, self.chain_id, self.escrow),
                              v.signature))  # fmt: skip
            tx: str = self.sender.redeem_session_batch(items)  # type: ignore[attr-defined]
        else:
            tx = self.sender.redeem_batch(  # type: ignore[attr-defined]
                [
                    (v.payer, (v.model_id, self.relayer, v.cumulative, self.chain_id, self.escrow),
                     v.signature)
                    for v in vouchers
                ]
            )  # fmt: skip
        for v in vouchers:
            self.store.mark_redeemed(v.payer, v.model_id, v.cumulative)
            log.info(
                "voucher redeemed",
                extra={"payer": v.payer, "model_id": v.model_id, "amount": v.cumulative, "tx": tx},
            )
        return tx

    @staticmethod
    def _log_failure(voucher: StoredVoucher, exc: Exception) -> None:
        log.warning(
            "voucher redemption failed",
            extra={"payer": voucher.payer, "model_id": voucher.model_id, "error": str(exc)},
        )

    def start(self) -> None:
        """Run in a background thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="daimm-redeemer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_full = time.monotonic()
        while not self._stop.wait(self.check_s):
            full = time.monotonic() - last_full >= self.interval_s
            try:
                self.redeem_due(everything=full)
            except RequestRefusedError as exc:  # the state database is unreachable: next round
                log.warning("redemption round skipped", extra={"error": exc.detail})
                continue
            if full:
                last_full = time.monotonic()

    def stop(self) -> None:
        """Stop the thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
