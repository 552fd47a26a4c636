"""`daimm review`: rate a model you hold a licence for."""

from __future__ import annotations

import io
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
    yes_option,
)
from daimm.cli.ipfs import open_backend, store_options

__all__ = ["review"]

MAX_COMMENT_BYTES = 4096


@market_command(None, "review")
@click.argument("licence_id", type=click.IntRange(1))
@click.option("--rating", type=click.IntRange(1, 5), required=True, help="1 to 5 stars.")
@click.option("--comment", default="", help="A short comment, stored by CID (up to 4 KiB).")
@store_options
@account_option()
@deployments_option
@yes_option
@json_option
def review(
    licence_id: int,
    rating: int,
    comment: str,
    store: str,
    kubo: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Rate the model of LICENCE_ID, which you hold (once per licence).

    \b
    Example:
      daimm review 3 --rating 5 --comment "Accurate and fast" --account renter
    """
    from daimm.errors import ValidationError
    from daimm.ipfs import add_file

    data = comment.encode()
    if len(data) > MAX_COMMENT_BYTES:
        raise click.ClickException(
            str(ValidationError(f"the comment is {len(data)} bytes; keep it under 4 KiB"))
        )
    market = open_market(deployments)
    # Pre-flight before storing anything: the holder and the one-review rule.
    plan = market.reviews.plan_review(licence_id, rating, "", sender=account)
    comment_cid = ""
    if data:
        with open_backend(store, kubo) as backend:
            comment_cid = str(add_file(io.BytesIO(data), backend).cid)
        plan = market.reviews.plan_review(licence_id, rating, comment_cid, sender=account)
    result = confirm_and_execute(plan, yes=yes)
    emit(f"Reviewed model {result.model_id}: {result.rating}/5", result, as_json=as_json)
