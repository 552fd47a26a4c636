"""Shared helpers of the IPFS tests: the IPIP-0499 data generator and the slow-test switch."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms


def run_slow() -> bool:
    """Long tests run under `make fuzz` (DAIMM_FUZZ=long), with --runslow, or DAIMM_SLOW=1."""
    return (
        os.environ.get("DAIMM_FUZZ") == "long"
        or os.environ.get("DAIMM_SLOW") == "1"
        or "--runslow" in sys.argv
    )


slow = pytest.mark.slow
skip_unless_slow = pytest.mark.skipif(
    not run_slow(), reason="long: run with DAIMM_SLOW=1 or make fuzz"
)


def deterministic_stream(size: int, seed: str, chunk: int = 1 << 20):
    """The IPIP-0499 / Kubo test-vector data: the ChaCha20 keystream (RFC 7539, key = SHA-256 of
    the seed, 96-bit nonce and block counter both zero), `size` bytes long."""
    key = hashlib.sha256(seed.encode()).digest()
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    zeros = bytes(chunk)
    remaining = size
    while remaining:
        n = min(chunk, remaining)
        yield encryptor.update(zeros[:n])
        remaining -= n


def deterministic_bytes(size: int, seed: str) -> bytes:
    return b"".join(deterministic_stream(size, seed))


def write_deterministic(path: Path, size: int, seed: str) -> Path:
    with path.open("wb") as fh:
        for piece in deterministic_stream(size, seed):
            fh.write(piece)
    return path
