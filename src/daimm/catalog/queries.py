"""The catalog's reads for pages, the CLI and the stack: every query against its tables lives here.

Search and reputation are in :mod:`daimm.catalog.search`, seller analytics in
:mod:`daimm.catalog.stats`; this module holds the rest, each a function over a
:class:`~daimm.catalog.store.CatalogStore` returning frozen dataclasses (or plain values), so no
module outside ``daimm.catalog`` writes SQL against the catalog's tables:

- a model's page in one read of the model (:func:`model_page`): the model, its metadata document,
  versions, reviews, relayer endpoints and sales;
- what an address holds (:func:`licences_of`, :func:`channels_of`) and what a creator is owed
  (:func:`held_payments`);
- lookups: the currencies seen (:func:`token_currencies`), a relayer (:func:`relayer_of`), whether
  a model is indexed (:func:`has_model`), and the catalog's counts (:func:`catalog_status`).

Addresses are checksummed strings as the indexer stores them; amounts are integers in the
currency's smallest unit; times are Unix seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from daimm.catalog import store as t
from daimm.catalog.search import ModelHit, get_model
from daimm.catalog.stats import ModelStats, model_stats
from daimm.catalog.store import CatalogStore

__all__ = [
    "CatalogStatus",
    "Channel",
    "HeldBucket",
    "HeldLicence",
    "ModelPage",
    "RelayerInfo",
    "Review",
    "Version",
    "catalog_status",
    "channels_of",
    "has_model",
    "held_payments",
    "licences_of",
    "model_page",
    "relayer_of",
    "token_currencies",
]


@dataclass(frozen=True)
class Version:
    """One published version of a model (0 is the first publication)."""

    version: int
    weights_cid: str
    metadata_cid: str
    block: int
    timestamp: int
    tx_hash: str


@dataclass(frozen=True)
class Review:
    """One review: ``rating`` in stars (1 to 5), ``comment_cid`` "" when there is no comment."""

    licence_id: int
    reviewer: str
    rating: int
    comment_cid: str
    timestamp: int


@dataclass(frozen=True)
class ModelPage:
    """Everything a model's page shows, read with one lookup of the model.

    Attributes:
        model: The model with its offer, relayers and creator reputation.
        document: Its metadata document, parsed (None when not fetched or not JSON).
        versions: Its versions, oldest first.
        reviews: Its reviews, newest first.
        endpoints: Relayer address -> registered endpoint, for the model's relayers.
        stats: Its sales, revenue and ratings.
    """

    model: ModelHit
    document: dict[str, Any] | None
    versions: tuple[Version, ...]
    reviews: tuple[Review, ...]
    endpoints: dict[str, str]
    stats: ModelStats


@dataclass(frozen=True)
class RelayerInfo:
    """A registered relayer: its signing address, endpoint and whether it is active."""

    address: str
    endpoint: str
    active: bool


@dataclass(frozen=True)
class HeldBucket:
    """Payments held in escrow for a payee set, released together (``settle`` takes the key)."""

    payee_set: int
    currency: str
    release_at: int
    amount: int
    fee: int


@dataclass(frozen=True)
class HeldLicence:
    """A licence an address holds (not terminated), with the model's name.

    Attributes:
        kind: ``rental`` or ``perpetual``.
        expires: When a rental ends (None for a perpetual licence).
    """

    licence_id: int
    model_id: int
    model_name: str | None
    kind: str
    expires: int | None


@dataclass(frozen=True)
class Channel:
    """A pay-per-use credit channel (payer, model, relayer) and its balance.

    Attributes:
        balance: ``deposited - redeemed - reclaimed``, what the relayer can still redeem.
    """

    payer: str
    model_id: int
    model_name: str | None
    relayer: str
    currency: str
    symbol: str | None
    decimals: int
    deposited: int
    redeemed: int
    reclaimed: int

    @property
    def balance(self) -> int:
        return max(0, self.deposited - self.redeemed - self.reclaimed)


@dataclass(frozen=True)
class CatalogStatus:
    """Where the catalog stands: row counts, metadata documents by status, and the problems."""

    last_block: int | None
    models: int
    events: int
    licences: int
    reviews: int
    metadata: dict[str, int]
    metadata_problems: tuple[tuple[str, str | None], ...]


def model_page(store: CatalogStore, model_id: int) -> ModelPage:
    """The model ``model_id`` and everything its page shows; the model is looked up once.

    Raises:
        CatalogError: No such model in the catalog.
    """
    hit = get_model(store, model_id)
    with store.connect() as conn:
        raw = conn.execute(
            select(t.metadata_docs.c.document).where(t.metadata_docs.c.cid == hit.metadata_cid)
        ).scalar_one_or_none()
        versions = tuple(
            Version(
                version=0 if name == "ModelPublished" else int(a["version"]),
                weights_cid=a["weightsCid"],
                metadata_cid=a["metadataCid"],
                block=int(block),
                timestamp=int(ts),
                tx_hash=tx,
            )
            for name, a, ts, block, tx in (
                (r.event, json.loads(r.args), r.timestamp, r.block_number, r.tx_hash)
                for r in conn.execute(
                    select(t.events.c.event, t.events.c.args, t.events.c.timestamp,
                           t.events.c.block_number, t.events.c.tx_hash)
                    .where(t.events.c.model_id == model_id,
                           t.events.c.event.in_(("ModelPublished", "VersionPublished")))
                    .order_by(t.events.c.block_number, t.events.c.log_index)
                )
            )
        )  # fmt: skip
        reviews = tuple(
            Review(int(r.licence_id), r.reviewer, int(r.rating), r.comment_cid, int(r.timestamp))
            for r in conn.execute(
                select(t.reviews)
                .where(t.reviews.c.model_id == model_id)
                .order_by(t.reviews.c.timestamp.desc(), t.reviews.c.licence_id.desc())
            )
        )
        endpoints = {
            str(a): str(e)
            for a, e in conn.execute(
                select(t.relayers.c.address, t.relayers.c.endpoint).where(
                    t.relayers.c.address.in_(hit.relayers)
                )
            )
        }
    document = None
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        document = parsed if isinstance(parsed, dict) else None
    stats = model_stats(store, model_id, model=hit)
    return ModelPage(hit, document, versions, reviews, endpoints, stats)


def token_currencies(store: CatalogStore) -> dict[str, tuple[str, int]]:
    """Upper-case symbol -> ``(address, decimals)`` of every ERC-20 the catalog has seen."""
    with store.connect() as conn:
        rows = conn.execute(select(t.tokens.c.address, t.tokens.c.symbol, t.tokens.c.decimals))
        return {str(s).upper(): (str(a), int(d)) for a, s, d in rows}


def relayer_of(store: CatalogStore, address: str) -> RelayerInfo | None:
    """The registered relayer ``address`` (checksummed), or None when the catalog has none."""
    with store.connect() as conn:
        row = conn.execute(
            select(t.relayers.c.endpoint, t.relayers.c.active).where(
                t.relayers.c.address == address
            )
        ).first()
    return None if row is None else RelayerInfo(address, str(row.endpoint), bool(row.active))


def has_model(store: CatalogStore, model_id: int) -> bool:
    """Whether the catalog has indexed model ``model_id``."""
    with store.connect() as conn:
        row = conn.execute(
            select(t.models.c.model_id).where(t.models.c.model_id == model_id)
        ).first()
    return row is not None


def held_payments(store: CatalogStore, model_ids: Iterable[int]) -> list[HeldBucket]:
    """Payments held in escrow for ``model_ids``, summed by (payee set, currency, release time)."""
    wanted = sorted(set(model_ids))
    if not wanted:
        return []
    buckets: dict[tuple[int, str, int], list[int]] = {}
    with store.connect() as conn:
        for (args,) in conn.execute(
            select(t.events.c.args).where(
                t.events.c.model_id.in_(wanted), t.events.c.event == "PaymentHeld"
            )
        ):
            a = json.loads(args)
            key = (int(a["payeeSet"]), str(a["currency"]), int(a["releaseAt"]))
            total = buckets.setdefault(key, [0, 0])
            total[0] += int(a["amount"])
            total[1] += int(a["fee"])
    return [HeldBucket(k[0], k[1], k[2], v[0], v[1]) for k, v in sorted(buckets.items())]


def licences_of(store: CatalogStore, holder: str) -> list[HeldLicence]:
    """The licences ``holder`` (checksummed) holds now, live or expired, newest first; terminated
    licences (burnt, or ended by a refund) are left out."""
    with store.connect() as conn:
        rows = conn.execute(
            select(t.licences, t.metadata_docs.c.name)
            .select_from(
                t.licences.join(t.models, t.licences.c.model_id == t.models.c.model_id).outerjoin(
                    t.metadata_docs, t.models.c.metadata_cid == t.metadata_docs.c.cid
                )
            )
            .where(t.licences.c.holder == holder, t.licences.c.terminated.is_(False))
            .order_by(t.licences.c.licence_id.desc())
        ).all()
    return [
        HeldLicence(
            licence_id=int(r.licence_id),
            model_id=int(r.model_id),
            model_name=r.name,
            kind=str(r.kind),
            expires=None if r.expires is None else int(r.expires),
        )
        for r in rows
    ]


def channels_of(store: CatalogStore, payer: str) -> list[Channel]:
    """The credit channels ``payer`` (checksummed) deposited into, by model then relayer."""
    with store.connect() as conn:
        rows = conn.execute(
            select(t.channels, t.metadata_docs.c.name, t.tokens.c.symbol, t.tokens.c.decimals)
            .select_from(
                t.channels.outerjoin(t.models, t.channels.c.model_id == t.models.c.model_id)
                .outerjoin(t.metadata_docs, t.models.c.metadata_cid == t.metadata_docs.c.cid)
                .outerjoin(t.tokens, t.channels.c.currency == t.tokens.c.address)
            )
            .where(t.channels.c.payer == payer)
            .order_by(t.channels.c.model_id, t.channels.c.relayer)
        ).all()
    return [
        Channel(
            payer=r.payer,
            model_id=int(r.model_id),
            model_name=r.name,
            relayer=r.relayer,
            currency=r.currency,
            symbol=r.symbol or ("ETH" if int(r.currency, 16) == 0 else None),
            decimals=int(r.decimals) if r.decimals is not None else 18,
            deposited=int(r.deposited),
            redeemed=int(r.redeemed),
            reclaimed=int(r.reclaimed),
        )
        for r in rows
    ]


def catalog_status(store: CatalogStore) -> CatalogStatus:
    """Counts of models, events, licences and reviews; metadata documents by status, and those
    that could not be fetched or read with their error."""

    def count(conn: Any, table: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    with store.connect() as conn:
        counts = {name: count(conn, table) for name, table in (
            ("models", t.models), ("events", t.events), ("licences", t.licences),
            ("reviews", t.reviews),
        )}  # fmt: skip
        metadata = {
            str(status): int(n)
            for status, n in conn.execute(
                select(t.metadata_docs.c.status, func.count()).group_by(t.metadata_docs.c.status)
            )
        }
        problems = tuple(
            (str(cid), error)
            for cid, error in conn.execute(
                select(t.metadata_docs.c.cid, t.metadata_docs.c.error).where(
                    t.metadata_docs.c.status.in_(("unavailable", "invalid"))
                )
            )
        )
    return CatalogStatus(last_block=store.last_block(), metadata=metadata,
                         metadata_problems=problems, **counts)  # fmt: skip
