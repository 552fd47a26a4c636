"""`daimm ipfs ...`: add, get, pin and CAR export/import, Kubo-compatible CIDs.

Also home of the helpers the storage verbs share: progress bars and turning OS errors into one
line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from daimm.errors import StorageError

if TYPE_CHECKING:
    from daimm.ipfs import Backend

__all__ = ["ipfs", "os_errors", "progress_bar", "quiet_option"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_STORE = "~/.daimm/blocks"


def os_errors(func: F) -> F:
    """Turn an OSError (disk full, permission denied) into one line instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise StorageError(f"{exc.strerror or exc}{where}") from exc

    return wrapper  # type: ignore[return-value]


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar or status lines on stderr."
)


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A tqdm bar on stderr, shown only when stderr is a terminal and --quiet is not given."""
    from tqdm import tqdm

    disable = quiet or not sys.stderr.isatty()
    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=disable,
        leave=False,
    ) as bar:
        yield bar.update


def _note(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def store_options(func: F) -> F:
    """--store / --kubo: where blocks are written and read."""
    func = click.option(
        "--kubo",
        metavar="URL",
        envvar="DAIMM_KUBO_URL",
        help="Use a Kubo node's RPC API (e.g. http://127.0.0.1:5001) instead of the local store. "
        "[env: DAIMM_KUBO_URL]",
    )(func)
    func = click.option(
        "--store",
        metavar="DIR",
        envvar="DAIMM_STORE",
        default=DEFAULT_STORE,
        show_default=True,
        help="Folder of the embedded block store. [env: DAIMM_STORE]",
    )(func)
    return func


@contextlib.contextmanager
def open_backend(
    store: str, kubo: str | None = None, gateway: str | None = None
) -> Iterator[Backend]:
    """The backend the options select: a gateway, a Kubo node, or the local folder."""
    from daimm.ipfs import Gateway, KuboRpc, LocalBlockstore

    if kubo and gateway:
        raise click.UsageError("choose one of --kubo and --gateway")
    if kubo or gateway:
        import httpx

        with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as client:
            yield KuboRpc(client, kubo) if kubo else Gateway(client, str(gateway))
    else:
        yield LocalBlockstore(os.path.expanduser(store))


def _parse_cid(text: str) -> Any:
    from daimm.ipfs import CID

    return CID.parse(text)


@click.group()
def ipfs() -> None:
    """Content-addressed storage with the same CIDs as Kubo's `ipfs add`.

    Blocks go to an embedded folder store by default (--store, DAIMM_STORE), or to your own Kubo
    node (--kubo URL). Everything fetched is verified block by block against its CID.
    """


@ipfs.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--only-hash", "-n", is_flag=True, help="Compute the CID only; store nothing.")
@click.option(
    "--cid-version",
    type=click.Choice(["0", "1"]),
    default=None,
    help="0: Kubo's default (Qm..., dag-pb leaves); 1: base32 CIDv1 with raw leaves.",
)
@click.option(
    "--profile",
    type=click.Choice(["unixfs-v0-2015", "kubo-cid-v1", "unixfs-v1-2025"]),
    default=None,
    help="A named import profile; unixfs-v1-2025 is IPIP-0499's (1 MiB chunks, 1024 links).",
)
@click.option("--no-pin", is_flag=True, help="With --kubo: store the blocks without pinning.")
@store_options
@quiet_option
@os_errors
def add(
    file: Path,
    only_hash: bool,
    cid_version: str | None,
    profile: str | None,
    no_pin: bool,
    store: str,
    kubo: str | None,
    quiet: bool,
) -> None:
    """Add FILE as a UnixFS file and print its CID alone on stdout.

    \b
    Example:
      daimm ipfs add model.onnx.enc
      daimm ipfs add --only-hash --cid-version 1 model.onnx.enc
    """
    from daimm.ipfs import add_file, hash_file, profile_for

    chosen = profile_for(cid_version=int(cid_version) if cid_version else None, profile=profile)
    size = file.stat().st_size
    with file.open("rb") as src, progress_bar(size, "add", quiet) as bar:
        if only_hash:
            result = hash_file(src, chosen, progress=bar)
        else:
            with open_backend(store, kubo) as backend:
                result = add_file(src, backend, chosen, pin=not no_pin, progress=bar)
    click.echo(str(result.cid))


@ipfs.command("get")
@click.argument("cid")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the file (written only once every block has verified).",
)
@click.option(
    "--gateway",
    metavar="URL",
    envvar="DAIMM_GATEWAY_URL",
    help="Fetch from a trustless HTTP gateway, e.g. https://ipfs.io. [env: DAIMM_GATEWAY_URL]",
)
@click.option("--car", "as_car", is_flag=True, help="With --gateway: fetch one CAR, not blocks.")
@store_options
@quiet_option
@os_errors
def get(
    cid: str,
    output: Path,
    gateway: str | None,
    as_car: bool,
    store: str,
    kubo: str | None,
    quiet: bool,
) -> None:
    """Fetch the file CID into OUTPUT, checking every block against its CID.

    \b
    Example:
      daimm ipfs get bafybei... -o model.onnx.enc
      daimm ipfs get QmXyz... -o model.onnx.enc --gateway https://ipfs.io
    """
    from daimm.ipfs import Gateway, atomic_output, fetch_file, fetch_file_via_car

    root = _parse_cid(cid)
    if as_car and not gateway:
        raise click.UsageError("--car needs --gateway")
    with (
        open_backend(store, kubo, gateway) as backend,
        progress_bar(None, "get", quiet) as bar,
        atomic_output(output) as dst,
    ):
        if as_car:
            assert isinstance(backend, Gateway)
            size = fetch_file_via_car(root, backend, dst, progress=bar)
        else:
            size = fetch_file(root, backend, dst, progress=bar)
    _note(f"wrote {size} bytes to {output}", quiet)


@ipfs.command("pin")
@click.argument("cid")
@click.option(
    "--service",
    metavar="URL",
    envvar="DAIMM_PINNING_URL",
    required=True,
    help="Pinning Service API endpoint. [env: DAIMM_PINNING_URL]",
)
@click.option("--name", default=None, help="A name for the pin, shown by the service.")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="MULTIADDR",
    help="A peer that has the blocks (repeatable), passed to the service as `origins`.",
)
@quiet_option
@os_errors
def pin(cid: str, service: str, name: str | None, origins: tuple[str, ...], quiet: bool) -> None:
    """Ask a remote pinning service to pin CID; print the request id and status.

    The bearer token is read from DAIMM_PINNING_TOKEN (never from the command line).

    \b
    Example:
      DAIMM_PINNING_TOKEN=... daimm ipfs pin bafybei... --service https://api.pinata.cloud/psa
    """
    import httpx

    from daimm.ipfs import PinningService

    root = _parse_cid(cid)
    token = os.environ.get("DAIMM_PINNING_TOKEN", "")
    with httpx.Client(timeout=30.0) as client:
        status = PinningService(client, service, token, origins=origins).add_pin(root, name)
    click.echo(f"{status.request_id} {status.status}")


@ipfs.group("car")
def car() -> None:
    """Export a DAG to a CAR v1 file, or import one into the store."""


@car.command("export")
@click.argument("cid")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="CAR."
)
@store_options
@quiet_option
@os_errors
def car_export(cid: str, output: Path, store: str, kubo: str | None, quiet: bool) -> None:
    """Write the DAG under CID (every block, verified) to a CAR v1 file.

    \b
    Example:
      daimm ipfs car export bafybei... -o model.car
    """
    from daimm.ipfs import atomic_output, export_car

    root = _parse_cid(cid)
    with open_backend(store, kubo) as backend, atomic_output(output) as dst:
        count = export_car(root, backend, dst)
    _note(f"wrote {count} blocks to {output}", quiet)


@car.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@store_options
@quiet_option
@os_errors
def car_import(file: Path, store: str, kubo: str | None, quiet: bool) -> None:
    """Store every block of a CAR v1 file (each verified) and print its root CIDs.

    \b
    Example:
      daimm ipfs car import model.car
    """
    from daimm.ipfs import import_car

    with file.open("rb") as src, open_backend(store, kubo) as backend:
        roots = import_car(src, backend)
    for root in roots:
        click.echo(str(root))
