"""`daimm model ...`: write a card, publish a model, publish a version, show a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daimm.cli._market import (
    _errors,
    account_option,
    confirm_and_execute,
    connected,
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
from daimm.cli.offer import offer_options, offer_terms

__all__ = ["model"]


def _key_option(*, required: bool = True, note: str = "") -> Any:
    return click.option(
        "--key",
        "keyfile",
        required=required,
        envvar="DAIMM_KEY_FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Your X25519 key file (`daimm keys new`); the model's key is wrapped for it."
        f"{note} [env: DAIMM_KEY_FILE]",
    )


@click.group()
def model() -> None:
    """Models: write a card, publish encrypted ONNX models and their versions, show a model."""


@model.command("init")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the card (default: ONNX_FILE with .json; '-' for stdout).",
)
@click.option("--name", default=None, help="The model's name (else a placeholder to fill).")
@click.option("--force", is_flag=True, help="Overwrite an existing card.")
@_errors
def init(onnx_file: Path, out: Path | None, name: str | None, force: bool) -> None:
    """Write a model card for ONNX_FILE: tensors, a guessed task, a sample input that runs.

    Input and output names, dtypes and shapes are read from the model; the pipeline tag and any
    image or text preprocessing are guessed; the sample input is checked to run. Fields only you
    can fill (name, description, labels, feature names, metrics, licence) say "FILL IN":
    `daimm model publish` refuses the card until none is left. No chain or account is needed.

    \b
    Example:
      daimm model init digits.onnx --name "Handwritten digits"
      daimm model publish digits.onnx --meta digits.json --validate-only
    """
    import json

    from daimm.errors import ValidationError
    from daimm.market.publishing import read_model_bytes
    from daimm.modelformat.model import init_card

    document = init_card(read_model_bytes(onnx_file), name=name)
    text = json.dumps(document, indent=2) + "\n"
    if out is not None and str(out) == "-":
        click.echo(text, nl=False)
        return
    target = out or onnx_file.with_suffix(".json")
    if target.exists() and not force:
        raise ValidationError(f"{target} exists: pass --force to overwrite it, or -o elsewhere")
    target.write_text(text)
    left = sum(1 for line in text.splitlines() if "FILL IN" in line)
    click.echo(
        f"wrote {target}: {document['pipeline_tag']}, {len(document['inputs'])} input(s),"
        f" {len(document['outputs'])} output(s); fill in the {left} field(s) marked FILL IN",
        err=True,
    )


@model.command("publish")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The model card (JSON, docs/MODEL-CARD.md; `daimm model init` writes one).",
)
@_key_option(required=False, note=" Not needed with --validate-only.")
@click.option(
    "--royalty-bps",
    type=click.IntRange(0, 10_000),
    default=0,
    show_default=True,
    help="Royalty on licence resales, in basis points (capped by the registry).",
)
@click.option(
    "--validate-only",
    is_flag=True,
    help="Check the card and the model offline (no chain, account or key); stop there.",
)
@offer_options(with_inactive=False)
@click.option(
    "--authorise",
    "relayers",
    multiple=True,
    metavar="RELAYER",
    help="A registered relayer's address to authorise: the model's key is wrapped for its"
    " registered X25519 key. Repeat for several. Checked before anything is stored.",
)
@click.option(
    "--network",
    envvar="DAIMM_NETWORK",
    default=None,
    metavar="ECOSYSTEM:NETWORK:PROVIDER",
    help="Network in ape's syntax, e.g. ethereum:local:foundry (default: ape's default"
    " network). [env: DAIMM_NETWORK]",
)
@click.option(
    "--provable",
    is_flag=True,
    help="Also make predictions provable (docs/ZK.md): build the circuit, publish it by CID,"
    " deploy or reuse its verifier, register the weights hash on chain. Standard ONNX"
    " operators only; models over the size limit are refused.",
)
@click.option(
    "--srs",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --provable: the public ceremony's SRS file (kzg<logrows>.srs, hash pinned).",
)
@click.option(
    "--allow-test-srs",
    is_flag=True,
    help="With --provable: accept an SRS whose hash is not pinned. TESTS ONLY: its maker can"
    " forge proofs.",
)
@click.option(
    "--calibration",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --provable: JSON list of input rows to calibrate the circuit on (default: the"
    " card's sample input).",
)
@click.option(
    "--circuit-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="With --provable: where the circuit is built (default: ONNX_FILE's name + .circuit).",
)
@passphrase_options
@store_options
@account_option(required=False)
@deployments_option
@yes_option
@json_option
@_errors
def publish(
    onnx_file: Path,
    meta: Path,
    keyfile: Path | None,
    royalty_bps: int,
    validate_only: bool,
    currency: str,
    rent_price: str | None,
    period: str,
    min_periods: int,
    max_periods: int,
    perpetual_price: str | None,
    call_price: str | None,
    relayers: tuple[str, ...],
    network: str | None,
    provable: bool,
    srs: Path | None,
    allow_test_srs: bool,
    calibration: Path | None,
    circuit_dir: Path | None,
    passphrase_file: Path | None,
    ask_passphrase: bool,
    store: str,
    kubo: str | None,
    account: Any,
    deployments: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Validate, encrypt, store and mint ONNX_FILE as a new model; optionally authorise relayers
    and set its offer in the same go.

    The card must follow the schema (docs/MODEL-CARD.md) with no "FILL IN" left; the model must
    load as a relayer loads it, its inputs and outputs must match the card, and the card's sample
    input and widget examples must run through the relayer's own request path. The weights are
    encrypted with a fresh key wrapped for your X25519 key (--key) and for each --authorise
    relayer's registered key; ciphertext, key envelopes and card are stored by CID (the embedded
    store by default), then the model token is minted to --account, each relayer is authorised
    and, last, the offer (--rent, --buy, --per-call) is set, so the model is for sale only once
    its relayers can serve it. Relayers and prices are checked before anything is stored.
    With --provable, the circuit is checked first (operators, size limit), then built, published
    by CID and registered with its verifier (docs/ZK.md).

    \b
    Examples:
      daimm model publish iris.onnx --meta iris.json --validate-only
      daimm model publish iris.onnx --meta iris.json --key creator.key \\
          --account creator --network ethereum:local:foundry --royalty-bps 500
      daimm model publish iris.onnx --meta iris.json --key creator.key --account creator \\
          --rent "2 AIMT" --period 1h --buy "100 AIMT" --per-call "0.1 AIMT" \\
          --authorise 0xRelayer... --yes
      daimm model publish tabular.onnx --meta tabular.json --key creator.key \\
          --account creator --provable --srs kzg13.srs
    """
    from daimm.errors import ConfigError
    from daimm.market import publishing

    if provable:
        from daimm.zk import check_provable

        shape = check_provable(onnx_file)
        click.echo(
            f"provable: {shape.parameters:,} weights, {shape.features} inputs, {shape.outputs}"
            " outputs",
            err=True,
        )
        if srs is None and not validate_only:
            raise ConfigError("--provable needs the SRS file: --srs kzg<logrows>.srs (docs/ZK.md)")
    metadata = publishing.load_metadata(meta)
    outputs = publishing.validate_model(publishing.read_model_bytes(onnx_file), metadata)
    click.echo(
        f"validated {onnx_file.name}: {metadata.pipeline_tag or 'no pipeline_tag'}, loads as a"
        f" relayer loads it, matches the card, sample gives {', '.join(outputs)}",
        err=True,
    )
    if validate_only:
        return
    if keyfile is None:
        raise ConfigError("say whose key wraps the model's key: --key FILE (`daimm keys new`)")
    check_store_reaches_relayer(store, kubo, deployments)
    if account is None:
        from ape.cli.choices import AccountAliasPromptChoice

        account = AccountAliasPromptChoice().select_account()
    creator_key = load_key(keyfile, passphrase_file, ask_passphrase)
    terms = {
        "currency": currency, "rent_price": rent_price, "period": period,
        "min_periods": min_periods, "max_periods": max_periods,
        "perpetual_price": perpetual_price, "call_price": call_price,
    }  # fmt: skip
    with connected(network):
        if provable and srs is not None:
            if relayers or any(terms[k] for k in ("rent_price", "perpetual_price", "call_price")):
                raise ConfigError(
                    "with --provable, set the offer and authorise relayers after publishing"
                    " (`daimm offer set`, `daimm relayer authorise`): drop --rent/--buy/--per-call"
                    " and --authorise"
                )
            rows = _calibration_rows(calibration, metadata)
            folder = circuit_dir or onnx_file.with_suffix(".circuit")
            _publish_provable(onnx_file, metadata, creator_key, royalty_bps, store, kubo,
                              account, deployments, as_json, srs, allow_test_srs, rows,
                              folder)  # fmt: skip
            return
        _publish(onnx_file, metadata, creator_key, royalty_bps, terms, relayers, store, kubo,
                 account, deployments, yes, as_json)  # fmt: skip


def _calibration_rows(path: Path | None, metadata: Any) -> list[list[float]]:
    """Calibration rows: the JSON file's list of rows, or the card's sample input."""
    import json

    import numpy as np

    from daimm.errors import ValidationError

    try:
        raw = json.loads(path.read_text()) if path else next(iter(metadata.sample_input.values()))
        rows = np.asarray(raw, dtype=np.float64)
    except (OSError, ValueError, TypeError, StopIteration) as exc:
        raise ValidationError(f"calibration rows: a JSON list of number rows ({exc})") from None
    return rows.reshape(rows.shape[0] if rows.ndim > 1 else 1, -1).tolist()


def _publish_provable(onnx_file: Path, metadata: Any, creator_key: Any, royalty_bps: int,
                      store: str, kubo: str | None, account: Any, deployments: str | None,
                      as_json: bool, srs: Path, allow_test_srs: bool, rows: list[list[float]],
                      folder: Path) -> None:  # fmt: skip
    from daimm.market.provable import publish_provable

    market = open_market(deployments)
    click.echo(f"building the circuit in {folder} (a minute or two)...", err=True)
    with open_backend(store, kubo) as backend:
        done = publish_provable(
            market,
            onnx_file,
            metadata,
            backend=backend,
            creator_key=creator_key,
            sender=account,
            srs=srs,
            calibration=rows,
            folder=folder,
            allow_test_srs=allow_test_srs,
            royalty_bps=royalty_bps,
        )
    note_local_store(store, kubo)
    emit(
        f"Published provable model {done.published.model_id}",
        done.published,
        as_json=as_json,
        extra={
            "envelope_cid": done.package.envelope_cid,
            "circuit_cid": done.circuit_cid,
            "verifier": done.verifier + (" (reused)" if done.verifier_reused else ""),
            "weights_hash": hex(done.circuit.weights_hash),
        },
    )


def _publish(onnx_file: Path, metadata: Any, creator_key: Any, royalty_bps: int,
             terms: dict[str, Any], relayers: tuple[str, ...], store: str, kubo: str | None,
             account: Any, deployments: str | None, yes: bool,
             as_json: bool) -> None:  # fmt: skip
    from daimm.market.provision import plan_provision

    market = open_market(deployments)
    offer = offer_terms(market, **terms)
    with open_backend(store, kubo) as backend:
        plan = plan_provision(
            market,
            onnx_file,
            metadata,
            backend=backend,
            creator_key=creator_key,
            sender=account,
            royalty_bps=royalty_bps,
            offer=offer,
            relayers=relayers,
        )
    package = plan.package
    assert package is not None
    click.echo(
        f"stored weights {package.weights_cid} ({package.weights_size} bytes), envelope"
        f" {package.envelope_cid}, metadata {package.metadata_cid}"
        + (f", and a key envelope for each of {len(relayers)} relayer(s)" if relayers else ""),
        err=True,
    )
    note_local_store(store, kubo)
    result = confirm_and_execute(plan, yes=yes)
    extra = {"offer": "-"}
    if result.offer is not None:
        cur = market.currency(result.offer.currency)
        extra["offer"] = _describe_offer(result.offer, cur)
    if result.authorisations:
        extra["authorisations"] = ", ".join(a.relayer for a in result.authorisations)
    emit(f"Published model {result.model_id}", result, as_json=as_json, extra=extra)


def _describe_offer(offer: Any, currency: Any) -> str:
    """One line: ``2 AIMT per 1h (1-30), 100 AIMT perpetual, 0.1 AIMT a call``."""
    from daimm.units import format_duration

    parts = []
    if offer.price_per_period:
        parts.append(
            f"{currency.format(offer.price_per_period)} per"
            f" {format_duration(offer.period_seconds)} ({offer.min_periods}-{offer.max_periods})"
        )
    if offer.perpetual_price:
        parts.append(f"{currency.format(offer.perpetual_price)} perpetual")
    if offer.price_per_call:
        parts.append(f"{currency.format(offer.price_per_call)} a call")
    return ", ".join(parts)


@market_command(model, "version")
@click.argument("model_id", type=click.IntRange(1))
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--meta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The new version's metadata document.",
)
@_key_option()
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
