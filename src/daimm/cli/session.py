"""`daimm session ...`: API keys for applications (session keys), and their revocation."""

from __future__ import annotations

from typing import Any

import click

from daimm.cli._market import (
    account_option,
    confirm_and_execute,
    deployments_option,
    emit,
    json_option,
    market_command,
    open_market,
    parse_duration,
    yes_option,
)

__all__ = ["session"]


@click.group()
def session() -> None:
    """Session keys: let an application call relayers for you, bounded and revocable.

    One signature of your wallet makes an API key (``daimm_sk_...``); the application signs its
    requests with it and never holds your wallet's key. Revoking is one transaction.
    """


@market_command(session, "new")
@click.argument("model_id", type=click.IntRange(1), required=False)
@click.option("--any-model", is_flag=True, help="Cover every model you hold access to.")
@click.option(
    "--relayer", default=None, help="Only the relayer at this address (default: any relayer)."
)
@click.option("--ttl", default="24h", show_default=True, help="Lifetime (e.g. 3600, 12h, 7d).")
@click.option(
    "--max-calls", type=click.IntRange(1), default=10_000, show_default=True,
    help="Calls each relayer serves on the key.",
)  # fmt: skip
@account_option()
@deployments_option
@json_option
def new(
    model_id: int | None,
    any_model: bool,
    relayer: str | None,
    ttl: str,
    max_calls: int,
    account: Any,
    deployments: str | None,
    as_json: bool,
) -> None:
    """Make an API key for MODEL_ID (one signature, no transaction); it is shown once.

    \b
    Examples:
      daimm session new 1 --account renter
      daimm session new --any-model --ttl 7d --max-calls 500 --relayer 0xRelayer... --account renter
    Then, in the application:
      DAIMM_API_KEY=daimm_sk_... python -c "from daimm.client import SessionClient; ..."
    """
    if (model_id is None) == (not any_model):
        raise click.UsageError("give a MODEL_ID or --any-model (not both)")
    market = open_market(deployments)
    api_key = market.sessions.create(
        account,
        model_id=model_id,
        relayer=relayer,
        ttl_s=parse_duration(ttl),
        max_calls=max_calls,
    )
    session_ = api_key.session
    emit(
        "Session key made: keep this API key secret; it is shown once",
        {
            "api_key": api_key.encode(),
            "session_hash": "0x" + api_key.hash.hex(),
            "key": session_.key,
            "holder": session_.holder,
            "model_id": session_.model_id or "any",
            "relayer": "any" if int(session_.relayer, 16) == 0 else session_.relayer,
            "expires_at": session_.expires_at,
            "max_calls": session_.max_calls,
        },
        as_json=as_json,
    )


@market_command(session, "revoke")
@click.argument("session_ref")
@account_option()
@deployments_option
@yes_option
@json_option
def revoke(
    session_ref: str, account: Any, deployments: str | None, yes: bool, as_json: bool
) -> None:
    """Revoke one session, given its hash (0x...) or its API key (daimm_sk_...).

    Relayers refuse it from the block that records the revocation (within their cache window).

    \b
    Examples:
      daimm session revoke 0x5f0c...e1 --account renter
      daimm session revoke "$DAIMM_API_KEY" --account renter --yes
    """
    from daimm.sessions import API_KEY_PREFIX, parse_api_key

    text = session_ref.strip()
    digest: bytes | str = parse_api_key(text).hash if text.startswith(API_KEY_PREFIX) else text
    market = open_market(deployments)
    result = confirm_and_execute(market.sessions.plan_revoke(digest, sender=account), yes=yes)
    emit(f"Revoked session 0x{result.session_hash.hex()}", result, as_json=as_json)


@market_command(session, "revoke-all")
@account_option()
@deployments_option
@yes_option
@json_option
def revoke_all(account: Any, deployments: str | None, yes: bool, as_json: bool) -> None:
    """Revoke every session key you have made so far (one transaction).

    \b
    Example:
      daimm session revoke-all --account renter --yes
    """
    market = open_market(deployments)
    result = confirm_and_execute(market.sessions.plan_revoke_all(sender=account), yes=yes)
    emit(f"Revoked all sessions (new nonce {result.nonce})", result, as_json=as_json)
