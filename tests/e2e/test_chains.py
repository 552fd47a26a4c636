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
        on_chain = {name: bool(provider.get_code(address)) for name, address in deployment.contracts.items()}
        running = (provider.network.ecosystem.name, int(provider.chain_id))

    assert key == f"{ecosystem}:local:foundry"
    assert running == (ecosystem, ANVIL_CHAIN_ID)
    assert on_chain == dict.fromkeys(CONTRACT_NAMES, True)
    recorded = DeploymentsFile(deployments).find(key)
    assert recorded is not None
    assert dict(recorded.contracts) == dict(deployment.contracts)
    assert recorded.chain_id == ANVIL_CHAIN_ID
    assert recorded.config["dispute_window"] == config.dispute_window
