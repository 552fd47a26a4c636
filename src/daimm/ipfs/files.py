"""Whole-file operations over any backend: add, fetch, CAR export and import.

Each takes the stream or path and the backend from the caller and does nothing else behind its
back; `progress` (if given) is called with byte counts so a CLI can draw a bar.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from daimm.errors import StorageError, ValidationError
from daimm.ipfs.backends import Backend, Gateway, LocalBlockstore
from daimm.ipfs.car import CarReader, write_car
from daimm.ipfs.multiformats import CID
from daimm.ipfs.unixfs import KUBO_DEFAULT, ImportResult, Profile, import_file, iter_dag, iter_file

__all__ = [
    "add_file",
    "atomic_output",
    "export_car",
    "fetch_file",
    "fetch_file_via_car",
    "hash_file",
    "import_car",
]

Progress = Callable[[int], None]


def hash_file(
    stream: BinaryIO, profile: Profile = KUBO_DEFAULT, *, progress: Progress | None = None
) -> ImportResult:
    """The CID `ipfs add --only-hash` would print; nothing is stored."""
    return import_file(stream, lambda _cid, _block: None, profile, progress=progress)


def add_file(
    stream: BinaryIO,
    backend: Backend,
    profile: Profile = KUBO_DEFAULT,
    *,
    pin: bool = True,
    progress: Progress | None = None,
) -> ImportResult:
    """Import `stream` as a UnixFS file into `backend` and (by default) pin the root.

    Safe to re-run after an interruption: blocks are content-addressed and the local blockstore
    skips those it already holds.
    """
    result = import_file(stream, backend.put_block, profile, progress=progress)
    if pin:
        backend.pin(result.cid)
    return result


def fetch_file(
    root: CID, backend: Backend, dst: BinaryIO, *, progress: Progress | None = None
) -> int:
    """Write the file `root` to `dst`, verifying every block; return the byte count.

    Raises:
        IntegrityError: a block did not match its CID (the message names it).
        StorageError: a block could not be fetched.
    """
    written = 0
    for piece in iter_file(root, backend.get_block):
        dst.write(piece)
        written += len(piece)
        if progress is not None:
            progress(len(piece))
    return written


def fetch_file_via_car(
    root: CID, gateway: Gateway, dst: BinaryIO, *, progress: Progress | None = None
) -> int:
    """Fetch `root` as one CAR from a trustless gateway, then write the file to `dst`.

    Blocks land in a temporary folder (memory stays bounded whatever the file size) and the file is
    assembled from there, so a CAR in any block order works.
    """
    with tempfile.TemporaryDirectory(prefix="daimm-car-") as tmp:
        store = LocalBlockstore(tmp)
        for cid, block in gateway.iter_car(root):
            store.put_block(cid, block)
        return fetch_file(root, store, dst, progress=progress)


def export_car(root: CID, backend: Backend, dst: BinaryIO) -> int:
    """Write the DAG under `root` as a CAR v1 (depth-first, each block once); return blocks."""
    return write_car([root], iter_dag(root, backend.get_block), dst)


def import_car(src: BinaryIO, backend: Backend) -> tuple[CID, ...]:
    """Store every block of a CAR v1 in `backend`, each verified first; return the CAR's roots.

    Raises:
        IntegrityError: a block does not hash to the CID it is filed under.
        ValidationError: the stream is not a well-formed CAR v1, or lacks a root it names.
    """
    reader = CarReader(src)
    present: set[CID] = set()
    for cid, block in reader.blocks():
        backend.put_block(cid, block)
        present.add(CID(1, cid.codec, cid.digest))
    missing = [r for r in reader.roots if CID(1, r.codec, r.digest) not in present]
    if missing:
        raise ValidationError(f"the CAR names root {missing[0]} but does not contain it")
    for root in reader.roots:
        backend.pin(root)
    return reader.roots


class atomic_output:  # noqa: N801 - used like open()
    """Open `path` for writing through a temporary file that replaces it only on success.

    On any exception the temporary file is removed, so a failed fetch or decryption never leaves a
    partial or unverified file under the name the user asked for.
    """

    def __init__(self, path: str | os.PathLike[str], mode: int = 0o644):
        self.path = Path(path)
        self._mode = mode
        self._tmp: Path | None = None
        self._fh: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".part")
        except OSError as exc:
            raise StorageError(f"cannot write to {directory}: {exc.strerror}") from exc
        os.fchmod(fd, self._mode)
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        return self._fh

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._fh is not None and self._tmp is not None
        self._fh.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
