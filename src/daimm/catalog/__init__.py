"""The catalog: contract events and verified metadata folded into a searchable database.

The indexer (:mod:`daimm.catalog.indexer`) follows the marketplace's events through a read-only
chain reader (:mod:`daimm.catalog.reader`) into SQLite or PostgreSQL (:mod:`daimm.catalog.store`);
:mod:`daimm.catalog.search` answers full-text queries with filters and creator reputation, and
:mod:`daimm.catalog.stats` gives a seller revenue, sales and ratings over time. Nothing here sends a
transaction. ``docs/CATALOG.md`` describes the schema, the resume and reorganisation strategy and
the reputation formula.
"""

from __future__ import annotations

from daimm.catalog.indexer import CatalogContracts, Indexer, SyncReport, ipfs_fetcher
from daimm.catalog.reader import ChainReader
from daimm.catalog.search import (
    ModelHit,
    PriceKind,
    Reputation,
    SearchQuery,
    SortKey,
    creator_reputation,
    get_model,
    search,
)
from daimm.catalog.store import CatalogStore, default_db_url

__all__ = [
    "CatalogContracts",
    "CatalogStore",
    "ChainReader",
    "Indexer",
    "ModelHit",
    "PriceKind",
    "Reputation",
    "SearchQuery",
    "SortKey",
    "SyncReport",
    "creator_reputation",
    "default_db_url",
    "get_model",
    "ipfs_fetcher",
    "search",
]
