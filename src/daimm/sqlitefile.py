"""Opening one SQLite file from several processes at once (the catalog, relayer replicas' state).

Two things that a single process never meets, and that fresh-clone CI met:

- Switching a new file to WAL reads it under a shared lock and then needs an exclusive one. Two
  processes doing so together each wait for the other's lock; SQLite breaks that deadlock by
  answering one "database is locked" at once, without calling the busy handler, so
  ``busy_timeout`` alone does not cover it. :func:`switch_to_wal` retries.
- A schema change that first looks at the schema (is this column there?) and then alters it is a
  check-then-act race between processes. :func:`write_transaction` runs it under
  ``BEGIN IMMEDIATE``: the second process waits for the first one's commit and then finds nothing
  left to do.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["BUSY_S", "configure", "connect", "switch_to_wal", "write_transaction"]

#: How long a connection waits for another process's lock (busy_timeout, and the WAL switch).
BUSY_S = 30


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode, waiting up to :data:`BUSY_S` for locks.

    ``synchronous`` is ``FULL`` (a commit survives a machine crash) or ``NORMAL`` (a process
    crash).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_S)
    configure(conn.cursor(), synchronous)
    return conn


def configure(cursor: Any, synchronous: str) -> None:
    """Set up a new connection through its DB-API ``cursor`` (also one SQLAlchemy opens): wait
    up to :data:`BUSY_S` for another process's lock (first, so the rest waits too), WAL (readers
    do not block the writer), then ``synchronous``."""
    cursor.execute(f"PRAGMA busy_timeout={BUSY_S * 1000}")
    switch_to_wal(cursor)
    cursor.execute(f"PRAGMA synchronous={synchronous}")


def switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL`` on a DB-API ``cursor``, retried while another process holds
    the file (see the module's note): the loser backs off a random few milliseconds and tries
    again, up to :data:`BUSY_S`; by then the file is usually WAL already and the pragma takes no
    lock at all."""
    deadline = time.monotonic() + BUSY_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - a back-off, not a secret


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block as one write transaction on an autocommit ``conn``: ``BEGIN IMMEDIATE``
    takes the write lock first (waiting up to the busy timeout), so reads in the block see what
    the writes act on, across processes; committed at the end, rolled back on an error. Schema
    changes at open use it (see the module's note), and so do the relayer state's changes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
