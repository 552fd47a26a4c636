"""`daimm up`: a local marketplace to try things in, until Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from daimm.cli._market import account_option
from daimm.errors import DaimmError

if TYPE_CHECKING:
    from daimm.stack import StackInfo, StepEvent

__all__ = ["up"]


def _default_state_dir() -> str:
    return str(Path(os.environ.get("DAIMM_HOME") or "~/.daimm").expanduser() / "up")


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="DAIMM_UP_DIR",
    default=_default_state_dir,
    show_default="$DAIMM_HOME/up or ~/.daimm/up",
    help="Folder for the deployment, keys, logs and databases. [env: DAIMM_UP_DIR]",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port-base",
    type=click.IntRange(1, 65533),
    default=None,
    help="Use three ports from this one: RPC, relayer, web (overrides the three port options).",
)
@click.option(
    "--rpc-port",
    type=click.IntRange(1, 65535),
    default=8545,
    show_default=True,
    help="anvil's JSON-RPC port.",
)
@click.option(
    "--relayer-port",
    type=click.IntRange(1, 65535),
    default=8700,
    show_default=True,
    help="The relayer's port.",
)
@click.option(
    "--web-port",
    type=click.IntRange(1, 65535),
    default=8800,
    show_default=True,
    help="The web server's port.",
)
@click.option(
    "--network",
    default=None,
    metavar="ECOSYSTEM:NETWORK:PROVIDER",
    help="Use this existing chain (ape's syntax) instead of starting anvil; deploys there if the"
    " state folder has no deployment for it. Needs --account.",
)
@account_option(required=False)
@click.option("--no-sample", is_flag=True, help="Do not publish the sample models.")
@click.option(
    "--sync-interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between catalog syncs.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds each daemon gets to exit after SIGTERM before it is killed.",
)
def up(
    state_dir: Path,
    host: str,
    port_base: int | None,
    rpc_port: int,
    relayer_port: int,
    web_port: int,
    network: str | None,
    account: Any,
    no_sample: bool,
    sync_interval: float,
    stop_timeout: float,
) -> None:
    """Start a local marketplace: chain, contracts, sample models, a relayer, catalog and web.

    Starts anvil (or uses --network), deploys every contract, publishes three small encrypted
    sample models with AIMT offers (a breast-cancer classifier on named features, a digit-image
    classifier and a review-sentiment classifier) and a provable one (its answers can be proved
    with a zero-knowledge proof: docs/ZK.md; made with a test SRS), registers and authorises a
    relayer and runs it, keeps a catalog in sync and serves the web pages. Prints the URLs and
    anvil's dev accounts. Ctrl-C (or SIGTERM) stops everything it started.

    \b
    Examples:
      daimm up
      daimm up --port-base 9500 --state-dir /tmp/daimm-up
      daimm up --network ethereum:sepolia:alchemy --account deployer
    """
    from daimm.stack import Stack, StackConfig

    if port_base is not None:
        rpc_port, relayer_port, web_port = port_base, port_base + 1, port_base + 2
    if network is None:
        source = click.get_current_context().get_parameter_source("account")
        if source is ParameterSource.COMMANDLINE:
            raise click.BadParameter(
                "--account is only used with --network", param_hint="--account"
            )
        # NOTE: on anvil the dev accounts play every role, so an account set by DAIMM_ACCOUNT (for
        # other commands) is ignored rather than refused.
        account = None
    stack = Stack(
        StackConfig(
            state_dir=state_dir,
            host=host,
            rpc_port=rpc_port,
            relayer_port=relayer_port,
            web_port=web_port,
            network=network,
            account=account,
            seed=not no_sample,
            sync_interval_s=sync_interval,
            stop_timeout_s=stop_timeout,
        )
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        # The first SIGINT/SIGTERM unwinds whatever runs (start-up or the wait); later ones are
        # ignored so the orderly stop finishes.
        if not stopping.is_set():
            stopping.set()
            raise _Interrupted

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    click.echo(click.style("daimm up", bold=True) + f": a local marketplace in {stack.state}")
    try:
        info = stack.start(_show_step)
        _show_info(info)
        died = stack.wait(stopping.is_set)
        if died is not None:
            stopping.set()
            stack.stop()
            raise click.ClickException(
                f"{died.name} exited with status {died.process.returncode} ({died.tail()}); see"
                f" {died.log_path}. Stopped everything else."
            )
    except KeyboardInterrupt:
        stopping.set()
        click.echo("")
        click.echo("Stopping…")
        stack.stop()
        click.echo("Stopped; nothing left running.")
    except DaimmError as exc:
        stopping.set()
        if _line_open.is_set():
            click.echo(" " + click.style("✗", fg="red"))
        stack.stop()
        raise click.ClickException(str(exc)) from exc
    finally:
        stopping.set()
        stack.stop()


class _Interrupted(KeyboardInterrupt):
    """What the first SIGINT/SIGTERM raises in `daimm up`.

    NOTE: a subclass, not KeyboardInterrupt itself: when a plain KeyboardInterrupt unwinds code run
    from a string (``exec``/``eval`` of source, as dataclasses and namedtuple do while a module is
    imported), CPython records it as unhandled, and after a clean stop the interpreter then kills
    itself with SIGINT (exit status -2/130 instead of 0). It records only the exact type.
    """


_line_open = threading.Event()  # a step's line awaits its outcome


def _show_step(event: StepEvent) -> None:
    if event.state == "start":
        click.echo(f"  [{event.index}/{event.total}] {event.name:<13}…", nl=False)
        _line_open.set()
        return
    _line_open.clear()
    mark = click.style("✓", fg="green") if event.state == "done" else click.style("–", fg="yellow")
    click.echo(f" {mark} {event.detail} ({event.seconds:.1f} s)")


def _show_info(info: StackInfo) -> None:
    echo = click.echo
    echo("")
    echo(click.style(f"daimm is up on chain {info.chain_id}. Ctrl-C stops everything.", bold=True))
    echo("")
    if info.web_url:
        echo(f"  Web      {info.web_url}")
    echo(f"  Relayer  {info.relayer_url}  ({info.relayer_address})")
    echo(f"  RPC      {info.rpc_url}  (chain id {info.chain_id})")
    kinds = ("breast-cancer classifier (30 named features)", "digit images (drop a picture)",
             "review sentiment (type a sentence)")  # fmt: skip
    for model_id, kind in zip(info.model_ids or [info.model_id], kinds, strict=False):
        if model_id:
            echo(f"  Model    #{model_id} {kind}")
    if info.provable_model_id:
        echo(f"  Model    #{info.provable_model_id} provable breast-cancer classifier (Try it, then"
             " Request proof; test SRS)")  # fmt: skip
    if info.model_id:
        echo("           each: 2 AIMT an hour, 100 AIMT perpetual, 0.1 AIMT a call")
    echo(f"  AIMT     {info.aimt}")
    echo(f"  State    {info.state_dir} (deployments.json, keys, *.log)")
    if info.accounts:
        from daimm.stack import ROLES

        echo("")
        echo("Test accounts (anvil's well-known dev keys: public, never use them on a real chain):")
        for i, (address, key) in enumerate(info.accounts):
            role = ROLES.get(i, "user with 1,000 AIMT")
            echo(f"  TEST::{i}  {address}  {key}  {role}")
        echo("")
        echo("MetaMask: Settings > Networks > Add a network manually:")
        echo(f"  name daimm local, RPC URL {info.rpc_url}, chain ID {info.chain_id}, symbol ETH;")
        echo("  then Add account > Import account with a private key above, and Import tokens")
        echo(f"  with the AIMT address {info.aimt}.")
    echo("")
    echo("Try it from another terminal (these variables are all it needs; models you publish")
    echo(f"go to the block store the relayer reads, {info.store}):")
    for name, value in info.env.items():
        echo(f"  export {name}={shlex.quote(value)}")
    if info.model_id and info.accounts:
        sample = Path(info.state_dir) / "sample-input.json"
        echo(f"  daimm rent {info.model_id} --periods 1 --approve --account TEST::4 --yes")
        echo(
            f"  daimm infer {info.model_id} --input {sample} --account TEST::4"
            f" --relayer {info.relayer_address}"
        )
    echo('  daimm search "cancer"')
    sys.stdout.flush()
