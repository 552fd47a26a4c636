"""Opening a new catalog from several processes at once (``daimm up`` polls the database its
catalog child is still creating), on SQLite and PostgreSQL (``catalog_backend``)."""

from __future__ import annotations

from typing import Any

from tests.utils.at_once import errors_at_once

from daimm.catalog.store import CatalogStore


def _open(url: str) -> None:
    CatalogStore(url).engine.dispose()


def test_open__several_processes_create_one_new_catalog__none_fails(
    catalog_backend: str, catalog_databases: Any
) -> None:
    found = []
    for _attempt in range(8):
        found += errors_at_once(_open, (catalog_databases.url(catalog_backend),))
    assert found == []
