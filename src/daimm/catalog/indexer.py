"""The indexer: contract events + verified metadata -> the catalog database.

How it stays right (``docs/CATALOG.md`` says more):

- **Resume.** Each batch of blocks is written in one database transaction: its events, what they
  change in the projections, the hashes of recent blocks and the checkpoint (``last_block``). A
  process killed mid-batch leaves the previous checkpoint and none of the batch, so the next run
  reads the batch again: nothing missed, nothing twice. Events are keyed by (block, log index) and
  inserted only if absent, so even a replayed write changes nothing.
- **Reorganisations.** The hashes of the last ``reorg_depth`` blocks read are kept. Before reading
  on, the newest one is checked against the chain; if it changed, the indexer walks back to the
  newest block whose hash still matches, deletes the events after it, refolds the projections from
  the remaining log and reads on from there. A reorganisation deeper than the window (or a chain
  that was reset) rebuilds the catalog from the start block. Logs whose block hash disagrees with
  the header read in the same batch (a reorganisation while reading) make the batch be read again.
- **Metadata.** After the events, every metadata CID not yet fetched (or due for a retry) is fetched
  through the verified IPFS reader and parsed. A CID that cannot be fetched is marked
  ``unavailable`` with a back-off (1 min, doubling to 1 day); a document that is not valid
  metadata is marked ``invalid`` for good (content under a CID never changes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, or_, select, update

from daimm.catalog import store as t
from daimm.catalog.reader import ChainReader, DecodedLog, EventDecoder
from daimm.catalog.store import CatalogStore, insert_ignore, upsert
from daimm.errors import CatalogError, DaimmError, IntegrityError, ValidationError
from daimm.modelformat import parse_card

__all__ = [
    "MAX_METADATA_BYTES",
    "CatalogContracts",
    "Indexer",
    "MetadataFetcher",
    "SyncReport",
    "ipfs_fetcher",
    "parse_metadata",
]

log = logging.getLogger(__name__)

#: Fetch a metadata document's bytes by CID, verified against it (raise on failure).
MetadataFetcher = Callable[[str], bytes]
#: ``progress(blocks_done, blocks_total)``.
Progress = Callable[[int, int], None]

MAX_METADATA_BYTES = 1 << 20  # 1 MiB: a metadata document is a small JSON file
_RETRY_FIRST_S = 60
_RETRY_MAX_S = 86_400
_ZERO = "0x0000000000000000000000000000000000000000"
_RESOLUTIONS = ("refund", "release", "split")
_KINDS = ("rental", "perpetual")


@dataclass(frozen=True)
class CatalogContracts:
    """Addresses the catalog follows, by deployment contract name, and where to start.

    Attributes:
        addresses: ``ModelRegistry``, ``LicenseNFT``, ``RentalEscrow`` (required) and
            ``RelayerRegistry``, ``CreditEscrow``, ``ReviewRegistry`` (followed when present).
        start_block: The first block to read (the deployment block).
        chain_id: The chain they live on; a catalog built for another chain is refused.
    """

    addresses: Mapping[str, str]
    start_block: int
    chain_id: int

    @classmethod
    def from_deployment(cls, deployment: Any) -> CatalogContracts:
        """From a :class:`daimm.deployments.Deployment`."""
        names = (
            "ModelRegistry",
            "LicenseNFT",
            "RentalEscrow",
            "RelayerRegistry",
            "CreditEscrow",
            "ReviewRegistry",
        )
        addresses = {n: deployment.contracts[n] for n in names if n in deployment.contracts}
        return cls(addresses, int(deployment.block), int(deployment.chain_id))

    def fingerprint(self) -> str:
        """A stable text naming the chain and contracts (stored to refuse a mismatched database)."""
        pairs = ",".join(f"{k}={v.lower()}" for k, v in sorted(self.addresses.items()))
        return f"{self.chain_id}:{pairs}"


@dataclass(frozen=True)
class SyncReport:
    """What one :meth:`Indexer.sync` did.

    Attributes:
        from_block: First block read (``to_block + 1`` when there was nothing new).
        to_block: The checkpoint after the sync.
        events: Events added to the log.
        reorged_from: First block dropped by a reorganisation, or None.
        metadata_fetched: Documents fetched and parsed.
        metadata_failed: CIDs that could not be fetched (retried later) or were invalid.
        seconds: Wall time.
    """

    from_block: int
    to_block: int
    events: int
    reorged_from: int | None
    metadata_fetched: int
    metadata_failed: int
    seconds: float


def ipfs_fetcher(backend: Any, *, max_bytes: int = MAX_METADATA_BYTES) -> MetadataFetcher:
    """A fetcher reading UnixFS files from a ``daimm.ipfs`` backend, every block verified.

    Args:
        backend: A :class:`daimm.ipfs.backends.Backend` (local blockstore, Kubo, gateway, ...).
        max_bytes: Larger documents are refused (a metadata file is small).
    """
    from daimm.ipfs.multiformats import CID
    from daimm.ipfs.unixfs import iter_file

    def fetch(cid: str) -> bytes:
        root = CID.parse(cid.removeprefix("ipfs://"))
        out = bytearray()
        for piece in iter_file(root, backend.get_block):
            out += piece
            if len(out) > max_bytes:
                raise IntegrityError(f"metadata {cid} is larger than {max_bytes} bytes")
        return bytes(out)

    return fetch


def parse_metadata(raw: bytes) -> dict[str, Any]:
    """The searchable fields of a metadata document.

    Returns:
        ``name``, ``description``, ``task``, ``framework`` (lower case, ``onnx`` by default) and
        ``tags`` (lower-case words joined by spaces). ``task`` is the card's ``pipeline_tag`` when
        the document is a valid model card (:func:`daimm.modelformat.parse_card`); a document
        that is not (written before the schema, or by hand) is still listed by its free-text
        ``task``.

    Raises:
        ValueError: Not a JSON object with a non-empty string ``name``.
    """
    doc = json.loads(raw.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("metadata is not a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("metadata has no 'name'")

    def text_of(key: str) -> str | None:
        value = doc.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    tags = doc.get("tags", [])
    if isinstance(tags, str):
        tags = tags.replace(",", " ").split()
    if not isinstance(tags, list):
        raise ValueError("metadata 'tags' must be a list of strings")
    words = sorted({str(tag).strip().lower() for tag in tags if str(tag).strip()})
    task = text_of("task")
    with contextlib.suppress(ValidationError):  # not a card by the schema: its free text
        task = parse_card(doc, stored=True).pipeline_tag or task
    framework = text_of("framework") or "onnx"
    return {
        "name": name.strip(),
        "description": text_of("description") or "",
        "task": task.lower() if task else None,
        "framework": framework.lower(),
        "tags": " ".join(words),
    }


# NOTE: built once (it runs for nearly every event); the values come as parameters.
_SET_EVENT_MODEL = (
    update(t.events)
    .where(
        t.events.c.block_number == bindparam("at_block"),
        t.events.c.log_index == bindparam("at_index"),
    )
    .values(model_id=bindparam("to_model"))
)


def _jsonable(args: Mapping[str, Any]) -> str:
    # NOTE: Python's json keeps integers exact at any size, and the column is text, so uint256
    # values round-trip unchanged.
    return json.dumps(dict(args), sort_keys=True)


class Indexer:
    """Follows the contracts' events into a :class:`CatalogStore`.

    Args:
        store: The catalog database.
        reader: The chain reader (never sends a transaction).
        contracts: What to follow and from which block.
        fetch_metadata: Verified fetch of a metadata document by CID; see :func:`ipfs_fetcher`.
        reorg_depth: How many recent block hashes are kept and checked, in blocks.
        batch_blocks: Blocks per ``eth_getLogs`` call and per database transaction.
        decoder: Event decoder; built from the interface ABIs when omitted.
        clock: Wall clock for metadata retry times, in seconds (tests pass their own).
    """

    def __init__(
        self,
        store: CatalogStore,
        reader: ChainReader,
        contracts: CatalogContracts,
        fetch_metadata: MetadataFetcher,
        *,
        reorg_depth: int = 64,
        batch_blocks: int = 2_000,
        decoder: EventDecoder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if reorg_depth < 1 or batch_blocks < 1:
            raise ValueError("reorg_depth and batch_blocks must be at least 1")
        self.store = store
        self.reader = reader
        self.contracts = contracts
        self.fetch_metadata = fetch_metadata
        self.reorg_depth = reorg_depth
        self.batch_blocks = batch_blocks
        self.decoder = decoder or EventDecoder(contracts.addresses)
        self.clock = clock
        self._tx_hash = ""  # transaction of the event being folded

    # ------------------------------------------------------------------------------------ sync
    def sync(
        self,
        to_block: int | None = None,
        *,
        progress: Progress | None = None,
        fetch_metadata: bool = True,
        retry_now: bool = False,
    ) -> SyncReport:
        """Read new events up to ``to_block`` (the chain head by default), then fetch metadata.

        Args:
            to_block: Last block to read; capped at the chain head.
            progress: Called after each batch with (blocks done, blocks to do).
            fetch_metadata: Also fetch metadata documents that are due.
            retry_now: Retry unavailable metadata now, ignoring the back-off.

        Raises:
            ChainUnavailableError: The chain could not be read; what was committed stays, and the
                next sync resumes from the checkpoint.
            CatalogError: The database belongs to another chain or deployment.
        """
        started = time.monotonic()
        self._check_identity()
        reorged_from = self._check_reorg()
        head = self.reader.head()
        target = head if to_block is None else min(to_block, head)
        last = self.store.last_block()
        first = self.contracts.start_block if last is None else last + 1
        total = max(0, target - first + 1)
        added = 0
        start = first
        while start <= target:
            end = min(start + self.batch_blocks - 1, target)
            added += self._sync_batch(start, end, target)
            start = end + 1
            if progress is not None:
                progress(end - first + 1, total)
        self._fill_tokens()
        fetched = failed = 0
        if fetch_metadata:
            fetched, failed = self.fetch_pending_metadata(retry_now=retry_now)
        report = SyncReport(
            from_block=first,
            to_block=self.store.last_block() or target,
            events=added,
            reorged_from=reorged_from,
            metadata_fetched=fetched,
            metadata_failed=failed,
            seconds=time.monotonic() - started,
        )
        log.info(
            "catalog synced blocks %d..%d: %d events, %d metadata fetched, %d failed",
            report.from_block,
            report.to_block,
            report.events,
            fetched,
            failed,
        )
        return report

    def _check_identity(self) -> None:
        chain_id = self.reader.chain_id()
        if chain_id != self.contracts.chain_id:
            raise CatalogError(
                f"the deployment is on chain {self.contracts.chain_id} but the RPC endpoint serves"
                f" chain {chain_id}: check --network / --rpc-url"
            )
        fingerprint = self.contracts.fingerprint()
        with self.store.begin() as conn:
            stored = self.store.get_meta(conn, "contracts")
            if stored is None:
                self.store.set_meta(conn, "contracts", fingerprint)
            elif stored != fingerprint:
                raise CatalogError(
                    f"the catalog {self.store.url} was built for another deployment ({stored});"
                    " use another --db-url, or `daimm catalog sync --rebuild` to start it afresh"
                )

    def rebuild(self) -> None:
        """Forget everything read from the chain (metadata and token caches are kept)."""
        with self.store.begin() as conn:
            self.store.clear_projections(conn)
            conn.execute(delete(t.events))
            conn.execute(delete(t.blocks))
            conn.execute(delete(t.meta))
        log.warning(
            "catalog %s cleared; the next sync reads from block %d",
            self.store.url,
            self.contracts.start_block,
        )

    def _sync_batch(self, start: int, end: int, target: int) -> int:
        for _attempt in range(3):
            raw = self.reader.logs(self.decoder.addresses.values(), start, end)
            decoded = [d for d in (self.decoder.decode(r) for r in raw) if d is not None]
            wanted = {d.block_number for d in decoded}
            wanted |= set(range(max(start, target - self.reorg_depth + 1), end + 1))
            refs = {}
            for number in sorted(wanted):
                ref = self.reader.block(number)
                if ref is None:
                    break
                refs[number] = ref
            consistent = len(refs) == len(wanted) and all(
                refs[d.block_number].hash == d.block_hash for d in decoded
            )
            if consistent:
                break
            log.warning("blocks %d..%d changed while being read; reading them again", start, end)
        else:
            raise CatalogError(
                f"blocks {start}..{end} keep changing while being read (a reorganisation in"
                " progress?): run `daimm catalog sync` again in a moment"
            )
        with self.store.begin() as conn:
            added = self.apply(conn, decoded, {n: r.timestamp for n, r in refs.items()})
            for number, ref in refs.items():
                if number >= target - self.reorg_depth + 1:
                    upsert(
                        conn,
                        t.blocks,
                        {"number": number, "hash": ref.hash, "timestamp": ref.timestamp},
                    )
            conn.execute(delete(t.blocks).where(t.blocks.c.number <= end - self.reorg_depth))
            self.store.set_meta(conn, "last_block", str(end))
        return added

    def apply(
        self, conn: Connection, logs: Sequence[DecodedLog], timestamps: Mapping[int, int]
    ) -> int:
        """Record decoded logs in the event log and fold them, in chain order, inside ``conn``'s
        transaction; logs already recorded are skipped. Every sync batch goes through here.

        Args:
            conn: A connection from :meth:`CatalogStore.begin`.
            logs: Decoded logs in (block, log index) order, of blocks whose hashes were checked.
            timestamps: Block number -> block timestamp (seconds) for every block in ``logs``.

        Returns:
            How many logs were new.
        """
        added = 0
        for entry in logs:
            ts = timestamps[entry.block_number]
            row = {
                "block_number": entry.block_number,
                "log_index": entry.log_index,
                "block_hash": entry.block_hash,
                "tx_hash": entry.tx_hash,
                "contract": entry.contract,
                "event": entry.event,
                "args": _jsonable(entry.args),
                "timestamp": ts,
            }
            if insert_ignore(conn, t.events, row):
                added += 1
                self._fold(conn, entry.contract, entry.event, dict(entry.args), entry, ts)
        return added

    # ------------------------------------------------------------------------------ reorgs
    def _check_reorg(self) -> int | None:
        """Roll back past a reorganisation; returns the first dropped block, or None."""
        with self.store.connect() as conn:
            stored = conn.execute(
                select(t.blocks.c.number, t.blocks.c.hash).order_by(t.blocks.c.number.desc())
            ).all()
        if not stored:
            return None
        newest = self.reader.block(stored[0].number)
        if newest is not None and newest.hash == stored[0].hash:
            return None
        for number, known in stored[1:]:
            ref = self.reader.block(number)
            if ref is not None and ref.hash == known:
                log.warning(
                    "chain reorganised after block %d: re-reading from %d", number, number + 1
                )
                self._rollback_to(number)
                return number + 1
        log.warning(
            "chain reorganised deeper than the %d-block window (or was reset): rebuilding",
            self.reorg_depth,
        )
        self.rebuild()
        self._check_identity()
        return self.contracts.start_block

    def _rollback_to(self, keep_through: int) -> None:
        """Drop events after ``keep_through`` and refold the projections, in one transaction."""
        with self.store.begin() as conn:
            conn.execute(delete(t.events).where(t.events.c.block_number > keep_through))
            conn.execute(delete(t.blocks).where(t.blocks.c.number > keep_through))
            self.store.clear_projections(conn)
            rows = conn.execute(
                select(t.events).order_by(t.events.c.block_number, t.events.c.log_index)
            ).all()
            for row in rows:
                self._fold(
                    conn, row.contract, row.event, _args_from_json(row.args), row, row.timestamp
                )
            model_ids = conn.execute(select(t.models.c.model_id)).scalars().all()
            for model_id in model_ids:
                self.store.refresh_fts(conn, model_id)
            self.store.set_meta(conn, "last_block", str(keep_through))

    # ------------------------------------------------------------------------------ folding
    def _fold(
        self,
        conn: Connection,
        contract: str,
        name: str,
        args: dict[str, Any],
        where: Any,
        ts: int,
    ) -> None:
        """Apply one event to the projections and record which model it concerns."""
        handler = getattr(self, f"_on_{contract}_{name}", None)
        self._tx_hash = str(where.tx_hash)
        model_id = handler(conn, args, ts, where.block_number) if handler is not None else None
        if model_id is None and "modelId" in args:
            model_id = int(args["modelId"])
        if model_id is not None:
            conn.execute(
                _SET_EVENT_MODEL,
                {"at_block": where.block_number, "at_index": where.log_index, "to_model": model_id},
            )

    def _model_of_licence(self, conn: Connection, licence_id: int) -> int | None:
        return conn.execute(
            select(t.licences.c.model_id).where(t.licences.c.licence_id == licence_id)
        ).scalar_one_or_none()

    def _want_metadata(self, conn: Connection, cid: str) -> None:
        insert_ignore(
            conn,
            t.metadata_docs,
            {"cid": cid, "status": "pending", "attempts": 0, "next_attempt_at": 0},
        )

    # ModelRegistry
    def _on_ModelRegistry_ModelPublished(self, conn: Connection, a: dict, ts: int, block: int):
        model_id = int(a["modelId"])
        upsert(
            conn,
            t.models,
            {
                "model_id": model_id,
                "creator": a["creator"],
                "owner": a["creator"],
                "weights_cid": a["weightsCid"],
                "metadata_cid": a["metadataCid"],
                "versions": 1,
                "royalty_bps": 0,
                "published_block": block,
                "published_at": ts,
                "updated_at": ts,
                "rating_count": 0,
                "rating_sum": 0,
            },
        )
        self._want_metadata(conn, a["metadataCid"])
        self.store.refresh_fts(conn, model_id)
        return model_id

    def _on_ModelRegistry_VersionPublished(self, conn: Connection, a: dict, ts: int, block: int):
        model_id = int(a["modelId"])
        conn.execute(
            update(t.models)
            .where(t.models.c.model_id == model_id)
            .values(
                weights_cid=a["weightsCid"],
                metadata_cid=a["metadataCid"],
                versions=int(a["version"]) + 1,
                updated_at=ts,
            )
        )
        self._want_metadata(conn, a["metadataCid"])
        self.store.refresh_fts(conn, model_id)
        return model_id

    def _on_ModelRegistry_RoyaltySet(self, conn: Connection, a: dict, ts: int, block: int):
        model_id = int(a["modelId"])
        conn.execute(
            update(t.models)
            .where(t.models.c.model_id == model_id)
            .values(royalty_bps=int(a["bps"]))
        )
        return model_id

    def _on_ModelRegistry_Transfer(self, conn: Connection, a: dict, ts: int, block: int):
        model_id = int(a["tokenId"])
        if a["from"] != _ZERO:
            conn.execute(
                update(t.models).where(t.models.c.model_id == model_id).values(owner=a["to"])
            )
        return model_id

    # LicenseNFT
    def _on_LicenseNFT_LicenceMinted(self, conn: Connection, a: dict, ts: int, block: int):
        kind = _KINDS[int(a["kind"])]
        upsert(
            conn,
            t.licences,
            {
                "licence_id": int(a["licenceId"]),
                "model_id": int(a["modelId"]),
                "holder": a["holder"],
                "kind": kind,
                "expires": int(a["expires"]) if kind == "rental" else None,
                "terminated": False,
            },
        )
        return int(a["modelId"])

    def _on_LicenseNFT_LicenceExtended(self, conn: Connection, a: dict, ts: int, block: int):
        conn.execute(
            update(t.licences)
            .where(t.licences.c.licence_id == int(a["licenceId"]))
            .values(expires=int(a["expires"]))
        )
        return int(a["modelId"])

    def _on_LicenseNFT_LicenceTerminated(self, conn: Connection, a: dict, ts: int, block: int):
        conn.execute(
            update(t.licences)
            .where(t.licences.c.licence_id == int(a["licenceId"]))
            .values(terminated=True)
        )
        return int(a["modelId"])

    def _on_LicenseNFT_Transfer(self, conn: Connection, a: dict, ts: int, block: int):
        licence_id = int(a["tokenId"])
        if a["from"] != _ZERO:
            values: dict[str, Any] = {"holder": a["to"]}
            if a["to"] == _ZERO:
                values["terminated"] = True
            conn.execute(
                update(t.licences).where(t.licences.c.licence_id == licence_id).values(**values)
            )
        return self._model_of_licence(conn, licence_id)

    # RentalEscrow
    def _on_RentalEscrow_OfferSet(self, conn: Connection, a: dict, ts: int, block: int):
        offer = a["offer"]
        upsert(
            conn,
            t.offers,
            {
                "model_id": int(a["modelId"]),
                "currency": offer["currency"],
                "price_per_period": int(offer["pricePerPeriod"]),
                "period_seconds": int(offer["periodSeconds"]),
                "min_periods": int(offer["minPeriods"]),
                "max_periods": int(offer["maxPeriods"]),
                "active": bool(offer["active"]),
                "perpetual_price": int(offer["perpetualPrice"]),
                "price_per_call": int(offer["pricePerCall"]),
                "updated_at": ts,
            },
        )
        return int(a["modelId"])

    def _on_RentalEscrow_CurrencyAllowed(self, conn: Connection, a: dict, ts: int, block: int):
        upsert(conn, t.currencies, {"address": a["currency"], "allowed": bool(a["allowed"])})

    def _on_RentalEscrow_FeeSet(self, conn: Connection, a: dict, ts: int, block: int):
        self.store.set_meta(conn, "fee_bps", str(int(a["feeBps"])))

    def _on_RentalEscrow_TreasurySet(self, conn: Connection, a: dict, ts: int, block: int):
        self.store.set_meta(conn, "treasury", a["treasury"])

    def _on_RentalEscrow_PaymentHeld(self, conn: Connection, a: dict, ts: int, block: int):
        return int(a["modelId"])

    def _on_RentalEscrow_Listed(self, conn: Connection, a: dict, ts: int, block: int):
        licence_id = int(a["licenceId"])
        upsert(
            conn,
            t.listings,
            {
                "licence_id": licence_id,
                "seller": a["seller"],
                "currency": a["currency"],
                "price": int(a["price"]),
            },
        )
        return self._model_of_licence(conn, licence_id)

    def _on_RentalEscrow_Delisted(self, conn: Connection, a: dict, ts: int, block: int):
        licence_id = int(a["licenceId"])
        conn.execute(delete(t.listings).where(t.listings.c.licence_id == licence_id))
        return self._model_of_licence(conn, licence_id)

    def _on_RentalEscrow_Resold(self, conn: Connection, a: dict, ts: int, block: int):
        conn.execute(delete(t.listings).where(t.listings.c.licence_id == int(a["licenceId"])))
        return int(a["modelId"])

    def _on_RentalEscrow_DisputeOpened(self, conn: Connection, a: dict, ts: int, block: int):
        licence_id = int(a["licenceId"])
        model_id = self._model_of_licence(conn, licence_id)
        upsert(
            conn,
            t.disputes,
            {
                "dispute_id": int(a["disputeId"]),
                "licence_id": licence_id,
                "model_id": model_id,
                "payer": a["payer"],
                "amount": int(a["amount"]),
                "open": True,
                "resolution": None,
                "refunded": None,
                "released": None,
            },
        )
        # PaymentDisputed (same transaction, just before) names no model or licence: attach it.
        conn.execute(
            update(t.events)
            .where(
                t.events.c.tx_hash == self._tx_hash,
                t.events.c.event == "PaymentDisputed",
                t.events.c.model_id.is_(None),
            )
            .values(model_id=model_id)
        )
        return model_id

    def _on_RentalEscrow_DisputeResolved(self, conn: Connection, a: dict, ts: int, block: int):
        dispute_id = int(a["disputeId"])
        conn.execute(
            update(t.disputes)
            .where(t.disputes.c.dispute_id == dispute_id)
            .values(
                open=False,
                resolution=_RESOLUTIONS[int(a["resolution"])],
                refunded=int(a["refunded"]),
                released=int(a["released"]),
            )
        )
        return conn.execute(
            select(t.disputes.c.model_id).where(t.disputes.c.dispute_id == dispute_id)
        ).scalar_one_or_none()

    # RelayerRegistry
    def _on_RelayerRegistry_RelayerRegistered(self, conn: Connection, a: dict, ts: int, b: int):
        upsert(
            conn,
            t.relayers,
            {
                "address": a["relayer"],
                "operator": a["operator"],
                "x25519_key": a["x25519PublicKey"],
                "endpoint": a["endpoint"],
                "active": True,
            },
        )

    def _on_RelayerRegistry_RelayerUpdated(self, conn: Connection, a: dict, ts: int, b: int):
        conn.execute(
            update(t.relayers)
            .where(t.relayers.c.address == a["relayer"])
            .values(x25519_key=a["x25519PublicKey"], endpoint=a["endpoint"])
        )

    def _on_RelayerRegistry_RelayerRetiredEvent(self, conn: Connection, a: dict, ts: int, b: int):
        conn.execute(
            update(t.relayers).where(t.relayers.c.address == a["relayer"]).values(active=False)
        )

    def _on_RelayerRegistry_RelayerAuthorised(self, conn: Connection, a: dict, ts: int, b: int):
        upsert(
            conn,
            t.model_relayers,
            {
                "model_id": int(a["modelId"]),
                "relayer": a["relayer"],
                "envelope_cid": a["envelopeCid"],
                "authorised": True,
            },
        )
        return int(a["modelId"])

    def _on_RelayerRegistry_EnvelopeUpdated(self, conn: Connection, a: dict, ts: int, b: int):
        conn.execute(
            update(t.model_relayers)
            .where(
                t.model_relayers.c.model_id == int(a["modelId"]),
                t.model_relayers.c.relayer == a["relayer"],
            )
            .values(envelope_cid=a["envelopeCid"])
        )
        return int(a["modelId"])

    def _on_RelayerRegistry_RelayerDeauthorised(self, conn: Connection, a: dict, ts: int, b: int):
        conn.execute(
            update(t.model_relayers)
            .where(
                t.model_relayers.c.model_id == int(a["modelId"]),
                t.model_relayers.c.relayer == a["relayer"],
            )
            .values(authorised=False)
        )
        return int(a["modelId"])

    # CreditEscrow
    def _channel_key(self, a: dict) -> Any:
        return and_(
            t.channels.c.payer == a["payer"],
            t.channels.c.model_id == int(a["modelId"]),
            t.channels.c.relayer == a["relayer"],
        )

    def _on_CreditEscrow_CreditDeposited(self, conn: Connection, a: dict, ts: int, b: int):
        row = conn.execute(select(t.channels).where(self._channel_key(a))).first()
        upsert(
            conn,
            t.channels,
            {
                "payer": a["payer"],
                "model_id": int(a["modelId"]),
                "relayer": a["relayer"],
                "currency": a["currency"],
                "deposited": (row.deposited if row else 0) + int(a["amount"]),
                "redeemed": row.redeemed if row else 0,
                "reclaimed": row.reclaimed if row else 0,
            },
        )
        return int(a["modelId"])

    def _on_CreditEscrow_VoucherRedeemed(self, conn: Connection, a: dict, ts: int, b: int):
        conn.execute(
            update(t.channels)
            .where(self._channel_key(a))
            .values(redeemed=int(a["cumulativeAmount"]))
        )
        return int(a["modelId"])

    def _on_CreditEscrow_CreditReclaimed(self, conn: Connection, a: dict, ts: int, b: int):
        row = conn.execute(select(t.channels).where(self._channel_key(a))).first()
        if row is not None:
            conn.execute(
                update(t.channels)
                .where(self._channel_key(a))
                .values(reclaimed=row.reclaimed + int(a["amount"]))
            )
        return int(a["modelId"])

    # ReviewRegistry
    def _on_ReviewRegistry_Reviewed(self, conn: Connection, a: dict, ts: int, block: int):
        model_id = int(a["modelId"])
        rating = int(a["rating"])
        if insert_ignore(
            conn,
            t.reviews,
            {
                "licence_id": int(a["licenceId"]),
                "model_id": model_id,
                "reviewer": a["reviewer"],
                "rating": rating,
                "comment_cid": a["commentCid"],
                "block_number": block,
                "timestamp": ts,
            },
        ):
            conn.execute(
                update(t.models)
                .where(t.models.c.model_id == model_id)
                .values(
                    rating_count=t.models.c.rating_count + 1,
                    rating_sum=t.models.c.rating_sum + rating,
                )
            )
        return model_id

    # ------------------------------------------------------------------------- off-chain data
    def _fill_tokens(self) -> None:
        """Cache symbol and decimals of every currency seen in offers, listings and payments."""
        with self.store.connect() as conn:
            seen = set(conn.execute(select(t.currencies.c.address)).scalars())
            seen |= set(conn.execute(select(t.offers.c.currency)).scalars())
            seen |= set(conn.execute(select(t.channels.c.currency)).scalars())
            known = set(conn.execute(select(t.tokens.c.address)).scalars())
        for address in sorted(seen - known):
            found = self.reader.erc20_metadata(address)
            if found is not None:
                with self.store.begin() as conn:
                    upsert(
                        conn,
                        t.tokens,
                        {"address": address, "symbol": found[0], "decimals": found[1]},
                    )

    def fetch_pending_metadata(self, *, retry_now: bool = False) -> tuple[int, int]:
        """Fetch every metadata CID that is pending or due for a retry.

        Args:
            retry_now: Also retry unavailable CIDs whose back-off has not yet passed.

        Returns:
            (documents fetched and parsed, CIDs that failed this time).
        """
        now = int(self.clock())
        due = or_(
            t.metadata_docs.c.status == "pending",
            and_(
                t.metadata_docs.c.status == "unavailable",
                t.metadata_docs.c.next_attempt_at <= (2**62 if retry_now else now),
            ),
        )
        with self.store.connect() as conn:
            rows = conn.execute(
                select(t.metadata_docs.c.cid, t.metadata_docs.c.attempts).where(due)
            ).all()
        fetched = failed = 0
        for cid, attempts in rows:
            values: dict[str, Any]
            try:
                raw = self.fetch_metadata(cid)
            except (DaimmError, OSError) as exc:
                delay = min(_RETRY_FIRST_S * 2**attempts, _RETRY_MAX_S)
                values = {
                    "status": "unavailable",
                    "error": str(exc)[:500],
                    "attempts": attempts + 1,
                    "next_attempt_at": now + delay,
                }
                log.warning("metadata %s unavailable (%s); retrying in %d s", cid, exc, delay)
                failed += 1
            else:
                try:
                    fields = parse_metadata(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    values = {
                        "status": "invalid",
                        "error": str(exc)[:500],
                        "attempts": attempts + 1,
                        "document": None,
                    }
                    log.warning("metadata %s is not a valid document: %s", cid, exc)
                    failed += 1
                else:
                    values = {
                        "status": "ok",
                        "error": None,
                        "attempts": attempts + 1,
                        "document": raw.decode("utf-8"),
                        "fetched_at": now,
                        **fields,
                    }
                    fetched += 1
            with self.store.begin() as conn:
                conn.execute(
                    update(t.metadata_docs).where(t.metadata_docs.c.cid == cid).values(**values)
                )
                users = (
                    conn.execute(select(t.models.c.model_id).where(t.models.c.metadata_cid == cid))
                    .scalars()
                    .all()
                )
                for model_id in users:
                    self.store.refresh_fts(conn, model_id)
        return fetched, failed

    def metadata_status(self) -> dict[str, int]:
        """Count of metadata CIDs by status (``pending``, ``ok``, ``unavailable``, ``invalid``)."""
        with self.store.connect() as conn:
            rows = conn.execute(
                select(t.metadata_docs.c.status, func.count()).group_by(t.metadata_docs.c.status)
            ).all()
        return {status: int(count) for status, count in rows}


def _args_from_json(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded
