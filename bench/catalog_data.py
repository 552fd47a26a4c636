"""Synthetic but realistic catalogs, built through the catalog's own code paths.

:func:`populate` fills a :class:`~daimm.catalog.CatalogStore` with ``n_models`` models: metadata
documents (names, descriptions, tasks, tags), offers in AIMT, rentals and purchases, reviews and a
few disputes. Nothing is written to the database directly: the events are ABI-encoded into raw
``eth_getLogs`` entries of a synthetic chain (:class:`SyntheticChain`, which stands for a node),
and the real :class:`~daimm.catalog.Indexer` reads, decodes and folds them and fetches the
metadata documents, exactly as ``daimm catalog sync`` does. Search, model pages and seller
statistics therefore work on the result.

The same ``seed`` always gives the same catalog. Used by ``bench/catalog_bench.py`` and by other
benchmarks that need a large catalog::

    from catalog_data import populate
    populate(CatalogStore("sqlite:////tmp/c.sqlite"), 10_000)
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from daimm.catalog import CatalogContracts, CatalogStore, Indexer
from daimm.catalog.reader import BlockRef, DecodedLog, _abi_type, load_event_abis
from daimm.ipfs.multiformats import CID

__all__ = [
    "AIMT_ADDRESS",
    "CHAIN_ID",
    "SyntheticChain",
    "build_chain",
    "populate",
    "populate_bulk",
    "sync_chain",
]

CHAIN_ID = 31337
AIMT = 10**18
AIMT_ADDRESS = to_checksum_address("0x" + "a1" * 20)
_ZERO = "0x" + "00" * 20
_ADDRESSES = {
    "ModelRegistry": to_checksum_address("0x" + "11" * 20),
    "LicenseNFT": to_checksum_address("0x" + "22" * 20),
    "RentalEscrow": to_checksum_address("0x" + "33" * 20),
    "RelayerRegistry": to_checksum_address("0x" + "44" * 20),
    "CreditEscrow": to_checksum_address("0x" + "55" * 20),
    "ReviewRegistry": to_checksum_address("0x" + "66" * 20),
}
_GENESIS_TS = 1_700_000_000
_BLOCK_S = 12
_TXS_PER_BLOCK = 8
_RAW_CODEC = 0x55

# ------------------------------------------------------------------------------ vocabulary
_TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # task: (subjects, tags)
    "tabular-classification": (
        ("credit card fraud", "loan default", "customer churn", "insurance claims", "diabetes"),
        ("fraud", "finance", "risk", "churn", "health", "tabular", "xgboost"),
    ),
    "tabular-regression": (
        ("house price", "energy demand", "delivery time", "crop yield", "salary"),
        ("regression", "real-estate", "energy", "logistics", "agriculture"),
    ),
    "image-classification": (
        ("plant disease", "skin lesion", "forged document", "traffic sign", "bird species"),
        ("vision", "cnn", "medical", "fraud", "resnet", "mobile"),
    ),
    "object-detection": (
        ("pedestrian", "vehicle", "shelf product", "defect", "drone"),
        ("vision", "yolo", "detection", "retail", "manufacturing"),
    ),
    "text-classification": (
        ("spam email", "support ticket", "toxic comment", "news topic", "legal clause"),
        ("nlp", "bert", "moderation", "email", "legal"),
    ),
    "sentiment-analysis": (
        ("product review", "tweet", "movie review", "earnings call", "hotel review"),
        ("nlp", "sentiment", "social", "finance", "multilingual"),
    ),
    "time-series-forecasting": (
        ("electricity load", "stock volatility", "web traffic", "sales", "weather"),
        ("forecasting", "lstm", "energy", "finance", "retail"),
    ),
    "anomaly-detection": (
        ("network intrusion", "sensor fault", "transaction", "server log", "machine vibration"),
        ("anomaly", "security", "iot", "fraud", "autoencoder"),
    ),
    "speech-recognition": (
        ("keyword spotting", "call centre", "voice command", "podcast", "accented english"),
        ("audio", "speech", "asr", "edge", "multilingual"),
    ),
    "translation": (
        ("english to german", "french to english", "spanish to portuguese", "legal", "medical"),
        ("nlp", "translation", "transformer", "multilingual"),
    ),
}
_ADJECTIVES = ("fast", "robust", "tiny", "accurate", "calibrated", "explainable", "quantised", "")
_KINDS = ("detector", "classifier", "model", "predictor", "scorer", "net", "estimator")
_DATASETS = ("public benchmark data", "five years of anonymised records", "a curated dataset",
             "synthetic and real samples", "open government data")  # fmt: skip
_FRAMEWORKS = ("onnx",) * 8 + ("pytorch", "tensorflow")


def _metadata(rng: random.Random, model_id: int) -> dict[str, Any]:
    task = rng.choice(sorted(_TASKS))
    subjects, tags = _TASKS[task]
    subject = rng.choice(subjects)
    adjective = rng.choice(_ADJECTIVES)
    name = " ".join(w for w in (adjective, subject, rng.choice(_KINDS)) if w).capitalize()
    accuracy = rng.uniform(0.80, 0.99)
    description = (
        f"{task.replace('-', ' ').capitalize()} of {subject} data, trained on"
        f" {rng.choice(_DATASETS)}; {accuracy:.1%} on the held-out set. Version {model_id % 7 + 1}."
    )
    return {
        "name": name,
        "description": description,
        "task": task,
        "framework": rng.choice(_FRAMEWORKS),
        "tags": sorted(rng.sample(tags, k=min(len(tags), rng.randint(1, 3)))),
        "license": rng.choice(("commercial", "research-only", "cc-by-4.0")),
    }


def _cid_of(raw: bytes) -> str:
    return str(CID.for_block(raw, version=1, codec=_RAW_CODEC))


def _address(kind: int, index: int) -> str:
    return to_checksum_address("0x" + hashlib.sha256(f"{kind}:{index}".encode()).hexdigest()[:40])


def _hash(*parts: Any) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


# ------------------------------------------------------------------------------ the chain
@dataclass
class SyntheticChain:
    """A chain of encoded logs, answering the :class:`~daimm.catalog.ChainReader` calls.

    NOTE: this stands for a node (none could serve 100k models' worth of transactions in a
    benchmark's time); everything after ``eth_getLogs`` is the catalog's real code.
    """

    blocks: list[BlockRef] = field(default_factory=list)
    logs_by_block: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    decoded: list[DecodedLog] = field(default_factory=list)

    def chain_id(self) -> int:
        return CHAIN_ID

    def head(self) -> int:
        return self.blocks[-1].number if self.blocks else 0

    def block(self, number: int) -> BlockRef | None:
        return self.blocks[number - 1] if 1 <= number <= len(self.blocks) else None

    def logs(self, addresses: Iterable[str], from_block: int, to_block: int) -> list[Any]:
        wanted = {a.lower() for a in addresses}
        out = []
        for number in range(from_block, to_block + 1):
            out += [e for e in self.logs_by_block.get(number, ()) if e["address"].lower() in wanted]
        return out

    def erc20_metadata(self, token: str) -> tuple[str, int] | None:
        if int(token, 16) == 0:
            return "ETH", 18
        return ("AIMT", 18) if token.lower() == AIMT_ADDRESS.lower() else None

    def fetch(self, cid: str) -> bytes:
        """The metadata fetcher: documents by CID (a KeyError is an unexpected CID)."""
        return self.documents[cid]

    @property
    def contracts(self) -> CatalogContracts:
        return CatalogContracts(_ADDRESSES, 1, CHAIN_ID)

    @property
    def events(self) -> int:
        return sum(len(v) for v in self.logs_by_block.values()) or len(self.decoded)


class _Encoder:
    """Event (contract, name, args) -> raw log, from the same ABIs the decoder uses."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        for contract, abis in load_event_abis().items():
            for event in abis:
                types = ",".join(_abi_type(p) for p in event["inputs"])
                topic = "0x" + keccak(text=f"{event['name']}({types})").hex()
                self._events[(contract, event["name"])] = (topic, event)

    def encode(self, contract: str, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        topic, event = self._events[(contract, name)]
        topics = [topic]
        plain_types, plain_values = [], []
        for param in event["inputs"]:
            value = _abi_value(param, args[param["name"]])
            if param.get("indexed"):
                topics.append("0x" + abi_encode([_abi_type(param)], [value]).hex())
            else:
                plain_types.append(_abi_type(param))
                plain_values.append(value)
        return {
            "address": _ADDRESSES[contract],
            "topics": topics,
            "data": "0x" + abi_encode(plain_types, plain_values).hex(),
        }


def _abi_value(param: Mapping[str, Any], value: Any) -> Any:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return tuple(_abi_value(c, value[c["name"]]) for c in param["components"])
    if kind.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return value


Tx = Sequence[tuple[str, str, dict[str, Any]]]


def _transactions(n_models: int, rng: random.Random, chain: SyntheticChain) -> list[Tx]:
    """The marketplace's history: setup, publishing and offers, then trade in random order."""
    n_creators = max(1, n_models // 8)
    n_users = max(4, n_models // 2)
    creators = [_address(1, i) for i in range(n_creators)]
    users = [_address(2, i) for i in range(n_users)]
    txs: list[Tx] = [
        [("RentalEscrow", "CurrencyAllowed", {"currency": AIMT_ADDRESS, "allowed": True})],
        [("RentalEscrow", "FeeSet", {"feeBps": 250})],
    ]
    prices: dict[int, dict[str, Any]] = {}
    for model_id in range(1, n_models + 1):
        raw = json.dumps(_metadata(rng, model_id), sort_keys=True).encode()
        cid = _cid_of(raw)
        chain.documents[cid] = raw
        creator = creators[rng.randrange(n_creators)]
        publish = [
            ("ModelRegistry", "Transfer", {"from": _ZERO, "to": creator, "tokenId": model_id}),
            (
                "ModelRegistry",
                "ModelPublished",
                {
                    "modelId": model_id,
                    "creator": creator,
                    "weightsCid": _cid_of(b"weights" + raw),
                    "metadataCid": cid,
                },
            ),
            (
                "ModelRegistry",
                "RoyaltySet",
                {"modelId": model_id, "bps": rng.choice((0, 250, 500))},
            ),
        ]
        txs.append(publish)
        if rng.random() < 0.92:
            offer = {
                "currency": AIMT_ADDRESS,
                "pricePerPeriod": rng.randint(1, 200) * AIMT // 10,
                "periodSeconds": rng.choice((3600, 86_400, 7 * 86_400)),
                "minPeriods": 1,
                "maxPeriods": rng.choice((30, 100, 365)),
                "active": rng.random() < 0.94,
                "perpetualPrice": rng.choice((0, rng.randint(10, 500) * AIMT)),
                "pricePerCall": rng.choice((0, 0, rng.randint(1, 100) * AIMT // 1000)),
            }
            prices[model_id] = offer
            txs.append([("RentalEscrow", "OfferSet", {"modelId": model_id, "offer": offer})])

    trades: list[Tx] = []
    reviews: list[Tx] = []
    disputes: list[tuple[Tx, Tx]] = []
    licence_id = dispute_id = 0
    now = _GENESIS_TS + 86_400 * 30
    for model_id, offer in prices.items():
        if not offer["active"]:
            continue
        popularity = rng.choice((0, 0, 1, 1, 2, 3, 5))
        for _ in range(popularity):
            licence_id += 1
            holder = users[rng.randrange(n_users)]
            buy = offer["perpetualPrice"] > 0 and rng.random() < 0.25
            periods = rng.randint(1, 5)
            price = offer["perpetualPrice"] if buy else offer["pricePerPeriod"] * periods
            fee = price * 250 // 10_000
            expires = 0 if buy else now + periods * offer["periodSeconds"]
            common = {"modelId": model_id, "licenceId": licence_id}
            tx = [
                ("LicenseNFT", "Transfer", {"from": _ZERO, "to": holder, "tokenId": licence_id}),
                (
                    "LicenseNFT",
                    "LicenceMinted",
                    {**common, "holder": holder, "kind": int(buy), "expires": expires},
                ),
                (
                    "RentalEscrow",
                    "PaymentHeld",
                    {
                        **common,
                        "payer": holder,
                        "currency": AIMT_ADDRESS,
                        "amount": price,
                        "fee": fee,
                        "payeeSet": model_id,
                        "releaseAt": now + 86_400,
                    },
                ),
                (
                    ("RentalEscrow", "Bought", {**common, "buyer": holder, "price": price})
                    if buy
                    else (
                        "RentalEscrow",
                        "Rented",
                        {
                            **common,
                            "renter": holder,
                            "periods": periods,
                            "expires": expires,
                            "price": price,
                        },
                    )
                ),
            ]
            trades.append(tx)
            if rng.random() < 0.6:
                rating = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 3, 6, 5))[0]
                reviews.append(
                    [
                        (
                            "ReviewRegistry",
                            "Reviewed",
                            {
                                **common,
                                "reviewer": holder,
                                "rating": rating,
                                "commentCid": _cid_of(f"comment {licence_id}".encode()),
                            },
                        )
                    ]
                )
            elif rng.random() < 0.05:
                dispute_id += 1
                opened = [
                    (
                        "RentalEscrow",
                        "PaymentDisputed",
                        {
                            "disputeId": dispute_id,
                            "payeeSet": model_id,
                            "currency": AIMT_ADDRESS,
                            "releaseAt": now + 86_400,
                            "amount": price,
                            "fee": fee,
                        },
                    ),
                    (
                        "RentalEscrow",
                        "DisputeOpened",
                        {
                            "disputeId": dispute_id,
                            "licenceId": licence_id,
                            "payer": holder,
                            "amount": price,
                        },
                    ),
                ]
                refund = rng.random() < 0.5
                resolved = [
                    (
                        "RentalEscrow",
                        "DisputeResolved",
                        {
                            "disputeId": dispute_id,
                            "resolution": 0 if refund else 1,
                            "refunded": price if refund else 0,
                            "released": 0 if refund else price,
                        },
                    )
                ]
                disputes.append((opened, resolved))
    rng.shuffle(trades)
    rng.shuffle(reviews)
    txs += trades
    txs += reviews
    txs += [opened for opened, _ in disputes]
    txs += [resolved for _, resolved in disputes]
    return txs


def build_chain(n_models: int, seed: int = 0, *, encode: bool = True) -> SyntheticChain:
    """The synthetic chain :func:`populate` syncs: same ``seed``, same chain.

    Args:
        n_models: Models published on it.
        seed: The random seed.
        encode: Also ABI-encode every log for ``eth_getLogs`` (what :func:`populate` reads);
            without it only ``decoded`` is filled (what :func:`populate_bulk` folds).
    """
    rng = random.Random(seed)
    chain = SyntheticChain()
    encoder = _Encoder() if encode else None
    txs = _transactions(n_models, rng, chain)
    for start in range(0, len(txs), _TXS_PER_BLOCK):
        number = len(chain.blocks) + 1
        ref = BlockRef(number, _hash("block", seed, number), _GENESIS_TS + number * _BLOCK_S)
        chain.blocks.append(ref)
        entries = chain.logs_by_block[number] = []
        index = 0
        for position, tx in enumerate(txs[start : start + _TXS_PER_BLOCK]):
            tx_hash = _hash("tx", seed, number, position)
            for contract, name, args in tx:
                if encoder is not None:
                    raw = encoder.encode(contract, name, args)
                    raw.update(
                        blockNumber=number,
                        blockHash=ref.hash,
                        logIndex=index,
                        transactionHash=tx_hash,
                    )
                    entries.append(raw)
                else:
                    chain.decoded.append(
                        DecodedLog(contract, name, args, number, ref.hash, index, tx_hash)
                    )
                index += 1
    return chain


def populate(store: CatalogStore, n_models: int, seed: int = 0) -> None:
    """Fill an empty ``store`` with ``n_models`` synthetic models through the real indexer.

    Args:
        store: An empty catalog (or one populated before with the same ``n_models`` and ``seed``:
            the sync then resumes and adds nothing).
        n_models: Models to publish (about 92 % get an offer in AIMT, most of them active; about
            half are rented or bought, 60 % of licences are reviewed, a few disputed).
        seed: The random seed; the same seed gives the same catalog.
    """
    chain = build_chain(n_models, seed)
    sync_chain(store, chain)


def sync_chain(store: CatalogStore, chain: SyntheticChain, **indexer_kwargs: Any) -> Indexer:
    """Run the real indexer over ``chain`` into ``store``; returns the indexer."""
    indexer_kwargs.setdefault("batch_blocks", 500)
    # NOTE: the synthetic chain answers the ChainReader calls the indexer makes; the type differs.
    indexer = Indexer(store, chain, chain.contracts, chain.fetch, **indexer_kwargs)  # type: ignore[arg-type]
    indexer.sync()
    return indexer


def populate_bulk(
    store: CatalogStore, n_models: int, seed: int = 0, *, events_per_transaction: int = 50_000
) -> int:
    """The catalog :func:`populate` makes, loaded faster: the same events, already decoded, go
    through the indexer's own :meth:`~daimm.catalog.Indexer.apply` (record + fold) in large
    transactions, skipping only the ABI encoding, ``eth_getLogs`` and decoding; then a normal
    sync fetches the metadata. Returns the number of events folded.
    """
    chain = build_chain(n_models, seed, encode=False)
    indexer = Indexer(store, chain, chain.contracts, chain.fetch)  # type: ignore[arg-type]
    timestamps = {ref.number: ref.timestamp for ref in chain.blocks}
    logs = chain.decoded
    for start in range(0, len(logs), events_per_transaction):
        with store.begin() as conn:
            indexer.apply(conn, logs[start : start + events_per_transaction], timestamps)
    with store.begin() as conn:
        store.set_meta(conn, "last_block", str(chain.head()))
    indexer.sync()  # nothing left to read: caches token metadata, fetches the documents
    return len(logs)
