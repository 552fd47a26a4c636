"""``daimm infer``: sign a prediction request, call a relayer, verify the receipt, print outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from daimm.errors import ConfigError, ValidationError


def _signer(key_file: str | None, account: str | None) -> object:
    from daimm.client import ApeAccountSigner, KeySigner

    if key_file:
        path = Path(key_file)
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path} is readable by other users: run `chmod 600 {path}`")
        return KeySigner(path.read_text().strip())
    if account:
        from ape import accounts

        if account.upper().startswith("TEST::") and account[6:].isdigit():
            return ApeAccountSigner(accounts.test_accounts[int(account[6:])])
        try:
            return ApeAccountSigner(accounts.load(account))
        except KeyError:
            raise ConfigError(
                f"no ape account {account!r}: see `ape accounts list` (TEST::0..9 are the test"
                " accounts)"
            ) from None
    raise ConfigError("say who signs: --account ALIAS (an ape account) or --key-file FILE")


def _address_only(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and "://" in value:
        raise click.BadParameter(
            f"{value!r} is a URL: --relayer is the relayer's address; give its URL with"
            " --relayer-url",
            param_hint="--relayer",
        )
    return value


@click.command()
@click.argument("model_id", type=int)
@click.option(
    "--input",
    "input_file",
    type=click.File("rb"),
    default=None,
    help='JSON file: {"inputs": {name: array}} or just {name: array} (raw tensors).',
)
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An image file (PNG, JPEG, WebP, GIF) for an image model.",
)
@click.option("--text", default=None, help="A string for a text model.")
@click.option(
    "--features",
    type=click.File("rb"),
    default=None,
    help='JSON file with one row {"alcohol": 13.2, ...} (or a list of rows) for a tabular model.',
)
@click.option(
    "--top-k", type=click.IntRange(1, 1000), default=None, help="Labels per row (default 5)."
)
@click.option(
    "--relayer-url",
    "url",
    default=lambda: os.environ.get("DAIMM_RELAYER_URL", "http://127.0.0.1:8700"),
    show_default="$DAIMM_RELAYER_URL or :8700",
    help="The relayer's URL. [env: DAIMM_RELAYER_URL]",
)
@click.option(
    "--relayer",
    "--relayer-address",
    "relayer_address",
    default=None,
    callback=_address_only,
    metavar="ADDRESS",
    help="The relayer's registered address (as in every other command); receipts must be signed"
    " by it.",
)
@click.option("--account", default=None, help="ape account alias that signs the request.")
@click.option(
    "--key-file",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="File holding a hex private key (mode 0600) that signs the request.",
)
@click.option(
    "--api-key",
    default=None,
    metavar="DAIMM_SK",
    help="An API key (daimm_sk_..., from `daimm session new` or the /keys page) that signs the"
    " request instead of an account.",
)
@click.option("--pay-per-use", is_flag=True, help="Pay with a voucher on deposited credit.")
@click.option(
    "--receipt-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the whole answer (outputs, predictions and receipt) to this file.",
)
@click.option("--raw", is_flag=True, help="Print the raw outputs as JSON, even with labels.")
def infer(model_id: int, input_file: object, image: Path | None, text: str | None,
          features: object, top_k: int | None, url: str, relayer_address: str | None,
          account: str | None, key_file: str | None, api_key: str | None, pay_per_use: bool,
          receipt_out: str | None, raw: bool) -> None:  # fmt: skip
    """Run MODEL_ID on an image, a text, a row of features or raw tensors; print the answer.

    A classifier whose card has labels answers "label score" lines, best first; other models
    print their outputs as JSON. The receipt is verified before anything is printed. A live
    licence (rented or bought) is used when you hold one; --pay-per-use pays with a voucher on
    your deposited credit instead, and says so when the relayer served you under a licence
    without charging.

    \b
    Examples:
      daimm infer 7 --image cat.png --account TEST::1 --relayer 0xRelayer...
      daimm infer 3 --text "a wonderful film" --key-file me.key
      daimm infer 1 --input request.json --api-key "$DAIMM_API_KEY" --relayer 0xRelayer...
      daimm infer 1 --features row.json --top-k 2 --account alice
      daimm infer 1 --input request.json --account user --relayer 0xRelayer... --pay-per-use \\
          --relayer-url http://127.0.0.1:8700 --receipt-out answer.json
    """
    from daimm.client import RelayerClient

    given = [n for n, v in (("--input", input_file), ("--image", image), ("--text", text),
                            ("--features", features)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise ValidationError("give exactly one of --input, --image, --text or --features")
    request: dict[str, object] = {}
    if input_file is not None:
        document = _json_file(input_file, "--input")
        if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
            document = document["inputs"]
        if not isinstance(document, dict):
            raise ValidationError('the --input file must hold {"inputs": {name: array}}')
        request["inputs"] = document
    elif image is not None:
        request["image"] = image.read_bytes()
    elif text is not None:
        request["text"] = text
    else:
        rows = _json_file(features, "--features")
        if not isinstance(rows, dict | list):
            raise ValidationError('the --features file must hold {"feature": number, ...}')
        request["features"] = rows
    if api_key is not None:
        from daimm.client import SessionRelayerClient

        if account or key_file:
            raise ValidationError("give --api-key or an account (--account, --key-file), not both")
        client: RelayerClient = SessionRelayerClient(url, api_key, expected_relayer=relayer_address)
    else:
        client = RelayerClient(url, _signer(key_file, account), expected_relayer=relayer_address)  # type: ignore[arg-type]
    try:
        prediction = client.predict(
            model_id,
            top_k=top_k,
            pay_per_use=pay_per_use,
            **request,  # type: ignore[arg-type]
        )
    finally:
        client.close()
    if receipt_out:
        answer: dict[str, object] = {"outputs": prediction.outputs}
        if prediction.predictions is not None:
            answer["predictions"] = prediction.predictions
        answer["receipt"] = prediction.receipt
        Path(receipt_out).write_text(json.dumps(answer, indent=2))
    if pay_per_use and prediction.charged == 0:
        click.echo(
            f"Note: the relayer served this call under your licence for model {model_id}; no"
            " credit was charged (a licence holder is never charged per call).",
            err=True,
        )
    if relayer_address is None:
        click.echo("Warning: --relayer not given; trusted the relayer's own claim.",
                   err=True)  # fmt: skip
    if prediction.predictions is None or raw:
        click.echo(json.dumps(prediction.outputs))
        return
    rows = prediction.predictions
    for i, row in enumerate(rows):
        for item in row:
            prefix = f"[{i}] " if len(rows) > 1 else ""
            click.echo(f"{prefix}{item['label']}\t{item['score']:.4f}")


def _json_file(handle: object, option: str) -> object:
    try:
        return json.loads(handle.read())  # type: ignore[attr-defined]
    except ValueError:
        raise ValidationError(f"the {option} file is not JSON") from None
