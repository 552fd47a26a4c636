"""The relayer's one settings object: a config file (TOML or YAML) overlaid by ``DAIMM_RELAYER_*``.

Precedence, highest first: environment variables ``DAIMM_RELAYER_<FIELD>`` (upper case, e.g.
``DAIMM_RELAYER_RPC_URL``; dict fields as JSON), then the config file, then the defaults below.
Pydantic validates at this edge; the rest of the relayer reads the frozen :class:`RelayerSettings`.

Secrets never live in the config file: the Ethereum key comes from a 0600 key file, a v3 keystore
(ape's ``~/.ape/accounts/<alias>.json`` files are in that format) whose passphrase is read from an
environment variable, or ``DAIMM_RELAYER_ACCOUNT_KEY`` for development.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from daimm.errors import ConfigError

__all__ = [
    "CONTRACT_NAMES",
    "ENV_PREFIX",
    "OPTIONAL_CONTRACT_NAMES",
    "RelayerSettings",
    "load_settings",
    "write_settings",
]

ENV_PREFIX = "DAIMM_RELAYER_"

#: The contracts the relayer reads, by the names the deployments file records them under.
CONTRACT_NAMES = ("ModelRegistry", "LicenseNFT", "RelayerRegistry", "RentalEscrow", "CreditEscrow")
#: Contracts read when the deployment has them (older deployments have no SessionRegistry: the
#: relayer then refuses session-signed requests with ``sessions_unsupported``).
OPTIONAL_CONTRACT_NAMES = ("SessionRegistry", "ProofChallenges")


class RelayerSettings(BaseModel):
    """Everything a relayer needs to run. Units are in the names (``_s``, ``_mb``, ``_bytes``).

    Attributes:
        rpc_url: JSON-RPC endpoint the relayer reads the chain from (HTTP).
        rpc_timeout_s: Timeout of one chain read; past it the request is answered 503.
        chain_id: Expected chain id; checked against the RPC endpoint at start.
        deployments_file: The daimm deployments JSON file to take contract addresses from.
        network: The key of the deployment in that file (ape's ``ecosystem:network:provider``).
        contracts: Contract name -> address; overrides the deployments file.
        account_key_file: File holding the relayer's Ethereum private key as hex (mode 0600).
        account_keystore: A v3 keystore JSON file holding the relayer's Ethereum key.
        account_password_env: Environment variable holding the keystore's passphrase.
        account_key: The key itself (from ``DAIMM_RELAYER_ACCOUNT_KEY``; development only).
        x25519_key_file: The relayer's X25519 key file (``daimm keys new``), which opens envelopes.
        x25519_passphrase_env: Environment variable holding that key file's passphrase, if any.
        storage: Storage backend for ciphertexts and envelopes.
        storage_path: Folder of the local blockstore (``storage = "local"``).
        storage_url: URL of the Kubo RPC API or HTTP gateway.
        host: Address to listen on.
        port: TCP port to listen on.
        keep_alive_s: How long an idle HTTP connection stays open, in seconds. Longer than
            clients' own idle expiry (httpx's is 5 s), so a client never sends a request on a
            connection the relayer is closing at that very moment.
        header_timeout_s: Longest a request's line and headers may take to arrive, from the
            connection opening or the request's first byte; past it 408 and the socket is closed.
        body_timeout_s: Longest a request's body may take to arrive once the relayer starts on
            the request; past it 408 and the socket is closed.
        max_header_bytes: Largest request line and headers accepted (to within one socket read);
            larger ones get 431 and the socket is closed.
        max_body_bytes: Largest request body accepted; larger ones get 413.
        max_json_depth: Deepest nesting of arrays and objects accepted in a body, checked before
            parsing; deeper ones get 422 ``json_too_deep``. A tensor needs one level per
            dimension, plus two for the ``{"inputs": {name: ...}}`` around it.
        rate_per_ip: Sustained requests per second allowed from one IP address (predict and
            credit), counted before any signature check.
        burst_per_ip: Requests one IP address may send at once.
        rate_per_address: Sustained requests per second allowed for one wallet, counted once its
            request signature verifies.
        burst_per_address: Requests one wallet address may send at once.
        cache_memory_mb: Memory budget of loaded models (LRU beyond it), in MiB.
        worker_overhead_mb: Memory counted for each worker process besides its model, in MiB.
        max_workers: Most worker processes (one per loaded model) at a time.
        worker_memory_limit_mb: ``RLIMIT_AS`` of each worker process, in MiB (0 = unlimited).
        worker_load_timeout_s: Longest a model may take to load in its worker.
        inference_timeout_s: Longest one prediction may run before its worker is killed.
        load_retry_s: After a model fails to load, answer 503 for it for this long before retrying.
        access_ttl_s: How long a ``hasAccess`` (or other chain) answer is reused.
        log_poll_s: How often the log watcher polls for new blocks and licence events.
        db_path: SQLite file for nonces and vouchers (when ``state_url`` is not set).
        state_url: Where nonces and vouchers live instead of ``db_path``: a PostgreSQL URL
            (``postgresql://relayer@db.internal:5432/relayer``) shared by every replica of this
            relayer behind one load balancer (``DAIMM_RELAYER_STATE_URL``; keep a password in
            ``PGPASSWORD`` or ``~/.pgpass``), or ``sqlite:///FILE``. Unset: SQLite at ``db_path``.
        max_deadline_s: Furthest in the future a request's deadline may be.
        voucher_min_remaining_s: Refuse vouchers on channels expiring sooner than this.
        redeem_interval_s: How often unredeemed vouchers are redeemed on chain.
        redeem_margin_s: Redeem at once when a channel expires within this many seconds.
        zk_srs: The SRS file (the public ceremony's, hash pinned): set, the relayer proves
            every published provable model it serves (docs/ZK.md); unset, it proves none.
        zk_allow_test_srs: Accept an SRS whose hash is not pinned. TESTS ONLY.
        zk_folder: Where regenerated circuits and proving keys are kept.
        zk_max_queued: Proof jobs waiting or running at most (more get 429).
        zk_proof_timeout_s: Longest one proof may run before its worker is killed.
        zk_retention_s: How long an issued receipt stays provable (default the escrow's default
            dispute window, three days).
        log_level: Python logging level of the daemon.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpc_url: str = "http://127.0.0.1:8545"
    rpc_timeout_s: float = Field(2.0, gt=0)
    chain_id: int | None = None
    deployments_file: Path | None = None
    network: str = "ethereum:local:foundry"
    contracts: dict[str, str] = Field(default_factory=dict)
    account_key_file: Path | None = None
    account_keystore: Path | None = None
    account_password_env: str = "DAIMM_RELAYER_ACCOUNT_PASSWORD"  # noqa: S105 - a variable name
    account_key: SecretStr | None = None
    x25519_key_file: Path | None = None
    x25519_passphrase_env: str = "DAIMM_RELAYER_X25519_PASSPHRASE"  # noqa: S105 - a variable name
    storage: Literal["local", "kubo", "gateway"] = "local"
    storage_path: Path = Path("blocks")
    storage_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    keep_alive_s: float = Field(30.0, gt=0)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(30.0, gt=0)
    max_header_bytes: int = Field(65_536, ge=1024)
    max_body_bytes: int = Field(12 << 20, gt=0)
    max_json_depth: int = Field(64, ge=2)
    rate_per_ip: float = Field(200.0, gt=0)
    burst_per_ip: int = Field(400, gt=0)
    rate_per_address: float = Field(100.0, gt=0)
    burst_per_address: int = Field(200, gt=0)
    cache_memory_mb: int = Field(2048, gt=0)
    worker_overhead_mb: int = Field(64, ge=0)
    max_workers: int = Field(4, gt=0)
    worker_memory_limit_mb: int = Field(0, ge=0)
    worker_load_timeout_s: float = Field(120.0, gt=0)
    inference_timeout_s: float = Field(10.0, gt=0)
    load_retry_s: float = Field(10.0, ge=0)
    access_ttl_s: float = Field(3.0, ge=0)
    log_poll_s: float = Field(1.0, gt=0)
    db_path: Path = Path("relayer.sqlite3")
    state_url: SecretStr | None = None
    max_deadline_s: int = Field(3600, gt=0)
    voucher_min_remaining_s: int = Field(600, ge=0)
    redeem_interval_s: float = Field(300.0, gt=0)
    redeem_margin_s: int = Field(3600, ge=0)
    zk_srs: Path | None = None
    zk_allow_test_srs: bool = False
    zk_folder: Path = Path("circuits")
    zk_max_queued: int = Field(4, gt=0)
    zk_proof_timeout_s: float = Field(600.0, gt=0)
    zk_retention_s: float = Field(3 * 24 * 3600, gt=0)
    log_level: str = "INFO"

    # ------------------------------------------------------------------ derived values
    def state_location(self) -> str | Path:
        """Where the voucher store lives: ``state_url`` if set, else the SQLite file ``db_path``."""
        if self.state_url is None:
            return self.db_path
        return self.state_url.get_secret_value()

    def contract_addresses(self) -> dict[str, str]:
        """Contract name -> address: the deployments file's entry overlaid by ``contracts``.

        Raises:
            ConfigError: A contract the relayer reads has no address.
        """
        found: dict[str, str] = {}
        if self.deployments_file is not None:
            from daimm.deployments import DeploymentsFile

            deployment = DeploymentsFile(self.deployments_file).get(self.network)
            found.update(deployment.contracts)
        found.update(self.contracts)
        missing = [name for name in CONTRACT_NAMES if name not in found]
        if missing:
            raise ConfigError(
                f"no address for {', '.join(missing)}: set deployments_file (and network) or"
                " list them under [contracts] in the relayer config"
            )
        return {
            name: found[name] for name in CONTRACT_NAMES + OPTIONAL_CONTRACT_NAMES if name in found
        }

    def private_key(self) -> bytes:
        """The relayer's Ethereum private key (32 bytes), from the first configured source.

        Raises:
            ConfigError: No source is configured, a key file is readable by others, or a keystore
                cannot be decrypted.
        """
        if self.account_key is not None:
            return _hex_key(self.account_key.get_secret_value(), "DAIMM_RELAYER_ACCOUNT_KEY")
        if self.account_key_file is not None:
            text = _read_private_file(self.account_key_file)
            return _hex_key(text.decode().strip(), str(self.account_key_file))
        if self.account_keystore is not None:
            from eth_account import Account

            password = os.environ.get(self.account_password_env)
            if password is None:
                raise ConfigError(
                    f"set {self.account_password_env} to the passphrase of {self.account_keystore}"
                )
            try:
                keystore = json.loads(_read_private_file(self.account_keystore, strict=False))
                return bytes(Account.decrypt(keystore, password))
            except (ValueError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot open keystore {self.account_keystore}: {exc}") from None
        raise ConfigError(
            "no relayer account key: set account_key_file or account_keystore in the config"
            " (or DAIMM_RELAYER_ACCOUNT_KEY for development)"
        )


def _read_private_file(path: Path, *, strict: bool = True) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if strict and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users: run `chmod 600 {path}`")
    return data


def _hex_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{where} must hold a 32-byte private key as hex")
    return key


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read relayer config {path}: {exc.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw) or {}
        else:
            data = tomllib.loads(raw.decode())
    except Exception as exc:  # noqa: BLE001 - any parse failure is a config error
        raise ConfigError(f"relayer config {path} is not valid TOML/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"relayer config {path} must be a table/mapping at the top level")
    # The relayer's section may be nested under [relayer] so one file can serve several tools.
    section = data.get("relayer", data)
    if not isinstance(section, dict):
        raise ConfigError(f"[relayer] in {path} must be a table")
    # Relative paths in the file are relative to the file, not to the working directory.
    for key in ("deployments_file", "account_key_file", "account_keystore", "x25519_key_file",
                "storage_path", "db_path"):  # fmt: skip
        value = section.get(key)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            section[key] = str(path.parent / value)
    return dict(section)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in RelayerSettings.model_fields.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if field.annotation is not None and "dict" in str(field.annotation):
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError:
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} must be a JSON object") from None
        else:
            values[name] = raw
    return values


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> RelayerSettings:
    """Read the settings: defaults < config file < ``DAIMM_RELAYER_*`` < keyword overrides.

    Args:
        config_file: A ``.toml`` or ``.yaml``/``.yml`` file (keys at the top or in ``[relayer]``).
        environ: The environment to read (``os.environ`` by default).
        **overrides: Values that win over everything (used by tests and the benchmark).

    Raises:
        ConfigError: The file cannot be read or a value is invalid (the message names the field).
    """
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_config_file(Path(config_file)))
    values.update(_env_overrides(os.environ if environ is None else environ))
    values.update(overrides)
    try:
        return RelayerSettings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid relayer settings: {problems}") from None


def write_settings(path: str | os.PathLike[str], **values: Any) -> Path:
    """Write a relayer config file (TOML, keys at the top) that :func:`load_settings` reads back.

    The values are checked as the relayer checks them, so a misspelt or invalid field fails here
    rather than when the daemon starts. Secrets do not belong in the file (see the module
    docstring).

    Args:
        path: The ``.toml`` file to write (replaced if it exists).
        **values: :class:`RelayerSettings` fields.

    Returns:
        The path written.

    Raises:
        ConfigError: An unknown field or an invalid value (named).
    """
    load_settings(None, environ={}, **values)
    target = Path(path)
    target.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()))
    return target


def _toml_value(value: Any) -> str:
    """A TOML value: strings, numbers and booleans as JSON writes them (valid TOML), paths as
    strings, a mapping (``contracts``) as an inline table."""
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    if isinstance(value, os.PathLike):
        return json.dumps(os.fspath(value))
    return json.dumps(value)
