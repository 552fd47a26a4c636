"""The importer streams in bounded memory; the reader checks every block and size it is given."""

from __future__ import annotations

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daimm.errors import IntegrityError, ValidationError
from daimm.ipfs import KUBO_DEFAULT, Profile, import_file, iter_dag, iter_file
from daimm.ipfs.dagpb import PBLink, PBNode, UnixFSData, UnixFSType, decode_node, encode_node
from daimm.ipfs.multiformats import CID, DAG_PB

SMALL = Profile("small", 0, False, 64, 3)


class _Zeros:
    """`size` bytes of pseudo-content produced on demand, so the test itself holds none of it."""

    def __init__(self, size: int):
        self.left = size
        self.counter = 0

    def read(self, n: int) -> bytes:
        n = min(n, self.left)
        self.left -= n
        self.counter += 1
        return self.counter.to_bytes(8, "big") * (n // 8) + bytes(n % 8)


def test_import_file__64_mib_stream__peak_memory_a_few_chunks() -> None:
    tracemalloc.start()
    try:
        result = import_file(_Zeros(64 << 20), lambda _c, _b: None, KUBO_DEFAULT)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.size == 64 << 20
    # Read-ahead, the current chunk, its leaf block: a few chunks, not the 64 MiB file.
    assert peak < 6 * KUBO_DEFAULT.chunk_size


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=2000), chunk=st.integers(1, 300), width=st.integers(2, 6))
def test_iter_file__any_size_and_shape__returns_the_bytes(
    data: bytes, chunk: int, width: int
) -> None:
    blocks: dict[CID, bytes] = {}
    profile = Profile("p", 1, chunk % 2 == 0, chunk, width)

    root = import_file(io.BytesIO(data), blocks.__setitem__, profile).cid

    assert b"".join(iter_file(root, blocks.__getitem__)) == data
    assert {cid for cid, _ in iter_dag(root, blocks.__getitem__)} == set(blocks)


def _store(data: bytes) -> tuple[CID, dict[CID, bytes]]:
    blocks: dict[CID, bytes] = {}
    root = import_file(io.BytesIO(data), blocks.__setitem__, SMALL).cid
    return root, blocks


def test_iter_file__block_swapped_for_another__raises_naming_cid() -> None:
    root, blocks = _store(bytes(range(256)) * 4)
    leaf = decode_node(blocks[root]).links[0].cid
    other = next(c for c in blocks if c not in (root, leaf))
    blocks[leaf] = blocks[other]

    with pytest.raises(IntegrityError, match=str(leaf)):
        b"".join(iter_file(root, blocks.__getitem__))


def test_iter_file__sizes_in_dag_disagree__raises() -> None:
    # A well-hashed but lying parent: its blocksizes claim more than its child holds.
    child_data = UnixFSData(UnixFSType.FILE, b"abc", 3).encode()
    child_block = encode_node(PBNode((), child_data))
    child = CID.for_block(child_block, version=0, codec=DAG_PB)
    parent_block = encode_node(
        PBNode(
            (PBLink(child, len(child_block)),), UnixFSData(UnixFSType.FILE, None, 4, (4,)).encode()
        )
    )
    parent = CID.for_block(parent_block, version=0, codec=DAG_PB)
    blocks = {child: child_block, parent: parent_block}

    with pytest.raises(IntegrityError, match="its parent says 4"):
        b"".join(iter_file(parent, blocks.__getitem__))


def test_iter_file__directory_node__raises_not_a_file() -> None:
    block = encode_node(PBNode((), UnixFSData(UnixFSType.DIRECTORY).encode()))
    cid = CID.for_block(block, version=0, codec=DAG_PB)

    with pytest.raises(ValidationError, match="directory, not a file"):
        list(iter_file(cid, {cid: block}.__getitem__))


def test_decode_node__links_after_data__raises() -> None:
    link = encode_node(PBNode((PBLink(CID.for_block(b"x", version=1, codec=0x55), 1),)))
    data = encode_node(PBNode((), b"\x08\x02"))

    with pytest.raises(ValidationError, match="misplaced"):
        decode_node(data + link)


def test_import_file__bad_profile__raises() -> None:
    with pytest.raises(ValidationError, match="max_links"):
        Profile("p", 0, False, 1024, 1)
