"""Deploying daimm to a network: the deploy configuration, the deployment, and its verification.

`ape run deploy` (scripts/deploy.py) parses options and calls :func:`deploy_marketplace`, which
deploys the core (:func:`daimm.market.deploy.deploy_all`) and the extensions
(:func:`daimm.market.deploy_extensions.deploy_extensions`), reads the wiring back and compares it
with the configuration (:func:`verify_wiring`), and records the addresses and the deploy block in
the deployments file.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from daimm.deployments import Deployment, DeploymentsFile, provider_key
from daimm.errors import ConfigError
from daimm.market.types import ETH_ADDRESS

if TYPE_CHECKING:
    from ape.api.accounts import AccountAPI

__all__ = [
    "DeployConfig",
    "deploy_marketplace",
    "existing_deployment",
    "load_deploy_config",
    "verify_wiring",
]

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration: write seconds or e.g. 3d, 12h, 1w")
    return int(match[1]) * _SECONDS[match[2]]


class DeployConfig(BaseModel):
    """What `ape run deploy` sets up (``deploy-config.yaml``).

    Attributes:
        fee_bps: Platform fee, basis points (at most 1,000).
        treasury: Receives the AIMT supply and the fee: an address, or ``deployer``.
        arbiter: Resolves disputes: an address, or ``deployer``.
        dispute_window: How long payments are held, seconds (or ``3d``, ``12h``...).
        credit_timeout: How long a pay-per-use channel stays redeemable, seconds (or ``7d``...).
        currencies: Extra ERC-20s allowed as payment besides ETH and AIMT: symbol -> address.
        token_supply: AIMT supply in whole tokens (18 decimals), or None for the default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fee_bps: int = Field(250, ge=0, le=1_000)
    treasury: str = "deployer"
    arbiter: str = "deployer"
    dispute_window: int = Field(3 * 86400, ge=0)
    credit_timeout: int = Field(7 * 86400, gt=0, lt=2**32)
    currencies: dict[str, str] = Field(default_factory=dict)
    token_supply: int | None = Field(None, gt=0)

    @field_validator("dispute_window", "credit_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        return _seconds(value)

    @field_validator("treasury", "arbiter")
    @classmethod
    def _account(cls, value: str) -> str:
        if value != "deployer" and not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
            raise ValueError(f"{value!r} must be a 0x address or 'deployer'")
        return value

    @field_validator("currencies")
    @classmethod
    def _currencies(cls, value: dict[str, str]) -> dict[str, str]:
        for symbol, address in value.items():
            if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address) or int(address, 16) == 0:
                raise ValueError(f"currency {symbol}: {address!r} is not a token address")
        return value

    def resolve(self, name: str, deployer: Any) -> str:
        """The address of ``treasury`` or ``arbiter`` (``deployer`` means the deploying account)."""
        from eth_utils import to_checksum_address

        value = getattr(self, name)
        return to_checksum_address(deployer.address if value == "deployer" else value)


def load_deploy_config(path: str | Path, network: str) -> DeployConfig:
    """Read the deploy configuration for ``network``.

    The file's top-level keys are the defaults; a ``networks:`` mapping keyed by network
    (``ethereum:sepolia``, ``ethereum:local``...) overrides them per network: the longest key that
    prefixes ``network`` wins.

    Raises:
        ConfigError: Missing file, bad YAML, or a bad value (named).
    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read deploy config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"deploy config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"deploy config {path} must be a mapping")
    overrides = raw.pop("networks", None) or {}
    matches = sorted((k for k in overrides if network.startswith(str(k))), key=len)
    for key in matches:
        raw.update(overrides[key] or {})
    try:
        return DeployConfig(**raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"deploy config {path} for {network}: {problems}") from exc


def existing_deployment(path: str | Path | None = None) -> Deployment | None:
    """The deployment already recorded for the connected network, or None."""
    from ape import chain

    return DeploymentsFile(path).find(provider_key(chain.provider))


def verify_wiring(contracts: dict[str, Any], config: DeployConfig, deployer: Any) -> None:
    """Read the deployed wiring back and compare it with ``config``.

    Args:
        contracts: Contract name -> ape instance, for every contract of a deployment.
        config: What was asked for.
        deployer: The deploying account (``deployer`` in the config means it).

    Raises:
        ConfigError: Listing every mismatch.
    """
    from eth_utils import to_checksum_address as cs

    token = contracts["AIModelToken"]
    registry = contracts["ModelRegistry"]
    licences = contracts["LicenseNFT"]
    escrow = contracts["RentalEscrow"]
    relayers = contracts["RelayerRegistry"]
    credit = contracts["CreditEscrow"]
    reviews = contracts["ReviewRegistry"]
    treasury, arbiter = config.resolve("treasury", deployer), config.resolve("arbiter", deployer)
    checks: list[tuple[str, Any, Any]] = [
        ("RentalEscrow.feeBps", int(escrow.feeBps()), config.fee_bps),
        ("RentalEscrow.treasury", cs(escrow.treasury()), treasury),
        ("RentalEscrow.disputeWindow", int(escrow.disputeWindow()), config.dispute_window),
        (
            "RentalEscrow ARBITER_ROLE of arbiter",
            escrow.hasRole(escrow.ARBITER_ROLE(), arbiter),
            True,
        ),
        (
            "RentalEscrow REVENUE_SOURCE_ROLE of CreditEscrow",
            escrow.hasRole(escrow.REVENUE_SOURCE_ROLE(), credit.address),
            True,
        ),
        ("LicenseNFT.marketplace", cs(licences.marketplace()), cs(escrow.address)),
        ("RentalEscrow allows ETH", escrow.isCurrencyAllowed(ETH_ADDRESS), True),
        ("RentalEscrow allows AIMT", escrow.isCurrencyAllowed(token.address), True),
        ("CreditEscrow.timeout", int(credit.timeout()), config.credit_timeout),
        ("CreditEscrow.rentalEscrow", cs(credit.rentalEscrow()), cs(escrow.address)),
        ("CreditEscrow.relayerRegistry", cs(credit.relayerRegistry()), cs(relayers.address)),
        ("RelayerRegistry.modelRegistry", cs(relayers.modelRegistry()), cs(registry.address)),
        ("ReviewRegistry.licenceNFT", cs(reviews.licenceNFT()), cs(licences.address)),
    ]
    for symbol, address in config.currencies.items():
        checks.append((f"RentalEscrow allows {symbol}", escrow.isCurrencyAllowed(address), True))
    wrong = [
        f"{what} is {actual!r}, expected {expected!r}"
        for what, actual, expected in checks
        if actual != expected
    ]
    if wrong:
        raise ConfigError("the deployment is mis-wired: " + "; ".join(wrong))
    log.info("verified %d wiring checks", len(checks))


def deploy_marketplace(
    project: Any,
    deployer: AccountAPI,
    config: DeployConfig,
    *,
    path: str | Path | None = None,
    force: bool = False,
) -> Deployment:
    """Deploy and wire every daimm contract, verify the wiring, record it in the deployments file.

    Args:
        project: ape's project (``ape.project``), holding the compiled contracts.
        deployer: The account that deploys and keeps the admin roles.
        config: Fee, treasury, arbiter, windows and extra currencies.
        path: The deployments file (default ``$DAIMM_DEPLOYMENTS`` or ``./deployments.json``).
        force: Deploy again even if the network already has a deployment.

    Raises:
        ConfigError: The network already has a deployment and ``force`` is not set (nothing is
            sent), or the wiring does not verify.
    """
    from ape import chain

    from daimm.market.deploy import DEFAULT_TOKEN_SUPPLY, deploy_all
    from daimm.market.deploy_extensions import deploy_extensions

    key = provider_key(chain.provider)
    store = DeploymentsFile(path)
    recorded = store.find(key)
    if recorded is not None and not force:
        raise ConfigError(
            f"{key} already has a daimm deployment (escrow"
            f" {recorded.contracts.get('RentalEscrow')}, block {recorded.block}) in {store.path};"
            " nothing was changed. Pass --force to"
            " deploy a new one"
        )
    start_block = chain.blocks.height + 1
    supply = DEFAULT_TOKEN_SUPPLY if config.token_supply is None else config.token_supply * 10**18
    core = deploy_all(
        project,
        deployer,
        treasury=config.resolve("treasury", deployer),
        arbiter=config.resolve("arbiter", deployer),
        fee_bps=config.fee_bps,
        dispute_window=config.dispute_window,
        extra_currencies=tuple(config.currencies.values()),
        token_supply=supply,
    )
    ext = deploy_extensions(project, deployer, core, credit_timeout=config.credit_timeout)
    instances = {
        "AIModelToken": core.token,
        "ModelRegistry": core.registry,
        "LicenseNFT": core.licences,
        "RentalEscrow": core.escrow,
        "RelayerRegistry": ext.relayer_registry,
        "CreditEscrow": ext.credit_escrow,
        "ReviewRegistry": ext.review_registry,
        "SessionRegistry": ext.session_registry,
        "ProofChallenges": ext.proof_challenges,
    }
    verify_wiring(instances, config, deployer)
    deployment = Deployment(
        network=key,
        # NOTE: the node's own answer: ape's chain.chain_id keeps one id per "local:foundry" in
        # a process, whichever ecosystem or node (an anvil of chain 42161 after one of 31337).
        chain_id=int(chain.provider.chain_id),
        block=start_block,
        contracts={**core.addresses(), **ext.addresses()},
        currencies={
            "ETH": ETH_ADDRESS,
            str(core.token.symbol()): str(core.token.address),
            **config.currencies,
        },
        deployer=str(deployer.address),
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=config.model_dump(),
    )
    store.put(deployment)
    log.info("recorded the %s deployment in %s", key, store.path)
    return deployment
