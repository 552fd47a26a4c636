"""The deployments file: where daimm's contracts live on each network.

`ape run deploy` writes it; the CLI, the relayer and `ape console` read it. It is a JSON object
keyed by network (``ethereum:sepolia``, or ``ethereum:local:foundry`` for a local chain, whose state
belongs to one provider), each entry holding the chain id, the deploy block, the contract addresses
and the allowed currencies::

    {
      "ethereum:sepolia": {
        "chain_id": 11155111,
        "block": 7012345,
        "deployer": "0x...",
        "deployed_at": "2026-11-22T14:30:00+00:00",
        "contracts": {"AIModelToken": "0x...", "RentalEscrow": "0x...", ...},
        "currencies": {"ETH": "0x0000000000000000000000000000000000000000", "AIMT": "0x..."},
        "config": {"fee_bps": 250, ...}
      }
    }

The file is found at ``$DAIMM_DEPLOYMENTS`` or ``./deployments.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from daimm.errors import ConfigError, DeploymentNotFoundError

if TYPE_CHECKING:
    from ape.api.providers import ProviderAPI

__all__ = [
    "CONTRACT_NAMES",
    "ENV_VAR",
    "Deployment",
    "DeploymentsFile",
    "current_deployment",
    "default_path",
    "network_key",
]

ENV_VAR = "DAIMM_DEPLOYMENTS"

#: The contracts a complete deployment records, core then extensions.
CONTRACT_NAMES: tuple[str, ...] = (
    "AIModelToken",
    "ModelRegistry",
    "LicenseNFT",
    "RentalEscrow",
    "RelayerRegistry",
    "CreditEscrow",
    "ReviewRegistry",
    "SessionRegistry",
    "ProofChallenges",
)


def default_path() -> Path:
    """``$DAIMM_DEPLOYMENTS`` if set, else ``deployments.json`` in the working directory."""
    return Path(os.environ.get(ENV_VAR) or "deployments.json")


def network_key(ecosystem: str, network: str, provider: str) -> str:
    """The key a deployment is recorded under.

    A public network's state is the same whichever provider (Infura, Alchemy, a node) serves it, so
    the key is ``ecosystem:network``. A local chain or a fork belongs to its provider (anvil's chain
    is not ape-test's), so the key names it: ``ethereum:local:foundry``.
    """
    if network == "local" or network.endswith("-fork"):
        return f"{ecosystem}:{network}:{provider}"
    return f"{ecosystem}:{network}"


def provider_key(provider: ProviderAPI) -> str:
    """:func:`network_key` of a connected ape provider."""
    network = provider.network
    return network_key(network.ecosystem.name, network.name, provider.name)


@dataclass(frozen=True)
class Deployment:
    """One network's deployment of daimm.

    Attributes:
        network: The key it is recorded under (see :func:`network_key`).
        chain_id: The chain id it was deployed on; checked against the connected chain.
        block: The block of the first deployment transaction (where indexers start).
        contracts: Contract name -> checksummed address.
        currencies: Symbol -> address of each allowed currency (``ETH`` is the zero address).
        deployer: The account that deployed (and holds the admin role).
        deployed_at: ISO-8601 time of the deployment.
        config: The deploy configuration used (fee, treasury, arbiter, windows), for the record.
    """

    network: str
    chain_id: int
    block: int
    contracts: Mapping[str, str]
    currencies: Mapping[str, str] = field(default_factory=dict)
    deployer: str = ""
    deployed_at: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contracts", MappingProxyType(dict(self.contracts)))
        object.__setattr__(self, "currencies", MappingProxyType(dict(self.currencies)))
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))

    def address(self, name: str) -> str:
        """The address of contract ``name``.

        Raises:
            DeploymentNotFoundError: The deployment does not record that contract.
        """
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentNotFoundError(
                f"the {self.network} deployment has no {name}: re-run"
                f" `ape run deploy --network {self.network} --force`"
            ) from None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored under the network's key."""
        return {
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "deployed_at": self.deployed_at,
            "contracts": dict(self.contracts),
            "currencies": dict(self.currencies),
            "config": dict(self.config),
        }

    @classmethod
    def from_json(cls, network: str, data: Mapping[str, Any]) -> Deployment:
        """Build from the object stored under ``network``.

        Raises:
            ConfigError: A required field is missing or mistyped.
        """
        try:
            return cls(
                network=network,
                chain_id=int(data["chain_id"]),
                block=int(data.get("block", 0)),
                contracts=dict(data["contracts"]),
                currencies=dict(data.get("currencies", {})),
                deployer=str(data.get("deployer", "")),
                deployed_at=str(data.get("deployed_at", "")),
                config=dict(data.get("config", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"deployment {network!r} is malformed ({exc!r}):"
                " fix the file or re-deploy with --force"
            ) from exc


class DeploymentsFile:
    """The JSON file of deployments, one entry per network.

    Args:
        path: The file; :func:`default_path` when omitted. It need not exist before a deploy.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read deployments file {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"deployments file {self.path} must hold a JSON object")
        return data

    def networks(self) -> list[str]:
        """The network keys that have a deployment."""
        return sorted(self._read())

    def find(self, network: str) -> Deployment | None:
        """The deployment recorded for ``network``, or None."""
        data = self._read().get(network)
        return None if data is None else Deployment.from_json(network, data)

    def get(self, network: str, *, chain_id: int | None = None) -> Deployment:
        """The deployment recorded for ``network``.

        Args:
            network: A key such as ``ethereum:sepolia`` or ``ethereum:local:foundry``.
            chain_id: When given, the recorded chain id must match it (a wrong or reset chain).

        Raises:
            DeploymentNotFoundError: No deployment for ``network`` or a different chain id.
        """
        deployment = self.find(network)
        if deployment is None:
            known = ", ".join(self.networks()) or "none"
            raise DeploymentNotFoundError(
                f"no daimm deployment for network {network} in {self.path} (deployed on: {known});"
                " pick one of those with --network, or deploy:"
                f" `ape run deploy --network {network}`"
            )
        if chain_id is not None and deployment.chain_id != chain_id:
            raise DeploymentNotFoundError(
                f"the {network} deployment in {self.path} is for chain {deployment.chain_id} but"
                " the"
                f" connected chain is {chain_id}: check --network, or re-deploy with"
                f" `ape run deploy --network {network} --force`"
            )
        return deployment

    def put(self, deployment: Deployment) -> None:
        """Record ``deployment`` under its network key (atomic replace of the file)."""
        data = self._read()
        data[deployment.network] = deployment.to_json()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".deployments-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def current_deployment(path: str | os.PathLike[str] | None = None) -> Deployment:
    """The deployment for the network ape is connected to, checked against its chain id.

    Raises:
        ConfigError: Not connected to a network.
        DeploymentNotFoundError: No deployment for it in the deployments file.
    """
    from ape import networks

    provider = networks.active_provider
    if provider is None or not provider.is_connected:
        raise ConfigError("not connected to a network: pass --network (ape's syntax)")
    # NOTE: the provider's, not ape's chain.chain_id (one cached id per "local:foundry" a process).
    return DeploymentsFile(path).get(provider_key(provider), chain_id=int(provider.chain_id))
