"""Start, run and stop a relayer: build its parts from settings, serve with uvicorn.

Shutdown: uvicorn handles SIGTERM and SIGINT by refusing new connections and letting in-flight
requests finish (up to ``graceful_timeout_s``); then the app's lifespan stops the log watcher and
the redeemer, closes every worker and the database (all committed already).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from typing import Any

from daimm.errors import ConfigError
from daimm.relayer.access import AccessPolicy, RateLimiter
from daimm.relayer.app import RelayerServices, create_app
from daimm.relayer.chain import ChainReader, LogWatcher, TransactionSender
from daimm.relayer.models import EncryptedStorageSource, ModelManager, ModelSource
from daimm.relayer.sessions import SessionGate, SessionStore
from daimm.relayer.settings import RelayerSettings
from daimm.relayer.vouchers import Redeemer, VoucherStore
from daimm.relayer.worker import WorkerLimits

__all__ = ["JsonLogFormatter", "build_services", "configure_logging", "serve", "uvicorn_config"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``extra`` fields.

    NOTE: callers pass only non-secret extras (ids, addresses, timings); request bodies, inputs,
    signatures and keys are never logged anywhere in the relayer.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = (
                    value if isinstance(value, int | float | str | bool | None) else str(value)
                )
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(level: str = "INFO") -> None:
    """Send daimm's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    for name in ("daimm", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # Access logs would repeat what "served" logs say, with the client's IP and path only.
    logging.getLogger("uvicorn.access").disabled = True


def _storage_backend(settings: RelayerSettings) -> Any:
    import httpx

    from daimm.ipfs import Gateway, KuboRpc, LocalBlockstore

    if settings.storage == "local":
        return LocalBlockstore(settings.storage_path)
    if settings.storage_url is None:
        raise ConfigError(f"storage = {settings.storage!r} needs storage_url")
    client = httpx.Client(timeout=60.0)
    if settings.storage == "kubo":
        return KuboRpc(client, settings.storage_url)
    return Gateway(client, settings.storage_url)


def build_services(
    settings: RelayerSettings,
    *,
    source: ModelSource | None = None,
    start_redeemer: bool = True,
) -> RelayerServices:
    """Build every part of a relayer from ``settings`` (checks the chain id and keys).

    Args:
        settings: The relayer's settings.
        source: Where model bytes come from; by default the configured storage backend and the
            X25519 key file.
        start_redeemer: Whether the app runs the batch redeemer in the background.

    Raises:
        ConfigError: A key, address or the chain id is wrong or missing.
        ChainUnavailableError: The chain cannot be read at start.
    """
    from eth_account import Account

    contracts = settings.contract_addresses()
    private_key = settings.private_key()
    relayer = Account.from_key(private_key).address
    reader = ChainReader(
        settings.rpc_url, contracts, timeout_s=settings.rpc_timeout_s, ttl_s=settings.access_ttl_s
    )
    chain_id = reader.chain_id()
    if settings.chain_id is not None and settings.chain_id != chain_id:
        raise ConfigError(
            f"the RPC endpoint is chain {chain_id}, but chain_id = {settings.chain_id} is set"
        )
    if source is None:
        if settings.x25519_key_file is None:
            raise ConfigError("set x25519_key_file: the relayer's key that opens key envelopes")
        import os

        from daimm.crypto import load_private_key

        x25519 = load_private_key(
            settings.x25519_key_file, os.environ.get(settings.x25519_passphrase_env)
        )
        source = EncryptedStorageSource(_storage_backend(settings), x25519)
    store = VoucherStore(settings.state_location())
    store.prune_nonces(int(time.time()))
    sessions = SessionGate(
        reader,
        SessionStore(settings.state_location()),
        relayer=relayer,
        chain_id=chain_id,
        registry=contracts.get("SessionRegistry"),
        clock=time.time,
    )
    policy = AccessPolicy(
        reader,
        store,
        relayer=relayer,
        chain_id=chain_id,
        registry=contracts["RelayerRegistry"],
        escrow=contracts["CreditEscrow"],
        max_deadline_s=settings.max_deadline_s,
        voucher_min_remaining_s=settings.voucher_min_remaining_s,
        sessions=sessions,
    )
    models = ModelManager(
        source,
        budget_bytes=settings.cache_memory_mb << 20,
        max_workers=settings.max_workers,
        limits=WorkerLimits(address_space_mb=settings.worker_memory_limit_mb),
        worker_overhead_bytes=settings.worker_overhead_mb << 20,
        load_timeout_s=settings.worker_load_timeout_s,
        inference_timeout_s=settings.inference_timeout_s,
        load_retry_s=settings.load_retry_s,
    )
    redeemer = None
    sender = TransactionSender(reader, private_key)  # one nonce sequence for every transaction
    if start_redeemer:
        redeemer = Redeemer(
            store,
            reader,
            sender,
            relayer=relayer,
            chain_id=chain_id,
            escrow=contracts["CreditEscrow"],
            interval_s=settings.redeem_interval_s,
            margin_s=settings.redeem_margin_s,
            check_s=min(30.0, settings.redeem_interval_s),
        )
    proofs = preparer = claims = None
    if settings.zk_srs is not None:
        from daimm.relayer.claims import ClaimWorker
        from daimm.relayer.proofs import CircuitPreparer, ProofJobs, prover_with_timeout

        proofs = ProofJobs(
            {},
            settings.zk_folder / "proofs",
            prover=prover_with_timeout(settings.zk_proof_timeout_s),
            max_queued=settings.zk_max_queued,
            retention_s=settings.zk_retention_s,
            db=settings.zk_folder / "receipts.sqlite3",
        )
        preparer = CircuitPreparer(
            proofs,
            source,
            _storage_backend(settings),
            settings.zk_srs,
            settings.zk_folder,
            allow_test_srs=settings.zk_allow_test_srs,
        )
        if "ProofChallenges" in contracts:
            claims = ClaimWorker(
                proofs,
                preparer,
                reader,
                private_key,
                contracts["ProofChallenges"],
                settings.zk_folder / "claims.json",
                start_block=_deployment_block(settings),
                poll_s=settings.log_poll_s,
                sender=sender,
            )
    return RelayerServices(
        policy=policy,
        models=models,
        store=store,
        reader=reader,
        private_key=private_key,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        ip_limiter=RateLimiter(settings.rate_per_ip, settings.burst_per_ip),
        address_limiter=RateLimiter(settings.rate_per_address, settings.burst_per_address),
        watcher=LogWatcher(reader, settings.log_poll_s),
        redeemer=redeemer,
        proofs=proofs,
        preparer=preparer,
        claims=claims,
    )


def _deployment_block(settings: RelayerSettings) -> int:
    """The deployment's first block (where the claim worker starts), 0 when unknown."""
    if settings.deployments_file is None:
        return 0
    from daimm.deployments import DeploymentsFile

    return int(DeploymentsFile(settings.deployments_file).get(settings.network).block)


def uvicorn_config(app: Any, settings: RelayerSettings, *, graceful_timeout_s: int = 30) -> Any:
    """The ``uvicorn.Config`` the daemon serves ``app`` with.

    NOTE: uvicorn bounds only the idle time between requests (``timeout_keep_alive``); nothing
    of its own ends a request whose head or body trickles in or stops. The protocol class from
    ``relayer/edge.py`` adds those deadlines (408, or 431 for an oversized head, then close).
    """
    import uvicorn

    from daimm.relayer.edge import guarded_protocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(
            settings.header_timeout_s, settings.body_timeout_s, settings.max_header_bytes
        ),
        log_config=None,
        access_log=False,
        # NOTE: uvicorn's default (5 s) equals httpx's idle expiry: a client could reuse a
        # connection in the instant the server closes it and lose the request (seen under load).
        # uvicorn types it int but only hands it to call_later, where a float works.
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=graceful_timeout_s,
        server_header=False,
    )


def serve(settings: RelayerSettings, *, graceful_timeout_s: int = 30) -> None:
    """Run the relayer until SIGTERM/SIGINT, then finish in-flight requests and stop cleanly."""
    import uvicorn

    configure_logging(settings.log_level)
    services = build_services(settings)
    config = uvicorn_config(create_app(services), settings, graceful_timeout_s=graceful_timeout_s)
    # NOTE: uvicorn captures SIGTERM/SIGINT, shuts down gracefully, then re-raises the signal into
    # the handler that was installed before it started. With Python's default handler that kills
    # the process (exit -15) after a clean shutdown; a no-op handler lets `run()` return instead,
    # so an orderly stop exits 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    uvicorn.Server(config).run()
