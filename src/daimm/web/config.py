"""The web server's settings: which catalog, which chain, which deployment."""

from __future__ import annotations

from dataclasses import dataclass

from daimm.errors import ConfigError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WebConfig"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8800


@dataclass(frozen=True)
class WebConfig:
    """What `daimm web` serves.

    Attributes:
        catalog_url: SQLAlchemy URL of the catalog (``sqlite:///FILE`` or ``postgresql+psycopg://``).
        rpc_url: The chain's JSON-RPC endpoint; the server reads through it and the browser's
            reads are proxied to it (``POST /api/rpc``), so an API key in it never reaches pages.
        deployments: The deployments file (None: ``$DAIMM_DEPLOYMENTS`` or ``./deployments.json``).
        network: The deployment's key in that file (``ethereum:local:foundry``).
        chain_id: The chain the wallet must be on; None takes the deployment's recorded chain id.
        public_rpc_url: The RPC URL offered to wallets that do not know the chain
            (``wallet_addEthereumChain``); None offers ``rpc_url`` only if it has no path, query
            or user info (where hosted endpoints keep API keys), else no URL.
        rpc_timeout_s: Timeout of each proxied RPC call and of the health probe, in seconds.
        relayer_timeout_s: Timeout of each proxied relayer call, in seconds.
        page_size: Models per page on ``/`` and ``/api/models``.
        store: The block store folder this marketplace's relayers read (a `daimm up` stack's
            ``<state>/blocks``); when set, a model whose encrypted weights or metadata are not in
            it cannot be rented or bought from its page. None checks the metadata only.
    """

    catalog_url: str
    rpc_url: str
    deployments: str | None = None
    network: str = "ethereum:local:foundry"
    chain_id: int | None = None
    public_rpc_url: str | None = None
    rpc_timeout_s: float = 3.0
    relayer_timeout_s: float = 60.0
    page_size: int = 12
    store: str | None = None

    def __post_init__(self) -> None:
        if not self.rpc_url.startswith(("http://", "https://")):
            raise ConfigError(f"the RPC URL must be http(s)://..., not {self.rpc_url!r}")
        if self.page_size < 1:
            raise ConfigError("the page size must be at least 1")
        if self.rpc_timeout_s <= 0 or self.relayer_timeout_s <= 0:
            raise ConfigError("timeouts must be positive")
