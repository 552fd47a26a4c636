"""Durable relayer state in SQLite: used request nonces, each payer's latest voucher, redemption.

INVARIANT: a call paid by voucher is recorded (committed with ``synchronous=FULL``, so it survives
a crash of the process or of the machine) before its answer is sent, and the record only grows:
the latest voucher's ``cumulative`` never decreases and ``spent`` (the calls served) never exceeds
it. So a restart never loses a redeemable voucher and never serves two calls on one voucher.

Nonces are written with ``synchronous=NORMAL``: in WAL mode that survives a crash of the process
(the case that matters for replay within a request's deadline), and costs ~15 us instead of ~200.
NOTE: an operating-system crash could forget the last nonces; a replayed licence request then
yields the same answer to whoever captured it, which the licence holder already had.

Amounts and nonces are uint256, so they are stored as decimal TEXT.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from daimm.errors import ChainError, RequestRefusedError, TransactionError

__all__ = ["Redeemer", "StoredVoucher", "VoucherStore"]

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
"""


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
    """

    payer: str
    model_id: int
    cumulative: int
    signature: bytes
    spent: int
    redeemed: int


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class VoucherStore:
    """Nonces and vouchers in one SQLite file (WAL).

    Args:
        path: The database file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._vouchers = _connect(self.path, "FULL")
        self._vouchers.executescript(_SCHEMA)
        self._nonces = _connect(self.path, "NORMAL")
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close both connections (everything is already committed)."""
        with self._lock:
            self._nonces.close()
            self._vouchers.close()

    # ------------------------------------------------------------------ nonces
    def nonce_used(self, address: str, nonce: int) -> bool:
        """Whether ``address`` already spent ``nonce`` (a cheap early check)."""
        with self._lock:
            row = self._nonces.execute(
                "SELECT 1 FROM nonces WHERE address = ? AND nonce = ?", (address, str(nonce))
            ).fetchone()
        return row is not None

    def use_nonce(self, address: str, nonce: int, deadline: int) -> bool:
        """Spend ``nonce`` for ``address``; False if it was spent before (a replay).

        Atomic: of two identical requests arriving together exactly one gets True.
        """
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
        """Forget nonces whose deadline (seconds) has passed: such requests are refused anyway."""
        with self._tx(self._nonces) as conn:
            return conn.execute("DELETE FROM nonces WHERE deadline < ?", (now,)).rowcount

    # ------------------------------------------------------------------ vouchers
    def get(self, payer: str, model_id: int) -> StoredVoucher | None:
        """The recorded channel of ``payer`` for ``model_id``, if any."""
        with self._lock:
            row = self._vouchers.execute(
                "SELECT payer, model_id, cumulative, signature, spent, redeemed FROM vouchers"
                " WHERE payer = ? AND model_id = ?",
                (payer, str(model_id)),
            ).fetchone()
        return None if row is None else _row(row)

    def record_call(
        self, payer: str, model_id: int, cumulative: int, signature: bytes, price: int
    ) -> StoredVoucher:
        """Record one call of value ``price`` paid by the voucher for ``cumulative``; durable.

        Raises:
            RequestRefusedError: 402 if the voucher does not cover what was spent plus ``price``,
                or is older (lower) than the latest one recorded.
        """
        with self._tx(self._vouchers) as conn:
            row = conn.execute(
                "SELECT payer, model_id, cumulative, signature, spent, redeemed FROM vouchers"
                " WHERE payer = ? AND model_id = ?",
                (payer, str(model_id)),
            ).fetchone()
            current = _row(row) if row else StoredVoucher(payer, model_id, 0, b"", 0, 0)
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
            spent = current.spent + price
            conn.execute(
                "INSERT INTO vouchers (payer, model_id, cumulative, signature, spent, redeemed,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payer, model_id) DO"
                " UPDATE SET cumulative = excluded.cumulative, signature = excluded.signature,"
                " spent = excluded.spent, updated_at = excluded.updated_at",
                (payer, str(model_id), str(cumulative), signature, str(spent),
                 str(current.redeemed), time.time()),
            )  # fmt: skip
        return StoredVoucher(payer, model_id, cumulative, signature, spent, current.redeemed)

    def unredeemed(self) -> list[StoredVoucher]:
        """Channels whose latest voucher holds value not yet redeemed on chain."""
        with self._lock:
            rows = self._vouchers.execute(
                "SELECT payer, model_id, cumulative, signature, spent, redeemed FROM vouchers"
            ).fetchall()
        return [v for v in map(_row, rows) if v.cumulative > v.redeemed]

    def mark_redeemed(self, payer: str, model_id: int, amount: int) -> None:
        """Record that the voucher for ``amount`` was redeemed on chain (never decreases)."""
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


def _row(row: tuple) -> StoredVoucher:
    return StoredVoucher(
        payer=row[0],
        model_id=int(row[1]),
        cumulative=int(row[2]),
        signature=bytes(row[3]),
        spent=int(row[4]),
        redeemed=int(row[5]),
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
        due = [voucher for voucher in self.store.unredeemed() if self._is_due(voucher, everything)]
        sent: list[str] = []
        for start in range(0, len(due), self.batch_size):
            chunk = due[start : start + self.batch_size]
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
        tx: str = self.sender.redeem_batch(  # type: ignore[attr-defined]
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
            self.redeem_due(everything=full)
            if full:
                last_full = time.monotonic()

    def stop(self) -> None:
        """Stop the thread after its current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
