"""Review comments: fetched by CID from a real local block store and verified against the CID;
a tampered, missing or malformed comment is marked and never shown as text."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

from daimm.ipfs import LocalBlockstore, add_file
from daimm.web.comments import CommentReader, CommentStatus, read_comment


def _put(store: LocalBlockstore, data: bytes) -> str:
    return str(add_file(io.BytesIO(data), store).cid)


def _tamper(store: LocalBlockstore, root: Path, cid: str) -> None:
    from daimm.ipfs.multiformats import CID

    path = store._path(CID.parse(cid))  # noqa: SLF001 - an attacker rewrites the file on disk
    assert path.is_file()
    path.write_bytes(path.read_bytes().replace(b"Accurate", b"Terrible"))


def test_read_comment__stored_text__is_returned_verified(tmp_path):
    store = LocalBlockstore(tmp_path / "blocks")
    cid = _put(store, "Accurate and fast ✓".encode())

    comment = read_comment(store.get_block, cid)

    assert (comment.status, comment.text) == (CommentStatus.OK, "Accurate and fast ✓")


def test_read_comment__block_tampered_in_the_store__refused_as_mismatch(tmp_path):
    store = LocalBlockstore(tmp_path / "blocks")
    cid = _put(store, b"Accurate and fast")
    _tamper(store, tmp_path, cid)

    comment = read_comment(store.get_block, cid)

    assert comment.status is CommentStatus.MISMATCH and comment.text is None
    assert "does not match" in comment.detail


def test_read_comment__missing_malformed_empty_binary_and_too_long__marked_without_text(tmp_path):
    store = LocalBlockstore(tmp_path / "blocks")
    other = LocalBlockstore(tmp_path / "elsewhere")
    missing = _put(other, b"only elsewhere")
    binary = _put(store, b"\xff\xfe\x00 not utf-8")
    long = _put(store, b"x" * 5000)

    found = {
        name: read_comment(store.get_block, cid)
        for name, cid in (("missing", missing), ("malformed", "not-a-cid"), ("empty", ""),
                          ("binary", binary), ("long", long))
    }  # fmt: skip

    assert {k: v.status for k, v in found.items()} == {
        "missing": CommentStatus.UNAVAILABLE,
        "malformed": CommentStatus.INVALID,
        "empty": CommentStatus.NONE,
        "binary": CommentStatus.INVALID,
        "long": CommentStatus.INVALID,
    }
    assert all(c.text is None for c in found.values())


def test_comment_reader__verified_comments_cached_failures_asked_again(tmp_path):
    store = LocalBlockstore(tmp_path / "blocks")
    opened: list[int] = []

    @contextlib.contextmanager
    def backend() -> Iterator[LocalBlockstore]:
        opened.append(1)
        yield store

    reader = CommentReader(backend)
    good = _put(store, b"Accurate")
    later = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"

    first = reader.read_many([good, later])
    again = reader.read_many([good])

    assert [c.status for c in first] == [CommentStatus.OK, CommentStatus.UNAVAILABLE]
    assert again[0].text == "Accurate" and len(opened) == 1  # the good one came from the cache
    reader.read_many([later])
    assert len(opened) == 2  # a failure is asked again
