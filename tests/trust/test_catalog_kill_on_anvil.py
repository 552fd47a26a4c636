"""The catalog indexer killed for real (SIGKILL, in its own process) mid-sync, then resumed.

tests/unit/catalog/test_indexer.py simulates the kill with an exception raised inside a batch;
here the indexer runs as a separate Python process reading anvil over HTTP, one block per
database transaction, and is SIGKILLed several times while it syncs. After each kill the
database holds nothing past its checkpoint; after the last run it equals, table by table, a
catalog built by one clean run. Runs on anvil (``--network ethereum:local:foundry``), once on
SQLite and once on PostgreSQL (where a killed client's open transaction is rolled back by the
server).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import func, select

from daimm.catalog import CatalogContracts, CatalogStore, ChainReader, Indexer, ipfs_fetcher
from daimm.catalog import store as t
from daimm.ipfs import LocalBlockstore, add_file
from tests.trust.conftest import ROOT
from tests.utils.relayer import node_url_or_skip

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
MODELS = 12
#: Kill the indexer after it reports this many more finished batches (blocks), run after run.
KILL_AFTER = (3, 9, 17)

CHILD = """
import json, sys
from daimm.catalog import CatalogContracts, CatalogStore, ChainReader, Indexer, ipfs_fetcher
from daimm.ipfs import LocalBlockstore

args = json.loads(sys.argv[1])
indexer = Indexer(
    CatalogStore(args["db"]),
    ChainReader.from_url(args["rpc"]),
    CatalogContracts(args["addresses"], args["start_block"], args["chain_id"]),
    ipfs_fetcher(LocalBlockstore(args["blocks"])),
    batch_blocks=1,
)

def progress(done, total):
    print("batch", done, total, flush=True)

indexer.sync(to_block=args["to_block"], progress=progress)
print("done", flush=True)
"""


@pytest.fixture(scope="module")
def node_url(chain: Any) -> str:
    return node_url_or_skip(chain, "the indexer process reads the chain over HTTP")


@pytest.fixture(scope="module")
def market(
    node_url: str,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    renter: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Models with stored metadata, offers and rentals: a few dozen blocks of events."""
    from daimm.market.deploy_extensions import deploy_extensions

    ext = deploy_extensions(project, deployer, contracts)
    blocks_dir = tmp_path_factory.mktemp("catalog-blocks")
    blocks = LocalBlockstore(blocks_dir)
    for i in range(MODELS):
        doc = {"name": f"kill-test model {i}", "task": "tabular-classification"}
        cid = str(add_file(io.BytesIO(json.dumps(doc).encode()), blocks).cid)
        contracts.registry.publishModel("bafyweights" + cid[-8:], cid, 100, sender=creator)
        model_id = int(contracts.registry.modelCount())
        contracts.escrow.setOffer(model_id, (ETH, 10**15, 3600, 1, 30, True, 0, 0), sender=creator)
        if i % 3 == 0:
            contracts.escrow.rent(model_id, 1, 10**15, value=10**15, sender=renter)
    return {
        "addresses": {**contracts.addresses(), **ext.addresses()},
        "blocks": str(blocks_dir),
    }


def _rows(store: CatalogStore, table: Any) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        key = list(table.primary_key.columns)
        return [tuple(r) for r in conn.execute(select(table).order_by(*key)).all()]


def _events_after(store: CatalogStore, block: int) -> int:
    with store.connect() as conn:
        query = select(func.count()).select_from(t.events).where(t.events.c.block_number > block)
        return int(conn.execute(query).scalar_one())


def test_an_indexer_killed_mid_sync_resumes_with_nothing_missed_and_nothing_duplicated(
    market: dict[str, Any],
    node_url: str,
    chain: Any,
    catalog_url: str,
    catalog_backend: str,
    catalog_databases: Any,
) -> None:
    head = chain.blocks.head.number
    args = {
        "db": catalog_url,
        "rpc": node_url,
        "addresses": market["addresses"],
        "start_block": 1,
        "chain_id": chain.chain_id,
        "blocks": market["blocks"],
        "to_block": head,
    }
    command = [sys.executable, "-c", CHILD, json.dumps(args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    store = CatalogStore(args["db"])
    checkpoints = []

    for batches in KILL_AFTER:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env=env, text=True)
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            seen += line.startswith("batch")
            if seen == batches:
                child.send_signal(signal.SIGKILL)  # mid-sync: the next batch is under way
                break
        assert child.wait(timeout=60) == -signal.SIGKILL, "the indexer finished before the kill"
        checkpoint = store.last_block()
        assert checkpoint is not None and checkpoint < head
        # A kill leaves nothing past the checkpoint: no half-written batch.
        assert _events_after(store, checkpoint) == 0
        checkpoints.append(checkpoint)

    finished = subprocess.run(command, cwd=ROOT, capture_output=True, env=env, text=True)
    reference = CatalogStore(catalog_databases.url(catalog_backend))
    Indexer(
        reference,
        ChainReader.from_url(node_url),
        CatalogContracts(market["addresses"], 1, chain.chain_id),
        ipfs_fetcher(LocalBlockstore(market["blocks"])),
    ).sync(to_block=head)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert checkpoints == sorted(checkpoints) and len(set(checkpoints)) == len(KILL_AFTER)
    assert store.last_block() == reference.last_block() == head
    for table in (t.events, t.models, t.offers, t.licences, t.blocks):
        assert _rows(store, table) == _rows(reference, table), table.name
    assert len(_rows(store, t.models)) >= MODELS
    store.close()
    reference.close()
