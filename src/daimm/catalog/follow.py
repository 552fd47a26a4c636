"""Keep a catalog current: sync, wait, sync again, until told to stop.

`daimm catalog sync --follow` and `daimm up` run this loop; the signal handling stays with the
caller, which sets ``stop`` (a :class:`threading.Event`) from its SIGTERM/SIGINT handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from daimm.catalog.indexer import Indexer, SyncReport
from daimm.errors import ChainUnavailableError

__all__ = ["follow"]

log = logging.getLogger(__name__)


def follow(
    indexer: Indexer,
    *,
    interval_s: float,
    stop: threading.Event,
    on_report: Callable[[SyncReport], None] | None = None,
) -> int:
    """Sync ``indexer`` now and then every ``interval_s`` seconds until ``stop`` is set.

    A chain that cannot be read is logged and retried at the next interval (what was committed
    stays; the sync resumes from its checkpoint), so a node restart does not end the loop.

    Args:
        indexer: The indexer to drive.
        interval_s: Pause between the end of one sync and the start of the next, in seconds.
        stop: Set it (from a signal handler or another thread) to end the loop after the sync in
            progress.
        on_report: Called with each sync's report.

    Returns:
        How many syncs completed.

    Raises:
        CatalogError: The database belongs to another chain or deployment (retrying cannot help).
    """
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    done = 0
    while not stop.is_set():
        try:
            report = indexer.sync()
        except ChainUnavailableError as exc:
            log.warning("catalog sync failed, retrying in %.1f s: %s", interval_s, exc)
        else:
            done += 1
            if on_report is not None:
                on_report(report)
        stop.wait(interval_s)
    return done
