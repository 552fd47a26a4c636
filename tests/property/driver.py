"""A thin, fast driver for the stateful property tests: raw transactions and calls on ape's
in-process chain (eth-tester + py-evm), bypassing ape's per-transaction overhead.

NOTE: ape runs every transaction three times on the test provider (gas estimate, the transaction,
and a replay that collects debug logs), which makes a 200-sequence property run take a quarter of an
hour. The property tests only need "did it succeed, what did it log, what did it revert with", so
this driver signs with ``eth_account``, sends the raw transaction to eth-tester once with a
fixed gas limit, and reads the receipt's logs itself. Everything else (deployment, fixtures, unit
tests) uses ape as usual; the chain is the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode, encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

__all__ = ["Driver", "Outcome", "error_selector", "event_topic"]

#: Gas limit of every driven transaction (well above what any daimm call uses).
TX_GAS = 3_000_000


def error_selector(signature: str) -> bytes:
    """The 4-byte selector of a custom error, e.g. ``"NotMatured(uint256,uint256)"``."""
    return function_signature_to_4byte_selector(signature)


def event_topic(signature: str) -> bytes:
    """The topic 0 of an event, e.g. ``"Credited(address,address,uint256)"``."""
    return keccak(text=signature)


@dataclass(frozen=True)
class Outcome:
    """What one transaction did.

    Attributes:
        ok: Whether it succeeded.
        revert: The revert data (selector and arguments) when it failed, else ``b""``.
        logs: ``(address, topics, data)`` of each log, in order (empty when it failed).
        gas_used: Gas used, in gas units.
    """

    ok: bool
    revert: bytes
    logs: tuple[tuple[str, tuple[bytes, ...], bytes], ...]
    gas_used: int


class Driver:
    """Send transactions and make calls on ape's in-process chain.

    Args:
        chain: ape's chain manager (its provider must be the ``test`` provider).
        caller: A funded account, the ``from`` of calls made without a sender.
    """

    def __init__(self, chain: Any, caller: Any) -> None:
        self.caller = _addr(caller)
        provider = chain.provider
        self.tester = provider.tester.ethereum_tester
        self.backend = provider.evm_backend
        self.chain_id = int(chain.chain_id)
        self._nonces: dict[str, int] = {}
        self._selectors: dict[str, bytes] = {}

    # ------------------------------------------------------------------ chain state
    def snapshot(self) -> Any:
        """Take an EVM snapshot (eth-tester's; ape's own snapshot list is left alone)."""
        return self.backend.take_snapshot()

    def restore(self, snapshot: Any) -> None:
        """Go back to ``snapshot`` and forget cached nonces."""
        self.backend.revert_to_snapshot(snapshot)
        self._nonces.clear()

    def reset_nonces(self) -> None:
        """Forget cached nonces (after a snapshot restore)."""
        self._nonces.clear()

    def head_timestamp(self) -> int:
        """Timestamp of the latest block, in seconds: what ``block.timestamp`` is in a call."""
        return int(self.backend.get_block_by_number("latest")["timestamp"])

    def pending_timestamp(self) -> int:
        """Timestamp the next transaction's block will carry, in seconds."""
        return int(self.backend.get_block_by_number("pending")["timestamp"])

    def time_travel(self, timestamp: int) -> None:
        """Move the chain so its latest block carries ``timestamp`` (mines empty blocks).

        NOTE: right after eth-tester's ``time_travel`` the next transaction's block reuses the
        travelled-to header, so what ``pending`` reports is one second off; mining one more empty
        block puts the chain back on the plain "one second per block" rhythm the model relies on.
        """
        self.tester.time_travel(timestamp)
        self.backend.mine_blocks()

    def eth_balance(self, address: str) -> int:
        """ETH balance of ``address``, in wei."""
        return int(self.backend.get_balance(bytes.fromhex(address[2:]), "latest"))

    # ------------------------------------------------------------------ calls and transactions
    def _calldata(self, signature: str, types: list[str], args: tuple) -> bytes:
        selector = self._selectors.get(signature)
        if selector is None:
            selector = self._selectors[signature] = function_signature_to_4byte_selector(signature)
        return selector + encode(types, list(args))

    @staticmethod
    def _types(signature: str) -> list[str]:
        inner = signature[signature.index("(") + 1 : signature.rindex(")")]
        if not inner:
            return []
        # Only flat argument lists and one level of tuples are used here.
        types, depth, current = [], 0, ""
        for ch in inner:
            if ch == "," and depth == 0:
                types.append(current)
                current = ""
                continue
            depth += ch == "("
            depth -= ch == ")"
            current += ch
        types.append(current)
        return types

    def call(
        self,
        to: Any,
        signature: str,
        *args: Any,
        returns: tuple[str, ...] = ("uint256",),
        sender: Any = None,
    ) -> tuple:
        """Call a view; returns the decoded outputs. Raises ``AssertionError`` if it reverts."""
        ok, data = self.try_call(to, signature, *args, sender=sender)
        assert ok, f"call {signature} reverted: 0x{data.hex()}"
        return tuple(decode(list(returns), data))

    def try_call(
        self, to: Any, signature: str, *args: Any, sender: Any = None, value: int = 0
    ) -> tuple[bool, bytes]:
        """Call without sending; returns ``(ok, return or revert data)``."""
        from eth_tester.exceptions import TransactionFailed

        tx: dict[str, Any] = {
            "to": _addr(to),
            "data": "0x" + self._calldata(signature, self._types(signature), args).hex(),
            "gas": TX_GAS,
            "value": value,
        }
        tx["from"] = _addr(sender) if sender is not None else self.caller
        try:
            return True, _bytes(self.tester.call(tx))
        except TransactionFailed as exc:
            return False, _revert_data(exc)

    def send(self, sender: Any, to: Any, signature: str, *args: Any, value: int = 0) -> Outcome:
        """Sign and send one transaction from ``sender`` (an ape test account) and mine it."""
        from eth_tester.exceptions import TransactionFailed

        address = _addr(sender)
        nonce = self._nonces.get(address)
        if nonce is None:
            nonce = int(self.backend.get_nonce(bytes.fromhex(address[2:]), "latest"))
        data = self._calldata(signature, self._types(signature), args)
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": _addr(to),
            "value": value,
            "data": data,
            "gas": TX_GAS,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 0,
        }
        raw = Account.sign_transaction(tx, sender.private_key).raw_transaction
        self._nonces[address] = nonce + 1
        try:
            tx_hash = self.tester.send_raw_transaction("0x" + bytes(raw).hex())
        except TransactionFailed as exc:  # pragma: no cover - eth-tester mines failures instead
            return Outcome(False, _revert_data(exc), (), 0)
        receipt = self.tester.get_transaction_receipt(tx_hash)
        gas_used = int(receipt["gas_used"])
        if int(receipt["status"]) == 1:
            logs = tuple(
                (
                    to_checksum_address(log["address"]),
                    tuple(_bytes(t) for t in log["topics"]),
                    _bytes(log["data"]),
                )
                for log in receipt["logs"]
            )
            return Outcome(True, b"", logs, gas_used)
        # Replay on the state before the block to learn the revert reason.
        block = int(receipt["block_number"]) - 1
        call = {
            "from": address,
            "to": _addr(to),
            "data": "0x" + data.hex(),
            "gas": TX_GAS,
            "value": value,
        }
        try:
            self.tester.call(call, block)
            revert = b""
        except TransactionFailed as exc:
            revert = _revert_data(exc)
        return Outcome(False, revert, (), gas_used)


def _addr(value: Any) -> str:
    return to_checksum_address(str(getattr(value, "address", value)))


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _revert_data(exc: Exception) -> bytes:
    arg = exc.args[0] if exc.args else b""
    if isinstance(arg, bytes | bytearray):
        return bytes(arg)
    if isinstance(arg, str) and arg.startswith(("b'", 'b"')):
        from ast import literal_eval

        return bytes(literal_eval(arg))
    if isinstance(arg, str) and arg.startswith("0x"):
        try:
            return bytes.fromhex(arg[2:])
        except ValueError:
            return arg.encode()
    return str(arg).encode()
