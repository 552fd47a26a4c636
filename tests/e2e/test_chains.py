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
    """The relayer registers at ``url`` with an X25519 key kept in ``work/relayer.x25519``; the
    creator publishes the iris model encrypted, offered by the hour in ETH and authorised for the
    relayer, in one call (the library's one provisioning path). Returns the model id."""
    from daimm.crypto import generate_private_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market.provision import ensure_relayer, publish_model
    from daimm.market.publishing import parse_metadata
    from daimm.market.types import ETH_ADDRESS, Offer

    ensure_relayer(market, relayer, url, work / "relayer.x25519")
    model_path, metadata = model
    return publish_model(
        market,
        model_path,
        parse_metadata(metadata),
        backend=LocalBlockstore(work / "blocks"),
        creator_key=generate_private_key(),
        sender=creator,
        offer=Offer(ETH_ADDRESS, PRICE_PER_HOUR, 3600, 1, 24, True, 0, 0),
        relayers=[relayer.address],
    ).model_id


def _relayer_config(work: Path, rpc_url: str, chain_id: int, network: str, port: int) -> Path:
    """`daimm relayer serve`'s config: the deployment from ``work/deployments.json``."""
    from daimm.relayer.settings import write_settings

    return write_settings(
        work / "relayer.toml",
        rpc_url=rpc_url,
        chain_id=chain_id,
        deployments_file=work / "deployments.json",
        network=network,
        x25519_key_file=work / "relayer.x25519",
        storage="local",
        storage_path=work / "blocks",
        port=port,
        db_path=work / "relayer.sqlite3",
        log_poll_s=0.2,
    )


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
