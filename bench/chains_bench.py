"""daimm on each chain: a rental's gas and cost, and the relayer and catalog on BSC's 0.45 s blocks.

Run from the repository root after `make compile`:

    PATH=node_modules/.bin:$PATH .venv/bin/python bench/chains_bench.py

Writes bench/results/chains.json; the tables are in bench/README.md ("## Chains").

1. **Gas per chain.** On each ecosystem's local network (`<eco>:local:foundry`, anvil on Cancun) it
   runs scripts/gas_bench.py's scenario and keeps the rows a renter, a buyer and a payee pay. The
   cost in the chain's native currency is ``gas × ASSUMED_GAS_PRICE_GWEI`` (a stated assumption,
   not a measurement; anvil prices nothing like the real chains). On the rollups (Arbitrum, Base,
   Optimism) the L1 data fee comes on top and is not modelled by a local anvil.
2. **Fast blocks.** An anvil with chain id 56 given a block every 0.45 s (BSC since the Fermi
   upgrade; `evm_mine` from a thread, as ape misreads receipts under `anvil --block-time`, and each
   rental adds its own block). The relayer's log watcher (`ChainReader` + `LogWatcher`, 1 s polls,
   `log_poll_s`'s default) and the catalog (`Indexer.sync` every 2 s, the default of `daimm
   catalog sync --follow`) follow it while a renter rents once a second and a request checks
   access 20 times a second. Then 8,000 blocks (an hour of BSC) are mined at once, as during an
   outage, and one watcher poll and one catalog sync catch up.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "chains.json"
ECOSYSTEMS = ("ethereum", "arbitrum", "polygon", "bsc", "base", "optimism")
#: Rows of gas_bench a user of the marketplace pays (deploy_total is paid once, by the operator).
ROWS = ("rent_first", "rent_extend", "buy_perpetual", "withdraw", "credit_deposit", "deploy_total")
#: ASSUMPTION, not measured: a typical gas price on each chain in late 2026, in gwei of its
#: native currency (an L2's execution price only).
ASSUMED_GAS_PRICE_GWEI = {
    "ethereum": 2.0,
    "arbitrum": 0.01,
    "polygon": 30.0,
    "bsc": 0.1,
    "base": 0.01,
    "optimism": 0.001,
}
NATIVE = {
    "ethereum": "ETH",
    "arbitrum": "ETH",
    "polygon": "POL",
    "bsc": "BNB",
    "base": "ETH",
    "optimism": "ETH",
}
BSC_CHAIN_ID = 56
BLOCK_TIME_S = 0.45
FOLLOW_S = 30.0
OUTAGE_BLOCKS = 8_000

log = logging.getLogger("daimm.bench.chains")


def _load(relative: str) -> Any:
    # NOTE: by path: scripts/ is no package, and a site-packages `tests` package may shadow ours.
    spec = importlib.util.spec_from_file_location(Path(relative).stem, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gas_per_chain() -> dict[str, Any]:
    """gas_bench's scenario on each ecosystem's local network; its cost at the assumed price."""
    from ape import networks

    bench = _load("scripts/gas_bench.py")
    out: dict[str, Any] = {}
    for ecosystem in ECOSYSTEMS:
        with networks.parse_network_choice(f"{ecosystem}:local:foundry") as provider:
            gas = bench.measure()
            chain_id = int(provider.chain_id)
        price = ASSUMED_GAS_PRICE_GWEI[ecosystem]
        out[ecosystem] = {
            "chain_id_of_local_anvil": chain_id,
            "gas": {row: int(gas[row]) for row in ROWS},
            "assumed_gas_price_gwei": price,
            "native": NATIVE[ecosystem],
            "cost_native": {row: int(gas[row]) * price * 1e-9 for row in ROWS},
        }
        log.info("%-9s rent_first %d gas", ecosystem, gas["rent_first"])
    return out


# ------------------------------------------------------------------------------------ fast blocks
def _rpc(url: str, method: str, *params: Any, timeout_s: float = 30.0) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return httpx.post(url, json=body, timeout=timeout_s).json()["result"]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "max": round(max(values), 4),
    }


def fast_blocks(work: Path) -> dict[str, Any]:
    """The relayer's watcher and the catalog following a chain of 0.45 s blocks; see the module."""
    from ape import accounts, networks, project

    from daimm.catalog import CatalogContracts, CatalogStore, Indexer
    from daimm.catalog.reader import ChainReader as CatalogReader
    from daimm.market.wiring import DeployConfig, deploy_marketplace
    from daimm.relayer.chain import ChainReader, LogWatcher

    deployer, creator, renter = (accounts.test_accounts[i] for i in (0, 3, 4))
    with (
        _load("tests/utils/relayer.py").anvil_node(BSC_CHAIN_ID) as url,
        networks.parse_network_choice("bsc:local:foundry", provider_settings={"host": url}),
    ):
        config = DeployConfig.model_validate({"dispute_window": "1h", "credit_timeout": "1h"})
        deployment = deploy_marketplace(project, deployer, config, path=work / "deployments.json")
        registry = project.ModelRegistry.at(deployment.address("ModelRegistry"))
        escrow = project.RentalEscrow.at(deployment.address("RentalEscrow"))
        cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        tx = registry.publishModel(cid, cid, 0, sender=creator)
        model_id = int(tx.events.filter(registry.ModelPublished)[0].modelId)
        eth = "0x0000000000000000000000000000000000000000"
        escrow.setOffer(model_id, (eth, 10**12, 3600, 1, 24, True, 0, 0), sender=creator)

        # The relayer's reader and watcher, as `daimm relayer serve` builds them.
        reader = ChainReader(url, dict(deployment.contracts), timeout_s=2.0, ttl_s=3.0)
        polls: list[tuple[float, int, int]] = []
        logs_seen = [0]
        calls = [0]
        poll, apply_log, call = reader.poll, reader._apply_log, reader._call

        def timed_poll(from_block: int) -> int:
            started = time.perf_counter()
            latest = poll(from_block)
            polls.append((time.perf_counter() - started, latest - from_block + 1, from_block))
            return latest

        def counted_apply(entry: Any) -> None:
            logs_seen[0] += 1
            apply_log(entry)

        def counted_call(*args: Any) -> Any:
            calls[0] += 1
            return call(*args)

        reader.poll, reader._apply_log, reader._call = timed_poll, counted_apply, counted_call  # type: ignore[method-assign]
        watcher = LogWatcher(reader, interval_s=1.0)
        watcher.start()
        first_block = polls[0][2]

        store = CatalogStore(f"sqlite:///{work / 'catalog.sqlite'}")
        indexer = Indexer(
            store,
            CatalogReader.from_url(url),
            CatalogContracts.from_deployment(deployment),
            lambda cid: None,
        )
        syncs: list[tuple[float, int]] = []
        stop = threading.Event()

        def follow() -> None:
            while not stop.is_set():
                report = indexer.sync(fetch_metadata=False)
                syncs.append((report.seconds, report.to_block - report.from_block + 1))
                stop.wait(2.0)

        def check_access() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    reader.has_access(model_id, renter.address)
                time.sleep(0.05)

        def mine() -> None:
            while not stop.wait(BLOCK_TIME_S):
                _rpc(url, "evm_mine")

        threads = [threading.Thread(target=f, daemon=True) for f in (mine, follow, check_access)]
        for thread in threads:
            thread.start()
        lags: list[int] = []
        rentals = 0
        checks_before = calls[0]
        started = time.monotonic()
        while time.monotonic() - started < FOLLOW_S:
            escrow.rent(model_id, 1, 10**12, value=10**12, sender=renter)
            rentals += 1
            head = int(_rpc(url, "eth_blockNumber"), 16)
            lags.append(head - (reader.latest_block or 0))
            time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        watcher.stop()
        followed_s = time.monotonic() - started
        last = reader.latest_block or 0
        expected = _rpc(
            url,
            "eth_getLogs",
            {
                "fromBlock": hex(first_block),
                "toBlock": hex(last),
                "address": list(deployment.contracts.values()),
            },
        )
        access_reads = calls[0] - checks_before
        indexer.sync(fetch_metadata=False)
        with store.connect() as conn:
            from sqlalchemy import func, select

            from daimm.catalog import store as tables

            rented = tables.events.c.event == "Rented"
            rentals_indexed = conn.execute(
                select(func.count()).select_from(tables.events).where(rented)
            ).scalar()

        # An outage: an hour of BSC blocks mined at once, then one poll and one sync catch up.
        _rpc(url, "anvil_mine", hex(OUTAGE_BLOCKS), timeout_s=600)
        polls_before = len(polls)
        caught_up = time.perf_counter()
        reader.poll((reader.latest_block or 0) + 1)
        watcher_catch_up = time.perf_counter() - caught_up
        catalog_catch_up = indexer.sync(fetch_metadata=False)

    blocks = last - first_block + 1
    return {
        "block_time_s": BLOCK_TIME_S,
        "followed_s": round(followed_s, 1),
        "blocks": blocks,
        "seconds_per_block": round(followed_s / blocks, 3),
        "rentals": rentals,
        "watcher": {
            "poll_interval_s": 1.0,
            "poll_seconds": _summary([p[0] for p in polls[:polls_before]]),
            "blocks_per_poll": _summary([float(p[1]) for p in polls[:polls_before]]),
            "lag_blocks_at_each_rental": _summary([float(x) for x in lags]),
            "logs_seen": logs_seen[0],
            "logs_on_chain": len(expected),
            "access_checks_per_s": 20,
            "access_reads_per_s": round(access_reads / followed_s, 2),
            "catch_up_blocks": OUTAGE_BLOCKS,
            "catch_up_seconds": round(watcher_catch_up, 3),
        },
        "catalog": {
            "sync_interval_s": 2.0,
            "sync_seconds": _summary([s[0] for s in syncs]),
            "blocks_per_sync": _summary([float(s[1]) for s in syncs]),
            "rentals_indexed": rentals_indexed,
            "catch_up_blocks": OUTAGE_BLOCKS,
            "catch_up_seconds": round(catalog_catch_up.seconds, 3),
        },
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("ape").setLevel(logging.WARNING)
    only = set(sys.argv[1:]) or {"gas", "fast-blocks"}
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if "gas" in only:
        results["gas"] = gas_per_chain()
    if "fast-blocks" in only:
        with tempfile.TemporaryDirectory() as work:
            results["fast_blocks"] = fast_blocks(Path(work))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    log.info("%s", json.dumps(results.get("fast_blocks", {}), indent=2))
    log.info("wrote %s", RESULTS)


if __name__ == "__main__":
    main()
