"""The contract types the package ships equal the freshly compiled ones, so they never go stale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.utils import load_by_path

from daimm import contracts

ROOT = Path(__file__).resolve().parents[3]


def _exporter():
    return load_by_path("scripts/export_contract_types.py", "export_contract_types")


@pytest.mark.parametrize("name", contracts.SHIPPED)
def test_shippedContractType_equalsTheFreshCompilation(name, project):
    exporter = _exporter()
    fresh = project.get_contract(name).contract_type.model_dump(mode="json", by_alias=True)
    shipped = (ROOT / "src" / "daimm" / "contracts" / f"{name}.json").read_text()

    assert json.loads(shipped) == exporter.exported(fresh), (
        f"src/daimm/contracts/{name}.json is stale: run `python scripts/export_contract_types.py`"
    )


def test_load_givesAnApeContractTypeWithTheAbi(project):
    escrow = contracts.load("RentalEscrow")

    assert escrow.name == "RentalEscrow"
    assert {e.name for e in escrow.errors} >= {"PriceAboveMax", "OfferInactive"}
    assert escrow.abi == project.RentalEscrow.contract_type.abi


def test_load__unknownName__saysHowToExport():
    from daimm.errors import ConfigError

    with pytest.raises(ConfigError, match="export_contract_types"):
        contracts.load("NoSuchContract")
