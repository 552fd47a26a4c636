"""bench/catalog_data.py, the synthetic catalog the benchmarks use, on both databases: it goes
through the real indexer (so it breaks loudly if the contracts' events change), search and model
pages work on it, and its bulk loader gives the same tables as a real sync."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daimm.catalog import CatalogStore, SearchQuery, SortKey, get_model, search
from daimm.catalog import store as t
from daimm.catalog.stats import model_stats

MODELS = 60


def _catalog_data() -> Any:
    # NOTE: loaded by path: bench/ is not a package.
    path = Path(__file__).resolve().parents[3] / "bench" / "catalog_data.py"
    spec = importlib.util.spec_from_file_location("daimm_catalog_data", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


catalog_data = _catalog_data()


def _rows(store: CatalogStore, table: Any) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        key = list(table.primary_key.columns)
        return [tuple(r) for r in conn.execute(select(table).order_by(*key)).all()]


def test_populate_fills_a_catalog_that_search_model_pages_and_stats_work_on(store):
    catalog_data.populate(store, MODELS, seed=3)

    assert len(_rows(store, t.models)) == MODELS
    assert {r[1] for r in _rows(store, t.metadata_docs)} == {"ok"}
    [hit] = search(store, SearchQuery(sort=SortKey.RATING, limit=1))
    assert hit.rating is not None and hit.symbol == "AIMT" and hit.name
    word = hit.name.split()[-1]
    assert hit.model_id in [h.model_id for h in search(store, SearchQuery(text=word, limit=100))]
    assert get_model(store, hit.model_id).reputation is not None
    assert model_stats(store, hit.model_id).revenue


def test_populate_bulk_gives_the_same_tables_as_a_real_sync(store, new_store):
    catalog_data.populate(store, MODELS, seed=3)
    bulk = new_store()

    events = catalog_data.populate_bulk(bulk, MODELS, seed=3)

    assert events == len(_rows(store, t.events))
    for table in (t.events, t.models, t.offers, t.licences, t.reviews, t.disputes, t.tokens):
        assert _rows(bulk, table) == _rows(store, table), table.name
    # Metadata rows differ only in when they were fetched (wall clock).
    assert [r[:-1] for r in _rows(bulk, t.metadata_docs)] == [
        r[:-1] for r in _rows(store, t.metadata_docs)
    ]
