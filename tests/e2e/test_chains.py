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


def test_story__on_arbitrum_with_its_chain_id__rent_predict_receipt_and_withdraw(
    project: Any,
    iris: tuple[Path, dict[str, Any]],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    from ape import accounts, chain, networks

    from daimm.client import ApeAccountSigner, RelayerClient, verify_receipt_document
    from daimm.crypto import generate_private_key, public_key_of, save_private_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market import Marketplace
    from daimm.market.publishing import (
        check_minted_id,
        parse_metadata,
        plan_authorise_relayer,
        plan_publish,
    )
    from daimm.market.types import ETH_ADDRESS, Offer

    deployer, relayer, creator, renter = (accounts.test_accounts[i] for i in (0, 2, 3, 4))
    blocks = LocalBlockstore(tmp_path / "blocks")
    model_path, metadata = iris
    creator_key, relayer_key = generate_private_key(), generate_private_key()
    save_private_key(tmp_path / "relayer.x25519", relayer_key)
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
        model_id = published.model_id
        market.escrow.set_offer(
            model_id,
            Offer(ETH_ADDRESS, PRICE_PER_HOUR, 3600, 1, 24, True, 0, 0),
            sender=creator,
        )
        relayer_url = f"http://127.0.0.1:{port}"
        market.relayers.register(
            relayer.address, public_key_of(relayer_key).raw, relayer_url, sender=relayer
        )
        plan_authorise_relayer(
            market,
            model_id,
            relayer.address,
            backend=blocks,
            creator_key=creator_key,
            sender=creator,
        )[1].execute()
        settings = {
            "rpc_url": rpc_url,
            "chain_id": ARBITRUM_ONE,
            "deployments_file": str(tmp_path / "deployments.json"),
            "network": key,
            "x25519_key_file": str(tmp_path / "relayer.x25519"),
            "storage": "local",
            "storage_path": str(tmp_path / "blocks"),
            "port": port,
            "db_path": str(tmp_path / "relayer.sqlite3"),
            "log_poll_s": 0.2,
        }
        relayer_toml = tmp_path / "relayer.toml"
        relayer_toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
        secret = {"DAIMM_RELAYER_ACCOUNT_KEY": str(relayer.private_key)}
        with relayer_daemon(relayer_toml, port, tmp_path / "relayer.log", secret) as url:
            rental = market.escrow.rent(model_id, 1, sender=renter)
            wait_until_current(url, chain)
            client = RelayerClient(url, ApeAccountSigner(renter), expected_relayer=relayer.address)
            try:
                prediction = client.predict(model_id, {"input": metadata["sample_input"]["input"]})
            finally:
                client.close()
        receipt = verify_receipt_document(
            prediction.receipt, relayer.address, outputs=prediction.outputs
        )
        chain.pending_timestamp = rental.release_at + 1
        withdrawal = market.escrow.withdraw(ETH_ADDRESS, sender=creator)
        chain_id = int(provider.chain_id)

    assert (key, chain_id, deployment.chain_id) == (
        "arbitrum:local:foundry",
        ARBITRUM_ONE,
        ARBITRUM_ONE,
    )
    assert (receipt.model_id, prediction.receipt["chainId"]) == (model_id, ARBITRUM_ONE)
    assert len(prediction.outputs["label"]) == len(metadata["sample_input"]["input"])
    assert rental.price == PRICE_PER_HOUR
    fee = PRICE_PER_HOUR * config.fee_bps // 10_000
    assert (withdrawal.account, withdrawal.amount) == (creator.address, PRICE_PER_HOUR - fee)
