"""Fixtures for the web layer's tests: a marketplace on ape's local chain with two published
models (metadata in a real local block store), one rental, a catalog synced from it, and the
`daimm web` app over that catalog, driven through FastAPI's test client.

The in-process chain has no HTTP endpoint, so the app's RPC URL points at a closed port: pages
show the "chain unavailable" banner and ``/api/rpc`` answers 502 (the browser suite in
tests/e2e/test_web.py runs against anvil).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from daimm.catalog import CatalogContracts, CatalogStore, ChainReader, Indexer, ipfs_fetcher
from daimm.deployments import Deployment, DeploymentsFile
from daimm.ipfs import LocalBlockstore, add_file
from daimm.web import WebConfig, create_app

AIMT = 10**18
HOUR = 3600
NETWORK = "ethereum:local:test"
#: Nothing listens here (port 9 is "discard", closed on test machines).
DEAD_RPC = "http://127.0.0.1:9"

CANCER = {
    "name": "Breast cancer tumour classifier",
    "description": "Logistic regression on the Wisconsin breast cancer data set.",
    "task": "tabular-classification",
    "framework": "onnx",
    "tags": ["medical", "sklearn"],
    "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 30]}],
    "outputs": [{"name": "label", "dtype": "int64", "shape": [None]}],
    "sample_input": {"input": [[0.0] * 30]},
    "metrics": {"accuracy": 0.9790},
    "training_data": "sklearn load_breast_cancer",
    "licence": "Research use only.",
}
SENTIMENT = {
    "name": "Review sentiment",
    "description": "Tells positive from negative product reviews.",
    "task": "text-classification",
    "framework": "onnx",
    "tags": ["nlp"],
}


@pytest.fixture(scope="module")
def site(
    project: Any,
    chain: Any,
    deployer: Any,
    contracts: Any,
    creator: Any,
    renter: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Two models by ``creator`` (the cancer one rentable for 2 AIMT an hour or 100 AIMT to buy,
    the sentiment one per call only), ``renter`` rents the first for 3 hours; catalog synced."""
    from daimm.market.deploy_extensions import deploy_extensions

    work = tmp_path_factory.mktemp("web")
    start = chain.blocks.head.number + 1
    ext = deploy_extensions(project, deployer, contracts)
    blocks = LocalBlockstore(work / "blocks")

    def put(doc: dict[str, Any]) -> str:
        return str(add_file(io.BytesIO(json.dumps(doc).encode()), blocks).cid)

    token = contracts.token.address
    ids = []
    for doc, terms in (
        (CANCER, (2 * AIMT, HOUR, 1, 720, True, 100 * AIMT, 0)),
        (SENTIMENT, (0, 0, 0, 0, True, 0, AIMT // 10)),
    ):
        cid = put(doc)
        contracts.registry.publishModel("bafyweights" + cid[-8:], cid, 500, sender=creator)
        model_id = int(contracts.registry.modelCount())
        contracts.escrow.setOffer(model_id, (token, *terms), sender=creator)
        ids.append(model_id)
    contracts.escrow.rent(ids[0], 3, 6 * AIMT, sender=renter)

    addresses = {**contracts.addresses(), **ext.addresses()}
    catalog_url = f"sqlite:///{work / 'catalog.sqlite'}"
    store = CatalogStore(catalog_url)
    Indexer(
        store,
        ChainReader(chain.provider.web3),
        CatalogContracts(addresses, start, chain.chain_id),
        ipfs_fetcher(blocks),
    ).sync()
    deployments = work / "deployments.json"
    DeploymentsFile(deployments).put(
        Deployment(
            network=NETWORK,
            chain_id=chain.chain_id,
            block=start,
            contracts=addresses,
            currencies={"ETH": "0x" + "00" * 20, "AIMT": token},
        )
    )
    return {
        "catalog_url": catalog_url,
        "deployments": str(deployments),
        "cancer": ids[0],
        "sentiment": ids[1],
        "creator": str(creator.address),
        "renter": str(renter.address),
        "chain_id": chain.chain_id,
        "work": Path(work),
    }


def make_client(site: dict[str, Any], **overrides: Any) -> TestClient:
    config = WebConfig(
        catalog_url=site["catalog_url"],
        rpc_url=overrides.pop("rpc_url", DEAD_RPC),
        deployments=site["deployments"],
        network=NETWORK,
        **overrides,
    )
    return TestClient(create_app(config), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(site: dict[str, Any]) -> Iterator[TestClient]:
    with make_client(site) as test_client:
        yield test_client
