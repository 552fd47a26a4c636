"""The relayer's one chain reader, its log watcher and its one transaction sender.

The daemon reads the chain through web3.py's HTTP provider with a short timeout (not ape, so the
daemon stays light). The failure mode is a single exception: any timeout, HTTP error (429, 5xx),
refused connection, malformed JSON or undecodable return value raises
:class:`~daimm.errors.ChainUnavailableError`, and callers fail closed (503). A call the contract
itself reverts raises :class:`~daimm.errors.ChainError` (an answer, not an outage).

Answers are cached for ``access_ttl_s`` seconds and only while no newer block has been seen: the
log watcher polls ``eth_blockNumber``/``eth_getLogs``; on a licence, relayer, version, offer or
credit event for a model it drops that model's entries at once, and any new block retires every
older entry (``hasAccess`` "at the latest block" depends on the block's time, so a rental that
expires without any event stops being served at the first block past its expiry). A head that goes
back, or that keeps its number but changes its hash (a reorganisation, or a node reverted to a
snapshot), drops the whole cache too: the removed blocks' logs may never be seen. When the watcher
cannot poll, the whole cache is dropped: no access is granted on stale belief.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_utils import keccak, to_checksum_address

from daimm.eip712 import _SESSION_TYPE, _VOUCHER_TYPE
from daimm.errors import ChainError, ChainUnavailableError, TransactionError
from daimm.relayer.signing import checksum_address

__all__ = [
    "BlockRef",
    "CacheMiss",
    "ChainReader",
    "Channel",
    "LogWatcher",
    "ModelVersion",
    "TransactionSender",
    "make_web3",
    "redact_url",
]

log = logging.getLogger(__name__)

#: Most blocks one ``eth_getLogs`` of the watcher asks for (the catalog's batch size too).
LOG_PAGE_BLOCKS = 2_000


# ---------------------------------------------------------------------------- minimal ABIs
def _fn(
    name: str, inputs: list[tuple[str, Any]], outputs: list[Any], mutability: str = "view"
) -> dict[str, Any]:
    def param(item: Any) -> dict[str, Any]:
        if isinstance(item, tuple) and isinstance(item[1], list):  # (name, [components])
            return {"name": item[0], "type": "tuple", "components": [param(c) for c in item[1]]}
        if isinstance(item, tuple) and isinstance(item[1], tuple):  # (name, ("tuple[]", [...]))
            kind, components = item[1]
            return {"name": item[0], "type": kind, "components": [param(c) for c in components]}
        return {"name": item[0], "type": item[1]}

    return {
        "type": "function",
        "name": name,
        "stateMutability": mutability,
        "inputs": [param(i) for i in inputs],
        "outputs": [param(o) for o in outputs],
    }


# NOTE: the EIP-712 types list the structs' fields in the contracts' order.
_VOUCHERS = ("tuple[]", [(f["name"], f["type"]) for f in _VOUCHER_TYPE])
_SESSIONS = ("tuple[]", [(f["name"], f["type"]) for f in _SESSION_TYPE])

# NOTE: hand-written fragments of contracts/interfaces/*.sol, only what the relayer calls, so the
# daemon needs no compiled artifacts; tests/unit/relayer/test_chain.py checks them against the
# compiled interfaces when those exist.
ABIS: dict[str, list[dict[str, Any]]] = {
    "LicenseNFT": [_fn("hasAccess", [("modelId", "uint256"), ("account", "address")],
                       [("", "bool")])],
    "RelayerRegistry": [
        _fn("isAuthorised", [("modelId", "uint256"), ("relayer", "address")], [("", "bool")]),
        _fn("envelopeOf", [("modelId", "uint256"), ("relayer", "address")], [("", "string")]),
    ],
    "ModelRegistry": [
        _fn("versionCount", [("modelId", "uint256")], [("", "uint256")]),
        _fn("versionOf", [("modelId", "uint256"), ("version", "uint256")],
            [("", [("weightsCid", "string"), ("metadataCid", "string"),
                   ("publishedAt", "uint64")])]),
    ],
    "RentalEscrow": [
        _fn("offerOf", [("modelId", "uint256")],
            [("", [("currency", "address"), ("pricePerPeriod", "uint96"),
                   ("periodSeconds", "uint32"), ("minPeriods", "uint16"),
                   ("maxPeriods", "uint16"), ("active", "bool"),
                   ("perpetualPrice", "uint128"), ("pricePerCall", "uint128")])]),
    ],
    "SessionRegistry": [
        _fn("sessionState", [("holder", "address"), ("sessionHash", "bytes32")],
            [("revoked", "bool"), ("nonce", "uint256")]),
    ],
    "CreditEscrow": [
        _fn("channelOf", [("payer", "address"), ("modelId", "uint256"), ("relayer", "address")],
            [("", [("currency", "address"), ("deposited", "uint128"), ("redeemed", "uint128"),
                   ("expiresAt", "uint64")])]),
        _fn("redeemBatch", [("payers", "address[]"), ("vouchers", _VOUCHERS),
                            ("signatures", "bytes[]")], [("paid", "uint256")], "nonpayable"),
        _fn("redeemSessionBatch", [("sessions", _SESSIONS), ("sessionSignatures", "bytes[]"),
                                   ("vouchers", _VOUCHERS), ("signatures", "bytes[]")],
            [("paid", "uint256")], "nonpayable"),
    ],
}  # fmt: skip


def _topic(signature: str) -> bytes:
    return bytes(keccak(text=signature))


# Events that change what the relayer may answer, by topic0 -> (kind, which topic is the model id).
_MODEL_EVENTS: dict[bytes, tuple[str, int]] = {
    _topic("LicenceMinted(uint256,uint256,address,uint8,uint64)"): ("licence", 2),
    _topic("LicenceExtended(uint256,uint256,uint64)"): ("licence", 2),
    _topic("LicenceTerminated(uint256,uint256)"): ("licence", 2),
    _topic("RelayerAuthorised(uint256,address,string)"): ("relayer", 1),
    _topic("EnvelopeUpdated(uint256,address,string)"): ("relayer", 1),
    _topic("RelayerDeauthorised(uint256,address)"): ("relayer", 1),
    _topic("VersionPublished(uint256,uint256,string,string)"): ("version", 1),
    _topic("OfferSet(uint256,(address,uint96,uint32,uint16,uint16,bool,uint128,uint128))"): (
        "offer",
        1,
    ),
    _topic("CreditDeposited(address,uint256,address,address,uint256,uint64)"): ("credit", 2),
    _topic("VoucherRedeemed(address,uint256,address,uint256,uint256)"): ("credit", 2),
    _topic("CreditReclaimed(address,uint256,address,uint256)"): ("credit", 2),
}
#: ERC-20's optional metadata, read only to word messages (``currency_units``).
_ERC20_UNITS_ABI = [
    {"type": "function", "name": name, "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": kind}]}
    for name, kind in (("symbol", "string"), ("decimals", "uint8"))
]  # fmt: skip
_TRANSFER = _topic("Transfer(address,address,uint256)")
_SESSION_REVOKED = _topic("SessionRevoked(address,bytes32)")
_SESSIONS_REVOKED_ALL = _topic("SessionsRevokedAll(address,uint256)")
_RELAYER_CHANGED = {
    _topic("RelayerUpdated(address,bytes32,string)"),
    _topic("RelayerRetiredEvent(address)"),
}


@dataclass(frozen=True)
class ModelVersion:
    """The version of a model the relayer serves.

    Attributes:
        model_id: The model's token id.
        version: Index of the latest version (0 for the first).
        weights_cid: CID of its encrypted weights.
        metadata_cid: CID of its card (metadata document).
    """

    model_id: int
    version: int
    weights_cid: str
    metadata_cid: str = ""


@dataclass(frozen=True)
class Channel:
    """A pay-per-use credit channel as the chain records it (amounts in the smallest unit)."""

    currency: str
    deposited: int
    redeemed: int
    expires_at: int


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, with ``/...`` when it had more: what logs may show.

    Hosted RPC URLs carry their API key in the path (``/v3/<key>``), the query or the user info.
    """
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "<unparsable URL>"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    return f"{parts.scheme}://{netloc}" + ("/..." if hidden else "")


def _scrub(text: str, url: str) -> str:
    """``text`` with ``url``, and the path and query that may hold its key, replaced."""
    from urllib.parse import urlsplit

    redacted = redact_url(url)
    text = text.replace(url, redacted)
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    # HTTP libraries quote the path alone ("Max retries exceeded with url: /v3/<key>").
    for part in (parts.path + ("?" + parts.query if parts.query else ""), parts.path,
                 parts.query, parts.username, parts.password):  # fmt: skip
        if part and part != "/":
            text = text.replace(part, "/...")
    return text


def make_web3(rpc_url: str, timeout_s: float) -> Any:
    """A web3 instance on an HTTP provider that fails fast: short timeout and no retries."""
    from web3 import HTTPProvider, Web3

    provider = HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
    )
    return Web3(provider)


class CacheMiss(Exception):  # noqa: N818 - control flow, not an error a user sees
    """Raised inside :meth:`ChainReader.cache_only` when an answer would need the network."""


class BlockRef(NamedTuple):
    """A block as the watcher tracks it: number, hash (0x-hex) and timestamp (seconds)."""

    number: int
    hash: str
    timestamp: int


@dataclass
class _Entry:
    value: Any
    block: int
    at: float


class ChainReader:
    """Cached, fail-closed reads of the daimm contracts.

    Args:
        rpc_url: The JSON-RPC endpoint (HTTP).
        contracts: Contract name -> address (see ``settings.CONTRACT_NAMES``).
        timeout_s: Timeout of one RPC call, in seconds.
        ttl_s: How long an answer is reused, in seconds (0 disables the cache).
    """

    def __init__(
        self, rpc_url: str, contracts: dict[str, str], *, timeout_s: float = 2.0, ttl_s: float = 3.0
    ) -> None:
        self.rpc_url = rpc_url
        self.ttl_s = ttl_s
        self.w3 = make_web3(rpc_url, timeout_s)
        self.addresses = {name: to_checksum_address(a) for name, a in contracts.items()}
        self._contracts = {
            name: self.w3.eth.contract(address=self.addresses[name], abi=abi)
            for name, abi in ABIS.items()
            if name in self.addresses
        }
        self._cache: dict[tuple[Hashable, ...], _Entry] = {}
        self._units: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        #: Latest block the watcher has seen (None when no watcher runs: TTL alone applies).
        self.latest_block: int | None = None
        #: Hash of that block (0x-hex), telling a reorganisation at the same height apart.
        self.latest_block_hash: str | None = None
        #: Timestamp of that block, in seconds.
        self.latest_block_time: int | None = None

    # ------------------------------------------------------------------ raw calls
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        from web3.exceptions import ContractLogicError

        try:
            return fn()
        except ContractLogicError as exc:
            raise ChainError(f"{what} reverted: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - every other failure is an outage: fail closed
            # NOTE: for logs and the operator only (the app never sends it, see
            # access.chain_refusal), and even so without the URL's path, query or user info.
            raise ChainUnavailableError(
                f"cannot read {what} from {redact_url(self.rpc_url)} ({type(exc).__name__}:"
                f" {_scrub(str(exc), self.rpc_url)}); the relayer refuses requests until the"
                " chain answers again"
            ) from None

    def _call(self, contract: str, function: str, *args: Any) -> Any:
        fn = getattr(self._contracts[contract].functions, function)
        return self._guard(f"{contract}.{function}", lambda: fn(*args).call())

    def chain_id(self) -> int:
        """The chain's id (``eth_chainId``)."""
        value = self._guard("eth_chainId", lambda: self.w3.eth.chain_id)
        if not isinstance(value, int):
            raise ChainUnavailableError(f"eth_chainId returned {value!r}, not a number")
        return value

    def block(self) -> BlockRef:
        """Number, hash and timestamp (seconds) of the latest block."""
        block = self._guard("the latest block", lambda: self.w3.eth.get_block("latest"))
        try:
            return BlockRef(
                int(block["number"]), "0x" + bytes(block["hash"]).hex(), int(block["timestamp"])
            )
        except (KeyError, TypeError, ValueError):
            raise ChainUnavailableError("the latest block came back malformed") from None

    def chain_time(self) -> int:
        """Timestamp of the latest block, in seconds (the watcher's, else read now)."""
        if self.latest_block_time is not None:
            return self.latest_block_time
        if getattr(self._local, "cache_only", False):
            raise CacheMiss("chain time")
        return self.block().timestamp

    @contextlib.contextmanager
    def cache_only(self) -> Iterator[None]:
        """Within this block, reads answer from the cache or raise :class:`CacheMiss`.

        The app decides warm requests on the event loop this way and only moves to a thread
        (where a read may block on the network) on a miss.
        """
        self._local.cache_only = True
        try:
            yield
        finally:
            self._local.cache_only = False

    # ------------------------------------------------------------------ cache
    def _cached(self, key: tuple[Hashable, ...], read: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(key)
            block = self.latest_block
            if (
                entry is not None
                and now - entry.at < self.ttl_s
                and (block is None or entry.block == block)
            ):
                return entry.value
        if getattr(self._local, "cache_only", False):
            raise CacheMiss(key[0])
        value = read()
        if self.ttl_s > 0:
            with self._lock:
                self._cache[key] = _Entry(value, -1 if block is None else block, now)
        return value

    def drop(self, predicate: Callable[[tuple[Hashable, ...]], bool] | None = None) -> int:
        """Drop cached answers (all, or those whose key matches); return how many."""
        with self._lock:
            if predicate is None:
                count = len(self._cache)
                self._cache.clear()
                return count
            doomed = [key for key in self._cache if predicate(key)]
            for key in doomed:
                del self._cache[key]
            return len(doomed)

    def drop_model(self, model_id: int, kinds: tuple[str, ...] | None = None) -> int:
        """Drop the cached answers about ``model_id`` (of the given kinds, or all)."""
        return self.drop(lambda key: key[1] == model_id and (kinds is None or key[0] in kinds))

    def drop_account(self, account: str) -> int:
        """Drop cached ``hasAccess`` answers about ``account`` for every model."""
        account = to_checksum_address(account)
        return self.drop(lambda key: key[0] == "access" and key[2] == account)

    # ------------------------------------------------------------------ reads
    def has_access(self, model_id: int, account: str) -> bool:
        """``LicenseNFT.hasAccess(modelId, account)`` at the latest block."""
        account = to_checksum_address(account)
        value = self._cached(
            ("access", model_id, account),
            lambda: self._call("LicenseNFT", "hasAccess", model_id, account),
        )
        return _typed(value, bool, "hasAccess")

    def is_authorised(self, model_id: int, relayer: str) -> bool:
        """``RelayerRegistry.isAuthorised(modelId, relayer)``."""
        relayer = to_checksum_address(relayer)
        value = self._cached(
            ("relayer", model_id, relayer, "auth"),
            lambda: self._call("RelayerRegistry", "isAuthorised", model_id, relayer),
        )
        return _typed(value, bool, "isAuthorised")

    def envelope_of(self, model_id: int, relayer: str) -> str:
        """CID of the key envelope the model's owner published for ``relayer``."""
        relayer = to_checksum_address(relayer)
        value = self._cached(
            ("relayer", model_id, relayer, "envelope"),
            lambda: self._call("RelayerRegistry", "envelopeOf", model_id, relayer),
        )
        return _typed(value, str, "envelopeOf")

    def latest_version(self, model_id: int) -> ModelVersion:
        """The latest version of ``model_id`` (its index, weights CID and card CID)."""

        def read() -> ModelVersion:
            count = _typed(self._call("ModelRegistry", "versionCount", model_id), int, "count")
            if count < 1:
                raise ChainError(f"model {model_id} has no version")
            record = self._call("ModelRegistry", "versionOf", model_id, count - 1)
            try:
                cid, metadata_cid = record[0], record[1]
            except (TypeError, IndexError):
                raise ChainUnavailableError("versionOf returned a malformed record") from None
            return ModelVersion(
                model_id,
                count - 1,
                _typed(cid, str, "weightsCid"),
                _typed(metadata_cid, str, "metadataCid"),
            )

        return self._cached(("version", model_id), read)

    def price_per_call(self, model_id: int) -> int:
        """The offer's price of one pay-per-use call (0 if the model has none)."""

        def read() -> int:
            offer = self._call("RentalEscrow", "offerOf", model_id)
            try:
                return _typed(offer[7], int, "pricePerCall")
            except (TypeError, IndexError):
                raise ChainUnavailableError("offerOf returned a malformed offer") from None

        return self._cached(("offer", model_id), read)

    def currency_units(self, currency: str) -> tuple[str, int]:
        """Symbol and decimals of a payment currency, for messages people read (ETH for the zero
        address). Read once per token and kept: neither changes.

        Falls back to the token's address and 0 decimals (amounts then stay in the smallest unit)
        when the token does not answer, so a refusal's wording never turns it into an outage.

        Raises:
            CacheMiss: Inside :meth:`cache_only`, on a token not read yet.
        """
        if int(currency, 16) == 0:
            return "ETH", 18
        currency = to_checksum_address(currency)
        known = self._units.get(currency)
        if known is not None:
            return known
        if getattr(self._local, "cache_only", False):
            raise CacheMiss(f"units of {currency}")
        token = self.w3.eth.contract(address=currency, abi=_ERC20_UNITS_ABI)
        try:
            symbol = self._guard(f"{currency}.symbol", lambda: token.functions.symbol().call())
            decimals = self._guard(
                f"{currency}.decimals", lambda: token.functions.decimals().call()
            )
            units = (str(symbol)[:16], int(decimals))
        except (ChainError, TypeError, ValueError):
            return f"(smallest units of {currency})", 0
        self._units[currency] = units
        return units

    def channel_of(self, payer: str, model_id: int, relayer: str) -> Channel:
        """The credit channel (payer, model, relayer)."""
        payer, relayer = to_checksum_address(payer), to_checksum_address(relayer)

        def read() -> Channel:
            raw = self._call("CreditEscrow", "channelOf", payer, model_id, relayer)
            try:
                return Channel(str(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]))
            except (TypeError, IndexError, ValueError):
                raise ChainUnavailableError("channelOf returned a malformed channel") from None

        return self._cached(("credit", model_id, payer, relayer), read)

    def session_state(self, holder: str, session_hash: bytes) -> tuple[bool, int]:
        """``SessionRegistry.sessionState(holder, sessionHash)``: (revoked, holder's nonce)."""
        holder = checksum_address(holder) or holder  # cached EIP-55 (a Keccak per call otherwise)

        def read() -> tuple[bool, int]:
            raw = self._call("SessionRegistry", "sessionState", holder, session_hash)
            try:
                revoked, nonce = raw
            except (TypeError, ValueError):
                raise ChainUnavailableError("sessionState returned a malformed answer") from None
            return _typed(revoked, bool, "revoked"), _typed(nonce, int, "nonce")

        return self._cached(("session", holder, bytes(session_hash)), read)

    # ------------------------------------------------------------------ logs
    def poll(self, from_block: int) -> int:
        """Read logs from ``from_block`` to the latest block, drop what they touch; return latest.

        Raises:
            ChainUnavailableError: The chain could not be read (the caller drops the whole cache).
        """
        head = self.block()
        number = head.number
        replaced = number == self.latest_block and head.hash != self.latest_block_hash
        if number < from_block - 1 or replaced:
            # The chain went backwards or its head was replaced (a reorganisation, or a node
            # reverted to a snapshot): logs of the removed blocks may have been missed, and
            # answers cached at this height describe another block, so nothing cached is trusted.
            self.drop()
            log.warning(
                "chain head replaced" if replaced else "chain went back",
                extra={"block": number, "expected": from_block - 1},
            )
        elif number >= from_block:
            # NOTE: in pages, as providers cap one eth_getLogs's range: after an outage the gap
            # can be thousands of blocks (an hour is 8,000 of BSC's 0.45 s blocks).
            addresses = list(self.addresses.values())
            for start in range(from_block, number + 1, LOG_PAGE_BLOCKS):
                end = min(start + LOG_PAGE_BLOCKS - 1, number)
                query = {"fromBlock": start, "toBlock": end, "address": addresses}
                logs = self._guard("eth_getLogs", functools.partial(self.w3.eth.get_logs, query))
                for entry in logs:
                    self._apply_log(entry)
        with self._lock:
            self.latest_block, self.latest_block_time = number, head.timestamp
            self.latest_block_hash = head.hash
        return number

    def _apply_log(self, entry: Any) -> None:
        try:
            topics = [bytes(t) for t in entry["topics"]]
        except (KeyError, TypeError):
            raise ChainUnavailableError("eth_getLogs returned a malformed log") from None
        if not topics:
            return
        head = topics[0]
        if head in _MODEL_EVENTS:
            kind, index = _MODEL_EVENTS[head]
            model_id = int.from_bytes(topics[index], "big")
            kinds: tuple[str, ...] = ("access",) if kind == "licence" else (kind,)
            if kind == "relayer":
                kinds = ("relayer", "version")
            dropped = self.drop_model(model_id, kinds)
            log.info(
                "chain event dropped cache",
                extra={"event_kind": kind, "model_id": model_id, "dropped": dropped},
            )
        elif head == _TRANSFER and len(topics) == 4:
            # A licence changed hands: both accounts' answers are stale. (The model NFT's own
            # Transfer lands here too: dropping is harmless and ownership changes authorisation.)
            for topic in topics[1:3]:
                self.drop_account("0x" + topic[-20:].hex())
            self.drop(lambda key: key[0] == "relayer")
        elif head in _RELAYER_CHANGED:
            self.drop(lambda key: key[0] == "relayer")
        elif head in (_SESSION_REVOKED, _SESSIONS_REVOKED_ALL) and len(topics) >= 2:
            holder = to_checksum_address("0x" + topics[1][-20:].hex())
            one = topics[2] if head == _SESSION_REVOKED and len(topics) >= 3 else None
            dropped = self.drop(
                lambda key: key[0] == "session" and key[1] == holder and one in (None, key[2])
            )
            log.info("chain event dropped cache", extra={"event_kind": "session",
                                                         "dropped": dropped})  # fmt: skip


def _typed(value: Any, kind: type, what: str) -> Any:
    if kind is int and isinstance(value, bool):
        raise ChainUnavailableError(f"{what} came back as {value!r}, not a number")
    if not isinstance(value, kind):
        raise ChainUnavailableError(f"{what} came back as {type(value).__name__}, not {kind}")
    return value


class LogWatcher:
    """A background thread that keeps :class:`ChainReader`'s cache honest.

    Args:
        reader: The reader whose cache it maintains.
        interval_s: Seconds between polls.
    """

    def __init__(self, reader: ChainReader, interval_s: float = 1.0) -> None:
        self.reader = reader
        self.interval_s = interval_s
        self.healthy = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_block: int | None = None

    def poll_once(self) -> None:
        """One poll: on failure drop the whole cache and mark the chain unhealthy."""
        try:
            if self._next_block is None:
                self._next_block = self.reader.block().number
            latest = self.reader.poll(self._next_block)
            self._next_block = latest + 1
            if not self.healthy:
                log.info("chain reachable", extra={"block": latest})
            self.healthy = True
        except ChainError as exc:
            if self.healthy or self.reader.latest_block is not None:
                log.warning("chain unreachable; cache dropped", extra={"error": str(exc)})
            self.healthy = False
            self.reader.drop()
            with self.reader._lock:
                # NOTE: an impossible block number: every cached entry is stale until a poll
                # succeeds, so reads go to the chain (and fail closed while it is down).
                self.reader.latest_block = -2
                self.reader.latest_block_hash = None

    def start(self) -> None:
        """Poll once now (so the cache starts honest), then every ``interval_s`` in a thread."""
        self.poll_once()
        self._thread = threading.Thread(target=self._run, name="daimm-log-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll_once()

    def stop(self) -> None:
        """Stop the thread (returns after the current poll)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class TransactionSender:
    """The relayer's only transaction path: ``CreditEscrow.redeemBatch``, signed with its key.

    NOTE: DESIGN.md routes transactions through ``market/``, which is built on ape; the daemon
    stays on plain web3 (no ape import) so this one small class is its whole sending code.

    Args:
        reader: The chain reader (its web3 and addresses are reused).
        private_key: The relayer's Ethereum key, 32 bytes.
        timeout_s: How long to wait for a receipt, in seconds.
    """

    def __init__(self, reader: ChainReader, private_key: bytes, timeout_s: float = 60.0) -> None:
        from eth_account import Account

        self.reader = reader
        self.account = Account.from_key(private_key)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def redeem_batch(self, items: Sequence[tuple[str, tuple[Any, ...], bytes]]) -> str:
        """Send ``redeemBatch`` for ``items`` (payer, voucher, signature) and wait; return the hash.

        One bad voucher reverts the whole batch (the caller retries the others one by one).

        Raises:
            TransactionError: The call reverts (message names the error) or the tx failed.
            ChainUnavailableError: The chain could not be reached.
        """
        contract = self.reader._contracts["CreditEscrow"]
        return self.send(
            "redeemBatch",
            contract.functions.redeemBatch(
                [to_checksum_address(payer) for payer, _, _ in items],
                [voucher for _, voucher, _ in items],
                [signature for _, _, signature in items],
            ),
        )

    def redeem_session_batch(
        self, items: Sequence[tuple[tuple[Any, ...], bytes, tuple[Any, ...], bytes]]
    ) -> str:
        """Send ``redeemSessionBatch`` for ``items`` (session, holder's signature, voucher, session
        key's signature) and wait; return the hash. Raises as :meth:`redeem_batch`."""
        contract = self.reader._contracts["CreditEscrow"]
        return self.send(
            "redeemSessionBatch",
            contract.functions.redeemSessionBatch(
                [item[0] for item in items],
                [item[1] for item in items],
                [item[2] for item in items],
                [item[3] for item in items],
            ),
        )

    def send(self, name: str, call: Any, contract: str = "CreditEscrow") -> str:
        """Sign and send the web3 contract ``call`` (function ``name`` of ``contract``), wait for
        it; return the hash. Raises as :meth:`redeem_batch`."""
        from web3.exceptions import ContractLogicError

        w3 = self.reader.w3
        with self._lock:  # one nonce at a time
            try:
                tx = call.build_transaction(
                    {
                        "from": self.account.address,
                        "nonce": w3.eth.get_transaction_count(self.account.address, "pending"),
                        "chainId": w3.eth.chain_id,
                    }
                )
                signed = self.account.sign_transaction(tx)
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.timeout_s)
            except ContractLogicError as exc:
                raise TransactionError(f"{contract}.{name} would revert: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - the chain is unreachable or garbled
                raise ChainUnavailableError(
                    f"cannot send {name}: {_scrub(str(exc), self.reader.rpc_url)}"
                ) from None
        if receipt["status"] != 1:
            raise TransactionError(f"{name} transaction {tx_hash.hex()} reverted")
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")
