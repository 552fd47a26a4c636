"""Review comments for the model page: fetched by CID from the block store and verified.

A review records its comment's CID on chain (``daimm review --comment``, or the model page's
"write a review", both storing the text as a UnixFS file). The page shows the text, never the CID
alone, and only text whose every block hashes to the CID the review names
(:func:`daimm.ipfs.unixfs.iter_file` checks each block): bytes that do not match, a comment the
store does not have, or one that is not short UTF-8 text are shown as such, with no text.

Comments are immutable, so a verified one is kept in a small in-memory cache by CID; a failure is
not cached (the store may receive the blocks later).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from daimm.errors import DaimmError, IntegrityError, StorageError
from daimm.ipfs.backends import Backend
from daimm.ipfs.multiformats import CID
from daimm.ipfs.unixfs import iter_file
from daimm.web.upload import MAX_COMMENT_BYTES

__all__ = ["Comment", "CommentReader", "CommentStatus", "read_comment"]

log = logging.getLogger(__name__)

#: Most reviews whose comments one page fetches (the rest are shown as not loaded).
MAX_COMMENTS_PER_PAGE = 50
_CACHE_SIZE = 1024


class CommentStatus(StrEnum):
    """What became of a review's comment."""

    OK = "ok"  # fetched, every block matched the CID, and it is text
    NONE = "none"  # the review has no comment
    UNAVAILABLE = "unavailable"  # the store does not have it (or cannot be reached)
    MISMATCH = "mismatch"  # the bytes served do not hash to the CID: refused
    INVALID = "invalid"  # a malformed CID, not a file, too long, or not UTF-8 text
    NOT_LOADED = "not_loaded"  # past the page's limit of fetched comments


@dataclass(frozen=True)
class Comment:
    """A review's comment: ``text`` only when ``status`` is ``ok``; ``detail`` says why not."""

    cid: str
    status: CommentStatus
    text: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "status": self.status.value,
            "text": self.text,
            "detail": self.detail,
        }


def read_comment(get_block: Callable[[CID], bytes], cid: str) -> Comment:
    """Fetch the comment ``cid`` through ``get_block`` and check it against the CID.

    Args:
        get_block: A block source that verifies what it returns (:meth:`Backend.get_block`);
            the file's structure is verified here as well.
        cid: The comment's CID as the review recorded it ("" for no comment).
    """
    if not cid:
        return Comment(cid, CommentStatus.NONE)
    try:
        root = CID.parse(cid)
    except DaimmError as exc:
        return Comment(cid, CommentStatus.INVALID, detail=f"not a CID: {exc}")
    data = bytearray()
    try:
        for piece in iter_file(root, get_block):
            data += piece
            if len(data) > MAX_COMMENT_BYTES:
                return Comment(
                    cid, CommentStatus.INVALID, detail=f"longer than {MAX_COMMENT_BYTES} bytes"
                )
    except IntegrityError as exc:
        return Comment(cid, CommentStatus.MISMATCH, detail=f"does not match its CID: {exc}")
    except StorageError as exc:
        return Comment(cid, CommentStatus.UNAVAILABLE, detail=str(exc))
    except DaimmError as exc:  # not a UnixFS file
        return Comment(cid, CommentStatus.INVALID, detail=str(exc))
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return Comment(cid, CommentStatus.INVALID, detail="not UTF-8 text")
    return Comment(cid, CommentStatus.OK, text=text)


class CommentReader:
    """Reads comments from a block store, verified comments cached by CID.

    Args:
        backend: A factory of the block store (a context manager, as
            :attr:`daimm.web.upload.UploadSettings.backend`): where the page's uploads and
            `daimm review --comment` store comments.
    """

    def __init__(self, backend: Callable[[], contextlib.AbstractContextManager[Backend]]) -> None:
        self._backend = backend
        self._cache: OrderedDict[str, Comment] = OrderedDict()
        self._lock = threading.Lock()

    def read_many(self, cids: list[str]) -> list[Comment]:
        """The comments of ``cids`` in order; past :data:`MAX_COMMENTS_PER_PAGE`, not loaded."""
        out: list[Comment | None] = []
        missing: list[int] = []
        with self._lock:
            for i, cid in enumerate(cids):
                if i >= MAX_COMMENTS_PER_PAGE:
                    out.append(Comment(cid, CommentStatus.NOT_LOADED))
                elif cid in self._cache:
                    self._cache.move_to_end(cid)
                    out.append(self._cache[cid])
                else:
                    out.append(None)
                    missing.append(i)
        if missing:
            try:
                with self._backend() as store:
                    for i in missing:
                        out[i] = read_comment(store.get_block, cids[i])
            except DaimmError as exc:  # the store itself cannot be opened
                log.warning("review comments cannot be read: %s", exc)
                for i in missing:
                    out[i] = Comment(cids[i], CommentStatus.UNAVAILABLE, detail=str(exc))
        with self._lock:
            for comment in out:
                if comment is not None and comment.status is CommentStatus.OK:
                    self._cache[comment.cid] = comment
                    self._cache.move_to_end(comment.cid)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return [c for c in out if c is not None]

    def attach(self, reviews: list[dict[str, Any]]) -> None:
        """Add each review's ``comment`` (:meth:`Comment.to_json`) to the model page's reviews."""
        comments = self.read_many([str(r.get("comment_cid") or "") for r in reviews])
        for review, comment in zip(reviews, comments, strict=True):
            review["comment"] = comment.to_json()
