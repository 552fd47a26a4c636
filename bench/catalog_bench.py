"""Catalog benchmark: how sync and search cost grow with the catalog, on SQLite and PostgreSQL.

Run: `python bench/catalog_bench.py` (1k, 10k and 100k models on both databases, about 80 minutes
on 2 shared cores; `--sizes 1000` for a quick run). Writes `bench/results/catalog.json`.

For each database and size, a fresh catalog is filled by `bench/catalog_data.py` (synthetic but
realistic models: metadata, AIMT offers, rentals, purchases, reviews, disputes; about 11 events a
model):

- **sync** (sizes up to `--real-max`, default 10k): the real `Indexer.sync` over the synthetic
  chain's ABI-encoded logs (`eth_getLogs` answered from memory, 500 blocks a batch), so the rate
  counts decoding, folding, committing and fetching + parsing every metadata document;
  `sync_events_s` is events / wall seconds.
- **bulk** (larger sizes): the same events, already decoded, through the indexer's own
  `Indexer.apply` (record + fold) in 50k-event transactions, then a sync that fetches the metadata
  (`bulk_events_s`): the real sync would take ~3x longer at 100k, and what is measured there is
  search over the result. Both paths give identical tables (checked in `catalog_data`).
- **search** after `ANALYZE`: each query of `QUERIES` run `--repeats` times (after 3 warm-ups);
  p50 and p99 of wall milliseconds, through `daimm.catalog.search` (relayers and creator
  reputation included, as the CLI and web pages get them) and `get_model` for a model page.

PostgreSQL is a throwaway PostgreSQL 16 from the pgserver wheel on a unix socket, `fsync` on with
`synchronous_commit = off`: the durability of the catalog's SQLite (WAL, `synchronous=NORMAL`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from catalog_data import AIMT_ADDRESS, build_chain, populate_bulk, sync_chain  # noqa: E402

from daimm.catalog import CatalogStore, SearchQuery, SortKey, get_model, search  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "catalog.json"
AIMT = 10**18


def _queries(n_models: int) -> dict[str, Callable[[CatalogStore, random.Random], Any]]:
    aimt = AIMT_ADDRESS
    return {
        # Free text, two words: the common case of the search box.
        "text": lambda s, r: search(s, SearchQuery(text="fraud detector")),
        # One short word, matched as a prefix (search-as-you-type).
        "prefix": lambda s, r: search(s, SearchQuery(text="forec")),
        # The example: text + task + price cap + rating floor, cheapest first.
        "text_filter_sort": lambda s, r: search(
            s,
            SearchQuery(
                text="fraud detection",
                task="tabular-classification",
                currency=aimt,
                max_price=5 * AIMT,
                min_rating=3,
                sort=SortKey.PRICE,
            ),
        ),
        # Filters and a sort, no text: browse a task by rating.
        "filter_sort": lambda s, r: search(
            s, SearchQuery(task="image-classification", sort=SortKey.RATING)
        ),
        # A page deep in the newest-first listing.
        "page": lambda s, r: search(
            s, SearchQuery(sort=SortKey.NEWEST, limit=20, offset=min(1000, n_models // 2))
        ),
        # A model page: one model with its relayers and creator reputation.
        "model_page": lambda s, r: get_model(s, r.randint(1, n_models)),
    }


def _postgres_server_class() -> Any:
    # NOTE: loaded by path: the throwaway server helper lives with the tests (no tests/__init__.py,
    # and a site-packages `tests` package may shadow ours).
    import importlib.util

    spec = importlib.util.spec_from_file_location("daimm_pg", ROOT / "tests/utils/postgres.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PostgresServer


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _size_mib(store: CatalogStore, url: str) -> float:
    if store.is_sqlite:
        path = Path(url[len("sqlite:///") :])
        files = [path, Path(f"{path}-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / (1 << 20)
    with store.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    return int(size) / (1 << 20)


def bench_one(url: str, n_models: int, real_max: int, repeats: int) -> dict[str, Any]:
    store = CatalogStore(url)
    out: dict[str, Any] = {"models": n_models}
    if n_models <= real_max:
        chain = build_chain(n_models)
        started = time.perf_counter()
        sync_chain(store, chain)
        seconds = time.perf_counter() - started
        out.update(events=chain.events, sync_s=round(seconds, 1))
        out["sync_events_s"] = round(chain.events / seconds)
    else:
        started = time.perf_counter()
        events = populate_bulk(store, n_models)
        seconds = time.perf_counter() - started
        out.update(events=events, bulk_s=round(seconds, 1))
        out["bulk_events_s"] = round(events / seconds)
    with store.begin() as conn:
        conn.execute(text("ANALYZE"))
    out["db_mib"] = round(_size_mib(store, url), 1)
    rng = random.Random(1)
    for name, run in _queries(n_models).items():
        for _ in range(3):
            run(store, rng)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run(store, rng)
            times.append((time.perf_counter() - started) * 1000)
        out[f"{name}_p50_ms"] = round(statistics.median(times), 2)
        out[f"{name}_p99_ms"] = round(_percentile(times, 0.99), 2)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="models, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--real-max", type=int, default=10_000, help="largest size synced for real")
    parser.add_argument("--repeats", type=int, default=50, help="runs of each query")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON results file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    results: dict[str, Any] = {"sizes": sizes}
    with tempfile.TemporaryDirectory(prefix="daimm-catalog-bench-") as tmp:
        server = None
        if "postgresql" in backends:
            server = _postgres_server_class()(durable=True)
            server.start()
        try:
            for backend in backends:
                rows = []
                for n in sizes:
                    if backend == "sqlite":
                        url = f"sqlite:///{Path(tmp) / f'catalog-{n}.sqlite'}"
                    else:
                        assert server is not None
                        url = server.create_database(f"catalog_{n}")
                    row = bench_one(url, n, args.real_max, args.repeats)
                    print(backend, json.dumps(row), flush=True)
                    rows.append(row)
                results[backend] = rows
        finally:
            if server is not None:
                server.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
