"""dag-pb nodes and the UnixFS `Data` message, encoded exactly as Kubo (boxo) writes them.

dag-pb (https://ipld.io/specs/codecs/dag-pb/spec/): `PBNode { Links (2): repeated PBLink;
Data (1): optional bytes }` with Links written *before* Data, and `PBLink { Hash (1): bytes;
Name (2): string; Tsize (3): uint64 }`. UnixFS (https://specs.ipfs.tech/unixfs/): `Data { Type (1);
Data (2); filesize (3); blocksizes (4, repeated, not packed); ... }`.

The decoder is strict: fields out of order, duplicated or of the wrong wire type are refused, so a
block has one meaning however it was produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from daimm.errors import ValidationError
from daimm.ipfs.multiformats import CID, decode_varint, encode_varint

__all__ = ["PBLink", "PBNode", "UnixFSData", "UnixFSType", "decode_node", "encode_node"]

_WT_VARINT = 0
_WT_LEN = 2


class UnixFSType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class PBLink:
    """A link: the child's CID, its name (empty inside files) and its cumulative DAG size."""

    cid: CID
    tsize: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: UnixFSType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())

    def encode(self) -> bytes:
        parts = [b"\x08", encode_varint(int(self.type))]
        if self.data is not None:
            parts += [b"\x12", encode_varint(len(self.data)), self.data]
        if self.filesize is not None:
            parts += [b"\x18", encode_varint(self.filesize)]
        for size in self.blocksizes:
            parts += [b"\x20", encode_varint(size)]
        return b"".join(parts)

    @classmethod
    def decode(cls, buf: bytes) -> UnixFSData:
        type_: int | None = None
        data: bytes | None = None
        filesize: int | None = None
        blocksizes: list[int] = []
        offset = 0
        while offset < len(buf):
            key, offset = decode_varint(buf, offset)
            number, wire = key >> 3, key & 7
            if wire == _WT_VARINT:
                value, offset = decode_varint(buf, offset)
                if number == 1 and type_ is None:
                    type_ = value
                elif number == 3 and filesize is None:
                    filesize = value
                elif number == 4:
                    blocksizes.append(value)
                elif number in (6, 7):  # fanout, mode: not used by files, tolerated
                    continue
                else:
                    raise ValidationError(f"unexpected UnixFS field {number}")
            elif wire == _WT_LEN:
                length, offset = decode_varint(buf, offset)
                if offset + length > len(buf):
                    raise ValidationError("truncated UnixFS field")
                chunk = buf[offset : offset + length]
                offset += length
                if number == 2 and data is None:
                    data = chunk
                elif number == 4:  # packed blocksizes, as some writers emit them
                    pos = 0
                    while pos < len(chunk):
                        value, pos = decode_varint(chunk, pos)
                        blocksizes.append(value)
                elif number == 8:  # mtime: ignored
                    continue
                else:
                    raise ValidationError(f"unexpected UnixFS field {number}")
            else:
                raise ValidationError(f"unexpected protobuf wire type {wire} in UnixFS data")
        if type_ is None:
            raise ValidationError("UnixFS data has no Type")
        try:
            kind = UnixFSType(type_)
        except ValueError as exc:
            raise ValidationError(f"unknown UnixFS type {type_}") from exc
        return cls(kind, data, filesize, tuple(blocksizes))


def _encode_link(link: PBLink) -> bytes:
    cid = link.cid.to_bytes()
    name = link.name.encode("utf-8")
    return b"".join(
        (
            b"\x0a",
            encode_varint(len(cid)),
            cid,
            b"\x12",
            encode_varint(len(name)),
            name,
            b"\x18",
            encode_varint(link.tsize),
        )
    )


def encode_node(node: PBNode) -> bytes:
    """Canonical dag-pb bytes: links first, then data."""
    parts: list[bytes] = []
    for link in node.links:
        body = _encode_link(link)
        parts += [b"\x12", encode_varint(len(body)), body]
    if node.data is not None:
        parts += [b"\x0a", encode_varint(len(node.data)), node.data]
    return b"".join(parts)


def _read_len(buf: bytes, offset: int) -> tuple[bytes, int]:
    length, offset = decode_varint(buf, offset)
    if offset + length > len(buf):
        raise ValidationError("truncated dag-pb field")
    return buf[offset : offset + length], offset + length


def _decode_link(buf: bytes) -> PBLink:
    cid: CID | None = None
    name = ""
    tsize = 0
    offset = 0
    last = 0
    while offset < len(buf):
        key, offset = decode_varint(buf, offset)
        number, wire = key >> 3, key & 7
        if number <= last:
            raise ValidationError("dag-pb link fields out of order or repeated")
        last = number
        if number == 1 and wire == _WT_LEN:
            raw, offset = _read_len(buf, offset)
            cid = CID.from_bytes(raw)
        elif number == 2 and wire == _WT_LEN:
            raw, offset = _read_len(buf, offset)
            name = raw.decode("utf-8", errors="strict")
        elif number == 3 and wire == _WT_VARINT:
            tsize, offset = decode_varint(buf, offset)
        else:
            raise ValidationError(f"unexpected dag-pb link field {number}/{wire}")
    if cid is None:
        raise ValidationError("dag-pb link without Hash")
    return PBLink(cid, tsize, name)


def decode_node(buf: bytes) -> PBNode:
    """Decode a dag-pb block (strictly: links, then at most one data field)."""
    links: list[PBLink] = []
    data: bytes | None = None
    offset = 0
    while offset < len(buf):
        key, offset = decode_varint(buf, offset)
        number, wire = key >> 3, key & 7
        if wire != _WT_LEN:
            raise ValidationError(f"unexpected dag-pb wire type {wire}")
        chunk, offset = _read_len(buf, offset)
        if number == 2 and data is None:
            links.append(_decode_link(chunk))
        elif number == 1 and data is None:
            data = chunk
        else:
            raise ValidationError(f"unexpected or misplaced dag-pb field {number}")
    return PBNode(tuple(links), data)
