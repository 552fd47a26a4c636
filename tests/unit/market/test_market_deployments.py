"""The deployments file (pure: no chain)."""

from __future__ import annotations

import json

import pytest

from daimm.deployments import Deployment, DeploymentsFile, default_path, network_key
from daimm.errors import ConfigError, DeploymentNotFoundError


def _deployment(network="ethereum:sepolia", chain_id=11155111):
    return Deployment(
        network=network,
        chain_id=chain_id,
        block=7_000_000,
        contracts={"RentalEscrow": "0x" + "11" * 20},
        currencies={"ETH": "0x" + "00" * 20},
        deployer="0x" + "22" * 20,
        deployed_at="2026-11-22T00:00:00+00:00",
        config={"fee_bps": 250},
    )


def test_putThenGet_roundTripsEveryField(tmp_path):
    store = DeploymentsFile(tmp_path / "deployments.json")
    store.put(_deployment())

    got = store.get("ethereum:sepolia", chain_id=11155111)

    assert got == _deployment()
    assert got.address("RentalEscrow") == "0x" + "11" * 20


def test_put_keepsOtherNetworks(tmp_path):
    store = DeploymentsFile(tmp_path / "deployments.json")
    store.put(_deployment())
    store.put(_deployment("ethereum:local:foundry", 31337))

    assert store.networks() == ["ethereum:local:foundry", "ethereum:sepolia"]
    assert json.loads((tmp_path / "deployments.json").read_text())["ethereum:sepolia"]["block"] == (
        7_000_000
    )


def test_get__unknownNetwork__namesTheDeployCommandAndTheKnownNetworks(tmp_path):
    store = DeploymentsFile(tmp_path / "deployments.json")
    store.put(_deployment())

    with pytest.raises(DeploymentNotFoundError) as info:
        store.get("ethereum:mainnet")

    message = str(info.value)
    assert "no daimm deployment for network ethereum:mainnet" in message
    assert "deployed on: ethereum:sepolia" in message
    assert "ape run deploy --network ethereum:mainnet" in message


def test_get__otherChainId__refusesTheDeployment(tmp_path):
    store = DeploymentsFile(tmp_path / "deployments.json")
    store.put(_deployment())

    with pytest.raises(DeploymentNotFoundError, match="is for chain 11155111 but the connected"):
        store.get("ethereum:sepolia", chain_id=1)


def test_address__missingContract__raises(tmp_path):
    with pytest.raises(DeploymentNotFoundError, match="has no CreditEscrow"):
        _deployment().address("CreditEscrow")


def test_read__malformedFile__raisesConfigError(tmp_path):
    path = tmp_path / "deployments.json"
    path.write_text("{not json")

    with pytest.raises(ConfigError, match="cannot read deployments file"):
        DeploymentsFile(path).get("ethereum:sepolia")


def test_read__entryMissingFields__raisesConfigError(tmp_path):
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps({"ethereum:sepolia": {"contracts": {}}}))

    with pytest.raises(ConfigError, match="malformed"):
        DeploymentsFile(path).get("ethereum:sepolia")


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        (("ethereum", "sepolia", "alchemy"), "ethereum:sepolia"),
        (("ethereum", "sepolia", "infura"), "ethereum:sepolia"),
        (("ethereum", "local", "foundry"), "ethereum:local:foundry"),
        (("ethereum", "local", "test"), "ethereum:local:test"),
        (("ethereum", "mainnet-fork", "foundry"), "ethereum:mainnet-fork:foundry"),
    ],
)
def test_networkKey_namesTheProviderOnlyForLocalChains(parts, key):
    assert network_key(*parts) == key


def test_defaultPath_followsTheEnvironment(monkeypatch, tmp_path):
    monkeypatch.delenv("DAIMM_DEPLOYMENTS", raising=False)
    assert str(default_path()) == "deployments.json"
    monkeypatch.setenv("DAIMM_DEPLOYMENTS", str(tmp_path / "d.json"))
    assert default_path() == tmp_path / "d.json"
