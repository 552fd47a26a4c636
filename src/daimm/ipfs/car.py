"""CAR v1 (https://ipld.io/specs/transport/car/carv1/): a DAG's blocks in one stream.

Layout: `varint(len(header)) header` where the header is the DAG-CBOR map
`{"roots": [CID, ...], "version": 1}`, then per block `varint(len(cid) + len(data)) cid data`.
Writing is streaming; reading verifies every block against its CID as it goes, so a CAR from an
untrusted gateway or peer cannot smuggle in bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from daimm.errors import ValidationError
from daimm.ipfs.multiformats import CID, encode_varint, read_varint, verify_block

__all__ = ["CarReader", "encode_header", "read_blocks", "write_car"]

_MAX_HEADER = 1 << 16
_MAX_SECTION = (1 << 22) + 128  # a block is at most a few MiB; refuse absurd lengths up front
_CID_TAG = 42


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes((major << 5 | extra,)) + value.to_bytes(size, "big")
    raise ValueError("CBOR value too large")


def encode_header(roots: Iterable[CID]) -> bytes:
    """The DAG-CBOR header (keys in length-first order: "roots" before "version")."""
    roots = list(roots)
    parts = [_cbor_head(5, 2), _cbor_head(3, 5), b"roots", _cbor_head(4, len(roots))]
    for root in roots:
        raw = b"\x00" + root.to_bytes()  # tag 42 content: identity multibase prefix + binary CID
        parts += [_cbor_head(6, _CID_TAG), _cbor_head(2, len(raw)), raw]
    parts += [_cbor_head(3, 7), b"version", _cbor_head(0, 1)]
    return b"".join(parts)


def write_car(roots: Iterable[CID], blocks: Iterable[tuple[CID, bytes]], dst: BinaryIO) -> int:
    """Write a CAR v1 stream; return the number of blocks written."""
    header = encode_header(roots)
    dst.write(encode_varint(len(header)) + header)
    count = 0
    for cid, data in blocks:
        raw = cid.to_bytes()
        dst.write(encode_varint(len(raw) + len(data)))
        dst.write(raw)
        dst.write(data)
        count += 1
    return count


class _Cbor:
    """A minimal, strict DAG-CBOR reader: enough for a CAR header, nothing more."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValidationError("truncated CAR header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def item(self, depth: int = 0) -> Any:
        if depth > 8:
            raise ValidationError("CAR header nested too deeply")
        initial = self._take(1)[0]
        major, info = initial >> 5, initial & 31
        if info < 24:
            value = info
        elif info in (24, 25, 26, 27):
            value = int.from_bytes(self._take(1 << (info - 24)), "big")
        else:
            raise ValidationError("indefinite-length or reserved CBOR is not DAG-CBOR")
        if major == 0:
            return value
        if major == 2:
            return self._take(value)
        if major == 3:
            return self._take(value).decode("utf-8")
        if major == 4:
            return [self.item(depth + 1) for _ in range(value)]
        if major == 5:
            out = {}
            for _ in range(value):
                key = self.item(depth + 1)
                if not isinstance(key, str) or key in out:
                    raise ValidationError("CAR header map keys must be distinct strings")
                out[key] = self.item(depth + 1)
            return out
        if major == 6 and value == _CID_TAG:
            raw = self.item(depth + 1)
            if not isinstance(raw, bytes) or not raw.startswith(b"\x00"):
                raise ValidationError("malformed CID in CAR header")
            return CID.from_bytes(raw[1:])
        raise ValidationError(f"unsupported CBOR item (major type {major}) in CAR header")


class CarReader:
    """Read a CAR v1 stream: `roots` from the header, then `blocks()` verified one by one.

    Raises (from the constructor or while iterating):
        ValidationError: not a CAR v1, or a malformed section.
        IntegrityError: a block does not hash to the CID it is filed under.
    """

    def __init__(self, src: BinaryIO):
        self._src = src
        length = read_varint(src)
        if length is None or not 0 < length <= _MAX_HEADER:
            raise ValidationError("not a CAR file: missing or oversized header")
        raw = src.read(length)
        if len(raw) != length:
            raise ValidationError("not a CAR file: truncated header")
        parser = _Cbor(raw)
        header = parser.item()
        if parser.pos != len(raw) or not isinstance(header, dict):
            raise ValidationError("not a CAR file: the header is not one DAG-CBOR map")
        if header.get("version") != 1:
            raise ValidationError(
                f"CAR version {header.get('version')!r} is not supported; export a CAR v1"
            )
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
            raise ValidationError("CAR header roots must be a list of CIDs")
        self.roots: tuple[CID, ...] = tuple(roots)

    def blocks(self) -> Iterator[tuple[CID, bytes]]:
        return read_blocks(self._src)


def read_blocks(src: BinaryIO) -> Iterator[tuple[CID, bytes]]:
    """The sections of a CAR v1 stream after its header, each block verified against its CID
    (also what a headerless run of sections, one piece of a CAR, is read with)."""
    while True:
        length = read_varint(src)
        if length is None:
            return
        if not 0 < length <= _MAX_SECTION:
            raise ValidationError(f"CAR section of {length} bytes is not plausible")
        section = src.read(length)
        if len(section) != length:
            raise ValidationError("truncated CAR section: the file was cut short")
        cid, offset = CID.decode_prefix(section)
        data = section[offset:]
        yield cid, verify_block(cid, data)
