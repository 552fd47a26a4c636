"""`ape console` gets a `daimm` namespace: the marketplace of the connected network."""

from __future__ import annotations

from pathlib import Path

from ape_console._cli import import_extras_file

from daimm.market import Marketplace

ROOT = Path(__file__).resolve().parents[3]


def test_consoleExtras_daimmIsTheMarketplaceOfTheConnectedNetwork(
    deployments_path, deployment, monkeypatch
):
    monkeypatch.setenv("DAIMM_DEPLOYMENTS", str(deployments_path))
    extras = import_extras_file(ROOT / "ape_console_extras.py").ape_init_extras()

    daimm = extras["daimm"]

    assert isinstance(daimm._load(), Marketplace)
    assert daimm.escrow.address == deployment.contracts["RentalEscrow"]
    assert daimm.amount("2.5 AIMT").value == 25 * 10**17


def test_consoleExtras__noDeployment__reprSaysWhatToDo(tmp_path, monkeypatch):
    monkeypatch.setenv("DAIMM_DEPLOYMENTS", str(tmp_path / "none.json"))
    extras = import_extras_file(ROOT / "ape_console_extras.py").ape_init_extras()

    assert "ape run deploy --network" in repr(extras["daimm"])
