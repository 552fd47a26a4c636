"""The compiled contract types daimm ships, so the package works outside the repository.

`scripts/export_contract_types.py` writes ``<Name>.json`` here (an ape ``ContractType``: name, ABI,
bytecode, NatSpec) from the project's ``.build/``; a test asserts these files equal a fresh
compilation, so they never go stale.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from daimm.errors import ConfigError

if TYPE_CHECKING:
    from ethpm_types import ContractType

__all__ = ["EXPORTED_FIELDS", "SHIPPED", "load", "names"]

#: The contracts shipped with the package (the deployable ones, no mocks).
SHIPPED: tuple[str, ...] = (
    "AIModelToken",
    "ModelRegistry",
    "LicenseNFT",
    "RentalEscrow",
    "RelayerRegistry",
    "CreditEscrow",
    "ReviewRegistry",
    "ProofChallenges",
    "SessionRegistry",
)

#: ContractType fields kept in the shipped files. NOTE: source maps and pc maps are left out: they
#: are large and only matter for tracing, which needs the sources anyway.
EXPORTED_FIELDS: tuple[str, ...] = (
    "contractName",
    "sourceId",
    "abi",
    "deploymentBytecode",
    "runtimeBytecode",
    "userdoc",
    "devdoc",
)


def names() -> list[str]:
    """Names of the contract types present in the package."""
    folder = resources.files(__name__)
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


@cache
def load(name: str) -> ContractType:
    """The shipped ``ContractType`` of contract ``name``.

    Raises:
        ConfigError: The package does not ship that contract (run
            `python scripts/export_contract_types.py` after `ape compile`).
    """
    from ethpm_types import ContractType

    resource = resources.files(__name__).joinpath(f"{name}.json")
    if not resource.is_file():
        raise ConfigError(
            f"daimm ships no contract type {name!r} (have: {', '.join(names()) or 'none'});"
            " in a checkout run `make compile` then `python scripts/export_contract_types.py`"
        )
    return ContractType.model_validate_json(resource.read_text())
