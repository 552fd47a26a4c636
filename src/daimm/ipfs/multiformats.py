"""CIDs, multihashes, varints and the two multibase encodings Kubo prints.

Only what daimm needs: CIDv0 (base58btc, dag-pb) and CIDv1 (base32 lower case, `b` prefix) over
sha2-256, with the dag-pb and raw codecs. Anything else is refused rather than trusted: a CID whose
hash we cannot recompute cannot be verified.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from daimm.errors import IntegrityError, ValidationError

__all__ = [
    "CID",
    "DAG_PB",
    "RAW",
    "SHA2_256",
    "decode_varint",
    "encode_varint",
    "read_varint",
    "verify_block",
]

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_SHA2_256_LENGTH = 32
_CODEC_NAMES = {DAG_PB: "dag-pb", RAW: "raw"}

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128, as used by multiformats and protobuf."""
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode an unsigned varint at `offset`; return (value, offset after it).

    Raises:
        ValidationError: truncated, longer than 9 bytes, or not minimally encoded.
    """
    value = 0
    shift = 0
    start = offset
    while True:
        if offset >= len(data):
            raise ValidationError("truncated varint: the data ends in the middle of a number")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and offset - start > 1:
                raise ValidationError("varint is not minimally encoded")
            return value, offset
        shift += 7
        if shift >= 63:
            raise ValidationError("varint longer than 9 bytes")


def read_varint(stream: BinaryIO) -> int | None:
    """Read one varint from a stream; None at a clean end of stream (no byte read)."""
    buf = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            if buf:
                raise ValidationError("truncated varint at the end of the stream")
            return None
        buf += byte
        if byte[0] < 0x80:
            return decode_varint(bytes(buf))[0]
        if len(buf) > 9:
            raise ValidationError("varint longer than 9 bytes")


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValidationError(f"{text!r} is not base58btc")
        number = number * 58 + _B58_INDEX[char]
    pad = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * pad + body


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not base32") from exc


@dataclass(frozen=True, slots=True)
class CID:
    """A content identifier over sha2-256: version 0 or 1, codec dag-pb or raw."""

    version: int
    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise ValidationError(f"CID version {self.version} is not supported (only 0 and 1)")
        if self.codec not in _CODEC_NAMES:
            raise ValidationError(
                f"CID codec 0x{self.codec:x} is not supported (only dag-pb and raw file blocks)"
            )
        if self.version == 0 and self.codec != DAG_PB:
            raise ValidationError("a CIDv0 is always dag-pb")
        if len(self.digest) != _SHA2_256_LENGTH:
            raise ValidationError("a sha2-256 digest is 32 bytes")

    @classmethod
    def for_block(cls, data: bytes, *, version: int, codec: int) -> CID:
        """The CID of a block: sha2-256 of its bytes."""
        return cls(version, codec, hashlib.sha256(data).digest())

    @property
    def multihash(self) -> bytes:
        return bytes((SHA2_256, _SHA2_256_LENGTH)) + self.digest

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES[self.codec]

    def to_bytes(self) -> bytes:
        """Binary form: the bare multihash for v0, version + codec + multihash for v1."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return _b58encode(self.multihash)
        return "b" + _b32encode(self.to_bytes())

    def __repr__(self) -> str:
        return f"CID({self})"

    @classmethod
    def _parse_multihash(cls, data: bytes, offset: int) -> tuple[bytes, int]:
        code, offset = decode_varint(data, offset)
        length, offset = decode_varint(data, offset)
        if code != SHA2_256 or length != _SHA2_256_LENGTH:
            raise ValidationError(
                f"multihash 0x{code:x}/{length} is not supported (only sha2-256): "
                "daimm verifies every block and can only recompute sha2-256"
            )
        if offset + length > len(data):
            raise ValidationError("truncated multihash")
        return data[offset : offset + length], offset + length

    @classmethod
    def decode_prefix(cls, data: bytes) -> tuple[CID, int]:
        """Parse a binary CID at the start of `data`; return it and its length in bytes."""
        if len(data) >= 2 and data[0] == SHA2_256 and data[1] == _SHA2_256_LENGTH:
            digest, end = cls._parse_multihash(data, 0)
            return cls(0, DAG_PB, digest), end
        version, offset = decode_varint(data, 0)
        if version != 1:
            raise ValidationError(f"binary CID version {version} is not supported")
        codec, offset = decode_varint(data, offset)
        if codec not in _CODEC_NAMES:
            raise ValidationError(f"CID codec 0x{codec:x} is not supported")
        digest, end = cls._parse_multihash(data, offset)
        return cls(1, codec, digest), end

    @classmethod
    def from_bytes(cls, data: bytes) -> CID:
        cid, end = cls.decode_prefix(data)
        if end != len(data):
            raise ValidationError("trailing bytes after a binary CID")
        return cid

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID as printed by Kubo: `Qm...` (v0) or `b...` (v1 base32); also `z`/`f`.

        Raises:
            ValidationError: not a CID daimm can verify; the message says why.
        """
        text = text.strip()
        if text.startswith("/ipfs/"):
            text = text[len("/ipfs/") :]
        if len(text) == 46 and text.startswith("Qm"):
            return cls.from_bytes(_b58decode(text))
        if not text:
            raise ValidationError("empty CID")
        prefix, body = text[0], text[1:]
        if prefix == "b":
            raw = _b32decode(body)
        elif prefix == "z":
            raw = _b58decode(body)
        elif prefix == "f":
            try:
                raw = bytes.fromhex(body)
            except ValueError as exc:
                raise ValidationError(f"{text!r} is not a base16 CID") from exc
        else:
            raise ValidationError(
                f"{text!r} is not a CID: expected Qm... (v0) or b... (v1, base32)"
            )
        cid = cls.from_bytes(raw)
        if cid.version == 0:
            raise ValidationError("a CIDv0 must be written in base58btc (Qm...)")
        return cid

    def to_v1(self) -> CID:
        return CID(1, self.codec, self.digest)


def verify_block(cid: CID, data: bytes) -> bytes:
    """Return `data` if it hashes to `cid`.

    Raises:
        IntegrityError: the bytes are not the block `cid` names; they must not be used.
    """
    if hashlib.sha256(data).digest() != cid.digest:
        raise IntegrityError(
            f"block {cid} failed verification: the bytes received do not hash to this CID; "
            "the node or gateway that served them is faulty or hostile, try another source"
        )
    return data
