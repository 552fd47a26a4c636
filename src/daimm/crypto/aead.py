"""Streaming authenticated encryption of model files: AES-256-GCM over fixed-size segments.

File layout (version 1), all integers big-endian::

    offset  size  field
    0       7     magic b"DAIMMAE"
    7       1     version = 1
    8       4     segment size S: plaintext bytes per segment (16 B .. 64 MiB)
    12      32    salt (random per file)
    44      7     nonce prefix (random per file)
    51      32    key commitment
    83      ...   segments: AES-GCM(plaintext[i*S:(i+1)*S]) || 16-byte tag, the last one shorter

- Per-file key and commitment: HKDF-SHA256(ikm=content key, salt=salt, info="daimm/aead/v1" ||
  header[0:51] || SHA-256(associated data)) -> 64 bytes = file key (32) || commitment (32).
  Decryption recomputes the commitment and compares it (constant time) before touching a segment,
  so a wrong key, other associated data (model A served as model B, another version) or a header
  from another file fail at once, and no two keys can open the same ciphertext.
- Nonce of segment i: nonce prefix (7) || i as uint32 (4) || 0x01 if it is the last segment else
  0x00 (1). Reordered, duplicated or dropped segments fail their tag; a file cut at a segment
  boundary fails because its new last segment was sealed as "not last".
- Every segment authenticates the whole header as associated data.
- A plaintext of N bytes has max(1, ceil(N / S)) segments: an empty file is one empty segment.

INVARIANT: a (file key, nonce) pair is never used twice: the file key is fresh per file (random
salt) and the index is unique within a file; a file that would need more than 2**32 segments is
refused before its first byte is written.

IMPORTANT: streaming decryption releases each segment's plaintext once that segment has verified,
before later segments are read. A truncated or corrupted file therefore raises `IntegrityError`
after some plaintext was produced: write to a temporary file and keep it only if decryption
returns (`daimm.ipfs.atomic_output` does this), as the CLI does. A failing segment's own plaintext
is never released.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daimm.errors import CryptoError, IntegrityError

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "HEADER_SIZE",
    "MAX_SEGMENTS",
    "Header",
    "ciphertext_size",
    "decrypt_stream",
    "derive_file_key",
    "encrypt_stream",
    "generate_content_key",
    "model_associated_data",
    "segment_nonce",
]

MAGIC = b"DAIMMAE"
VERSION = 1
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 16
MAX_SEGMENT_SIZE = 64 << 20  # bounds what a hostile header can make a reader allocate
MAX_SEGMENTS = 1 << 32  # the index is a uint32 inside the nonce
CONTENT_KEY_SIZE = 32
TAG_SIZE = 16
_PREFIX = struct.Struct(">7sBI32s7s")  # magic, version, segment size, salt, nonce prefix
HEADER_SIZE = _PREFIX.size + 32
_KDF_LABEL = b"daimm/aead/v1"

Progress = Callable[[int], None]


def generate_content_key() -> bytes:
    """A fresh random 256-bit content key (wrap it for recipients with `daimm.crypto.envelope`)."""
    return os.urandom(CONTENT_KEY_SIZE)


def model_associated_data(model_id: int, version: int) -> bytes:
    """The associated data daimm binds a model's ciphertext to: its token id and version.

    Decrypting with another model id or version fails, so a node cannot serve one model's
    ciphertext as another's.
    """
    if not 0 <= model_id < 1 << 256 or not 0 <= version < 1 << 64:
        raise CryptoError("model id must be a uint256 and version a uint64")
    return b"daimm/model\x00" + model_id.to_bytes(32, "big") + version.to_bytes(8, "big")


def ciphertext_size(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """Bytes of ciphertext (header included) for a plaintext of `plaintext_size` bytes."""
    segments = max(1, -(-plaintext_size // segment_size))
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


def segment_nonce(prefix: bytes, index: int, last: bool) -> bytes:
    """The 96-bit GCM nonce of segment `index`: prefix || uint32 index || last flag.

    Raises:
        CryptoError: `index` does not fit in 32 bits (the nonce would repeat).
    """
    if not 0 <= index < MAX_SEGMENTS:
        raise CryptoError(
            f"segment index {index} overflows the 32-bit counter: the file is too large for "
            "this segment size; use a larger segment size"
        )
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def derive_file_key(content_key: bytes, header_prefix: bytes, associated_data: bytes) -> bytes:
    """HKDF-SHA256 -> file key (32 bytes) || key commitment (32 bytes). Pure."""
    if len(content_key) != CONTENT_KEY_SIZE:
        raise CryptoError("a content key is 32 bytes")
    salt = header_prefix[12:44]
    info = _KDF_LABEL + header_prefix + hashlib.sha256(associated_data).digest()
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=info).derive(content_key)


@dataclass(frozen=True, slots=True)
class Header:
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    commitment: bytes

    @property
    def prefix_bytes(self) -> bytes:
        return _PREFIX.pack(MAGIC, VERSION, self.segment_size, self.salt, self.nonce_prefix)

    def to_bytes(self) -> bytes:
        return self.prefix_bytes + self.commitment

    def plaintext_size(self, ciphertext_size_: int) -> int:
        """The plaintext bytes a whole ciphertext of ``ciphertext_size_`` bytes (header included)
        holds under this header's segment framing; checks the size alone, not the tags.

        Raises:
            IntegrityError: no plaintext length gives that ciphertext size (a truncated file or
                one with bytes appended).
        """
        body = ciphertext_size_ - HEADER_SIZE
        segments = max(1, -(-body // (self.segment_size + TAG_SIZE)))
        plain = body - segments * TAG_SIZE
        if plain < 0 or ciphertext_size(plain, self.segment_size) != ciphertext_size_:
            raise IntegrityError(
                f"{ciphertext_size_} bytes is not a whole daimm ciphertext with "
                f"{self.segment_size}-byte segments: it was truncated or extended"
            )
        return plain

    @classmethod
    def parse(cls, raw: bytes) -> Header:
        """Parse and sanity-check a header (authentication happens against the key).

        Raises:
            IntegrityError: not a daimm ciphertext, a version this build cannot read, or a
                truncated header.
        """
        if len(raw) < HEADER_SIZE:
            raise IntegrityError(
                "ciphertext is truncated: shorter than the 83-byte header of a daimm file"
            )
        magic, version, segment_size, salt, prefix = _PREFIX.unpack(raw[: _PREFIX.size])
        if magic != MAGIC:
            raise IntegrityError("not a daimm encrypted file (bad magic bytes)")
        if version != VERSION:
            raise IntegrityError(
                f"encrypted file format version {version} is not supported by this daimm "
                f"(it reads version {VERSION}); upgrade daimm"
            )
        if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
            raise IntegrityError(f"implausible segment size {segment_size} in the header")
        return cls(segment_size, salt, prefix, raw[_PREFIX.size : HEADER_SIZE])


def _fill(src: BinaryIO, buf: bytearray) -> int:
    """Read into `buf` until it is full or the stream ends; return the byte count.

    Streams may return short reads (pipes, sockets); segment boundaries must not depend on that.
    """
    view = memoryview(buf)
    got = 0
    readinto = getattr(src, "readinto", None)
    while got < len(buf):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            chunk = src.read(len(buf) - got)
            n = len(chunk)
            view[got : got + n] = chunk
        if not n:
            break
        got += n
    return got


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    content_key: bytes,
    associated_data: bytes,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    progress: Progress | None = None,
) -> int:
    """Encrypt `src` to `dst`; return the number of plaintext bytes.

    Memory: two segments (the one being sealed and one read ahead to know which is last).

    Args:
        src: plaintext, read to its end.
        dst: receives header and segments.
        content_key: 32 random bytes (`generate_content_key`).
        associated_data: bound into the key derivation; decryption must pass the same bytes
            (daimm uses `model_associated_data(model_id, version)`).
        segment_size: plaintext bytes per segment.
        progress: called with plaintext bytes after each segment.

    Raises:
        CryptoError: bad key or segment size, or the file needs more than 2**32 segments.
    """
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise CryptoError(
            f"segment size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes"
        )
    salt, prefix = os.urandom(32), os.urandom(7)
    header_prefix = _PREFIX.pack(MAGIC, VERSION, segment_size, salt, prefix)
    okm = derive_file_key(content_key, header_prefix, associated_data)
    header = header_prefix + okm[32:]
    aead = AESGCM(okm[:32])
    dst.write(header)
    # NOTE: two plaintext buffers (current, read-ahead) and one output buffer, reused for every
    # segment: the hot loop allocates nothing, which is what keeps it near the AES-GCM ceiling.
    current, following = bytearray(segment_size), bytearray(segment_size)
    sealed = bytearray(segment_size + TAG_SIZE)
    total = 0
    index = 0
    size = _fill(src, current)
    while True:
        next_size = _fill(src, following) if size == segment_size else 0
        last = next_size == 0
        # Checked before sealing: the overflowing segment is never written.
        nonce = segment_nonce(prefix, index, last)
        out = memoryview(sealed)[: size + TAG_SIZE]
        aead.encrypt_into(nonce, memoryview(current)[:size], header, out)
        dst.write(out)
        total += size
        if progress is not None:
            progress(size)
        if last:
            return total
        current, following, size = following, current, next_size
        index += 1


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    content_key: bytes,
    associated_data: bytes,
    *,
    progress: Progress | None = None,
) -> int:
    """Decrypt `src` to `dst`, verifying every segment; return the plaintext byte count.

    Raises:
        IntegrityError: wrong key or associated data, a header from another file, a flipped bit,
            a truncated, extended, reordered or duplicated segment. See the module NOTE on
            plaintext already written when this is raised.
    """
    raw = bytearray(HEADER_SIZE)
    header = Header.parse(bytes(raw[: _fill(src, raw)]))
    okm = derive_file_key(content_key, header.prefix_bytes, associated_data)
    if not hmac.compare_digest(okm[32:], header.commitment):
        raise IntegrityError(
            "key commitment mismatch: wrong key, or this ciphertext belongs to another model "
            "or version (or its header was altered); nothing was decrypted"
        )
    aead = AESGCM(okm[:32])
    raw_header = header.to_bytes()
    sealed_size = header.segment_size + TAG_SIZE
    current, following = bytearray(sealed_size), bytearray(sealed_size)
    plain = bytearray(header.segment_size)
    total = 0
    index = 0
    size = _fill(src, current)
    if not size:
        raise IntegrityError("ciphertext is truncated: no segment follows the header")
    while True:
        next_size = _fill(src, following) if size == sealed_size else 0
        last = next_size == 0
        if size < TAG_SIZE:
            raise IntegrityError(f"ciphertext is truncated inside segment {index}")
        nonce = segment_nonce(header.nonce_prefix, index, last)
        out = memoryview(plain)[: size - TAG_SIZE]
        try:
            aead.decrypt_into(nonce, memoryview(current)[:size], raw_header, out)
        except InvalidTag:
            # decrypt_into may have written unverified bytes into `out`; they are never released
            # and are overwritten before the buffer is reused.
            where = "the final segment" if last else f"segment {index}"
            raise IntegrityError(
                f"{where} (index {index}) failed authentication: the ciphertext was corrupted, "
                "truncated, reordered or extended; discard everything decrypted from it"
            ) from None
        dst.write(out)
        total += len(out)
        if progress is not None:
            progress(len(out))
        if last:
            return total
        current, following, size = following, current, next_size
        index += 1
