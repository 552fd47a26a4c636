"""Helpers for tests that run the relayer daemon against anvil."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest


def wait_until_current(url: str, chain: Any, timeout_s: float = 15.0) -> None:
    """Wait until the daemon at ``url`` is healthy and its watcher has seen the node's head.

    "Seen" means a block at or past the head, on the node's current branch (its hash matches the
    node's block at that number): ape reverts the chain to a snapshot after every test, so the next
    test's blocks reuse numbers the watcher has already seen on the reverted branch.
    """
    number = chain.blocks.head.number
    deadline = time.monotonic() + timeout_s
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(url + "/v1/health", timeout=2).json()
            seen = health["block"]
            if (
                health["status"] == "ok"
                and isinstance(seen, int)
                and number <= seen <= chain.blocks.head.number
                and health["block_hash"] == _hash_of(chain, seen)
            ):
                return
        time.sleep(0.05)
    pytest.fail(
        f"the relayer at {url} did not reach block {number}; it reports"
        f" {health.get('status')} at {health.get('block')} ({health.get('block_hash')})"
    )


def _hash_of(chain: Any, number: int) -> str:
    return "0x" + bytes(chain.provider.get_block(number).hash).hex()
