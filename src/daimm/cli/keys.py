"""`daimm keys ...`: X25519 key pairs for receiving wrapped model keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daimm.cli.ipfs import os_errors
from daimm.errors import ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = ["keys", "load_key", "passphrase_options", "read_passphrase"]

_PASSPHRASE_ENV = "DAIMM_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


def passphrase_options(func):  # type: ignore[no-untyped-def]
    """--passphrase-file / --ask-passphrase (or DAIMM_KEY_PASSPHRASE) for protected key files."""
    func = click.option(
        "--ask-passphrase", is_flag=True, help="Prompt for the key file's passphrase."
    )(func)
    func = click.option(
        "--passphrase-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=f"Read the key file's passphrase from this file. [env: {_PASSPHRASE_ENV}]",
    )(func)
    return func


def read_passphrase(
    passphrase_file: Path | None, ask: bool, *, confirm: bool = False
) -> str | None:
    """The passphrase from a file, a prompt or the environment; None when none is given."""
    if passphrase_file is not None and ask:
        raise click.UsageError("choose one of --passphrase-file and --ask-passphrase")
    if passphrase_file is not None:
        text = passphrase_file.read_text(encoding="utf-8").rstrip("\r\n")
        if not text:
            raise ValidationError(f"{passphrase_file} is empty")
        return text
    if ask:
        return str(click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))
    return os.environ.get(_PASSPHRASE_ENV) or None


def load_key(keyfile: Path, passphrase_file: Path | None, ask: bool) -> X25519PrivateKey:
    """The private key in ``keyfile``, opened with the passphrase from :func:`read_passphrase`."""
    from daimm.crypto.keys import load_private_key

    return load_private_key(keyfile, read_passphrase(passphrase_file, ask))


@click.group()
def keys() -> None:
    """X25519 key pairs: a relayer or licensee publishes the public key, keeps the file."""


@keys.command("new")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The private key file to create (mode 0600; never overwritten).",
)
@passphrase_options
@os_errors
def new(output: Path, passphrase_file: Path | None, ask_passphrase: bool) -> None:
    """Create a key pair in OUTPUT and print its public key on stdout.

    With a passphrase (--ask-passphrase, --passphrase-file or DAIMM_KEY_PASSPHRASE) the private
    key is encrypted with a scrypt-derived key.

    \b
    Example:
      daimm keys new -o relayer.key
      daimm keys new -o relayer.key --ask-passphrase
    """
    from daimm.crypto.keys import generate_private_key, public_key_of, save_private_key

    passphrase = read_passphrase(passphrase_file, ask_passphrase, confirm=True)
    private = generate_private_key()
    save_private_key(output, private, passphrase)
    click.echo(str(public_key_of(private)))


@keys.command("show")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@passphrase_options
@os_errors
def show(keyfile: Path, passphrase_file: Path | None, ask_passphrase: bool) -> None:
    """Print the public key of KEYFILE (checking the file and its passphrase).

    \b
    Example:
      daimm keys show relayer.key
    """
    from daimm.crypto.keys import public_key_of

    private = load_key(keyfile, passphrase_file, ask_passphrase)
    click.echo(str(public_key_of(private)))


def _ape_account(alias: str) -> object:
    # NOTE: ape's own alias parsing (as --account elsewhere), imported only here: `daimm keys new`
    # and `show` do not load ape.
    from ape.cli.choices import AccountAliasPromptChoice

    try:
        return AccountAliasPromptChoice().convert(alias, None, None)
    except click.BadParameter:
        raise ValidationError(
            f"no ape account {alias!r}: see `ape accounts list` (TEST::0 for a test account)"
        ) from None


@keys.command("derive")
@click.option(
    "--account",
    required=True,
    envvar="DAIMM_ACCOUNT",
    help="Ape account alias whose signature derives the key (TEST::0 for a test account)."
    " [env: DAIMM_ACCOUNT]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the derived private key in this key file (mode 0600; never overwritten).",
)
@passphrase_options
@os_errors
def derive(
    account: str, output: Path | None, passphrase_file: Path | None, ask_passphrase: bool
) -> None:
    """Derive the creator's X25519 key from ACCOUNT's signature and print its public key.

    The account signs a fixed EIP-712 message (CreatorKey, domain "daimm Creator Key"); the key
    is HKDF-SHA256 of that signature. Wallets sign deterministically, so the publish page of
    `daimm web` and this command recover the same key without any key file. With -o the key is
    also written to a key file for the other `daimm pack` commands.

    \b
    Example:
      daimm keys derive --account creator
      daimm keys derive --account creator -o creator.key --ask-passphrase
    """
    from daimm import eip712
    from daimm.crypto.keys import derive_private_key, public_key_of, save_private_key

    signer = _ape_account(account)
    address = str(signer.address)  # type: ignore[attr-defined]
    signed = signer.sign_message(eip712.signable_creator_key(address))  # type: ignore[attr-defined]
    if signed is None:
        raise ValidationError(f"account {account} declined to sign the CreatorKey message")
    r, s = (
        int.from_bytes(x, "big") if isinstance(x, bytes) else int(x) for x in (signed.r, signed.s)
    )
    signature = eip712.encode_signature(int(signed.v), r, s)
    eip712.verify_creator_key(address, signature)
    private = derive_private_key(signature)
    if output is not None:
        passphrase = read_passphrase(passphrase_file, ask_passphrase, confirm=True)
        save_private_key(output, private, passphrase)
    click.echo(str(public_key_of(private)))
