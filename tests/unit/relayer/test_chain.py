"""The chain reader's failure modes and cache, against a local JSON-RPC stand-in.

NOTE: the server below is a stand-in for an Ethereum node that misbehaves on demand (slow, 429,
garbage); anvil cannot be made to do that. It runs on 127.0.0.1 and answers the JSON-RPC methods
the reader uses. The reader against a real node is tested in tests/e2e/test_relayer.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak

from daimm.errors import ChainUnavailableError
from daimm.relayer.chain import ABIS, LOG_PAGE_BLOCKS, ChainReader, LogWatcher

CONTRACTS = {
    "ModelRegistry": "0x" + "01" * 20,
    "LicenseNFT": "0x" + "02" * 20,
    "RelayerRegistry": "0x" + "03" * 20,
    "RentalEscrow": "0x" + "04" * 20,
    "CreditEscrow": "0x" + "05" * 20,
    "SessionRegistry": "0x" + "06" * 20,
}
SESSION_STATE = "0x" + keccak(text="sessionState(address,bytes32)")[:4].hex()
ACCOUNT = "0x" + "aa" * 20


class StandIn:
    """State of the stand-in node: its mode, answers and a count of eth_call requests."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.access = True
        self.block = 10
        self.fork = 0  # which branch the head is on: a new fork at the same height changes its hash
        self.logs: list[dict[str, Any]] = []
        self.calls = 0
        #: Most blocks one eth_getLogs may span (providers cap it); None: no cap.
        self.max_log_range: int | None = None
        self.log_ranges: list[tuple[int, int]] = []


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            request = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if state.mode == "slow":
                time.sleep(1.5)
            if state.mode == "429":
                self._send(429, b'{"error":"rate limited"}')
                return
            if state.mode == "garbage":
                self._send(200, b"<html>not json</html>")
                return
            self._send(200, json.dumps(self._answer(request)).encode())

        def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
            method = request["method"]
            result: Any
            if method == "eth_chainId":
                result = "0x7a69"
            elif method == "eth_call" and request["params"][0]["data"].startswith(SESSION_STATE):
                state.calls += 1  # (revoked, nonce): revoked when access is off, nonce 0
                result = "0x" + "00" * 31 + ("00" if state.access else "01") + "00" * 32
            elif method == "eth_call":
                state.calls += 1
                result = (
                    "0x12"
                    if state.mode == "bad_result"
                    else "0x" + ("00" * 31 + ("01" if state.access else "00"))
                )
            elif method == "eth_blockNumber":
                result = hex(state.block)
            elif method == "eth_getBlockByNumber":
                result = _block(state.block, state.fork)
            elif method == "eth_getLogs":
                query = request["params"][0]
                first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
                if state.max_log_range is not None and last - first + 1 > state.max_log_range:
                    error = {"code": -32005, "message": "block range too large"}
                    return {"jsonrpc": "2.0", "id": request["id"], "error": error}
                state.log_ranges.append((first, last))
                result = [e for e in state.logs if first <= int(e["blockNumber"], 16) <= last]
                state.logs = [e for e in state.logs if e not in result]
            else:
                return {"jsonrpc": "2.0", "id": request["id"],
                        "error": {"code": -32601, "message": method}}  # fmt: skip
            return {"jsonrpc": "2.0", "id": request["id"], "result": result}

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _block_hash(number: int, fork: int) -> str:
    return "0x" + keccak(number.to_bytes(8, "big") + fork.to_bytes(8, "big")).hex()


def _block(number: int, fork: int = 0) -> dict[str, Any]:
    zero32 = "0x" + "00" * 32
    return {
        "number": hex(number), "hash": _block_hash(number, fork),
        "parentHash": _block_hash(number - 1, fork), "nonce": "0x" + "00" * 8,
        "sha3Uncles": zero32, "logsBloom": "0x" + "00" * 256, "transactionsRoot": zero32,
        "stateRoot": zero32, "receiptsRoot": zero32, "miner": "0x" + "00" * 20,
        "difficulty": "0x0", "totalDifficulty": "0x0", "extraData": "0x", "size": "0x0",
        "gasLimit": "0x0", "gasUsed": "0x0", "timestamp": hex(1_700_000_000 + number),
        "transactions": [], "uncles": [], "baseFeePerGas": "0x0",
    }  # fmt: skip


def _licence_log(model_id: int, block: int) -> dict[str, Any]:
    topic0 = "0x" + keccak(text="LicenceMinted(uint256,uint256,address,uint8,uint64)").hex()
    return {
        "address": CONTRACTS["LicenseNFT"],
        "topics": [topic0, "0x" + (5).to_bytes(32, "big").hex(),
                   "0x" + model_id.to_bytes(32, "big").hex(), "0x" + "00" * 12 + "aa" * 20],
        "data": "0x" + "00" * 64, "blockNumber": hex(block), "transactionHash": "0x" + "11" * 32,
        "transactionIndex": "0x0", "blockHash": "0x" + "22" * 32, "logIndex": "0x0",
        "removed": False,
    }  # fmt: skip


@pytest.fixture
def node() -> Iterator[tuple[StandIn, str]]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _reader(url: str, ttl_s: float = 30.0) -> ChainReader:
    return ChainReader(url, CONTRACTS, timeout_s=0.5, ttl_s=ttl_s)


def _cached_then_revoked(node: Any, block: int = 10) -> tuple[StandIn, ChainReader, LogWatcher]:
    """A watched reader at ``block`` that has cached "access"; the node then revokes it."""
    state, url = node
    state.block = block
    reader = _reader(url)
    watcher = LogWatcher(reader)
    watcher.poll_once()
    assert reader.has_access(1, ACCOUNT) is True
    state.access = False
    return state, reader, watcher


def _session_log(holder: str, session_hash: bytes, block: int) -> dict[str, Any]:
    topic0 = "0x" + keccak(text="SessionRevoked(address,bytes32)").hex()
    return {
        "address": CONTRACTS["SessionRegistry"],
        "topics": [topic0, "0x" + "00" * 12 + holder[2:].lower(), "0x" + session_hash.hex()],
        "data": "0x", "blockNumber": hex(block), "transactionHash": "0x" + "11" * 32,
        "transactionIndex": "0x0", "blockHash": "0x" + "22" * 32, "logIndex": "0x0",
        "removed": False,
    }  # fmt: skip


def test_session_revoked_event__drops_that_sessions_cached_state_at_once(node: Any) -> None:
    state, url = node
    reader = _reader(url)
    LogWatcher(reader).poll_once()
    revoked, other = b"\x01" * 32, b"\x02" * 32
    assert reader.session_state(ACCOUNT, revoked) == (False, 0)
    assert reader.session_state(ACCOUNT, other) == (False, 0)
    state.access = False  # the node now answers "revoked" for every session
    state.logs = [_session_log(ACCOUNT, revoked, block=10)]

    reader.poll(10)  # same block number: only the event can drop the entry

    assert reader.session_state(ACCOUNT, revoked) == (True, 0)
    assert reader.session_state(ACCOUNT, other) == (False, 0)  # still cached: not named


def test_has_access_reads_the_licence_and_caches_it(node: Any) -> None:
    state, url = node
    reader = _reader(url)

    assert reader.has_access(1, ACCOUNT) is True
    state.access = False
    assert reader.has_access(1, ACCOUNT) is True  # cached
    assert state.calls == 1


def test_a_licence_event_drops_the_cached_answer_at_once(node: Any) -> None:
    state, url = node
    reader = _reader(url)
    watcher = LogWatcher(reader)
    watcher.poll_once()
    assert reader.has_access(1, ACCOUNT) is True
    assert reader.has_access(2, ACCOUNT) is True
    state.access = False
    state.logs = [_licence_log(model_id=1, block=10)]

    reader.poll(10)  # same block number: only the event can drop the entry

    assert reader.has_access(1, ACCOUNT) is False
    assert reader.has_access(2, ACCOUNT) is True  # another model's answer is untouched


def test_a_new_block_retires_older_answers(node: Any) -> None:
    # e.g. the rental expired: no event, only a later block
    state, reader, watcher = _cached_then_revoked(node)

    state.block = 11
    watcher.poll_once()

    assert reader.has_access(1, ACCOUNT) is False


def test_a_head_replaced_at_the_same_height_drops_the_cache(node: Any) -> None:
    # A reorganisation (or a node reverted to a snapshot and mined again) can put another block at
    # the height the watcher last saw: its number says nothing changed, only its hash does.
    state, reader, watcher = _cached_then_revoked(node)

    state.fork = 1
    watcher.poll_once()

    assert reader.latest_block == 10
    assert reader.latest_block_hash == _block_hash(10, 1)
    assert reader.has_access(1, ACCOUNT) is False


def test_a_head_that_goes_back_drops_the_cache(node: Any) -> None:
    state, reader, watcher = _cached_then_revoked(node, block=12)

    state.block = 11  # reverted: block 11 again, whose logs the watcher read on another branch
    watcher.poll_once()

    assert reader.latest_block == 11
    assert reader.has_access(1, ACCOUNT) is False


def test_poll__a_gap_wider_than_the_providers_log_range__reads_it_in_pages(node: Any) -> None:
    # Providers cap one eth_getLogs's range; after an outage on a fast chain (an hour of BSC's
    # 0.45 s blocks is 8,000) the watcher's next poll spans thousands of blocks.
    state, reader, watcher = _cached_then_revoked(node)
    state.max_log_range, state.log_ranges = LOG_PAGE_BLOCKS, []
    state.block = 10 + 2 * LOG_PAGE_BLOCKS + 500
    state.logs = [_licence_log(model_id=1, block=state.block - 3)]

    watcher.poll_once()

    assert watcher.healthy is True
    assert reader.latest_block == state.block
    assert state.log_ranges == [
        (11, 10 + LOG_PAGE_BLOCKS),
        (11 + LOG_PAGE_BLOCKS, 10 + 2 * LOG_PAGE_BLOCKS),
        (11 + 2 * LOG_PAGE_BLOCKS, state.block),
    ]
    assert state.logs == []  # the licence event in the last page was read


@pytest.mark.parametrize("mode", ["slow", "429", "garbage", "bad_result"])
def test_any_misbehaviour_of_the_node_raises_chain_unavailable(node: Any, mode: str) -> None:
    state, url = node
    state.mode = mode
    reader = _reader(url)

    started = time.monotonic()
    with pytest.raises(ChainUnavailableError, match="cannot read|came back"):
        reader.has_access(1, ACCOUNT)

    assert time.monotonic() - started < 1.4  # the short timeout, no retries


def test_a_refused_connection_raises_chain_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reader = _reader(f"http://127.0.0.1:{port}")

    with pytest.raises(ChainUnavailableError):
        reader.has_access(1, ACCOUNT)


def test_a_failed_poll_drops_the_cache_so_nothing_is_served_on_stale_belief(node: Any) -> None:
    state, url = node
    reader = _reader(url)
    watcher = LogWatcher(reader)
    watcher.poll_once()
    assert reader.has_access(1, ACCOUNT) is True

    state.mode = "429"
    watcher.poll_once()

    assert watcher.healthy is False
    with pytest.raises(ChainUnavailableError):
        reader.has_access(1, ACCOUNT)
    state.mode = "ok"
    watcher.poll_once()
    assert watcher.healthy is True
    assert reader.has_access(1, ACCOUNT) is True


def test_hand_written_abis_match_the_compiled_interfaces() -> None:
    manifest = Path(__file__).resolve().parents[3] / ".build" / "__local__.json"
    if not manifest.exists():
        pytest.skip("contracts not compiled (run `make compile`)")
    types = json.loads(manifest.read_text()).get("contractTypes", {})
    for name, fragments in ABIS.items():
        compiled = types.get(f"I{name}") or types.get(name)
        if compiled is None:
            pytest.skip(f"{name} not in the build")
        by_name = {e["name"]: e for e in compiled["abi"] if e.get("type") == "function"}
        for fragment in fragments:
            assert _signature(fragment) == _signature(by_name[fragment["name"]]), fragment["name"]


def _signature(entry: dict[str, Any]) -> str:
    def kind(param: dict[str, Any]) -> str:
        if param["type"].startswith("tuple"):
            inner = ",".join(kind(c) for c in param["components"])
            return f"({inner}){param['type'][5:]}"
        return param["type"]

    ins = ",".join(kind(p) for p in entry["inputs"])
    outs = ",".join(kind(p) for p in entry["outputs"])
    return f"{entry['name']}({ins})->({outs})"


def test_cache_only_answers_warm_reads_and_never_touches_the_network(node: Any) -> None:
    from daimm.relayer.chain import CacheMiss

    state, url = node
    reader = _reader(url)
    reader.has_access(1, ACCOUNT)
    calls = state.calls

    with reader.cache_only():
        assert reader.has_access(1, ACCOUNT) is True
        with pytest.raises(CacheMiss):
            reader.has_access(2, ACCOUNT)

    assert state.calls == calls
