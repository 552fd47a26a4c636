"""``daimm verify-receipt``: check a relayer's signed receipt."""

from __future__ import annotations

import json

import click

from daimm.errors import ReceiptError


@click.command("verify-receipt")
@click.argument("receipt_file", type=click.File("rb"))
@click.option("--relayer", required=True, help="The relayer's registered Ethereum address.")
@click.option(
    "--body",
    "body_file",
    type=click.File("rb"),
    default=None,
    help="The exact request body sent, to check inputsHash.",
)
def verify_receipt(receipt_file: click.utils.LazyFile, relayer: str, body_file: object) -> None:
    """Check RECEIPT_FILE (a receipt, or a whole answer holding one) against RELAYER.

    With an answer file (``{"outputs": ..., "receipt": ...}``) the outputs hash is checked too.

    \b
    Example:
      daimm infer 1 --input sample.json --account user --receipt-out answer.json
      daimm verify-receipt answer.json --relayer 0xRelayer...
    """
    from daimm.client import verify_receipt_document
    from daimm.units import format_time

    try:
        document = json.loads(receipt_file.read())
    except ValueError:
        raise ReceiptError("the receipt file is not JSON") from None
    outputs = predictions = None
    if isinstance(document, dict) and "receipt" in document:
        outputs, predictions = document.get("outputs"), document.get("predictions")
        document = document["receipt"]
    if not isinstance(document, dict):
        raise ReceiptError("the receipt file holds no receipt object")
    body = body_file.read() if body_file is not None else None  # type: ignore[attr-defined]
    receipt = verify_receipt_document(
        document, relayer, body=body, outputs=outputs, predictions=predictions
    )
    click.echo(
        f"OK: receipt for model {receipt.model_id} (weights {receipt.weights_cid}) at"
        f" {format_time(receipt.timestamp)} was signed by {relayer}"
    )
