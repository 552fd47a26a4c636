"""Deployment to a network: deploy, verify the wiring, record it; refuse to redeploy unless forced.

Runs `scripts/deploy.py` as `ape run deploy` does (its click command), and the library under it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.utils import load_by_path

from daimm.deployments import DeploymentsFile, provider_key
from daimm.errors import ConfigError
from daimm.market import Marketplace
from daimm.market.wiring import DeployConfig, load_deploy_config, verify_wiring

ROOT = Path(__file__).resolve().parents[3]


def _deploy_script():
    return load_by_path("scripts/deploy.py", "daimm_deploy_script").cli


@pytest.fixture
def config_file(tmp_path, arbiter, treasury):
    path = tmp_path / "deploy-config.yaml"
    path.write_text(
        f"fee_bps: 300\ntreasury: '{treasury.address}'\narbiter: '{arbiter.address}'\n"
        "dispute_window: 2d\ncredit_timeout: 1h\n"
        "networks:\n  ethereum:local:\n    fee_bps: 400\n"
    )
    return path


def _run(network, config_file, deployments, *extra):
    return CliRunner().invoke(
        _deploy_script(),
        [
            "--network",
            network,
            "--account",
            "TEST::0",
            "--config",
            str(config_file),
            "--deployments",
            str(deployments),
            *extra,
        ],
    )


def test_deployScript_deploysVerifiesAndRecords(chain, config_file, tmp_path, arbiter, treasury):
    deployments = tmp_path / "deployments.json"
    key = provider_key(chain.provider)

    result = _run(key, config_file, deployments)

    assert result.exit_code == 0, result.output
    assert "Wiring verified" in result.output
    recorded = DeploymentsFile(deployments).get(key, chain_id=chain.chain_id)
    assert set(recorded.contracts) == {
        "AIModelToken",
        "ModelRegistry",
        "LicenseNFT",
        "RentalEscrow",
        "RelayerRegistry",
        "CreditEscrow",
        "ReviewRegistry",
        "SessionRegistry",
        "ProofChallenges",
    }
    market = Marketplace(recorded)
    assert market.escrow.fee_bps() == 400  # the ethereum:local override
    assert market.escrow.treasury() == treasury.address
    assert market.escrow.dispute_window() == 2 * 86400
    assert market.credit.timeout() == 3600
    assert market.escrow.has_role("ARBITER_ROLE", arbiter)
    assert market.escrow.has_role("ARBITER_ROLE", recorded.contracts["ProofChallenges"])
    assert recorded.block >= 1
    assert recorded.currencies["AIMT"] == market.token.address


def test_deployScript__networkAlreadyDeployed__changesNothingUnlessForced(
    chain, config_file, tmp_path
):
    deployments = tmp_path / "deployments.json"
    key = provider_key(chain.provider)
    _run(key, config_file, deployments)
    first = json.loads(deployments.read_text())
    height = chain.blocks.height

    again = _run(key, config_file, deployments)

    assert again.exit_code == 0
    assert "already has a daimm deployment" in again.output
    assert json.loads(deployments.read_text()) == first
    assert chain.blocks.height == height

    forced = _run(key, config_file, deployments, "--force")

    assert forced.exit_code == 0, forced.output
    new = json.loads(deployments.read_text())[key]["contracts"]["RentalEscrow"]
    assert new != first[key]["contracts"]["RentalEscrow"]


def test_deployScript__badConfig__oneErrorLineAndNothingSent(chain, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fee_bps: 5000\n")
    height = chain.blocks.height

    result = _run(provider_key(chain.provider), bad, tmp_path / "d.json")

    assert result.exit_code == 1
    assert "fee_bps: Input should be less than or equal to 1000" in result.output
    assert chain.blocks.height == height


def test_verifyWiring__configDisagrees__listsTheMismatch(deployment, deployer):
    market = Marketplace(deployment)
    instances = {name: market._instance(name) for name in deployment.contracts}
    config = DeployConfig(fee_bps=999, dispute_window="3d", credit_timeout=3600)

    with pytest.raises(ConfigError, match="RentalEscrow.feeBps is 250, expected 999"):
        verify_wiring(instances, config, deployer)


def test_loadDeployConfig_longestNetworkPrefixWins(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "fee_bps: 100\nnetworks:\n  ethereum:\n    fee_bps: 200\n"
        "  ethereum:sepolia:\n    fee_bps: 300\n    dispute_window: 12h\n"
    )

    sepolia = load_deploy_config(path, "ethereum:sepolia")
    local = load_deploy_config(path, "ethereum:local:foundry")

    assert (sepolia.fee_bps, sepolia.dispute_window) == (300, 43200)
    assert local.fee_bps == 200


def test_loadDeployConfig__unknownKeyOrBadAddress__raisesNamingIt(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fee_bps: 100\ntreasurer: deployer\narbiter: bob\n")

    with pytest.raises(ConfigError) as info:
        load_deploy_config(path, "ethereum:sepolia")

    assert "treasurer: Extra inputs are not permitted" in str(info.value)
    assert "arbiter" in str(info.value)


def test_repositoryDeployConfig_isValidForEveryDocumentedNetwork():
    chains = ("ethereum", "arbitrum", "polygon", "bsc", "base", "optimism")
    public = ("ethereum:sepolia", "arbitrum:sepolia", "polygon:amoy", "bsc:testnet")
    public += ("base:sepolia", "optimism:sepolia", *(f"{chain}:mainnet" for chain in chains))
    for network in (*(f"{chain}:local:foundry" for chain in chains), *public):
        load_deploy_config(ROOT / "deploy-config.yaml", network)
