"""`daimm up`: a whole local marketplace from one command, and everything it starts stopped again.

The stack is, in start order: a chain (anvil, or an existing network), the deployment (every
contract, recorded in ``<state>/deployments.json``), one relayer's registration (with its X25519
key), the seeded sample models (each published encrypted, authorised for that relayer and offered
in AIMT by one :func:`daimm.market.provision.publish_model` call), the relayer itself (run as
`daimm relayer serve`), the catalog indexer (`daimm catalog sync --follow`) and the web server
(`daimm web`). Each daemon is a child process in its own process group, so the terminal's Ctrl-C
reaches only `daimm up`, which then stops the children in reverse order: SIGTERM to the group, a
wait, SIGKILL to the group after a timeout, and a final SIGKILL to the group for any grandchild
(the relayer's model workers) still in it.

On a local chain (its own anvil, or ``--network`` naming a local node) the test accounts
TEST::3-9 are topped up to 1,000 AIMT each; :attr:`StackInfo.env` holds every variable another
terminal needs (network, deployments, block store, catalog, relayer, and ``APE_FOUNDRY_HOST``
for ape-foundry). :func:`running_stack` finds a running stack from its deployments file, so
commands can check that what they publish lands in the store its relayer reads.

The CLI (`daimm.cli.up`) parses options, calls :meth:`Stack.start` with a progress callback,
prints :class:`StackInfo`, waits for a signal and calls :meth:`Stack.stop`.

State lives in one folder (``~/.daimm/up`` by default): ``deployments.json``, the X25519 key
files (mode 0600), ``relayer.toml``, the block store, the catalog and the relayer's SQLite files,
a log per daemon and ``stack.json`` (what is running where). A fresh anvil chain starts from
nothing, so on anvil everything chain-derived is rebuilt at each start; on an existing network
(``network``) the recorded deployment and seeded model are reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from daimm.errors import ChainUnavailableError, ConfigError, DaimmError

if TYPE_CHECKING:
    from daimm.deployments import Deployment
    from daimm.market import Marketplace

__all__ = [
    "ANVIL_CHAIN_ID",
    "Child",
    "StackConfig",
    "StackInfo",
    "Stack",
    "StepEvent",
    "enter_network",
    "find_anvil",
    "provider_http_url",
    "running_stack",
]

log = logging.getLogger(__name__)

#: Chain id of the anvil `daimm up` starts: ape's ``ethereum:local`` network expects 1337 for a
#: node given by URL.
ANVIL_CHAIN_ID = 1337
AIMT = 10**18
HOUR = 3600
#: Royalty of the sample models on licence resales (their offer: :func:`sample_offer`).
ROYALTY_BPS = 500
#: AIMT the treasury gives each user test account on anvil, so they can rent at once.
USER_FUNDS = 1_000 * AIMT
#: Roles of anvil's ten dev accounts (TEST::0..9) in the stack.
ROLES = {0: "deployer, treasury, arbiter", 1: "creator of the sample model", 2: "relayer"}

STEPS = (
    "chain",
    "deploy",
    "relayer keys",
    "sample model",
    "relayer",
    "catalog",
    "web",
)


@dataclass(frozen=True)
class StackConfig:
    """What `daimm up` starts and where.

    Attributes:
        state_dir: Folder for every file the stack writes.
        host: Address every daemon listens on.
        rpc_port: anvil's JSON-RPC port (ignored with ``network``).
        relayer_port: The relayer's HTTP port.
        web_port: The web server's HTTP port.
        network: An existing chain in ape's syntax (``ethereum:sepolia:alchemy``,
            ``ethereum:local:http://127.0.0.1:8545``); None starts anvil.
        account: The ape account that deploys, creates the sample model and runs the relayer on
            ``network`` (required with it); on anvil the dev accounts play every role.
        seed: Publish the sample model (and authorise the relayer for it).
        sync_interval_s: Seconds between catalog syncs.
        stop_timeout_s: How long each daemon gets to exit after SIGTERM before SIGKILL, seconds.
        start_timeout_s: How long each daemon gets to answer after starting, in seconds.
        anvil: The anvil executable (found with :func:`find_anvil` when None).
    """

    state_dir: Path
    host: str = "127.0.0.1"
    rpc_port: int = 8545
    relayer_port: int = 8700
    web_port: int = 8800
    network: str | None = None
    account: Any = None
    seed: bool = True
    sync_interval_s: float = 1.0
    stop_timeout_s: float = 10.0
    start_timeout_s: float = 90.0
    anvil: str | None = None


@dataclass(frozen=True)
class StepEvent:
    """Progress of one start-up step, for the CLI's display.

    Attributes:
        index: 1-based position among ``total`` steps.
        total: How many steps there are.
        name: The step (one of ``STEPS``).
        state: ``start``, ``done`` or ``skipped``.
        detail: What was done, or why it was skipped (empty on ``start``).
        seconds: How long the step took (0 on ``start``).
    """

    index: int
    total: int
    name: str
    state: str
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class StackInfo:
    """What is running, where: printed by `daimm up` and written to ``<state>/stack.json``.

    Attributes:
        rpc_url: The chain's JSON-RPC URL.
        chain_id: Its chain id.
        network: The network in ape's syntax, for ``--network`` of the other commands.
        network_key: The key of the deployment in the deployments file.
        deployments_file: The deployments file.
        contracts: Contract name -> address.
        aimt: The AIMT token's address.
        relayer_url: The relayer's endpoint.
        relayer_address: Its registered address.
        web_url: The web server's URL ("" when `daimm web` is not available).
        catalog_url: SQLAlchemy URL of the catalog.
        model_id: The sample model's id (0 when not seeded).
        accounts: (address, private key) of the test accounts, the dev accounts of a local chain
            (empty on any other network).
        state_dir: The state folder.
        store: The block store folder the relayer and the catalog read (models published for
            this stack must go there).
        env: Every environment variable another terminal needs to use this stack (name -> value).
        pids: Daemon name -> process id (each the leader of its own process group).
    """

    rpc_url: str
    chain_id: int
    network: str
    network_key: str
    deployments_file: str
    contracts: dict[str, str]
    aimt: str
    relayer_url: str
    relayer_address: str
    web_url: str
    catalog_url: str
    model_id: int
    accounts: list[tuple[str, str]]
    state_dir: str
    store: str = ""
    #: The sample models in :data:`daimm.samples.SAMPLE_KEYS` order (tabular, image, text).
    model_ids: list[int] = field(default_factory=list)
    #: The provable sample (docs/ZK.md), 0 without one.
    provable_model_id: int = 0
    env: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ processes
def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGTERM if `daimm up` dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


class Child:
    """A daemon started in its own process group, its output going to a log file.

    Args:
        name: What it is (``anvil``, ``relayer``...), for messages.
        argv: The command.
        log_path: Where its stdout and stderr go.
        env: Its environment.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        # NOTE: start_new_session puts the child in its own process group, so a Ctrl-C in the
        # terminal reaches only `daimm up`, which stops the children in order; the parent-death
        # signal covers `daimm up` itself being killed.
        self.process = subprocess.Popen(  # noqa: S603 - our own executables and arguments
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - no threads run yet
        )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log, for an error message."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(line.strip() for line in text[-lines:])
        return ""

    def stop(self, timeout_s: float) -> None:
        """SIGTERM to its group, wait up to ``timeout_s``, then SIGKILL the group; idempotent."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", self.name, timeout_s)
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        # Anything its leader left behind in the group (the relayer's model workers) goes too;
        # return only once the kernel has removed the whole group.
        self._signal_group(signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while self._group_exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._log.close()

    def _group_exists(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)


def provider_http_url(provider: Any) -> str | None:
    """The HTTP JSON-RPC URL of an ape provider (``http_uri`` or ``uri``), or None if it has none:
    the relayer and the catalog read the chain over HTTP, not through ape."""
    for attr in ("http_uri", "uri"):
        value = getattr(provider, attr, None)
        if isinstance(value, str) and value.startswith("http"):
            return value
    return None


def enter_network(choice: str, hint: str) -> tuple[Any, Any]:
    """Connect ape to ``choice`` (ape's network syntax): its entered context and its provider.

    The caller leaves the context with ``context.__exit__(None, None, None)``.

    Raises:
        ChainUnavailableError: ape cannot parse or reach it (its first line, then ``hint``).
    """
    from ape import networks

    try:
        context = networks.parse_network_choice(choice)
        return context, context.__enter__()
    except Exception as exc:  # noqa: BLE001 - ape raises many kinds for a bad choice or no node
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ChainUnavailableError(f"cannot connect to {choice}: {first}; {hint}") from exc


def find_anvil(explicit: str | None = None) -> str:
    """The anvil executable: ``explicit``, else on PATH, else ``node_modules/.bin`` of the working
    directory or of the daimm checkout this module belongs to.

    Raises:
        ConfigError: None found (with what to run).
    """
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            raise ConfigError(f"anvil {explicit!r} is not an executable file")
        return explicit
    found = shutil.which("anvil")
    if found:
        return found
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / "node_modules" / ".bin" / "anvil"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ConfigError(
        "anvil is not on PATH: install Foundry (`curl -L https://foundry.paradigm.xyz | bash &&"
        " foundryup`, see getfoundry.sh), or run `make setup` in a daimm checkout, or give"
        " --network a running chain"
    )


def _check_port_free(host: str, port: int, what: str, option: str) -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ConfigError(
                f"port {port} on {host} ({what}) is already in use: stop what listens there, or"
                f" choose another with {option} or --port-base"
            ) from None


def _daimm_command(*args: str) -> list[str]:
    """The command line of a `daimm` subcommand, with the interpreter running this one."""
    return [sys.executable, "-c", "from daimm.cli import main; main()", *args]


def _rpc_answers(url: str) -> int | None:
    """The chain id ``url`` answers with, or None."""
    import httpx

    probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        return int(httpx.post(url, json=probe, timeout=2).json()["result"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _web_available() -> bool:
    """Whether this installation has `daimm web` (the web UI ships with the package)."""
    import importlib.util

    from daimm.cli import SUBCOMMANDS

    return importlib.util.find_spec("daimm.web") is not None and "web" in SUBCOMMANDS


# ------------------------------------------------------------------------------------ the stack
class _ShippedProject:
    """Contract containers of the contract types daimm ships, shaped like ``ape.project`` for
    :func:`daimm.market.wiring.deploy_marketplace`, so `daimm up` deploys from any folder."""

    def __getattr__(self, name: str) -> Any:
        from ape.contracts import ContractContainer

        from daimm import contracts

        if name.startswith("_"):
            raise AttributeError(name)
        return ContractContainer(contracts.load(name))


@dataclass
class _Outcome:
    """What a step reports when it ends (see :class:`StepEvent`)."""

    state: str = "done"
    detail: str = ""


@dataclass(frozen=True)
class _OnChain:
    """What the on-chain steps leave for the daemons."""

    rpc_url: str
    chain_id: int
    key: str
    deployment: Deployment
    aimt: str
    model_id: int
    relayer_address: str
    relayer_env: dict[str, str]
    accounts: list[tuple[str, str]]
    model_ids: list[int]
    provable_model_id: int = 0


class Stack:
    """Starts and stops the local marketplace; see the module docstring.

    Args:
        config: What to start and where.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.state = Path(config.state_dir).expanduser().resolve()
        self.children: list[Child] = []
        self.info: StackInfo | None = None
        self._report: Callable[[StepEvent], None] = lambda event: None
        self._step_no = 0
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}

    # ------------------------------------------------------------------ start
    def start(self, progress: Callable[[StepEvent], None] | None = None) -> StackInfo:
        """Start every piece, in order, reporting each step to ``progress``.

        On any failure the pieces already started are stopped before the error propagates.

        Raises:
            ConfigError: A port in use, anvil missing, a bad option.
            ChainUnavailableError: The chain does not answer.
            DaimmError: A deployment, publishing or daemon step failed (its log is named).
        """
        report = progress or (lambda event: None)
        try:
            return self._start(report)
        except BaseException:
            self.stop()
            raise

    def _start(self, report: Callable[[StepEvent], None]) -> StackInfo:
        self._report, self._step_no = report, 0
        self.state.mkdir(parents=True, exist_ok=True)
        web = self._preflight()
        with self._step("chain") as outcome:
            if self.config.network is None:
                self._wipe_chain_state()
                rpc_url = self._start_anvil()
                choice = f"ethereum:local:{rpc_url}"
                outcome.detail = f"anvil at {rpc_url}, chain id {ANVIL_CHAIN_ID}"
            else:
                choice, rpc_url = self.config.network, ""
                outcome.detail = f"using {choice}"
        chain = self._set_up_on_chain(choice, rpc_url)
        self._start_relayer(chain)
        catalog_url = self._start_catalog(chain)
        web_url = self._start_web(chain, catalog_url, web)
        self.info = StackInfo(
            rpc_url=chain.rpc_url,
            chain_id=chain.chain_id,
            network=choice,
            network_key=chain.key,
            deployments_file=str(self.deployments_file),
            contracts=dict(chain.deployment.contracts),
            aimt=chain.aimt,
            relayer_url=self.relayer_url,
            relayer_address=chain.relayer_address,
            web_url=web_url,
            catalog_url=catalog_url,
            model_id=chain.model_id,
            accounts=chain.accounts,
            state_dir=str(self.state),
            store=str(self.store),
            model_ids=chain.model_ids,
            provable_model_id=chain.provable_model_id,
            env=self._client_env(choice, chain, catalog_url),
            pids={child.name: child.pid for child in self.children},
        )
        (self.state / "stack.json").write_text(json.dumps(asdict(self.info), indent=2) + "\n")
        return self.info

    def _client_env(self, choice: str, chain: _OnChain, catalog_url: str) -> dict[str, str]:
        """The variables another terminal's `daimm` commands need to use this stack."""
        env = {
            "DAIMM_NETWORK": choice,
            "DAIMM_DEPLOYMENTS": str(self.deployments_file),
            "DAIMM_STORE": str(self.store),
            "DAIMM_CATALOG_URL": catalog_url,
            "DAIMM_RELAYER_URL": self.relayer_url,
            "DAIMM_RPC_URL": chain.rpc_url,
        }
        if chain.key.endswith(":foundry"):
            # NOTE: ape-foundry starts an anvil of its own unless told where the running one is.
            env["APE_FOUNDRY_HOST"] = chain.rpc_url
        return env

    @property
    def store(self) -> Path:
        """The block store every daemon of the stack reads."""
        return self.state / "blocks"

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[_Outcome]:
        """Report the start and the end of one of ``STEPS``; the body fills in the outcome."""
        self._step_no += 1
        total = len(STEPS)
        self._report(StepEvent(self._step_no, total, name, "start"))
        started = time.monotonic()
        outcome = _Outcome()
        yield outcome
        self._report(
            StepEvent(
                self._step_no,
                total,
                name,
                outcome.state,
                outcome.detail,
                time.monotonic() - started,
            )
        )

    def _preflight(self) -> bool:
        """Check options and ports before anything starts; whether `daimm web` is installed."""
        cfg = self.config
        if cfg.network is not None and cfg.account is None:
            raise ConfigError("--network needs --account: the account that deploys and seeds")
        if cfg.network is None:
            _check_port_free(cfg.host, cfg.rpc_port, "anvil's JSON-RPC", "--rpc-port")
        _check_port_free(cfg.host, cfg.relayer_port, "the relayer", "--relayer-port")
        web = _web_available()
        if web:
            _check_port_free(cfg.host, cfg.web_port, "the web server", "--web-port")
        return web

    @property
    def relayer_url(self) -> str:
        return f"http://{self.config.host}:{self.config.relayer_port}"

    def _set_up_on_chain(self, choice: str, rpc_url: str) -> _OnChain:
        """Connect ape to the chain for the steps that send transactions: deploy, relayer
        registration, sample models."""
        from ape import accounts

        from daimm.market import Marketplace

        cfg = self.config
        logging.getLogger("ape").setLevel(logging.WARNING)
        context, provider = enter_network(
            choice, "check the network name and that the node is running"
        )
        try:
            if not provider.is_connected:
                raise ChainUnavailableError(f"cannot connect to {choice}: check that it runs")
            rpc_url = rpc_url or self._provider_url(provider)
            test = list(accounts.test_accounts)
            if cfg.network is None:
                deployer, creator, relayer, users = test[0], test[1], test[2], test[3:]
            else:
                deployer = creator = relayer = cfg.account
                # NOTE: on a local chain (anvil, a local node) the test accounts are the node's
                # dev accounts, so they get AIMT as on `daimm up`'s own anvil; never elsewhere.
                local = provider.network.name == "local"
                users = test[3:] if local else []
            keys = [(str(a.address), _hex_key(a.private_key)) for a in test] if users else []
            with self._step("deploy") as outcome:
                deployment, fresh = self._deploy(deployer)
                market = Marketplace(deployment)
                if fresh:
                    outcome.detail = f"{len(deployment.contracts)} contracts from block"
                    outcome.detail += f" {deployment.block}"
                else:
                    outcome.state = "skipped"
                    outcome.detail = f"reusing the deployment from block {deployment.block}"
                if users:
                    self._fund(market, deployer, users)
                    outcome.detail += f"; TEST::3-{len(test) - 1} hold 1,000 AIMT or more each"
            with self._step("relayer keys") as outcome:
                outcome.detail = self._register_relayer(market, relayer)
            with self._step("sample model") as outcome:
                model_id = 0
                model_ids: list[int] = []
                provable_model_id = 0
                if cfg.seed:
                    model_ids, fresh = self._seed(market, creator, relayer)
                    provable_model_id, detail = self._seed_provable(market, creator, relayer)
                    model_id = model_ids[0]
                    listed = ", ".join(
                        f"{i} ({kind})"
                        for i, kind in zip(model_ids, ("tabular", "image", "text"), strict=False)
                    )
                    outcome.detail = (
                        f"model {listed} published for the relayer, each offered at 2 AIMT/h,"
                        " 0.1 AIMT a call"
                        if fresh
                        else f"reusing model {listed}"
                    ) + detail
                else:
                    outcome.state, outcome.detail = "skipped", "--no-sample"
            return _OnChain(
                rpc_url=rpc_url,
                chain_id=int(provider.chain_id),
                key=provider_key_of(provider),
                deployment=deployment,
                aimt=str(market.token.address),
                model_id=model_id,
                relayer_address=str(relayer.address),
                relayer_env=self._relayer_secret(relayer),
                accounts=keys,
                model_ids=model_ids,
                provable_model_id=provable_model_id,
            )
        finally:
            context.__exit__(None, None, None)

    def _start_relayer(self, chain: _OnChain) -> None:
        config_file = self._write_relayer_config(chain.rpc_url, chain.chain_id, chain.key)
        with self._step("relayer") as outcome:
            self._spawn(
                "relayer",
                _daimm_command("relayer", "serve", "--config", str(config_file)),
                env=chain.relayer_env,
            )
            health = f"{self.relayer_url}/v1/health"
            self._wait_until("relayer", lambda: _http_ok(health), self.relayer_url)
            outcome.detail = f"{self.relayer_url} ({chain.relayer_address})"

    def _start_catalog(self, chain: _OnChain) -> str:
        catalog_url = f"sqlite:///{self.state / 'catalog.sqlite'}"
        interval = self.config.sync_interval_s
        with self._step("catalog") as outcome:
            self._spawn(
                "catalog",
                _daimm_command(
                    "catalog",
                    "sync",
                    "--follow",
                    f"--interval={interval}",
                    f"--network={chain.key}",
                    f"--rpc-url={chain.rpc_url}",
                    f"--deployments={self.deployments_file}",
                    f"--db-url={catalog_url}",
                    f"--store={self.store}",
                    "--quiet",
                ),
            )
            self._wait_until(
                "catalog",
                lambda: self._catalog_has(catalog_url, chain.model_id),
                f"the catalog to list model {chain.model_id}",
            )
            outcome.detail = f"following the chain every {interval:g} s"
        return catalog_url

    def _start_web(self, chain: _OnChain, catalog_url: str, available: bool) -> str:
        cfg = self.config
        with self._step("web") as outcome:
            if not available:
                outcome.state, outcome.detail = "skipped", "`daimm web` is not installed"
                return ""
            web_url = f"http://{cfg.host}:{cfg.web_port}"
            self._spawn(
                "web",
                _daimm_command(
                    "web",
                    f"--catalog={catalog_url}",
                    f"--rpc={chain.rpc_url}",
                    f"--deployments={self.deployments_file}",
                    f"--network={chain.key}",
                    f"--store={self.store}",
                    f"--host={cfg.host}",
                    f"--port={cfg.web_port}",
                ),
            )
            self._wait_until("web", lambda: _http_ok(web_url + "/"), web_url)
            outcome.detail = web_url
        return web_url

    # ------------------------------------------------------------------ run and stop
    def wait(self, stop: Callable[[], bool], poll_s: float = 0.5) -> Child | None:
        """Block until ``stop()`` is true (None) or a daemon exits on its own (that daemon)."""
        while not stop():
            for child in self.children:
                if not child.alive():
                    return child
            time.sleep(poll_s)
        return None

    def stop(self) -> None:
        """Stop every daemon, last started first; returns when none of them is left."""
        while self.children:
            child = self.children.pop()
            child.stop(self.config.stop_timeout_s)
            log.info("stopped %s (pid %d)", child.name, child.pid)
        with contextlib.suppress(OSError):
            (self.state / "stack.json").unlink()

    # ------------------------------------------------------------------ steps
    @property
    def deployments_file(self) -> Path:
        return self.state / "deployments.json"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, self.state / f"{name}.log", {**self._env, **(env or {})})
        self.children.append(child)
        return child

    def _wait_until(self, name: str, ready: Callable[[], bool], what: str) -> None:
        child = next(c for c in self.children if c.name == name)
        deadline = time.monotonic() + self.config.start_timeout_s
        while not ready():
            if not child.alive():
                raise DaimmError(
                    f"{name} exited with status {child.process.returncode} while starting"
                    f" ({child.tail()}); see {child.log_path}"
                )
            if time.monotonic() > deadline:
                raise DaimmError(
                    f"{name} did not become ready ({what}) within"
                    f" {self.config.start_timeout_s:.0f} s; see {child.log_path}"
                )
            time.sleep(0.2)

    def _wipe_chain_state(self) -> None:
        """A fresh anvil chain: forget what belonged to the previous one (the block store stays;
        it is content-addressed)."""
        for name in ("deployments.json", "stack.json", "relayer.sqlite3", "catalog.sqlite"):
            for path in self.state.glob(name + "*"):
                path.unlink()

    def _start_anvil(self) -> str:
        cfg = self.config
        anvil = find_anvil(cfg.anvil)
        url = f"http://{cfg.host}:{cfg.rpc_port}"
        self._spawn(
            "anvil",
            [
                anvil,
                "--host",
                cfg.host,
                "--port",
                str(cfg.rpc_port),
                "--chain-id",
                str(ANVIL_CHAIN_ID),
            ],
        )
        self._wait_until("anvil", lambda: _rpc_answers(url) == ANVIL_CHAIN_ID, url)
        return url

    @staticmethod
    def _provider_url(provider: Any) -> str:
        url = provider_http_url(provider)
        if url is None:
            raise ConfigError(
                "the network has no HTTP JSON-RPC endpoint, which the relayer and the catalog need:"
                " give --network a provider with one (e.g. ethereum:sepolia:alchemy or a node URL)"
            )
        return url

    def _deploy(self, deployer: Any) -> tuple[Deployment, bool]:
        """The deployment: the recorded one if its contracts exist on this chain, else a new one.

        Returns:
            The deployment and whether it was made now.
        """
        from ape import chain

        from daimm.deployments import DeploymentsFile
        from daimm.market.wiring import DeployConfig, deploy_marketplace

        key = provider_key_of(chain.provider)
        recorded = DeploymentsFile(self.deployments_file).find(key)
        if (
            recorded is not None
            and recorded.chain_id == chain.chain_id
            and chain.provider.get_code(recorded.address("RentalEscrow"))
        ):
            return recorded, False
        # NOTE: local chains hold payments an hour, like deploy-config.yaml's ethereum:local.
        config = (
            DeployConfig.model_validate({"dispute_window": HOUR, "credit_timeout": HOUR})
            if self.config.network is None
            else DeployConfig.model_validate({})
        )
        deployment = deploy_marketplace(
            _ShippedProject(), deployer, config, path=self.deployments_file, force=True
        )
        return deployment, True

    @staticmethod
    def _fund(market: Marketplace, funder: Any, users: list[Any]) -> None:
        """Top each user up to :data:`USER_FUNDS` AIMT from ``funder`` (who deployed, so holds
        the supply)."""
        for user in users:
            short = USER_FUNDS - market.token.balance_of(user)
            if short > 0:
                market.token.transfer(user, short, sender=funder)

    def _seed(self, market: Marketplace, creator: Any, relayer: Any) -> tuple[list[int], bool]:
        """Publish the shipped sample models (tabular, image, text), each with its offer and
        authorised for ``relayer``, unless this deployment already has them (then make sure the
        relayer is authorised for them).

        Returns:
            The model ids (the tabular model's first) and whether they were published now.
        """
        from daimm.crypto import generate_private_key, load_private_key, save_private_key
        from daimm.ipfs import LocalBlockstore
        from daimm.market.provision import authorise_relayer_for, publish_model, sample_offer
        from daimm.market.publishing import parse_metadata
        from daimm.samples import shipped_samples

        seeded = self.state / "seeded.json"
        creator_file = self.state / "creator.x25519"
        escrow = str(market.escrow.address)
        samples = shipped_samples()
        backend = LocalBlockstore(self.store)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            record = json.loads(seeded.read_text())
            ids = [int(i) for i in record["model_ids"]]
            if record["escrow"] == escrow and len(ids) == len(samples) and creator_file.exists():
                authorise_relayer_for(
                    market,
                    ids,
                    relayer.address,
                    backend=backend,
                    creator_key=load_private_key(creator_file),
                    sender=creator,
                )
                return ids, False
        creator_key = generate_private_key()
        save_private_key(creator_file, creator_key, overwrite=True)
        ids = [
            publish_model(
                market,
                sample.path,
                parse_metadata(sample.card),
                backend=backend,
                creator_key=creator_key,
                sender=creator,
                royalty_bps=ROYALTY_BPS,
                offer=sample_offer(market.token.address),
                relayers=[relayer.address],
            ).model_id
            for sample in samples
        ]
        sample_input = self.state / "sample-input.json"
        sample_input.write_text(json.dumps(samples[0].card["sample_input"]) + "\n")
        seeded.write_text(json.dumps({"escrow": escrow, "model_ids": ids}) + "\n")
        return ids, True

    def _seed_provable(self, market: Marketplace, creator: Any, relayer: Any) -> tuple[int, str]:
        """Publish the provable tabular sample (docs/ZK.md), with its offer and authorised for
        ``relayer``, unless this deployment has it; its model id and the step's detail.

        NOTE: with an SRS generated here, marked as a test SRS: no ceremony SRS is pinned in this
        build, and a local chain's proofs need no more (docs/ZK.md, "The SRS").
        """
        from daimm.crypto import load_private_key
        from daimm.ipfs import LocalBlockstore
        from daimm.market.provable import publish_provable_sample
        from daimm.market.provision import authorise_relayer_for, sample_offer
        from daimm.zk import generate_test_srs

        record_file, escrow = self.state / "provable.json", str(market.escrow.address)
        backend = LocalBlockstore(self.store)
        creator_key = load_private_key(self.state / "creator.x25519")
        with contextlib.suppress(OSError, ValueError, KeyError):
            record = json.loads(record_file.read_text())
            if record["escrow"] == escrow:
                authorise_relayer_for(
                    market, [int(record["model_id"])], relayer.address, backend=backend,
                    creator_key=creator_key, sender=creator,
                )  # fmt: skip
                return int(record["model_id"]), f"; provable model {record['model_id']}"
        srs = self.state / "zk" / "test.srs"
        if not srs.is_file():
            srs.parent.mkdir(parents=True, exist_ok=True)
            generate_test_srs(srs, 13)
        done = publish_provable_sample(
            market,
            backend=backend,
            creator_key=creator_key,
            sender=creator,
            folder=self.state / "zk" / "sample",
            srs=srs,
            allow_test_srs=True,
        )
        model_id = done.published.model_id
        authorise_relayer_for(
            market, [model_id], relayer.address, backend=backend, creator_key=creator_key,
            sender=creator,
        )  # fmt: skip
        market.escrow.set_offer(model_id, sample_offer(market.token.address), sender=creator)
        record_file.write_text(json.dumps({"escrow": escrow, "model_id": model_id}) + "\n")
        return model_id, f"; provable model {model_id} (test SRS)"

    def _register_relayer(self, market: Marketplace, relayer: Any) -> str:
        """Register the relayer with an X25519 key of its own (kept in the state folder)."""
        from daimm.market.provision import ensure_relayer

        setup = ensure_relayer(market, relayer, self.relayer_url, self.state / "relayer.x25519")
        if setup.registered_now:
            return f"{setup.address} registered at {setup.endpoint}"
        return f"{setup.address} already registered"

    def _relayer_secret(self, relayer: Any) -> dict[str, str]:
        """The environment that gives the relayer daemon its Ethereum key (never a file we write:
        a dev account's key is public anyway; a keystore stays where ape keeps it)."""
        key = getattr(relayer, "private_key", None) if self.config.network is None else None
        if key is not None:
            return {"DAIMM_RELAYER_ACCOUNT_KEY": _hex_key(key)}
        keyfile = getattr(relayer, "keyfile_path", None)
        if keyfile is not None and Path(keyfile).exists():
            if not os.environ.get("DAIMM_RELAYER_ACCOUNT_PASSWORD"):
                raise ConfigError(
                    "the relayer signs with account"
                    f" {getattr(relayer, 'alias', relayer.address)}: set"
                    " DAIMM_RELAYER_ACCOUNT_PASSWORD to its passphrase so the daemon can unlock"
                    " it"
                )
            return {"DAIMM_RELAYER_ACCOUNT_KEYSTORE": str(keyfile)}
        key = getattr(relayer, "private_key", None)
        if key is not None:
            return {"DAIMM_RELAYER_ACCOUNT_KEY": _hex_key(key)}
        raise ConfigError(
            f"cannot hand the key of account {relayer.address} to the relayer daemon: use an ape"
            " keystore account (`ape accounts import`) or a test account"
        )

    def _write_relayer_config(self, rpc_url: str, chain_id: int, network_key: str) -> Path:
        from daimm.relayer.settings import write_settings

        cfg = self.config
        zk: dict[str, Any] = {}
        if (self.state / "zk" / "test.srs").is_file():  # the provable sample (_seed_provable)
            zk = {
                "zk_srs": self.state / "zk" / "test.srs",
                "zk_allow_test_srs": True,
                "zk_folder": self.state / "zk" / "relayer",
            }
        return write_settings(
            self.state / "relayer.toml",
            rpc_url=rpc_url,
            chain_id=chain_id,
            deployments_file=self.deployments_file,
            network=network_key,
            x25519_key_file=self.state / "relayer.x25519",
            storage="local",
            storage_path=self.store,
            host=cfg.host,
            port=cfg.relayer_port,
            db_path=self.state / "relayer.sqlite3",
            redeem_interval_s=10.0,
            max_workers=2,
            **zk,
        )

    @staticmethod
    def _catalog_has(url: str, model_id: int) -> bool:
        from daimm.catalog import CatalogStore
        from daimm.catalog.queries import has_model

        try:
            store = CatalogStore(url)
            if model_id == 0:
                return store.last_block() is not None
            return has_model(store, model_id)
        except Exception:  # noqa: BLE001 - the indexer may not have created its tables yet
            return False


def running_stack(deployments_file: str | Path | None) -> StackInfo | None:
    """The `daimm up` stack whose deployments file is ``deployments_file``, if it runs now.

    `daimm up` keeps ``deployments.json`` and ``stack.json`` in its state folder and removes
    ``stack.json`` when it stops; a stack whose relayer process is gone does not count.

    Args:
        deployments_file: The deployments file a command uses (None: ``$DAIMM_DEPLOYMENTS`` or
            ``./deployments.json``, as the commands default).
    """
    from daimm.deployments import DeploymentsFile

    path = DeploymentsFile(deployments_file).path.expanduser().resolve()
    try:
        info = StackInfo(**json.loads((path.parent / "stack.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    pid = info.pids.get("relayer")
    if Path(info.deployments_file).resolve() != path or pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return info


def provider_key_of(provider: Any) -> str:
    from daimm.deployments import provider_key

    return provider_key(provider)


def _hex_key(key: Any) -> str:
    return key if isinstance(key, str) else "0x" + bytes(key).hex()
