"""The facade: every daimm contract of one deployment, and currencies and amounts in its terms."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from daimm.deployments import Deployment, current_deployment
from daimm.errors import ValidationError
from daimm.market._base import instance_at
from daimm.market._tx import checksum
from daimm.market.credit import Credit
from daimm.market.escrow import Escrow
from daimm.market.licences import Licences
from daimm.market.proofs import ProofChallenges
from daimm.market.registry import Models
from daimm.market.relayers import Relayers
from daimm.market.reviews import Reviews
from daimm.market.sessions import Sessions
from daimm.market.token import Token
from daimm.market.types import ETH_ADDRESS, Currency
from daimm.units import Amount, parse_amount

if TYPE_CHECKING:
    from ape.contracts import ContractInstance

__all__ = ["Marketplace"]

_ETH = Currency(ETH_ADDRESS, "ETH", 18)


class Marketplace:
    """daimm's contracts on one network, as typed clients.

    Args:
        deployment: Where the contracts live (from the deployments file).
        instances: Ape contract instances by contract name, used instead of building them from the
            shipped contract types (tests pass the ones they deployed).

    Example:
        >>> market = Marketplace.connect()          # the connected network's deployment
        >>> rental = market.escrow.rent(1, 2, sender=accounts.load("me"), approve=True)
        >>> rental.expires
    """

    def __init__(
        self, deployment: Deployment, instances: Mapping[str, ContractInstance] | None = None
    ) -> None:
        self.deployment = deployment
        self._instances = dict(instances or {})
        self._tokens: dict[str, Token] = {}

    @classmethod
    def connect(cls, path: str | os.PathLike[str] | None = None) -> Marketplace:
        """The deployment of the network ape is connected to.

        Args:
            path: The deployments file (default ``$DAIMM_DEPLOYMENTS`` or ``./deployments.json``).

        Raises:
            ConfigError: Not connected, or no deployment for this network and chain id.
        """
        return cls(current_deployment(path))

    def __repr__(self) -> str:
        return f"<Marketplace {self.deployment.network} escrow={self.escrow.address}>"

    def _instance(self, name: str) -> ContractInstance:
        if name not in self._instances:
            self._instances[name] = instance_at(name, self.deployment.address(name))
        return self._instances[name]

    # ------------------------------------------------------------------ the clients
    @cached_property
    def token(self) -> Token:
        """AIMT, the utility token."""
        token = Token(self._instance("AIModelToken"))
        self._tokens[token.address] = token
        return token

    @cached_property
    def models(self) -> Models:
        """The model registry."""
        return Models(self._instance("ModelRegistry"))

    @cached_property
    def licences(self) -> Licences:
        """The licences."""
        return Licences(self._instance("LicenseNFT"), start_block=self.deployment.block)

    @cached_property
    def escrow(self) -> Escrow:
        """The marketplace escrow."""
        return Escrow(
            self._instance("RentalEscrow"),
            models=self.models,
            licences=self.licences,
            currency_of=self.currency,
            erc20=self.erc20,
            start_block=self.deployment.block,
        )

    @cached_property
    def relayers(self) -> Relayers:
        """The relayer registry."""
        return Relayers(self._instance("RelayerRegistry"), models=self.models)

    @cached_property
    def credit(self) -> Credit:
        """Pay-per-use credit."""
        return Credit(
            self._instance("CreditEscrow"),
            escrow=self.escrow,
            relayers=self.relayers,
            currency_of=self.currency,
        )

    @cached_property
    def reviews(self) -> Reviews:
        """Reviews and ratings."""
        return Reviews(self._instance("ReviewRegistry"), licences=self.licences)

    @cached_property
    def sessions(self) -> Sessions:
        """Session keys and their revocation."""
        return Sessions(self._instance("SessionRegistry"), chain_id=self.deployment.chain_id)

    @cached_property
    def proofs(self) -> ProofChallenges:
        """Provable model versions and proof challenges (docs/ZK.md).

        Raises:
            DeploymentNotFoundError: The deployment has no ProofChallenges (older than it).
        """
        return ProofChallenges(self._instance("ProofChallenges"), registry=self.models)

    # ------------------------------------------------------------------ currencies and amounts
    def erc20(self, address: str) -> Token:
        """A token client for the ERC-20 at ``address`` (AIMT's ABI: a plain ERC-20)."""
        key = checksum(address)
        if key == self.token.address:
            return self.token
        if key not in self._tokens:
            self._tokens[key] = Token.at(key)
        return self._tokens[key]

    def currency(self, ref: str) -> Currency:
        """A currency by address or symbol (``ETH``, ``AIMT``, or an allowed token's symbol).

        Raises:
            ValidationError: An unknown symbol.
        """
        text = ref.strip()
        if text.upper() in ("ETH", "ETHER", "WEI") or (
            text.startswith("0x") and int(text, 16) == 0
        ):
            return _ETH
        if text.startswith("0x") and len(text) == 42:
            return self.erc20(text).currency
        symbol = text.upper()
        if symbol == self.token.symbol.upper():
            return self.token.currency
        for known, address in self.deployment.currencies.items():
            if known.upper() == symbol:
                return self.currency(address)
        known = ", ".join(sorted({"ETH", self.token.symbol, *self.deployment.currencies}))
        raise ValidationError(f"unknown currency {ref!r}: use one of {known} or a token address")

    def amount(self, text: str, currency: Currency | None = None) -> Amount:
        """Parse a human amount (``"10 AIMT"``, ``"0.01 ether"``) in this deployment's currencies.

        Args:
            text: The amount with its unit; a bare number is taken in ``currency``'s unit.
            currency: When given, the amount must be in it (an offer's currency, say).

        Raises:
            ValidationError: Unparsable, unknown unit, or another currency than ``currency``.
        """
        default = None if currency is None else currency.symbol
        parsed = parse_amount(text, lambda s: self.currency(s).decimals, default_unit=default)
        if currency is not None and parsed.symbol.upper() != currency.symbol.upper():
            raise ValidationError(
                f"{text.strip()!r} is in {parsed.symbol} but this is priced in {currency.symbol}:"
                f" write e.g. '10 {currency.symbol}'"
            )
        return parsed

    def balances(self, account: Any) -> dict[str, int]:
        """Balances of ``account`` in ETH, AIMT and the deployment's other currencies."""
        from ape import chain

        result = {"ETH": int(chain.provider.get_balance(checksum(account)))}
        for symbol, address in {
            self.token.symbol: self.token.address,
            **self.deployment.currencies,
        }.items():
            if int(address, 16):
                result[symbol] = self.erc20(address).balance_of(account)
        return result
