"""The catalog's tables: SQLAlchemy Core, embedded SQLite by default, PostgreSQL by URL.

Three kinds of table live here (the schema is described in ``docs/CATALOG.md``):

- the **log** of decoded events (``events``) with the indexer's checkpoint (``meta``) and the hashes
  of the last blocks it read (``blocks``); the log is the catalog's source of truth;
- **projections** folded from the log in chain order (``models``, ``offers``, ``licences``,
  ``listings``, ``disputes``, ``reviews``, ``relayers``, ``model_relayers``, ``channels``,
  ``currencies``, and on SQLite the full-text index ``catalog_fts``); after a reorganisation they
  are cleared and folded again from what is left of the log;
- **caches** of immutable things fetched off chain (``metadata`` by CID, ``tokens`` by address),
  which a reorganisation does not touch. On PostgreSQL, ``metadata`` also has the generated
  ``tsvector`` column ``search`` with a GIN index: the full-text index there, kept by the server.

Amounts are uint256 and do not fit SQL integers, so they are stored as zero-padded 78-digit strings
(:class:`U256`): equal width makes string order equal numeric order, so ``price <= :max`` and
``ORDER BY price`` work in SQL on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.types import TypeDecorator

from daimm import sqlitefile
from daimm.errors import CatalogError, CatalogUnavailableError

__all__ = [
    "PG_TEXT_CONFIG",
    "PROJECTIONS",
    "U256",
    "CatalogStore",
    "default_db_url",
    "insert_ignore",
    "upsert",
]

log = logging.getLogger(__name__)

_U256_DIGITS = 78  # len(str(2**256 - 1))


class U256(TypeDecorator[int]):
    """An unsigned 256-bit integer stored as a zero-padded decimal string (order-preserving)."""

    impl = String(_U256_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        if value is None:
            return None
        number = int(value)
        if number < 0:
            raise ValueError(f"U256 cannot hold a negative number ({number})")
        return f"{number:0{_U256_DIGITS}d}"

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(value)


metadata = MetaData()

#: Key/value state of the indexer: ``last_block``, ``chain_id``, ``contracts``, ``fee_bps``, ...
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Hashes of the last blocks read (the reorganisation window).
blocks = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

#: Every followed event, decoded; ``model_id`` is resolved when it is folded (None if no model).
events = Table(
    "events",
    metadata,
    Column("block_number", BigInteger, primary_key=True, autoincrement=False),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("block_hash", String(66), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("contract", String(32), nullable=False),
    Column("event", String(48), nullable=False),
    Column("args", Text, nullable=False),  # JSON; uint256 values as decimal strings
    Column("timestamp", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=True),
    Index("ix_events_model", "model_id", "block_number", "log_index"),
)

models = Table(
    "models",
    metadata,
    Column("model_id", BigInteger, primary_key=True, autoincrement=False),
    Column("creator", String(42), nullable=False),
    Column("owner", String(42), nullable=False),
    Column("weights_cid", Text, nullable=False),
    Column("metadata_cid", Text, nullable=False),
    Column("versions", Integer, nullable=False),
    Column("royalty_bps", Integer, nullable=False, default=0),
    Column("published_block", BigInteger, nullable=False),
    Column("published_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("rating_count", Integer, nullable=False, default=0),
    Column("rating_sum", Integer, nullable=False, default=0),
    Index("ix_models_creator", "creator"),
    Index("ix_models_published", "published_at", "model_id"),  # newest first, page by page
)

offers = Table(
    "offers",
    metadata,
    Column("model_id", BigInteger, primary_key=True, autoincrement=False),
    Column("currency", String(42), nullable=False),
    Column("price_per_period", U256, nullable=False),
    Column("period_seconds", BigInteger, nullable=False),
    Column("min_periods", Integer, nullable=False),
    Column("max_periods", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("perpetual_price", U256, nullable=False),
    Column("price_per_call", U256, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

licences = Table(
    "licences",
    metadata,
    Column("licence_id", BigInteger, primary_key=True, autoincrement=False),
    Column("model_id", BigInteger, nullable=False),
    Column("holder", String(42), nullable=False),
    Column("kind", String(16), nullable=False),  # rental | perpetual
    Column("expires", BigInteger, nullable=True),  # seconds; None for perpetual
    Column("terminated", Boolean, nullable=False, default=False),
    Index("ix_licences_model", "model_id"),
)

listings = Table(
    "listings",
    metadata,
    Column("licence_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seller", String(42), nullable=False),
    Column("currency", String(42), nullable=False),
    Column("price", U256, nullable=False),
)

disputes = Table(
    "disputes",
    metadata,
    Column("dispute_id", BigInteger, primary_key=True, autoincrement=False),
    Column("licence_id", BigInteger, nullable=False),
    Column("model_id", BigInteger, nullable=True),
    Column("payer", String(42), nullable=False),
    Column("amount", U256, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("resolution", String(16), nullable=True),  # refund | release | split
    Column("refunded", U256, nullable=True),
    Column("released", U256, nullable=True),
    Index("ix_disputes_model", "model_id"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("licence_id", BigInteger, primary_key=True, autoincrement=False),
    Column("model_id", BigInteger, nullable=False),
    Column("reviewer", String(42), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment_cid", Text, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_reviews_model", "model_id"),
)

relayers = Table(
    "relayers",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("operator", String(42), nullable=False),
    Column("x25519_key", String(66), nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("active", Boolean, nullable=False),
)

model_relayers = Table(
    "model_relayers",
    metadata,
    Column("model_id", BigInteger, primary_key=True, autoincrement=False),
    Column("relayer", String(42), primary_key=True),
    Column("envelope_cid", Text, nullable=False),
    Column("authorised", Boolean, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("payer", String(42), primary_key=True),
    Column("model_id", BigInteger, primary_key=True, autoincrement=False),
    Column("relayer", String(42), primary_key=True),
    Column("currency", String(42), nullable=False),
    Column("deposited", U256, nullable=False),
    Column("redeemed", U256, nullable=False),
    Column("reclaimed", U256, nullable=False),
)

currencies = Table(
    "currencies",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("allowed", Boolean, nullable=False),
)

#: Cache: ERC-20 symbol and decimals by address (never changes, survives reorganisations).
tokens = Table(
    "tokens",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("symbol", String(32), nullable=False),
    Column("decimals", Integer, nullable=False),
)

#: Cache: metadata documents by CID. ``status``: pending | ok | unavailable | invalid.
metadata_docs = Table(
    "metadata",
    metadata,
    Column("cid", String(128), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("name", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("task", String(64), nullable=True),
    Column("framework", String(32), nullable=True),
    Column("tags", Text, nullable=True),  # space-separated, lower case
    Column("document", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False, default=0),  # unix seconds, wall clock
    Column("fetched_at", BigInteger, nullable=True),
)

#: Tables folded from the event log (cleared and refolded after a reorganisation), in FK-free order.
PROJECTIONS: tuple[Table, ...] = (
    models,
    offers,
    licences,
    listings,
    disputes,
    reviews,
    relayers,
    model_relayers,
    channels,
    currencies,
)

# The advisory lock that serialises table creation on PostgreSQL (any constant: "daimm" in ASCII).
_CREATE_LOCK_KEY = 0x6461696D6D

_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_fts USING fts5("
    "name, description, task, tags, tokenize='porter unicode61')"
)

#: The text search configuration of the PostgreSQL index: Snowball English stemming, like FTS5's
#: porter tokenizer, and like it no stop words (PostgreSQL's ``english`` would drop "the", "for").
PG_TEXT_CONFIG = "daimm_english"

# NOTE: the same four fields as catalog_fts, the task's hyphens made spaces like there; one vector
# rather than four weighted ones, since FTS5's bm25 here weighs every column alike.
_PG_SEARCH_DDL = (
    "DO $$ BEGIN"
    " IF NOT EXISTS (SELECT 1 FROM pg_ts_dict WHERE dictname = 'daimm_english_stem') THEN"
    " CREATE TEXT SEARCH DICTIONARY daimm_english_stem"
    " (TEMPLATE = snowball, LANGUAGE = english); END IF;"
    " IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'daimm_english') THEN"
    " CREATE TEXT SEARCH CONFIGURATION daimm_english (COPY = english);"
    " ALTER TEXT SEARCH CONFIGURATION daimm_english ALTER MAPPING FOR asciiword, asciihword,"
    " hword_asciipart, word, hword, hword_part WITH daimm_english_stem;"
    " END IF; END $$",
    "ALTER TABLE metadata ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS ("
    "to_tsvector('daimm_english', coalesce(name, '') || ' ' || coalesce(description, '')"
    " || ' ' || replace(coalesce(task, ''), '-', ' ') || ' ' || coalesce(tags, ''))) STORED",
    "CREATE INDEX IF NOT EXISTS ix_metadata_search ON metadata USING gin (search)",
)
_CONNECT_TIMEOUT_S = 10


def default_db_url(network: str | None = None) -> str:
    """``$DAIMM_CATALOG_URL``, else a SQLite file per network under ``$DAIMM_HOME`` (``~/.daimm``).

    Args:
        network: The deployment's network key (``ethereum:local:foundry``); one file per network,
            since a catalog describes one chain.
    """
    url = os.environ.get("DAIMM_CATALOG_URL")
    if url:
        return url
    home = Path(os.environ.get("DAIMM_HOME") or Path.home() / ".daimm")
    slug = (network or "default").replace(":", "-").replace("/", "-")
    return f"sqlite:///{home / f'catalog-{slug}.sqlite'}"


def _normalise_url(url: str) -> str:
    # NOTE: a bare postgresql:// URL would make SQLAlchemy load psycopg2; daimm[postgres] ships
    # psycopg 3, so plain PostgreSQL URLs are taken to mean it.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _reason(exc: BaseException) -> str:
    """The driver's own message of a database error, on one line."""
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split()) or type(orig).__name__


def _dialect_insert(dialect: str, table: Table) -> Any:
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise CatalogError(f"database {dialect!r} is not supported: use SQLite or PostgreSQL")


# NOTE: statements are built once per table and set of columns, the row given as parameters:
# building `.values(**row)` anew for every event cost more than executing it.
@lru_cache(maxsize=256)
def _insert_ignore_stmt(dialect: str, table: Table, columns: tuple[str, ...]) -> Any:
    return _dialect_insert(dialect, table).on_conflict_do_nothing()


@lru_cache(maxsize=256)
def _upsert_stmt(dialect: str, table: Table, columns: tuple[str, ...]) -> Any:
    keys = [c.name for c in table.primary_key.columns]
    stmt = _dialect_insert(dialect, table)
    updates = {k: stmt.excluded[k] for k in columns if k not in keys}
    if not updates:
        return stmt.on_conflict_do_nothing()
    return stmt.on_conflict_do_update(index_elements=keys, set_=updates)


def insert_ignore(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its primary key exists; True when it was inserted."""
    stmt = _insert_ignore_stmt(conn.dialect.name, table, tuple(sorted(row)))
    return bool(conn.execute(stmt, row).rowcount)


def upsert(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    """Insert ``row`` or update every non-key column of the existing row."""
    conn.execute(_upsert_stmt(conn.dialect.name, table, tuple(sorted(row))), row)


class CatalogStore:
    """The catalog database.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///path/catalog.sqlite`` (the default kind, created with its
            folder) or ``postgresql://user@host/db`` (read as ``postgresql+psycopg://``; needs
            ``pip install 'daimm[postgres]'``).

    Attributes:
        url: The URL with any password masked (for messages).

    Raises:
        CatalogError: The URL is malformed or names a database or driver daimm cannot use.
        CatalogUnavailableError: The database server cannot be reached.
    """

    def __init__(self, url: str) -> None:
        url = _normalise_url(url)
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise CatalogError(
                f"{url!r} is not a database URL: use sqlite:///path/catalog.sqlite or"
                " postgresql://user@host/database"
            ) from exc
        self.url = parsed.render_as_string(hide_password=True)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///") :]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            # A pooled connection that died with its server is replaced, not handed out.
            options["pool_pre_ping"] = True
            if "connect_timeout" not in parsed.query:
                options["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_S}
        try:
            self.engine: Engine = create_engine(url, **options)
        except ModuleNotFoundError as exc:
            raise CatalogError(
                f"the driver for {self.url} is not installed ({exc.name}): for PostgreSQL run"
                " `pip install 'daimm[postgres]'`"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - an unknown dialect or a malformed option
            raise CatalogError(
                f"cannot open the catalog database {self.url} ({_reason(exc)}): use"
                " sqlite:///path/catalog.sqlite or postgresql://user@host/database"
            ) from exc
        if self.engine.dialect.name not in ("sqlite", "postgresql"):
            raise CatalogError(
                f"database {self.engine.dialect.name!r} is not supported: use SQLite or PostgreSQL"
            )
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create()

    def _create(self) -> None:
        try:
            self._create_schema()
        except (OperationalError, InterfaceError) as exc:
            raise CatalogUnavailableError(
                f"cannot connect to the catalog database {self.url} ({_reason(exc)}): check"
                " --db-url (or DAIMM_CATALOG_URL) and that the database server is running"
            ) from exc
        except SQLAlchemyError as exc:  # no permission, a read-only file, ...
            raise CatalogError(
                f"cannot create the catalog tables in {self.url} ({_reason(exc)}): check that"
                " the database user may create tables there"
            ) from exc

    def _create_schema(self) -> None:
        """Tables and the search index, under a database-wide lock, so that processes opening one
        new catalog at once do not race.

        NOTE: ``create_all`` checks for each table and then creates it; two processes opening a new
        catalog together (``daimm up`` polls the database its catalog child is creating) could both
        see a table missing, and the slower one failed with "already exists". SQLite's ``BEGIN
        IMMEDIATE`` and PostgreSQL's transaction-scoped advisory lock make the second process wait
        for the first one's commit, after which it finds every table and creates nothing.
        """
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CREATE_LOCK_KEY})")
            metadata.create_all(conn)
            if self.is_sqlite:
                conn.exec_driver_sql(_FTS_DDL)
            else:
                for ddl in _PG_SEARCH_DDL:
                    conn.exec_driver_sql(ddl)
            conn.commit()

    def _unavailable(self, exc: BaseException) -> CatalogUnavailableError:
        return CatalogUnavailableError(
            f"the catalog database {self.url} is unavailable ({_reason(exc)}): check that the"
            " database server is running and reachable, then run the command again (an"
            " interrupted `daimm catalog sync` resumes from its last checkpoint)"
        )

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on any error.

        Raises:
            CatalogUnavailableError: The database went away (the transaction is not committed).
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A read connection.

        Raises:
            CatalogUnavailableError: The database cannot be reached.
        """
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise self._unavailable(exc) from exc

    def close(self) -> None:
        """Close every pooled connection (the store opens new ones if used again)."""
        self.engine.dispose()

    def get_meta(self, conn: Connection, key: str) -> str | None:
        """The indexer state ``key``, or None."""
        return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        """Set the indexer state ``key``."""
        upsert(conn, meta, {"key": key, "value": value})

    def last_block(self) -> int | None:
        """The checkpoint: every event up to this block is in the catalog (None before any sync)."""
        with self.connect() as conn:
            value = self.get_meta(conn, "last_block")
        return None if value is None else int(value)

    def refresh_fts(self, conn: Connection, model_id: int) -> None:
        """Re-index the searchable text of ``model_id`` (SQLite FTS5; on PostgreSQL the server
        keeps the generated ``search`` column, so this is a no-op there)."""
        if not self.is_sqlite:
            return
        conn.execute(text("DELETE FROM catalog_fts WHERE rowid = :id"), {"id": model_id})
        row = conn.execute(
            select(
                metadata_docs.c.name,
                metadata_docs.c.description,
                metadata_docs.c.task,
                metadata_docs.c.tags,
            )
            .select_from(models.join(metadata_docs, models.c.metadata_cid == metadata_docs.c.cid))
            .where(models.c.model_id == model_id, metadata_docs.c.status == "ok")
        ).first()
        if row is not None:
            conn.execute(
                text(
                    "INSERT INTO catalog_fts(rowid, name, description, task, tags)"
                    " VALUES (:id, :name, :description, :task, :tags)"
                ),
                {
                    "id": model_id,
                    "name": row.name or "",
                    "description": row.description or "",
                    "task": (row.task or "").replace("-", " "),
                    "tags": row.tags or "",
                },
            )

    def clear_projections(self, conn: Connection) -> None:
        """Empty every table folded from the event log (before refolding it)."""
        for table in PROJECTIONS:
            conn.execute(table.delete())
        if self.is_sqlite:
            conn.exec_driver_sql("DELETE FROM catalog_fts")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: `daimm search` can read while `daimm catalog sync` writes.
    sqlitefile.configure(cursor, "NORMAL")
    cursor.close()
