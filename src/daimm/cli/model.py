"""`daimm model ...`: publish a model, publish a version, show a model."""

from __future__ import annotations

from pathlib import Path
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
from daimm.cli._reach import check_store_reaches_relayer, note_local_store
from daimm.cli.ipfs import open_backend, store_options
from daimm.cli.keys import load_key, passphrase_options

__all__ = ["model"]


def _key_option(func: Any) -> Any:
    return click.option(
        "--key",
        "keyfile",
        required=True,
        envvar="DAIMM_KEY_FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Your X25519 key file (`daimm keys new`); the model's key is wrapped for it."
        " [env: DAIMM_KEY_FILE]",
    )(func)


@click.group()
def model() -> None:
    """Models: publish encrypted ONNX models and their versions, show a model."""


@market_command(model, "publish")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The metadata document (JSON: name, task, inputs, outputs, sample_input, ...).",
)
@_key_option
@click.option(
    "--royalty-bps",
    type=click.IntRange(0, 10_000),
    default=0,
    show_default=True,
    help="Royalty on licence resales, in basis points (capped by the registry).",
)
@click.option("--validate-only", is_flag=True, help="Validate the model and metadata; stop there.")
@passphrase_options
@store_options
@account_option()
@deployments_option
@yes_option
@json_option
def publish(
    onnx_file: Path,
    meta: Path,
    keyfile: Path,
    royalty_bps: int,
    validate_only: bool,
    passphrase_file: Path | None,
    ask_passphrase: bool,
    store: str,
    kubo: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Validate, encrypt, store and mint ONNX_FILE as a new model.

    The model must load in ONNX Runtime, its inputs and outputs must match the metadata, and the
    metadata's sample input must run. The weights are encrypted with a fresh key wrapped for your
    X25519 key (--key); ciphertext, key envelope and metadata are stored by CID (the embedded store
    by default), then the model token is minted to --account.

    \b
    Example:
      daimm model publish iris.onnx --meta iris.json --key creator.key \\
          --account creator --network ethereum:local:foundry --royalty-bps 500
    """
    from daimm.market import publishing

    metadata = publishing.load_metadata(meta)
    outputs = publishing.validate_model(publishing.read_model_bytes(onnx_file), metadata)
    click.echo(
        f"validated {onnx_file.name}: loads in ONNX Runtime, matches the metadata, sample gives"
        f" {', '.join(outputs)}",
        err=True,
    )
    if validate_only:
        return
    check_store_reaches_relayer(store, kubo, deployments)
    creator_key = load_key(keyfile, passphrase_file, ask_passphrase)
    market = open_market(deployments)
    with open_backend(store, kubo) as backend:
        package, plan = publishing.plan_publish(
            market,
            onnx_file,
            metadata,
            backend=backend,
            creator_key=creator_key,
            sender=account,
            royalty_bps=royalty_bps,
        )
    click.echo(
        f"stored weights {package.weights_cid} ({package.weights_size} bytes), envelope"
        f" {package.envelope_cid}, metadata {package.metadata_cid}",
        err=True,
    )
    note_local_store(store, kubo)
    published = confirm_and_execute(plan, yes=yes)
    publishing.check_minted_id(package, published)
    emit(
        f"Published model {published.model_id}",
        published,
        as_json=as_json,
        extra={"envelope_cid": package.envelope_cid},
    )


@market_command(model, "version")
@click.argument("model_id", type=click.IntRange(1))
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The new version's metadata document.",
)
@_key_option
@passphrase_options
@store_options
@account_option()
@deployments_option
@yes_option
@json_option
def version(
    model_id: int,
    onnx_file: Path,
    meta: Path,
    keyfile: Path,
    passphrase_file: Path | None,
    ask_passphrase: bool,
    store: str,
    kubo: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Publish ONNX_FILE as a new version of MODEL_ID (validated like `publish`).

    The new weights are encrypted with the model's existing key (recovered from your envelope), so
    relayers already authorised can serve the new version without a new envelope.

    \b
    Example:
      daimm model version 1 iris-v2.onnx --meta iris-v2.json --key creator.key \\
          --account creator --network ethereum:local:foundry
    """
    from daimm.market import publishing

    metadata = publishing.load_metadata(meta)
    check_store_reaches_relayer(store, kubo, deployments)
    creator_key = load_key(keyfile, passphrase_file, ask_passphrase)
    market = open_market(deployments)
    with open_backend(store, kubo) as backend:
        package, plan = publishing.plan_publish_version(
            market,
            model_id,
            onnx_file,
            metadata,
            backend=backend,
            creator_key=creator_key,
            sender=account,
        )
    published = confirm_and_execute(plan, yes=yes)
    emit(f"Published version {published.version} of model {model_id}", published, as_json=as_json)


@market_command(model, "show")
@click.argument("model_id", type=click.IntRange(1))
@click.option("--holder", help="Also say whether this address may use the model now.")
@deployments_option
@json_option
def show(model_id: int, holder: str | None, deployments: str | None, as_json: bool) -> None:
    """Show MODEL_ID: owner, versions, offer in human units, rating and relayers.

    \b
    Example:
      daimm model show 1 --network ethereum:local:foundry
    """
    from daimm.units import format_duration

    market = open_market(deployments)
    info = market.models.model(model_id)
    offer = market.escrow.offer(model_id)
    currency = market.currency(offer.currency)
    rating = market.reviews.rating_of(model_id)
    relayers = [
        r
        for r in market.relayers.relayers_of(model_id)
        if market.relayers.is_authorised(model_id, r)
    ]
    data: dict[str, Any] = {
        "model_id": model_id,
        "owner": info.owner,
        "versions": info.version_count,
        "weights_cid": info.latest.weights_cid,
        "metadata_cid": info.latest.metadata_cid,
        "offer_active": offer.active,
        "currency": currency.symbol,
        "rental": (
            f"{currency.format(offer.price_per_period)} per"
            f" {format_duration(offer.period_seconds)}, {offer.min_periods}-{offer.max_periods}"
            " periods"
            if offer.price_per_period
            else "-"
        ),
        "perpetual": currency.format(offer.perpetual_price) if offer.perpetual_price else "-",
        "per_call": currency.format(offer.price_per_call) if offer.price_per_call else "-",
        "rating": (
            f"{rating.average:.2f} from {rating.count} review(s)" if rating.count else "no reviews"
        ),
        "relayers": relayers,
    }
    if holder:
        data["has_access"] = market.licences.has_access(model_id, holder)
    emit(f"Model {model_id}", data, as_json=as_json)
