"""Chain helpers for the contract tests: events and time."""

from __future__ import annotations

from typing import Any

ETH = "0x0000000000000000000000000000000000000000"
ZERO_ADDRESS = ETH
MAX_UINT256 = 2**256 - 1
MAX_UINT64 = 2**64 - 1
HOUR = 3600
DAY = 24 * HOUR
#: RentalEscrow.SETTLEMENT_GRANULARITY, in seconds.
GRANULARITY = HOUR


def only(tx: Any, event: Any) -> Any:
    """The one log of ``event`` in ``tx`` (fails if there are none or several)."""
    logs = tx.events.filter(event)
    assert len(logs) == 1, f"expected one {event.name}, got {len(logs)}"
    return logs[0]


def logs_of(tx: Any, event: Any) -> list[Any]:
    """Every log of ``event`` in ``tx``, in order."""
    return list(tx.events.filter(event))


def block_time(chain: Any, tx: Any) -> int:
    """Timestamp of the block that mined ``tx``, in seconds."""
    return int(chain.blocks[tx.block_number].timestamp)


def release_at(paid_at: int, window: int) -> int:
    """When a payment made at ``paid_at`` is released: ``paid_at + window`` rounded up (hours)."""
    t = paid_at + window
    return -(-t // GRANULARITY) * GRANULARITY


def single(account: Any) -> int:
    """The payee set of one account (its address as an integer)."""
    return int(str(getattr(account, "address", account)), 16)


def split_id(model_id: int, nonce: int) -> int:
    """The payee set of split number ``nonce`` of ``model_id``."""
    return 2**160 + (model_id << 32) + nonce
