"""daimm on every chain its founding documents name: Ethereum, Arbitrum, Polygon, BSC, Base and
Optimism.

Each ecosystem's ape plugin (ape-arbitrum, ape-polygon, ape-bsc, ape-base, ape-optimism) adds a
``local`` network that ape-foundry serves with anvil. The first test deploys and verifies the
wiring on each of them with `ape run deploy`'s library path (``deploy_marketplace``, which reads
the wiring back), applying ``deploy-config.yaml``'s override for that network. The second runs
the whole story on Arbitrum's local network with Arbitrum One's chain id (42161): an anvil started
here, ape-foundry pointed at it, the relayer as its own process (`daimm relayer serve`), and the
renter's receipt checked against the relayer's address and the chain's id.

Neither needs the session's network: each connects to the network it names and leaves it again,
so the module runs in `make test`'s in-process pass (and is skipped nowhere).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.utils.market_fixtures import iris  # noqa: F401 - the model the story publishes
from tests.utils.relayer import anvil_node, free_port, relayer_daemon, wait_until_current

from daimm.deployments import CONTRACT_NAMES, DeploymentsFile, provider_key
from daimm.market.wiring import deploy_marketplace, load_deploy_config

pytestmark = [pytest.mark.chain]

ROOT = Path(__file__).resolve().parents[2]
#: Every ecosystem daimm is tested on, each with the ape plugin that adds it.
ECOSYSTEMS = ("ethereum", "arbitrum", "polygon", "bsc", "base", "optimism")
#: The chain id of the anvil ape-foundry starts, whatever the ecosystem.
ANVIL_CHAIN_ID = 31337


@pytest.mark.parametrize("ecosystem", ECOSYSTEMS)
def test_deploy__on_each_ecosystems_local_network__wires_and_records_every_contract(
    ecosystem: str, project: Any, tmp_path: Path
) -> None:
    from ape import accounts, networks

    deployments = tmp_path / "deployments.json"
    with networks.parse_network_choice(f"{ecosystem}:local:foundry") as provider:
        key = provider_key(provider)
        config = load_deploy_config(ROOT / "deploy-config.yaml", key)
        deployment = deploy_marketplace(
            project, accounts.test_accounts[0], config, path=deployments
        )
        on_chain = {
            name: bool(provider.get_code(address)) for name, address in deployment.contracts.items()
        }
        running = (provider.network.ecosystem.name, int(provider.chain_id))

    assert key == f"{ecosystem}:local:foundry"
    assert running == (ecosystem, ANVIL_CHAIN_ID)
    assert on_chain == dict.fromkeys(CONTRACT_NAMES, True)
    recorded = DeploymentsFile(deployments).find(key)
    assert recorded is not None
    assert dict(recorded.contracts) == dict(deployment.contracts)
    assert recorded.chain_id == ANVIL_CHAIN_ID
    assert recorded.config["dispute_window"] == config.dispute_window


# ------------------------------------------------------------------------------------ the story
#: Arbitrum One's chain id: the L2 the whole story runs on.
ARBITRUM_ONE = 42161
PRICE_PER_HOUR = 10**15


def _publish_offer_and_authorise(
    market: Any,
    model: tuple[Path, dict[str, Any]],
    work: Path,
    creator: Any,
    relayer: Any,
    url: str,
) -> int:
    """The creator publishes the iris model encrypted and offers it by the hour in ETH; the relayer
    registers at ``url`` with the X25519 key it keeps in ``work/relayer.x25519`` and is authorised.
    Returns the model id."""
    from daimm.crypto import generate_private_key, public_key_of, save_private_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market.publishing import (
        check_minted_id,
        parse_metadata,
        plan_authorise_relayer,
        plan_publish,
    )
    from daimm.market.types import ETH_ADDRESS, Offer

    blocks = LocalBlockstore(work / "blocks")
    creator_key, relayer_key = generate_private_key(), generate_private_key()
    save_private_key(work / "relayer.x25519", relayer_key)
    model_path, metadata = model
    package, plan = plan_publish(
        market,
        model_path,
        parse_metadata(metadata),
        backend=blocks,
        creator_key=creator_key,
        sender=creator,
    )
    published = plan.execute()
    check_minted_id(package, published)
    offer = Offer(ETH_ADDRESS, PRICE_PER_HOUR, 3600, 1, 24, True, 0, 0)
    market.escrow.set_offer(published.model_id, offer, sender=creator)
    market.relayers.register(relayer.address, public_key_of(relayer_key).raw, url, sender=relayer)
    _, authorise = plan_authorise_relayer(
        market,
        published.model_id,
        relayer.address,
        backend=blocks,
        creator_key=creator_key,
        sender=creator,
    )
    authorise.execute()
    return published.model_id


def _relayer_config(work: Path, rpc_url: str, chain_id: int, network: str, port: int) -> Path:
    """`daimm relayer serve`'s config: the deployment from ``work/deployments.json``."""
    settings = {
        "rpc_url": rpc_url,
        "chain_id": chain_id,
        "deployments_file": str(work / "deployments.json"),
        "network": network,
        "x25519_key_file": str(work / "relayer.x25519"),
        "storage": "local",
        "storage_path": str(work / "blocks"),
        "port": port,
        "db_path": str(work / "relayer.sqlite3"),
        "log_poll_s": 0.2,
    }
    path = work / "relayer.toml"
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return path


def test_story__on_arbitrum_with_its_chain_id__rent_predict_receipt_and_withdraw(
    project: Any,
    iris: tuple[Path, dict[str, Any]],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from ape import accounts, chain, networks

    from daimm.client import ApeAccountSigner, RelayerClient, verify_receipt_document
    from daimm.market import Marketplace
    from daimm.market.types import ETH_ADDRESS

    deployer, relayer, creator, renter = (accounts.test_accounts[i] for i in (0, 2, 3, 4))
    rows = iris[1]["sample_input"]["input"]
    port = free_port()
    with (
        anvil_node(ARBITRUM_ONE) as rpc_url,
        # ape-foundry connects to this anvil rather than starting its own (chain id 31337).
        networks.parse_network_choice(
            "arbitrum:local:foundry", provider_settings={"host": rpc_url}
        ) as provider,
    ):
        key = provider_key(provider)
        config = load_deploy_config(ROOT / "deploy-config.yaml", key)
        deployment = deploy_marketplace(
            project, deployer, config, path=tmp_path / "deployments.json"
        )
        market = Marketplace(deployment)
        model_id = _publish_offer_and_authorise(
            market, iris, tmp_path, creator, relayer, f"http://127.0.0.1:{port}"
        )
        relayer_toml = _relayer_config(tmp_path, rpc_url, ARBITRUM_ONE, key, port)
        secret = {"DAIMM_RELAYER_ACCOUNT_KEY": str(relayer.private_key)}
        with relayer_daemon(relayer_toml, port, tmp_path / "relayer.log", secret) as url:
            rental = market.escrow.rent(model_id, 1, sender=renter)
            wait_until_current(url, chain)
            client = RelayerClient(url, ApeAccountSigner(renter), expected_relayer=relayer.address)
            try:
                prediction = client.predict(model_id, {"input": rows})
            finally:
                client.close()
        receipt = verify_receipt_document(
            prediction.receipt, relayer.address, outputs=prediction.outputs
        )
        chain.pending_timestamp = rental.release_at + 1
        withdrawal = market.escrow.withdraw(ETH_ADDRESS, sender=creator)
        chain_id = int(provider.chain_id)

    assert (chain_id, deployment.chain_id) == (ARBITRUM_ONE, ARBITRUM_ONE)
    assert deployment.network == "arbitrum:local:foundry"
    assert (receipt.model_id, prediction.receipt["chainId"]) == (model_id, ARBITRUM_ONE)
    assert len(prediction.outputs["label"]) == len(rows)
    assert rental.price == PRICE_PER_HOUR
    fee = PRICE_PER_HOUR * config.fee_bps // 10_000
    assert (withdrawal.account, withdrawal.amount) == (creator.address, PRICE_PER_HOUR - fee)
