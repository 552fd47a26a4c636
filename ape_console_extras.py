"""`ape console` extras: a `daimm` namespace for the connected network's deployment.

    $ ape console --network ethereum:local:foundry
    In [1]: daimm.escrow.offer(1)
    In [2]: daimm.escrow.rent(1, 2, sender=accounts.test_accounts[4], approve=True)
    In [3]: daimm.amount("2.5 AIMT")

`daimm` is a :class:`daimm.market.Marketplace` built from the deployments file
(``$DAIMM_DEPLOYMENTS`` or ``./deployments.json``); it is loaded on first use, so the console starts
even on a network without a deployment and says then what to do.
"""

from __future__ import annotations

from typing import Any


class _LazyMarketplace:
    """The Marketplace of the network the console is connected to, built on first use."""

    def __init__(self) -> None:
        self._market: Any = None

    def _load(self) -> Any:
        if self._market is None:
            from daimm.market import Marketplace

            self._market = Marketplace.connect()
        return self._market

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __dir__(self) -> list[str]:
        return sorted({*dir(type(self._load())), *vars(self._load())})

    def __repr__(self) -> str:
        try:
            return repr(self._load())
        except Exception as exc:  # noqa: BLE001 - the console shows why instead of failing
            return f"<daimm: not available here: {exc}>"


def ape_init_extras() -> dict[str, Any]:
    """Names added to the console: ``daimm`` (the marketplace) and its value types."""
    import daimm.market as market
    from daimm.units import format_amount, parse_amount

    return {
        "daimm": _LazyMarketplace(),
        "Offer": market.Offer,
        "Resolution": market.Resolution,
        "parse_amount": parse_amount,
        "format_amount": format_amount,
    }
