"""The structured reference string (SRS): accepted by path, and only if its hash is pinned.

Halo2 with KZG commitments needs an SRS. Whoever knows the secret an SRS was made from can forge
proofs that verify, so production uses the public ceremony's SRS (fetched once on a networked
machine and pinned here by SHA-256), never one made locally. :func:`check_srs` refuses a file whose
hash is not pinned for its size, unless the caller passes ``allow_test_srs=True`` explicitly: that
is what the tests do with an SRS from :func:`daimm.zk.prover.generate_test_srs`, and what no
deployment may do (docs/ZK.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from daimm.errors import SrsError

__all__ = [
    "CEREMONY_LOGROWS",
    "CEREMONY_SRS_SHA256",
    "CEREMONY_SRS_SOURCE",
    "PINNED_SRS_SHA256",
    "check_srs",
    "sha256_file",
]

#: The circuit size the pinned SRS is for: the provable sample's circuit has 2**13 rows.
CEREMONY_LOGROWS = 13
#: Where the public ceremony's SRS for :data:`CEREMONY_LOGROWS` comes from: the Halo2-KZG
#: conversion of the Perpetual Powers of Tau ceremony, as ezkl's ``get_srs`` downloads it for
#: logrows 13 (file ``perpetual-powers-of-tau-raw-13``; confirm the address ezkl prints, on a
#: networked machine).
CEREMONY_SRS_SOURCE = "ezkl get_srs, logrows 13 (perpetual-powers-of-tau-raw-13)"
#: SHA-256 of that file: THE one value to fill in to accept real proofs.
#: NOTE: None in this build. It was written offline, no authoritative hash of the ceremony file
#: was available here, and a hash must never be written down without hashing the real file. On a
#: networked machine: fetch it with ezkl's ``get_srs`` for logrows 13, ``sha256sum`` the file,
#: then set this constant (and say where and when in the commit). Until then only
#: ``allow_test_srs`` proofs can be made (tests, `daimm up`'s local chain).
CEREMONY_SRS_SHA256: str | None = None

#: SHA-256 of the accepted SRS file, per logrows: built from the one constant above.
PINNED_SRS_SHA256: Mapping[int, str] = (
    {CEREMONY_LOGROWS: CEREMONY_SRS_SHA256} if CEREMONY_SRS_SHA256 else {}
)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_srs(
    path: str | Path,
    logrows: int,
    *,
    allow_test_srs: bool = False,
    pinned: Mapping[int, str] = PINNED_SRS_SHA256,
) -> str:
    """Check the SRS file at ``path`` for a circuit of ``logrows``; return its SHA-256.

    Raises:
        SrsError: The file is missing, or its hash is not the pinned one for ``logrows`` and
            ``allow_test_srs`` is not set.
    """
    srs = Path(path)
    if not srs.is_file():
        raise SrsError(f"no SRS file at {srs}: pass the public ceremony's kzg{logrows}.srs")
    digest = sha256_file(srs)
    if allow_test_srs:
        return digest
    expected = pinned.get(logrows)
    if expected is None:
        raise SrsError(
            f"no pinned SRS hash for logrows {logrows}: pin the public ceremony's kzg{logrows}.srs"
            " in daimm.zk.srs.PINNED_SRS_SHA256 (CEREMONY_SRS_SHA256, docs/ZK.md); a locally"
            " generated SRS is for tests only (allow_test_srs)"
        )
    if digest != expected:
        raise SrsError(
            f"the SRS at {srs} is not the pinned public ceremony file for logrows {logrows}"
            f" (sha256 {digest}, pinned {expected}): whoever made it could forge proofs"
        )
    return digest
