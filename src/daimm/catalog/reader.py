"""The catalog's one window on the chain: logs, block headers and a few views, read-only.

Everything the indexer learns from the chain goes through :class:`ChainReader`, a thin layer over a
web3.py ``Web3`` (an HTTP provider for the CLI, or the ``web3`` of a connected ape provider in the
demo and tests). It never sends a transaction. Every failure to read (a timeout, a refused
connection, a node error, a malformed answer) becomes :class:`~daimm.errors.ChainUnavailableError`,
so the indexer stops and commits nothing for that batch: it never records a belief it did not read.

Logs are decoded here too, from the ABIs of the contract interfaces (``contracts/interfaces``), so
the rest of the catalog sees :class:`DecodedLog` records with plain Python values.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from daimm.errors import ChainUnavailableError, ConfigError

__all__ = [
    "BlockRef",
    "ChainReader",
    "DecodedLog",
    "EventDecoder",
    "load_event_abis",
]

log = logging.getLogger(__name__)

#: Interfaces whose events the catalog follows, by the deployment's contract name.
INTERFACE_OF: dict[str, str] = {
    "ModelRegistry": "IModelRegistry",
    "LicenseNFT": "ILicenseNFT",
    "RentalEscrow": "IRentalEscrow",
    "RelayerRegistry": "IRelayerRegistry",
    "CreditEscrow": "ICreditEscrow",
    "ReviewRegistry": "IReviewRegistry",
}

# ERC-721's Transfer comes from OpenZeppelin, not from our interfaces; it is a standard, so its ABI
# is stated here. ModelRegistry transfers move models, LicenseNFT transfers move licences.
_ERC721_TRANSFER: dict[str, Any] = {
    "type": "event",
    "name": "Transfer",
    "anonymous": False,
    "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "tokenId", "type": "uint256", "indexed": True},
    ],
}


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block as the catalog remembers it.

    Attributes:
        number: Block number.
        hash: Block hash, ``0x``-prefixed lower-case hex.
        timestamp: Block timestamp, in seconds since the epoch.
    """

    number: int
    hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class DecodedLog:
    """One event log, decoded.

    Attributes:
        contract: The deployment's name of the emitting contract (``RentalEscrow``).
        event: The event's name (``Rented``).
        args: Argument name -> value (ints, checksummed addresses, strings, ``0x`` hex for bytes,
            dicts for structs).
        block_number: Block the log is in.
        block_hash: That block's hash (``0x`` hex).
        log_index: Position of the log in its block.
        tx_hash: Hash of the transaction that emitted it (``0x`` hex).
    """

    contract: str
    event: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text.lower() if text.startswith("0x") else "0x" + text.lower()


def _abi_type(param: Mapping[str, Any]) -> str:
    """The canonical ABI type of a parameter (tuples spelled out, for signatures and eth_abi)."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _normalise(param: Mapping[str, Any], value: Any) -> Any:
    """ABI-decoded value -> plain JSON-able Python value."""
    kind = str(param["type"])
    if kind.endswith("]"):
        inner = dict(param)
        inner["type"] = kind[: kind.rindex("[")]
        return [_normalise(inner, v) for v in value]
    if kind.startswith("tuple"):
        return {
            c["name"]: _normalise(c, v) for c, v in zip(param["components"], value, strict=True)
        }
    if kind == "address":
        return to_checksum_address(value)
    if kind.startswith("bytes"):
        return _hex(value)
    return value


def _project_build_dir() -> Path:
    # src/daimm/catalog/reader.py -> the checkout's .build (ape's compiled contract types).
    return Path(__file__).resolve().parents[3] / ".build"


def load_event_abis() -> dict[str, list[dict[str, Any]]]:
    """Event ABIs of the followed contracts, by deployment contract name.

    For each contract, the first source that has it: the contract type shipped in the package
    (``daimm/contracts/<Name>.json``), the checkout's ``.build/__local__.json`` that ``ape compile``
    writes, or there the contract's interface (``I<Name>``) plus ERC-721's ``Transfer``.

    Raises:
        ConfigError: No source has a followed contract: run ``make compile``.
    """
    packaged = resources.files("daimm").joinpath("contracts")
    manifest = _project_build_dir() / "__local__.json"
    built: dict[str, Any] = {}
    if manifest.is_file():
        built = json.loads(manifest.read_text()).get("contractTypes") or {}
    abis: dict[str, list[dict[str, Any]]] = {}
    missing = []
    for name, interface in INTERFACE_OF.items():
        entry = packaged.joinpath(f"{name}.json")
        abi: list[dict[str, Any]]
        if entry.is_file():
            abi = json.loads(entry.read_text())["abi"]
        elif name in built:
            abi = built[name]["abi"]
        elif interface in built:
            abi = list(built[interface]["abi"])
            if name in ("ModelRegistry", "LicenseNFT"):
                abi.append(_ERC721_TRANSFER)
        else:
            missing.append(name)
            continue
        abis[name] = [e for e in abi if e.get("type") == "event"]
    if missing:
        raise ConfigError(
            f"the contract ABIs of {', '.join(missing)} are missing: run `make compile` (or install"
            " a daimm package that ships them)"
        )
    return abis


class EventDecoder:
    """Decodes raw logs of the followed contracts into :class:`DecodedLog`.

    Args:
        addresses: Deployment contract name -> address of each followed contract.
        abis: Event ABIs by contract name; :func:`load_event_abis` when omitted.
    """

    def __init__(
        self,
        addresses: Mapping[str, str],
        abis: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        abis = abis if abis is not None else load_event_abis()
        self._by_key: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        self.addresses: dict[str, str] = {}
        for name, address in addresses.items():
            checksummed = to_checksum_address(address)
            self.addresses[name] = checksummed
            for event in abis.get(name, ()):
                types = ",".join(_abi_type(p) for p in event["inputs"])
                topic = "0x" + keccak(text=f"{event['name']}({types})").hex()
                self._by_key[(checksummed.lower(), topic)] = (name, event)

    def decode(self, raw: Mapping[str, Any]) -> DecodedLog | None:
        """Decode one ``eth_getLogs`` entry; None for a log of an event the catalog ignores."""
        topics = [_hex(t) for t in raw["topics"]]
        if not topics:
            return None
        found = self._by_key.get((str(raw["address"]).lower(), topics[0]))
        if found is None:
            return None
        contract, event = found
        indexed = [p for p in event["inputs"] if p.get("indexed")]
        plain = [p for p in event["inputs"] if not p.get("indexed")]
        args: dict[str, Any] = {}
        for param, topic in zip(indexed, topics[1:], strict=True):
            (value,) = abi_decode([_abi_type(param)], bytes.fromhex(topic[2:]))
            args[param["name"]] = _normalise(param, value)
        data = raw["data"]
        data_bytes = (
            bytes(data) if isinstance(data, bytes | bytearray) else bytes.fromhex(str(data)[2:])
        )
        values = abi_decode([_abi_type(p) for p in plain], data_bytes)
        for param, value in zip(plain, values, strict=True):
            args[param["name"]] = _normalise(param, value)
        return DecodedLog(
            contract=contract,
            event=str(event["name"]),
            args=args,
            block_number=int(raw["blockNumber"]),
            block_hash=_hex(raw["blockHash"]),
            log_index=int(raw["logIndex"]),
            tx_hash=_hex(raw["transactionHash"]),
        )


class ChainReader:
    """Read-only access to one chain through a web3.py ``Web3``.

    Args:
        web3: A connected ``web3.Web3`` (``Web3(HTTPProvider(url))``, or ape's ``provider.web3``).

    Every method raises :class:`~daimm.errors.ChainUnavailableError` when the chain cannot be read.
    """

    def __init__(self, web3: Any) -> None:
        self.web3 = web3

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float = 30.0) -> ChainReader:
        """A reader over JSON-RPC at ``url`` (``http://127.0.0.1:8545``)."""
        from web3 import HTTPProvider, Web3

        return cls(Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s})))

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ChainUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001 - every read failure means "chain unavailable"
            raise ChainUnavailableError(
                f"cannot read {what} from the chain ({type(exc).__name__}: {exc}); check the RPC"
                " endpoint and run `daimm catalog sync` again: it resumes where it stopped"
            ) from exc

    def chain_id(self) -> int:
        """The chain id."""
        return int(self._call("the chain id", lambda: self.web3.eth.chain_id))

    def head(self) -> int:
        """The latest block number."""
        return int(self._call("the latest block number", lambda: self.web3.eth.block_number))

    def block(self, number: int) -> BlockRef | None:
        """Block ``number``'s hash and timestamp, or None when the chain has no such block."""

        def get() -> Any:
            from web3.exceptions import BlockNotFound

            try:
                return self.web3.eth.get_block(number)
            except BlockNotFound:
                return None

        block = self._call(f"block {number}", get)
        if block is None:
            return None
        return BlockRef(int(block["number"]), _hex(block["hash"]), int(block["timestamp"]))

    def logs(self, addresses: Iterable[str], from_block: int, to_block: int) -> list[Any]:
        """Raw logs of ``addresses`` in blocks ``from_block..to_block`` (inclusive), chain order."""
        params = {
            "address": [to_checksum_address(a) for a in addresses],
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        entries = self._call(
            f"logs of blocks {from_block}..{to_block}", self.web3.eth.get_logs, params
        )
        return sorted(entries, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))

    def erc20_metadata(self, token: str) -> tuple[str, int] | None:
        """``(symbol, decimals)`` of an ERC-20, ``("ETH", 18)`` for the zero address, or None when
        the token does not answer ``symbol()``/``decimals()`` (shown by address; asked again later).
        """
        if int(token, 16) == 0:
            return "ETH", 18
        address = to_checksum_address(token)

        def call(signature: str, kind: str) -> Any:
            selector = keccak(text=signature)[:4]
            data = self.web3.eth.call({"to": address, "data": "0x" + selector.hex()})
            (value,) = abi_decode([kind], bytes(data))
            return value

        try:
            symbol = str(call("symbol()", "string"))
            decimals = int(call("decimals()", "uint8"))
        except Exception as exc:  # noqa: BLE001 - a non-standard token is shown, not fatal
            log.warning("token %s has no symbol()/decimals() (%s)", address, exc)
            return None
        return symbol, decimals
