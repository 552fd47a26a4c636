"""What the marketplace verbs share: network, account and confirmation options, and printing.

Every marketplace command connects to the network given with ``--network`` (ape's syntax, e.g.
``ethereum:local:foundry`` or ``ethereum:sepolia:alchemy``), loads the deployment of that network
from the deployments file, signs with the ape account given by ``--account`` (an alias from
``ape accounts list``, or ``TEST::0`` for a test account), prints what the transaction will cost and
asks before sending unless ``--yes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from daimm.errors import DaimmError

if TYPE_CHECKING:
    from daimm.market import Marketplace, Plan

__all__ = [
    "account_option",
    "confirm_and_execute",
    "connected",
    "deployments_option",
    "emit",
    "json_option",
    "market_command",
    "open_market",
    "parse_duration",
    "payment_options",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _errors(func: F) -> F:
    """DaimmError and ape errors become one ``Error: ...`` line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ape.exceptions import ApeException

        try:
            return func(*args, **kwargs)
        except DaimmError as exc:
            raise click.ClickException(str(exc)) from exc
        except ApeException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise click.ClickException(first) from exc

    return wrapper  # type: ignore[return-value]


def account_option(*, required: bool = True) -> Callable[[F], F]:
    """``--account ALIAS``: an ape account alias, or ``TEST::<n>`` (env ``DAIMM_ACCOUNT``)."""

    def decorator(func: F) -> F:
        from ape.cli.choices import AccountAliasPromptChoice

        def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
            if value is None and required:
                assert isinstance(param.type, AccountAliasPromptChoice)
                return param.type.select_account()
            return value

        return click.option(
            "--account",
            type=AccountAliasPromptChoice(),
            envvar="DAIMM_ACCOUNT",
            callback=callback,
            help="Ape account alias that signs (`ape accounts list`; TEST::0 for a test account)."
            " [env: DAIMM_ACCOUNT]",
        )(func)

    return decorator


deployments_option = click.option(
    "--deployments",
    "deployments",
    type=click.Path(dir_okay=False),
    envvar="DAIMM_DEPLOYMENTS",
    default=None,
    help="Deployments file written by `ape run deploy`. [env: DAIMM_DEPLOYMENTS;"
    " default: ./deployments.json]",
)


def payment_options(example: str, *, note: str = "") -> Callable[[F], F]:
    """``--max-price`` and ``--approve``, for the verbs that pay the escrow (rent, buy, resale).

    Args:
        example: A price for the help text, e.g. ``"50 AIMT"``.
        note: More help for ``--max-price``.
    """

    def decorator(func: F) -> F:
        func = click.option(
            "--approve",
            is_flag=True,
            help="Approve the escrow for the price first if needed (ERC-20).",
        )(func)
        return click.option(
            "--max-price",
            help=f"Most you accept to pay, e.g. '{example}' (default: the price).{note}",
        )(func)

    return decorator


yes_option = click.option(
    "--yes", "-y", is_flag=True, help="Send without asking (the cost is still printed)."
)

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _same_network(choice: str, provider: Any) -> bool:
    """Whether ``choice`` (ape's ``ecosystem:network:provider``, parts optional) names the
    connected ``provider``."""
    given = choice.split(":")
    actual = (provider.network.ecosystem.name, provider.network.name, provider.name)
    return all(not part or part == have for part, have in zip(given, actual, strict=False))


@contextlib.contextmanager
def connected(choice: str | None) -> Iterator[Any]:
    """Connect to ``choice`` (ape's network syntax) for the duration; None means ape's default.

    NOTE: an already connected provider on the same network is reused, not reconnected: inside
    `ape test` or `ape console` a second connection to the in-process chain would invalidate its
    snapshots (and on a local node it would start a second one).

    Raises:
        click.BadParameter: An unknown ecosystem, network or provider.
    """
    from ape import networks
    from ape.exceptions import NetworkError, ProviderNotFoundError

    ape_logs_to_stderr()
    active = networks.active_provider
    if (
        active is not None
        and active.is_connected
        and (choice is None or _same_network(choice, active))
    ):
        yield active
        return
    try:
        context = networks.parse_network_choice(choice)
    except (NetworkError, ProviderNotFoundError) as exc:
        raise click.BadParameter(str(exc), param_hint="--network") from exc
    with context as provider:
        yield provider


def ape_logs_to_stderr() -> None:
    """Send ape's log lines ("Connecting to a 'anvil' node.") to stderr, where our notes go.

    NOTE: ape's click handler echoes to stdout, which broke ``--json`` output for scripts
    (``daimm session new --json | jq``); stdout carries only the command's result.
    """
    from ape.logging import ClickHandler, logger

    for handler in logger._logger.handlers:
        if isinstance(handler, ClickHandler):
            for level in ("debug", "info", "success", "warning", "error"):
                handler.echo_kwargs[level] = {**(handler.echo_kwargs.get(level) or {}), "err": True}


def market_command(group: click.Group | None = None, name: str | None = None, **kwargs: Any) -> Any:
    """A click command that connects to ``--network`` (ape's syntax) for its duration.

    Args:
        group: Register the command on this group (else a standalone command).
        name: The command's name.
        kwargs: Passed to click.
    """

    def decorator(func: F) -> click.Command:
        @functools.wraps(func)
        def with_network(*args: Any, network: str | None, **params: Any) -> Any:
            with connected(network):
                return func(*args, **params)

        wrapped = _errors(with_network)
        wrapped = click.option(
            "--network",
            envvar="DAIMM_NETWORK",
            default=None,
            metavar="ECOSYSTEM:NETWORK:PROVIDER",
            help="Network in ape's syntax, e.g. ethereum:local:foundry or"
            " ethereum:sepolia:alchemy (default: ape's default network). [env: DAIMM_NETWORK]",
        )(wrapped)
        if group is not None:
            return group.command(name, **kwargs)(wrapped)
        return click.command(name, **kwargs)(wrapped)

    return decorator


def open_market(deployments: str | None) -> Marketplace:
    """The marketplace of the connected network.

    Raises:
        DeploymentNotFoundError: No deployment for it.
    """
    from daimm.market import Marketplace

    return Marketplace.connect(deployments)


def confirm_and_execute(plan: Plan[T], *, yes: bool) -> T:
    """Print what the plan does and costs, ask unless ``yes``, then send it.

    Raises:
        click.Abort: The user said no.
        TransactionError: It would revert (named custom error) or reverted.
    """
    if len(plan.steps) == 1:
        click.echo(f"About to {plan.steps[0].label}.", err=True)
    else:
        click.echo(f"About to send {len(plan.steps)} transactions:", err=True)
        for index, step in enumerate(plan.steps, 1):
            click.echo(f"  {index}. {step.label}", err=True)
    cost = plan.cost()
    click.echo(f"Cost: {cost.describe()}", err=True)
    if not yes:
        click.confirm("Send?", abort=True, err=True)
    return plan.execute()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


#: Result fields holding a Unix time (seconds), shown as ISO 8601 UTC (raw in ``--json``).
TIME_FIELDS = frozenset(
    {"expires", "expires_at", "release_at", "published_at", "timestamp", "deadline"}
)


def emit(title: str, value: Any, *, as_json: bool, extra: dict[str, str] | None = None) -> None:
    """Print a result: ``key: value`` lines under a title, or one JSON object with ``--json``.

    Args:
        title: One line saying what happened.
        value: A dataclass (or dict) of result fields.
        as_json: Print JSON instead.
        extra: Human-formatted fields (amounts with units) shown in place of raw ones; fields
            named in :data:`TIME_FIELDS` are shown as ISO times without being named here.
    """
    from daimm.units import format_time

    data = _plain(value)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(title)
    times = {k: format_time(v) for k, v in data.items() if k in TIME_FIELDS and isinstance(v, int)}
    shown = {**data, **times, **(extra or {})}
    width = max((len(k) for k in shown), default=0)
    for key, item in shown.items():
        if isinstance(item, list):
            item = ", ".join(str(i) for i in item) or "-"
        click.echo(f"  {key.ljust(width)}  {item}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds from ``"3600"``, ``"90s"``, ``"30m"``, ``"12h"``, ``"1d"`` or ``"2w"``.

    Raises:
        click.BadParameter: Anything else.
    """
    body = text.strip().lower()
    factor = _UNITS.get(body[-1:])
    number = body[:-1] if factor else body
    if not number.isdigit() or int(number) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration: write e.g. 3600, 30m, 12h, 1d, 2w")
    return int(number) * (factor or 1)
