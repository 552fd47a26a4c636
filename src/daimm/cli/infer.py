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
    required=True,
    help='JSON file: {"inputs": {name: array}} or just {name: array}.',
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
@click.option("--pay-per-use", is_flag=True, help="Pay with a voucher on deposited credit.")
@click.option(
    "--receipt-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the whole answer (outputs and receipt) to this file.",
)
def infer(model_id: int, input_file: object, url: str, relayer_address: str | None,
          account: str | None, key_file: str | None, pay_per_use: bool,
          receipt_out: str | None) -> None:  # fmt: skip
    """Run MODEL_ID on the inputs in --input and print its outputs as JSON.

    A live licence (rented or bought) is used when you hold one; --pay-per-use pays with a
    voucher on your deposited credit instead, and says so when the relayer served you under a
    licence without charging.

    \b
    Examples:
      daimm infer 1 --input sample.json --account user --relayer 0xRelayer...
      daimm infer 1 --input sample.json --account user --relayer 0xRelayer... --pay-per-use \\
          --relayer-url http://127.0.0.1:8700 --receipt-out answer.json
    """
    from daimm.client import RelayerClient

    try:
        document = json.loads(input_file.read())  # type: ignore[attr-defined]
    except ValueError:
        raise ValidationError("the --input file is not JSON") from None
    if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
        document = document["inputs"]
    if not isinstance(document, dict):
        raise ValidationError('the --input file must hold {"inputs": {name: array}}')
    client = RelayerClient(url, _signer(key_file, account), expected_relayer=relayer_address)  # type: ignore[arg-type]
    try:
        prediction = client.predict(model_id, document, pay_per_use=pay_per_use)
    finally:
        client.close()
    if receipt_out:
        Path(receipt_out).write_text(
            json.dumps({"outputs": prediction.outputs, "receipt": prediction.receipt}, indent=2)
        )
    if pay_per_use and prediction.charged == 0:
        click.echo(
            f"Note: the relayer served this call under your licence for model {model_id}; no"
            " credit was charged (a licence holder is never charged per call).",
            err=True,
        )
    if relayer_address is None:
        click.echo("Warning: --relayer not given; trusted the relayer's own claim.",
                   err=True)  # fmt: skip
    click.echo(json.dumps(prediction.outputs))
