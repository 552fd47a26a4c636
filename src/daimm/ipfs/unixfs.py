"""A streaming UnixFS file importer and reader, byte-compatible with Kubo's `ipfs add`.

Importing follows boxo's balanced layout (`importer/balanced`): the first chunk becomes the root;
while data remains, the root becomes the first child of a node one level deeper, which is then
filled depth-first with at most `max_links` children per node. A file of one chunk is that
chunk's leaf alone. Memory is one chunk of read-ahead plus, per tree level, the links gathered so
far; blocks are handed to `put` as soon as they exist, so a file of any size streams.

Reading walks the DAG depth-first and checks every block against its CID (through the `get_block`
callable) and every size the DAG claims, before any byte is released.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from daimm.errors import IntegrityError, ValidationError
from daimm.ipfs.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, decode_node, encode_node
from daimm.ipfs.multiformats import CID, DAG_PB, RAW, encode_varint, verify_block

__all__ = [
    "KUBO_CID_V1",
    "KUBO_DEFAULT",
    "PROFILES",
    "UNIXFS_V1_2025",
    "ImportResult",
    "Profile",
    "import_file",
    "iter_dag",
    "iter_file",
    "profile_for",
]

PutBlock = Callable[[CID, bytes], None]
GetBlock = Callable[[CID], bytes]
Progress = Callable[[int], None]

_MAX_DEPTH = 32  # a 174-wide tree of depth 32 is larger than any file that exists


@dataclass(frozen=True, slots=True)
class Profile:
    """How a file becomes a DAG. Two profiles with equal fields give equal CIDs."""

    name: str
    cid_version: int
    raw_leaves: bool
    chunk_size: int
    max_links: int

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValidationError("cid_version must be 0 or 1")
        if not 1 <= self.chunk_size <= 1 << 22:
            raise ValidationError("chunk_size must be between 1 byte and 4 MiB")
        if self.max_links < 2:
            raise ValidationError("max_links must be at least 2")


#: `ipfs add` with Kubo's defaults; IPIP-0499 calls it `unixfs-v0-2015`.
KUBO_DEFAULT = Profile("unixfs-v0-2015", 0, False, 256 * 1024, 174)
#: `ipfs add --cid-version 1`: raw leaves and base32 CIDv1, default chunker and width.
KUBO_CID_V1 = Profile("kubo-cid-v1", 1, True, 256 * 1024, 174)
#: IPIP-0499 `unixfs-v1-2025`: CIDv1, raw leaves, 1 MiB chunks, 1024 links per node.
UNIXFS_V1_2025 = Profile("unixfs-v1-2025", 1, True, 1024 * 1024, 1024)

PROFILES = {p.name: p for p in (KUBO_DEFAULT, KUBO_CID_V1, UNIXFS_V1_2025)}


def profile_for(*, cid_version: int | None = None, profile: str | None = None) -> Profile:
    """The profile `ipfs add [--cid-version N]` or a named IPIP-0499 profile would use."""
    if profile is not None:
        if profile == "unixfs-v1-2025" and cid_version == 0:
            raise ValidationError("the unixfs-v1-2025 profile is CIDv1 only")
        try:
            return PROFILES[profile]
        except KeyError:
            raise ValidationError(
                f"unknown profile {profile!r}; choose one of {', '.join(sorted(PROFILES))}"
            ) from None
    return KUBO_CID_V1 if cid_version == 1 else KUBO_DEFAULT


@dataclass(frozen=True, slots=True)
class ImportResult:
    cid: CID
    size: int  # bytes of file content
    blocks: int  # blocks produced (a repeated block counts each time)


@dataclass(frozen=True, slots=True)
class _Child:
    cid: CID
    filesize: int  # content bytes below this child
    tsize: int  # cumulative serialised bytes of the child's sub-DAG


class _Builder:
    def __init__(
        self, stream: BinaryIO, profile: Profile, put: PutBlock, progress: Progress | None
    ):
        self._stream = stream
        self._profile = profile
        self._put = put
        self._progress = progress
        self._pending = self._read_chunk()
        self.blocks = 0

    def _read_chunk(self) -> bytes:
        size = self._profile.chunk_size
        chunk = self._stream.read(size)
        if not chunk or len(chunk) == size:
            return chunk or b""
        # NOTE: streams (pipes, sockets) may return short reads; the chunker must not, or the CID
        # would depend on how the bytes arrived.
        parts = [chunk]
        got = len(chunk)
        while got < size:
            more = self._stream.read(size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def done(self) -> bool:
        return not self._pending

    def _take(self) -> bytes:
        chunk = self._pending
        self._pending = self._read_chunk()
        return chunk

    def _emit(self, cid: CID, block: bytes) -> None:
        self._put(cid, block)
        self.blocks += 1

    def leaf(self) -> _Child:
        data = self._take()
        profile = self._profile
        if profile.raw_leaves:
            cid = CID(1, RAW, hashlib.sha256(data).digest())
            block = data
        elif data:
            # The same bytes as encode_node(PBNode((), UnixFSData(FILE, data, n).encode())), in one
            # join: a leaf is the hot path and its chunk is copied once instead of twice.
            size = encode_varint(len(data))
            head = b"\x08\x02\x12" + size
            tail = b"\x18" + size
            inner = len(head) + len(data) + len(tail)
            block = b"".join((b"\x0a", encode_varint(inner), head, data, tail))
            cid = CID(profile.cid_version, DAG_PB, hashlib.sha256(block).digest())
        else:
            block = encode_node(PBNode((), UnixFSData(UnixFSType.FILE, None, 0).encode()))
            cid = CID(profile.cid_version, DAG_PB, hashlib.sha256(block).digest())
        self._emit(cid, block)
        if self._progress is not None:
            self._progress(len(data))
        return _Child(cid, len(data), len(block))

    def fill(self, children: list[_Child], depth: int) -> _Child:
        while len(children) < self._profile.max_links and not self.done():
            children.append(self.leaf() if depth == 1 else self.fill([], depth - 1))
        return self._internal(children)

    def _internal(self, children: list[_Child]) -> _Child:
        filesize = sum(c.filesize for c in children)
        unixfs = UnixFSData(
            UnixFSType.FILE, None, filesize, tuple(c.filesize for c in children)
        ).encode()
        links = tuple(PBLink(c.cid, c.tsize) for c in children)
        block = encode_node(PBNode(links, unixfs))
        cid = CID(self._profile.cid_version, DAG_PB, hashlib.sha256(block).digest())
        self._emit(cid, block)
        return _Child(cid, filesize, len(block) + sum(c.tsize for c in children))


def import_file(
    stream: BinaryIO,
    put: PutBlock,
    profile: Profile = KUBO_DEFAULT,
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """Chunk `stream` into a UnixFS file DAG, handing each block to `put(cid, block)`.

    Args:
        stream: the file content, read once from its current position to its end.
        put: receives every block, leaves first, root last (a no-op computes the CID only).
        profile: chunk size, width, CID version and leaf kind.
        progress: called with the number of content bytes consumed after each chunk.

    Returns:
        The root CID, the content size in bytes and the number of blocks emitted.
    """
    builder = _Builder(stream, profile, put, progress)
    root = builder.leaf()  # an empty file is a single empty leaf, as in boxo
    depth = 1
    while not builder.done():
        root = builder.fill([root], depth)
        depth += 1
    return ImportResult(root.cid, root.filesize, builder.blocks)


def _load(cid: CID, get_block: GetBlock) -> bytes:
    # Sources verify too; verifying here as well means no caller can forget to.
    return verify_block(cid, get_block(cid))


def _file_data(cid: CID, block: bytes) -> tuple[UnixFSData | None, PBNode | None]:
    if cid.codec == RAW:
        return None, None
    node = decode_node(block)
    if node.data is None:
        raise ValidationError(f"{cid} is a dag-pb node without UnixFS data, not a file")
    unixfs = UnixFSData.decode(node.data)
    if unixfs.type not in (UnixFSType.FILE, UnixFSType.RAW):
        raise ValidationError(f"{cid} is a UnixFS {unixfs.type.name.lower()}, not a file")
    return unixfs, node


def iter_file(root: CID, get_block: GetBlock) -> Iterator[bytes]:
    """Yield the content of the UnixFS file `root`, in order, each piece verified.

    Every block is checked against its CID before it is parsed, and every internal node's claimed
    sizes against what its children really hold, so a source that serves wrong bytes or a
    malformed DAG raises instead of producing a wrong file.

    Raises:
        IntegrityError: a block does not match its CID, or sizes in the DAG disagree.
        ValidationError: `root` is not a UnixFS file.
    """

    def walk(cid: CID, expected: int | None, depth: int) -> Iterator[bytes]:
        if depth > _MAX_DEPTH:
            raise IntegrityError(f"DAG under {root} is deeper than {_MAX_DEPTH} levels")
        block = _load(cid, get_block)
        unixfs, node = _file_data(cid, block)
        if unixfs is None or node is None:
            size = len(block)
            if expected is not None and size != expected:
                raise IntegrityError(f"block {cid} holds {size} bytes, its parent says {expected}")
            if block:
                yield block
            return
        inline = unixfs.data or b""
        if node.links and len(unixfs.blocksizes) != len(node.links):
            raise IntegrityError(f"node {cid} has {len(node.links)} links but its sizes disagree")
        total = len(inline) + sum(unixfs.blocksizes)
        if unixfs.filesize is not None and unixfs.filesize != total:
            raise IntegrityError(f"node {cid} claims {unixfs.filesize} bytes but holds {total}")
        if expected is not None and total != expected:
            raise IntegrityError(f"node {cid} holds {total} bytes, its parent says {expected}")
        if inline:
            yield inline
        for link, size in zip(node.links, unixfs.blocksizes, strict=True):
            yield from walk(link.cid, size, depth + 1)

    yield from walk(root, None, 0)


def iter_dag(root: CID, get_block: GetBlock) -> Iterator[tuple[CID, bytes]]:
    """Yield each distinct block of the DAG under `root` once, depth-first, parents first.

    That is the order Kubo's `dag export` writes a CAR in. Blocks are verified against their CIDs.
    """
    seen: set[bytes] = set()

    def walk(cid: CID, depth: int) -> Iterator[tuple[CID, bytes]]:
        key = cid.to_bytes()
        if key in seen:
            return
        if depth > _MAX_DEPTH:
            raise IntegrityError(f"DAG under {root} is deeper than {_MAX_DEPTH} levels")
        seen.add(key)
        block = _load(cid, get_block)
        yield cid, block
        if cid.codec == DAG_PB:
            for link in decode_node(block).links:
                yield from walk(link.cid, depth + 1)

    yield from walk(root, 0)
