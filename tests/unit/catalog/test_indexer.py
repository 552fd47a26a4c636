"""The indexer on ape's local chain: what it records, resuming after a kill, reorganisations,
metadata it cannot fetch, and a chain it cannot read."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from daimm.catalog import CatalogStore, ChainReader, Indexer, SearchQuery, get_model, search
from daimm.catalog import store as t
from daimm.errors import CatalogError, ChainUnavailableError, StorageError
from daimm.ipfs import LocalBlockstore, add_file

AIMT = 10**18
ZERO = "0x0000000000000000000000000000000000000000"


def _rows(store: CatalogStore, table: Any) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        key = list(table.primary_key.columns)
        return [tuple(r) for r in conn.execute(select(table).order_by(*key)).all()]


def _count(store: CatalogStore, table: Any) -> int:
    with store.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_sync_records_models_offers_licences_resales_disputes_and_reviews(
    market, chain, creator, renter, buyer, arbiter, publish, set_offer, fund, make_indexer, store
):
    model_id = publish(creator, {"name": "Iris", "task": "tabular-classification"})
    set_offer(creator, model_id, rent=2, buy=30)
    fund(renter, 100)
    fund(buyer, 100)
    market.escrow.rent(model_id, 2, 4 * AIMT, sender=renter)
    market.escrow.rent(model_id, 1, 2 * AIMT, sender=renter)  # extends the same licence
    market.escrow.buy(model_id, 30 * AIMT, sender=buyer)
    rental = int(market.licences.rentalOf(model_id, renter))
    perpetual = rental + 1
    market.reviews.review(rental, 4, "bafycomment", sender=renter)
    market.licences.approve(market.escrow.address, perpetual, sender=buyer)
    market.escrow.list(perpetual, market.token.address, 20 * AIMT, sender=buyer)
    market.escrow.buyListed(perpetual, 20 * AIMT, sender=renter)
    market.escrow.openDispute(rental, sender=renter)
    dispute_id = int(market.escrow.disputeCount())
    market.escrow.resolveDispute(dispute_id, 0, 0, sender=arbiter)  # refund: licence ended

    report = make_indexer().sync()

    assert report.to_block == chain.blocks.head.number
    model = get_model(store, model_id)
    assert (model.name, model.task, model.metadata_status) == (
        "Iris",
        "tabular-classification",
        "ok",
    )
    assert (model.price_per_period, model.perpetual_price) == (2 * AIMT, 30 * AIMT)
    assert (model.symbol, model.decimals) == ("AIMT", 18)
    assert (model.rating_count, model.rating_sum) == (1, 4)
    licences = {r[0]: r for r in _rows(store, t.licences)}
    # The refunded rental was terminated (burnt); the resold licence moved to its buyer.
    assert licences[rental][1:] == (model_id, ZERO, "rental", licences[rental][4], True)
    assert licences[perpetual][1:] == (model_id, renter.address, "perpetual", None, False)
    assert _rows(store, t.listings) == []  # bought, so no longer listed
    [dispute] = _rows(store, t.disputes)
    assert (dispute[0], dispute[2], dispute[5], dispute[6]) == (
        dispute_id,
        model_id,
        False,
        "refund",
    )
    assert _count(store, t.events) == report.events


def test_sync_twice_adds_nothing_the_second_time(creator, publish, set_offer, make_indexer, store):
    model_id = publish(creator, {"name": "Twice"})
    set_offer(creator, model_id, rent=1)
    indexer = make_indexer()
    first = indexer.sync()

    second = indexer.sync()

    assert (first.events > 0, second.events) == (True, 0)
    assert _count(store, t.events) == first.events


class _Killed(BaseException):
    """Stands for the process dying (SIGKILL) in the middle of a database transaction."""


def test_sync_killed_mid_batch_resumes_with_nothing_missed_and_nothing_duplicated(
    chain, creator, renter, publish, set_offer, fund, market, make_indexer, store, new_store
):
    for i in range(4):
        model_id = publish(creator, {"name": f"model {i}"})
        set_offer(creator, model_id, rent=1)
    fund(renter, 10)
    market.escrow.rent(1, 1, AIMT, sender=renter)
    folds = {"n": 0}

    class DyingIndexer(Indexer):
        # NOTE: fault injection, not a mock: the real indexer runs until its 7th fold, then the
        # "process" dies with the batch's transaction open.
        def _fold(self, *args: Any, **kwargs: Any) -> None:
            folds["n"] += 1
            if folds["n"] == 7:
                raise _Killed
            super()._fold(*args, **kwargs)

    dying = make_indexer(batch_blocks=4)
    dying.__class__ = DyingIndexer
    with pytest.raises(_Killed):
        dying.sync()
    checkpoint = store.last_block()
    events_at_kill = _count(store, t.events)

    make_indexer(batch_blocks=4).sync()
    reference = new_store()
    make_indexer(store=reference).sync()

    assert checkpoint is not None and checkpoint < chain.blocks.head.number
    assert 0 < events_at_kill < _count(reference, t.events)
    for table in (t.events, t.models, t.offers, t.licences):
        assert _rows(store, table) == _rows(reference, table), table.name
    # Metadata rows differ only in when they were fetched (wall clock).
    assert [r[:-1] for r in _rows(store, t.metadata_docs)] == [
        r[:-1] for r in _rows(reference, t.metadata_docs)
    ]


# NOTE: reorganisations are made with the provider's own snapshot/revert (evm_snapshot/evm_revert
# on anvil): going through `chain.snapshot()` would disturb ape's per-test isolation snapshots.


def test_a_reorganisation_is_detected_and_the_dropped_blocks_are_forgotten(
    chain, creator, publish, set_offer, make_indexer, store, new_store
):
    snapshot = chain.provider.snapshot()
    model_id = publish(creator, {"name": "Orphaned fraud model", "task": "fraud-detection"})
    set_offer(creator, model_id, rent=9)
    indexer = make_indexer(reorg_depth=16)
    indexer.sync()
    assert get_model(store, model_id).name == "Orphaned fraud model"

    chain.provider.restore(snapshot)  # the blocks above are dropped; the chain grows another way
    chain.mine(3)
    replacement = publish(creator, {"name": "Canonical iris model", "task": "classification"})
    set_offer(creator, replacement, rent=1)
    report = indexer.sync()

    reference = new_store()
    make_indexer(store=reference).sync()
    assert report.reorged_from is not None
    assert replacement == model_id  # the same id, now naming another model
    assert get_model(store, model_id).name == "Canonical iris model"
    assert get_model(store, model_id).price_per_period == AIMT
    assert search(store, SearchQuery(text="fraud")) == []
    assert [h.model_id for h in search(store, SearchQuery(text="iris"))] == [model_id]
    for table in (t.events, t.models, t.offers):
        assert _rows(store, table) == _rows(reference, table), table.name


def test_a_reorganisation_deeper_than_the_window_rebuilds_from_the_start_block(
    chain, creator, publish, make_indexer, store
):
    snapshot = chain.provider.snapshot()
    publish(creator, {"name": "Gone"})
    chain.mine(5)
    indexer = make_indexer(reorg_depth=2)
    indexer.sync()

    chain.provider.restore(snapshot)
    publish(creator, {"name": "Kept"})
    chain.mine(6)
    report = indexer.sync()

    assert report.reorged_from == indexer.contracts.start_block
    assert [get_model(store, 1).name] == ["Kept"]
    assert _count(store, t.models) == 1


def test_unfetchable_metadata_is_marked_and_fetched_on_a_later_retry(
    creator, publish, set_offer, make_indexer, store, blockstore, tmp_path
):
    # NOTE: a document of its own per run: the block store is shared by the SQLite and the
    # PostgreSQL run, and the first run's added copy would make the second one's fetch succeed.
    doc = json.dumps(
        {"name": "Late fraud detector", "task": "fraud-detection", "run": tmp_path.name}
    ).encode()
    elsewhere = LocalBlockstore(tmp_path / "elsewhere")  # the CID exists, but not in our store
    cid = str(add_file(io.BytesIO(doc), elsewhere).cid)
    model_id = publish(creator, cid=cid)
    set_offer(creator, model_id, rent=1)
    now = {"t": 1_000_000.0}
    indexer = make_indexer(clock=lambda: now["t"])

    first = indexer.sync()
    early = indexer.sync()  # before the back-off has passed: not retried
    add_file(io.BytesIO(doc), blockstore)  # the document becomes available
    now["t"] += 61
    later = indexer.sync()

    assert (first.metadata_failed, early.metadata_failed, later.metadata_fetched) == (1, 0, 1)
    with store.connect() as conn:
        row = conn.execute(select(t.metadata_docs).where(t.metadata_docs.c.cid == cid)).one()
    assert (row.status, row.attempts, row.name) == ("ok", 2, "Late fraud detector")
    assert [h.model_id for h in search(store, SearchQuery(text="fraud"))] == [model_id]


def test_a_model_with_unavailable_metadata_is_listed_but_not_matched_by_text(
    creator, publish, set_offer, make_indexer, store
):
    def fail(cid: str) -> bytes:
        raise StorageError(f"no node has {cid}")

    model_id = publish(creator, cid="QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    set_offer(creator, model_id, rent=1)

    report = make_indexer(fetch_metadata=fail).sync()

    assert report.metadata_failed == 1
    assert get_model(store, model_id).metadata_status == "unavailable"
    assert [h.model_id for h in search(store, SearchQuery())] == [model_id]
    assert search(store, SearchQuery(text="anything")) == []


def test_metadata_that_is_not_a_document_is_marked_invalid_and_not_retried(
    creator, publish, put_json, make_indexer, store, blockstore
):
    cid = str(add_file(io.BytesIO(b"\x89PNG not json"), blockstore).cid)
    publish(creator, cid=cid)
    nameless = publish(creator, {"description": "no name"})
    now = {"t": 0.0}
    indexer = make_indexer(clock=lambda: now["t"])

    first = indexer.sync()
    now["t"] += 10**7
    again = indexer.sync(retry_now=True)

    assert (first.metadata_failed, again.metadata_failed) == (2, 0)
    assert indexer.metadata_status() == {"invalid": 2}
    assert get_model(store, nameless).metadata_status == "invalid"


def test_metadata_larger_than_the_limit_is_refused(
    creator, publish, make_indexer, store, blockstore
):
    big = json.dumps({"name": "big", "description": "x" * (1 << 20)}).encode()
    cid = str(add_file(io.BytesIO(big), blockstore).cid)
    model_id = publish(creator, cid=cid)

    make_indexer().sync()

    assert get_model(store, model_id).metadata_status == "unavailable"


def test_a_chain_that_cannot_be_read_commits_nothing(
    creator, publish, catalog_contracts, store, blockstore
):
    publish(creator, {"name": "x"})
    dead = ChainReader.from_url("http://127.0.0.1:9", timeout_s=1)
    indexer = Indexer(store, dead, catalog_contracts, lambda cid: b"")

    with pytest.raises(ChainUnavailableError, match="resumes where it stopped"):
        indexer.sync()

    assert (store.last_block(), _count(store, t.events)) == (None, 0)


def test_a_catalog_built_for_another_deployment_is_refused(
    creator, publish, make_indexer, store, catalog_contracts, chain, blockstore
):
    from daimm.catalog import CatalogContracts, ipfs_fetcher

    make_indexer().sync()
    other = CatalogContracts(
        {**catalog_contracts.addresses, "ModelRegistry": "0x" + "11" * 20},
        catalog_contracts.start_block,
        catalog_contracts.chain_id,
    )
    indexer = Indexer(store, ChainReader(chain.provider.web3), other, ipfs_fetcher(blockstore))

    with pytest.raises(CatalogError, match="another deployment"):
        indexer.sync()


def test_relayers_channels_and_pay_per_use_are_recorded(
    market, chain, creator, renter, relayer, publish, set_offer, fund, make_indexer, store
):
    from daimm.eip712 import Voucher, sign_voucher

    model_id = publish(creator, {"name": "Per call"})
    set_offer(creator, model_id, call=1)
    market.relayers.register(relayer, b"\x01" * 32, "http://127.0.0.1:1", sender=relayer)
    market.relayers.authorise(model_id, relayer, "bafyenvelope", sender=creator)
    fund(renter, 10)
    market.credit.deposit(model_id, relayer, 5 * AIMT, sender=renter)
    voucher = Voucher(model_id, relayer.address, 3 * AIMT, chain.chain_id, market.credit.address)
    market.credit.redeem(
        renter, voucher.as_tuple(), sign_voucher(voucher, renter.private_key), sender=relayer
    )

    make_indexer().sync()

    assert get_model(store, model_id).relayers == (relayer.address,)
    [channel] = _rows(store, t.channels)
    assert channel[3:] == (market.token.address, 5 * AIMT, 3 * AIMT, 0)
    assert _count(store, t.relayers) == 1


# ----------------------------------------------------------------- PostgreSQL going away
@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL server of this test's own, so stopping it disturbs no other test."""
    from tests.utils.postgres import PostgresServer, PostgresUnavailable, postgres_bin

    try:
        postgres_bin()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with PostgresServer.running() as server:
        yield server


@pytest.mark.parametrize("outage", ["server restart", "connection killed"])
def test_postgres_lost_mid_sync_is_one_catalog_error_and_a_resumed_sync_misses_nothing(
    outage, chain, creator, renter, publish, set_offer, fund, market, blockstore, own_postgres
):
    from daimm.catalog import CatalogContracts, ipfs_fetcher
    from daimm.errors import CatalogUnavailableError

    for i in range(4):
        model_id = publish(creator, {"name": f"outage model {i}"})
        set_offer(creator, model_id, rent=1)
    fund(renter, 10)
    market.escrow.rent(1, 1, AIMT, sender=renter)
    contracts = CatalogContracts(market.addresses, market.start_block, chain.chain_id)
    store = CatalogStore(own_postgres.create_database("outage"))
    folds = {"n": 0}

    class InterruptedIndexer(Indexer):
        # NOTE: fault injection, not a mock: the real indexer and server run; at the 7th fold the
        # server stops like a crash (or the connection is killed), the batch's transaction open.
        def _fold(self, *args: Any, **kwargs: Any) -> None:
            folds["n"] += 1
            if folds["n"] == 7:
                if outage == "server restart":
                    own_postgres.stop(mode="immediate")
                else:
                    own_postgres.terminate_connections("outage")
            super()._fold(*args, **kwargs)

    def indexer(cls: type[Indexer], target: CatalogStore) -> Indexer:
        reader = ChainReader(chain.provider.web3)
        return cls(target, reader, contracts, ipfs_fetcher(blockstore), batch_blocks=4)

    with pytest.raises(CatalogUnavailableError, match="is unavailable .*resumes from its last"):
        indexer(InterruptedIndexer, store).sync()
    if outage == "server restart":
        with pytest.raises(CatalogUnavailableError, match="is unavailable"):
            store.last_block()  # still down
        own_postgres.start()
    checkpoint = store.last_block()
    events_at_outage = _count(store, t.events)
    indexer(Indexer, store).sync()
    reference = CatalogStore(own_postgres.create_database("reference"))
    indexer(Indexer, reference).sync()

    assert checkpoint is not None and checkpoint < chain.blocks.head.number
    assert 0 < events_at_outage < _count(reference, t.events)
    for table in (t.events, t.models, t.offers, t.licences, t.blocks):
        assert _rows(store, table) == _rows(reference, table), table.name
    assert [r[:-1] for r in _rows(store, t.metadata_docs)] == [
        r[:-1] for r in _rows(reference, t.metadata_docs)
    ]
    store.close()
    reference.close()
