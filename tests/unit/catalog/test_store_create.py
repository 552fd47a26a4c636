"""Opening a new catalog from several processes at once (``daimm up`` polls the database its
catalog child is still creating), on SQLite and PostgreSQL (``catalog_backend``)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from typing import Any

from daimm.catalog.store import CatalogStore


def _open(
    url: str, start: multiprocessing.synchronize.Event, errors: multiprocessing.Queue
) -> None:
    start.wait()
    try:
        CatalogStore(url).engine.dispose()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")


def test_open__several_processes_create_one_new_catalog__none_fails(
    catalog_backend: str, catalog_databases: Any
) -> None:
    ctx = multiprocessing.get_context("fork")
    errors: multiprocessing.Queue = ctx.Queue()
    for _attempt in range(8):
        url = catalog_databases.url(catalog_backend)
        start = ctx.Event()
        procs = [ctx.Process(target=_open, args=(url, start, errors)) for _ in range(4)]
        for proc in procs:
            proc.start()
        start.set()
        for proc in procs:
            proc.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
