"""`daimm pack ...`: encrypt a model for chosen recipients, decrypt it, share it further."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from daimm.cli.ipfs import os_errors, progress_bar, quiet_option
from daimm.cli.keys import load_key, passphrase_options

__all__ = ["pack"]


def _model_options(func: Any) -> Any:
    func = click.option(
        "--model-version",
        type=click.IntRange(0, 2**64 - 1),
        default=0,
        show_default=True,
        help="Model version the ciphertext is bound to; decryption must give the same.",
    )(func)
    func = click.option(
        "--model-id",
        type=click.IntRange(0, 2**256 - 1),
        default=0,
        show_default=True,
        help="Model token id the ciphertext is bound to; decryption must give the same.",
    )(func)
    return func


@click.group()
def pack() -> None:
    """Encrypted model packages: ciphertext plus a separate key envelope.

    The ciphertext is what goes to IPFS; the envelope holds the content key wrapped for each
    recipient's public key, so recipients can be added later without changing the CID.
    """


@pack.command("encrypt")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    required=True,
    metavar="PUBKEY",
    help="An x25519:... public key (from `daimm keys new`); repeat for several.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ciphertext file.",
)
@click.option(
    "--envelope",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the key envelope. [default: OUTPUT.envelope.json]",
)
@click.option(
    "--segment-size",
    type=click.IntRange(16, 64 << 20),
    default=1 << 20,
    show_default=True,
    help="Plaintext bytes per authenticated segment.",
)
@_model_options
@quiet_option
@os_errors
def encrypt(
    model: Path,
    recipients: tuple[str, ...],
    output: Path,
    envelope: Path | None,
    segment_size: int,
    model_id: int,
    model_version: int,
    quiet: bool,
) -> None:
    """Encrypt MODEL into OUTPUT and wrap its key for every --recipient.

    \b
    Example:
      daimm pack encrypt model.onnx --recipient x25519:3b6a... -o model.onnx.enc \\
          --model-id 7 --model-version 1
      daimm ipfs add model.onnx.enc
    """
    from daimm.crypto import (
        PublicKey,
        encrypt_stream,
        generate_content_key,
        model_associated_data,
        wrap_key,
    )
    from daimm.ipfs import atomic_output

    public_keys = [PublicKey.parse(text) for text in recipients]
    envelope_path = envelope or output.with_name(output.name + ".envelope.json")
    content_key = generate_content_key()
    key_envelope = wrap_key(content_key, public_keys)
    ad = model_associated_data(model_id, model_version)
    with (
        model.open("rb") as src,
        progress_bar(model.stat().st_size, "encrypt", quiet) as bar,
        atomic_output(output) as dst,
    ):
        encrypt_stream(src, dst, content_key, ad, segment_size=segment_size, progress=bar)
    with atomic_output(envelope_path) as env_out:
        env_out.write(key_envelope.to_json())
    if not quiet:
        click.echo(f"wrote {output} and its key envelope {envelope_path}", err=True)


@pack.command("decrypt")
@click.argument("ciphertext", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--envelope",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The key envelope written by `pack encrypt`.",
)
@click.option(
    "--key",
    "keyfile",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Your private key file (from `daimm keys new`).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The plaintext model; written only if every segment verifies.",
)
@_model_options
@passphrase_options
@quiet_option
@os_errors
def decrypt(
    ciphertext: Path,
    envelope: Path,
    keyfile: Path,
    output: Path,
    model_id: int,
    model_version: int,
    passphrase_file: Path | None,
    ask_passphrase: bool,
    quiet: bool,
) -> None:
    """Decrypt CIPHERTEXT into OUTPUT with your key from the envelope.

    \b
    Example:
      daimm pack decrypt model.onnx.enc --envelope model.onnx.enc.envelope.json \\
          --key relayer.key -o model.onnx --model-id 7 --model-version 1
    """
    from daimm.crypto import KeyEnvelope, decrypt_stream, model_associated_data, unwrap_key
    from daimm.ipfs import atomic_output

    private = load_key(keyfile, passphrase_file, ask_passphrase)
    content_key = unwrap_key(KeyEnvelope.from_json(envelope.read_bytes()), private)
    ad = model_associated_data(model_id, model_version)
    with (
        ciphertext.open("rb") as src,
        progress_bar(ciphertext.stat().st_size, "decrypt", quiet) as bar,
        atomic_output(output, mode=0o600) as dst,
    ):
        decrypt_stream(src, dst, content_key, ad, progress=bar)
    if not quiet:
        click.echo(f"wrote {output}", err=True)


@pack.command("share")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "keyfile",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A private key that already opens the envelope.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    required=True,
    metavar="PUBKEY",
    help="The x25519:... public key to add; repeat for several.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The new envelope (the ciphertext and its CID do not change).",
)
@passphrase_options
@os_errors
def share(
    envelope: Path,
    keyfile: Path,
    recipients: tuple[str, ...],
    output: Path,
    passphrase_file: Path | None,
    ask_passphrase: bool,
) -> None:
    """Add recipients to ENVELOPE, e.g. a new relayer or a perpetual licensee.

    \b
    Example:
      daimm pack share model.onnx.enc.envelope.json --key creator.key \\
          --recipient x25519:9f1c... -o model.onnx.enc.envelope.json
    """
    from daimm.crypto import KeyEnvelope, PublicKey, add_recipient, unwrap_key
    from daimm.ipfs import atomic_output

    private = load_key(keyfile, passphrase_file, ask_passphrase)
    current = KeyEnvelope.from_json(envelope.read_bytes())
    content_key = unwrap_key(current, private)
    for text in recipients:
        current = add_recipient(current, content_key, PublicKey.parse(text))
    with atomic_output(output) as dst:
        dst.write(current.to_json())
