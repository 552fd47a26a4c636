"""Search the catalog: full text over name, description, task and tags, with filters and sorting.

Text search matches any of the words, each as a whole word or as the start of one, after stemming
(exact matches rank above prefix matches), over name, description, task and tags. On SQLite it uses
FTS5 (porter stemming, ranked by bm25); on PostgreSQL a generated ``tsvector`` column with a GIN
index (Snowball English stemming, ranked by ``ts_rank``); ``docs/CATALOG.md`` says where the two
differ. Filters are exact: task, framework, currency, a maximum price (of a rental period, a
perpetual licence or a call), a minimum average rating. Only models with an active offer are listed
unless asked otherwise. Results come in pages (``limit``, ``offset``).

Creator reputation (``docs/CATALOG.md``)::

    bayes      = (PRIOR_WEIGHT * PRIOR_MEAN + rating_sum) / (PRIOR_WEIGHT + rating_count)
    reputation = bayes * (1 - disputes_lost / (paid_licences + 1))

over all models the creator published: ``rating_sum``/``rating_count`` are their reviews;
``paid_licences`` the transactions that paid into escrow for them; ``disputes_lost`` the sum, over
resolved disputes, of the share refunded to the payer (1 for a refund, ``refunded / amount`` for a
split, 0 for a release). The prior (3 stars, weight 3) keeps one 5-star review from outranking a
long record; a lost dispute costs most when a creator has sold little. The score is in [0, 5].
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import TSVECTOR

from daimm.catalog import store as t
from daimm.catalog.store import CatalogStore
from daimm.errors import CatalogError, ValidationError

__all__ = [
    "PRIOR_MEAN",
    "PRIOR_WEIGHT",
    "ModelHit",
    "PriceKind",
    "Reputation",
    "SearchQuery",
    "SortKey",
    "creator_reputation",
    "get_model",
    "reputation_score",
    "search",
]

PRIOR_MEAN = 3.0  # stars assumed before any review
PRIOR_WEIGHT = 3  # how many reviews the prior is worth


class PriceKind(StrEnum):
    """Which price a filter or sort uses."""

    RENTAL = "rental"  # price of one rental period
    PERPETUAL = "perpetual"  # price of a perpetual licence
    CALL = "call"  # price of one pay-per-use call


class SortKey(StrEnum):
    """Result order."""

    RELEVANCE = "relevance"  # best text match first (newest first without text)
    PRICE = "price"  # cheapest first (models without that price last)
    RATING = "rating"  # best average first (unrated last)
    NEWEST = "newest"
    NAME = "name"


@dataclass(frozen=True)
class SearchQuery:
    """What to look for.

    Attributes:
        text: Words to match in name, description, task and tags (any word; best matches first).
        task: Exact task (``tabular-classification``), case-insensitive.
        framework: Exact framework (``onnx``), case-insensitive.
        currency: Offer currency address (``0x0...0`` for ETH); required with ``max_price``.
        max_price: Highest price, in the currency's smallest unit, of ``price_kind``.
        price_kind: Which price ``max_price`` and ``sort=price`` use.
        min_rating: Lowest average rating (1 to 5); unrated models are left out when set.
        creator: Only models published by this address.
        include_inactive: Also list models whose offer is missing or inactive.
        sort: Result order.
        limit: Most results, at least 1.
        offset: Results to skip first (``offset=20, limit=20`` is the second page).
    """

    text: str | None = None
    task: str | None = None
    framework: str | None = None
    currency: str | None = None
    max_price: int | None = None
    price_kind: PriceKind = PriceKind.RENTAL
    min_rating: float | None = None
    creator: str | None = None
    include_inactive: bool = False
    sort: SortKey = SortKey.RELEVANCE
    limit: int = 20
    offset: int = 0

    def __post_init__(self) -> None:
        if self.max_price is not None and self.currency is None:
            raise ValidationError("a maximum price needs its currency, e.g. '5 AIMT'")
        if self.max_price is not None and self.max_price < 0:
            raise ValidationError("the maximum price must not be negative")
        if self.min_rating is not None and not 0 <= self.min_rating <= 5:
            raise ValidationError("the minimum rating is between 1 and 5 stars")
        if self.limit < 1:
            raise ValidationError("the result limit must be at least 1")
        if self.offset < 0:
            raise ValidationError("the result offset must not be negative")


@dataclass(frozen=True)
class Reputation:
    """A creator's reputation and what it is made of (formula in the module docstring).

    Attributes:
        creator: The creator's address.
        models: Models they published.
        rating_count: Reviews of those models.
        rating_sum: Sum of those reviews' stars.
        paid_licences: Payments that entered escrow for those models.
        disputes_lost: Sum of refunded shares over resolved disputes (0 to ``paid_licences``).
        score: The reputation, 0 to 5 stars.
    """

    creator: str
    models: int
    rating_count: int
    rating_sum: int
    paid_licences: int
    disputes_lost: float
    score: float


@dataclass(frozen=True)
class ModelHit:
    """One model as the catalog knows it.

    Amounts are in the smallest unit of ``currency`` (``decimals`` and ``symbol`` say how to show
    them); times in seconds.
    """

    model_id: int
    name: str | None
    description: str
    task: str | None
    framework: str | None
    tags: tuple[str, ...]
    creator: str
    owner: str
    versions: int
    metadata_cid: str
    weights_cid: str
    metadata_status: str
    published_at: int
    offer_active: bool
    currency: str | None
    symbol: str | None
    decimals: int
    price_per_period: int
    period_seconds: int
    min_periods: int
    max_periods: int
    perpetual_price: int
    price_per_call: int
    rating_count: int
    rating_sum: int
    relayers: tuple[str, ...] = ()
    reputation: Reputation | None = None
    relevance: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def rating(self) -> float | None:
        """Average stars, or None when unrated."""
        return self.rating_sum / self.rating_count if self.rating_count else None

    def price(self, kind: PriceKind = PriceKind.RENTAL) -> int:
        """The price of ``kind`` (0 when not offered)."""
        return {
            PriceKind.RENTAL: self.price_per_period,
            PriceKind.PERPETUAL: self.perpetual_price,
            PriceKind.CALL: self.price_per_call,
        }[kind]

    def to_json(self) -> dict[str, Any]:
        """The model as JSON (``daimm search --json``, the web API): amounts as decimal strings in
        the smallest unit of ``offer.currency``, so no client loses precision on a uint256."""
        rep = self.reputation
        return {
            "model_id": self.model_id,
            "name": self.name,
            "description": self.description,
            "task": self.task,
            "framework": self.framework,
            "tags": list(self.tags),
            "creator": self.creator,
            "owner": self.owner,
            "versions": self.versions,
            "metadata_cid": self.metadata_cid,
            "weights_cid": self.weights_cid,
            "metadata_status": self.metadata_status,
            "published_at": self.published_at,
            "offer": {
                "active": self.offer_active,
                "currency": self.currency,
                "symbol": self.symbol,
                "decimals": self.decimals,
                "price_per_period": str(self.price_per_period),
                "period_seconds": self.period_seconds,
                "min_periods": self.min_periods,
                "max_periods": self.max_periods,
                "perpetual_price": str(self.perpetual_price),
                "price_per_call": str(self.price_per_call),
            },
            "rating": {"count": self.rating_count, "sum": self.rating_sum, "average": self.rating},
            "creator_reputation": None
            if rep is None
            else {
                "score": rep.score,
                "models": rep.models,
                "rating_count": rep.rating_count,
                "rating_sum": rep.rating_sum,
                "paid_licences": rep.paid_licences,
                "disputes_lost": rep.disputes_lost,
            },
            "relayers": list(self.relayers),
            "relevance": self.relevance,
        }


def reputation_score(
    rating_count: int, rating_sum: int, paid_licences: int, disputes_lost: float
) -> float:
    """The reputation formula (module docstring), rounded to 3 decimals, in [0, 5] stars."""
    bayes = (PRIOR_WEIGHT * PRIOR_MEAN + rating_sum) / (PRIOR_WEIGHT + rating_count)
    lost_rate = min(1.0, max(0.0, disputes_lost) / (paid_licences + 1))
    return round(bayes * (1 - lost_rate), 3)


def _reputations(conn: Connection, creators: Iterable[str]) -> dict[str, Reputation]:
    wanted = sorted(set(creators))
    if not wanted:
        return {}
    rows = conn.execute(
        select(
            t.models.c.creator,
            func.count(),
            func.coalesce(func.sum(t.models.c.rating_count), 0),
            func.coalesce(func.sum(t.models.c.rating_sum), 0),
        )
        .where(t.models.c.creator.in_(wanted))
        .group_by(t.models.c.creator)
    ).all()
    base = {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}
    paid_rows = conn.execute(
        select(t.models.c.creator, func.count(func.distinct(t.events.c.tx_hash)))
        .select_from(t.events.join(t.models, t.events.c.model_id == t.models.c.model_id))
        .where(t.models.c.creator.in_(wanted), t.events.c.event == "PaymentHeld")
        .group_by(t.models.c.creator)
    ).all()
    paid = {r[0]: int(r[1]) for r in paid_rows}
    lost: dict[str, float] = defaultdict(float)
    for creator, refunded, released in conn.execute(
        select(t.models.c.creator, t.disputes.c.refunded, t.disputes.c.released)
        .select_from(t.disputes.join(t.models, t.disputes.c.model_id == t.models.c.model_id))
        .where(t.models.c.creator.in_(wanted), t.disputes.c.open.is_(False))
    ):
        total = (refunded or 0) + (released or 0)
        if total:
            lost[creator] += (refunded or 0) / total
    out = {}
    for creator in wanted:
        models, count, total = base.get(creator, (0, 0, 0))
        out[creator] = Reputation(
            creator=creator,
            models=models,
            rating_count=count,
            rating_sum=total,
            paid_licences=paid.get(creator, 0),
            disputes_lost=round(lost[creator], 6),
            score=reputation_score(count, total, paid.get(creator, 0), lost[creator]),
        )
    return out


def creator_reputation(store: CatalogStore, creator: str) -> Reputation:
    """The reputation of ``creator`` (a checksummed address)."""
    with store.connect() as conn:
        return _reputations(conn, [creator])[creator]


_WORD = re.compile(r"\w+", re.UNICODE)


def _fts_term(word: str, *, prefix: bool) -> str:
    # Quoted, so FTS5 operators in user text are plain words; `*` makes it a prefix.
    return '"' + word.replace('"', "") + '"' + ("*" if prefix else "")


def _pg_term(word: str, *, prefix: bool) -> str:
    # The same in to_tsquery syntax: a quoted lexeme, `:*` for a prefix.
    return "'" + word.replace("'", "").replace("\\", "") + "'" + (":*" if prefix else "")


def _text_match(store: CatalogStore, stmt: Any, words: Sequence[str]) -> tuple[Any, Any, Any]:
    """``stmt`` narrowed to models matching any of ``words``, their score and the engine's rank.

    The score is the same on both databases: 2 per word matched whole, 1 per word matched only as
    the start of a longer word. The engine's own rank (bm25, ts_rank) only breaks its ties. Both
    are higher-is-better.
    """
    any_word = [_fts_term(w, prefix=p) for w in words for p in (False, True)]
    if store.is_sqlite:

        def matching(terms: Sequence[str]) -> Any:
            return (
                text("SELECT rowid AS model_id FROM catalog_fts WHERE catalog_fts MATCH :q")
                .bindparams(bindparam("q", " OR ".join(terms), unique=True))
                .columns(literal_column("model_id"))
            )

        score: Any = sum(
            (
                case(
                    (t.models.c.model_id.in_(matching([_fts_term(w, prefix=False)])), 2),
                    (t.models.c.model_id.in_(matching([_fts_term(w, prefix=True)])), 1),
                    else_=0,
                )
                for w in words
            ),
            literal_column("0"),
        )
        fts = (
            text(
                "SELECT rowid AS model_id, bm25(catalog_fts) AS rank FROM catalog_fts"
                " WHERE catalog_fts MATCH :q"
            )
            .bindparams(bindparam("q", " OR ".join(any_word), unique=True))
            .columns(literal_column("model_id"), literal_column("rank"))
            .subquery("fts")
        )
        stmt = stmt.join(fts, fts.c.model_id == t.models.c.model_id)
        return stmt, score, -fts.c.rank  # bm25: lower is better
    vector = literal_column(f"{t.metadata_docs.name}.search", TSVECTOR)

    def query(terms: Sequence[str]) -> Any:
        return func.to_tsquery(t.PG_TEXT_CONFIG, " | ".join(terms))

    any_query = query([_pg_term(w, prefix=p) for w in words for p in (False, True)])
    stmt = stmt.where(t.metadata_docs.c.status == "ok", vector.op("@@")(any_query))
    score = sum(
        (
            case(
                (vector.op("@@")(query([_pg_term(w, prefix=False)])), 2),
                (vector.op("@@")(query([_pg_term(w, prefix=True)])), 1),
                else_=0,
            )
            for w in words
        ),
        literal_column("0"),
    )
    # NOTE: normalisation 1 divides by 1 + log(length): bm25 also favours short texts.
    return stmt, score, func.ts_rank(vector, any_query, 1)


def _price_column(kind: PriceKind) -> Any:
    return {
        PriceKind.RENTAL: t.offers.c.price_per_period,
        PriceKind.PERPETUAL: t.offers.c.perpetual_price,
        PriceKind.CALL: t.offers.c.price_per_call,
    }[kind]


def _base_select(store: CatalogStore) -> Any:
    m, d, o, k = t.models, t.metadata_docs, t.offers, t.tokens
    return select(
        m,
        d.c.name,
        d.c.description,
        d.c.task,
        d.c.framework,
        d.c.tags,
        d.c.status.label("metadata_status"),
        o.c.currency,
        o.c.price_per_period,
        o.c.period_seconds,
        o.c.min_periods,
        o.c.max_periods,
        o.c.active,
        o.c.perpetual_price,
        o.c.price_per_call,
        k.c.symbol,
        k.c.decimals,
    ).select_from(
        m.outerjoin(d, m.c.metadata_cid == d.c.cid)
        .outerjoin(o, m.c.model_id == o.c.model_id)
        .outerjoin(k, o.c.currency == k.c.address)
    )


def _hit(row: Any, relevance: float | None = None) -> ModelHit:
    return ModelHit(
        model_id=int(row.model_id),
        name=row.name,
        description=row.description or "",
        task=row.task,
        framework=row.framework,
        tags=tuple((row.tags or "").split()),
        creator=row.creator,
        owner=row.owner,
        versions=int(row.versions),
        metadata_cid=row.metadata_cid,
        weights_cid=row.weights_cid,
        metadata_status=row.metadata_status or "pending",
        published_at=int(row.published_at),
        offer_active=bool(row.active),
        currency=row.currency,
        symbol=row.symbol or ("ETH" if row.currency and int(row.currency, 16) == 0 else None),
        decimals=int(row.decimals) if row.decimals is not None else 18,
        price_per_period=int(row.price_per_period or 0),
        period_seconds=int(row.period_seconds or 0),
        min_periods=int(row.min_periods or 0),
        max_periods=int(row.max_periods or 0),
        perpetual_price=int(row.perpetual_price or 0),
        price_per_call=int(row.price_per_call or 0),
        rating_count=int(row.rating_count),
        rating_sum=int(row.rating_sum),
        relevance=relevance,
    )


def _with_details(conn: Connection, hits: list[ModelHit]) -> list[ModelHit]:
    from dataclasses import replace

    if not hits:
        return hits
    ids = [h.model_id for h in hits]
    relayers: dict[int, list[str]] = defaultdict(list)
    for model_id, relayer in conn.execute(
        select(t.model_relayers.c.model_id, t.model_relayers.c.relayer)
        .select_from(
            t.model_relayers.join(t.relayers, t.model_relayers.c.relayer == t.relayers.c.address)
        )
        .where(
            t.model_relayers.c.model_id.in_(ids),
            t.model_relayers.c.authorised.is_(True),
            t.relayers.c.active.is_(True),
        )
        .order_by(t.model_relayers.c.relayer)
    ):
        relayers[int(model_id)].append(relayer)
    reps = _reputations(conn, [h.creator for h in hits])
    return [
        replace(h, relayers=tuple(relayers[h.model_id]), reputation=reps.get(h.creator))
        for h in hits
    ]


def search(store: CatalogStore, query: SearchQuery) -> list[ModelHit]:
    """Models matching ``query``, in its order, with relayers and creator reputation."""
    stmt = _base_select(store)
    conditions = []
    relevance_col = engine_rank = None  # higher is better
    words = _WORD.findall(query.text or "")
    if words:
        stmt, score, engine_rank = _text_match(store, stmt, words)
        relevance_col = score
        stmt = stmt.add_columns(score.label("relevance"))
    if query.task:
        conditions.append(func.lower(t.metadata_docs.c.task) == query.task.lower())
    if query.framework:
        conditions.append(func.lower(t.metadata_docs.c.framework) == query.framework.lower())
    if query.creator:
        conditions.append(func.lower(t.models.c.creator) == query.creator.lower())
    if not query.include_inactive:
        conditions.append(t.offers.c.active.is_(True))
    if query.currency is not None:
        conditions.append(func.lower(t.offers.c.currency) == query.currency.lower())
    price = _price_column(query.price_kind)
    if query.max_price is not None:
        conditions.append(and_(price > 0, price <= query.max_price))
    if query.min_rating is not None:
        conditions.append(t.models.c.rating_count > 0)
        conditions.append(t.models.c.rating_sum >= query.min_rating * t.models.c.rating_count)
    if conditions:
        stmt = stmt.where(and_(*conditions))

    average = case(
        (t.models.c.rating_count > 0, t.models.c.rating_sum * 1.0 / t.models.c.rating_count),
        else_=-1.0,
    )
    newest = (t.models.c.published_at.desc(), t.models.c.model_id.desc())
    if query.sort is SortKey.PRICE:
        order = [case((price > 0, 0), else_=1), price.asc(), t.models.c.model_id.asc()]
    elif query.sort is SortKey.RATING:
        order = [average.desc(), t.models.c.rating_count.desc(), t.models.c.model_id.asc()]
    elif query.sort is SortKey.NAME:
        name = func.lower(func.coalesce(t.metadata_docs.c.name, ""))
        # NOTE: byte order on both databases (SQLite's default), whatever the server's locale.
        order = [name if store.is_sqlite else name.collate("C"), t.models.c.model_id]
    elif query.sort is SortKey.RELEVANCE and relevance_col is not None and engine_rank is not None:
        order = [relevance_col.desc(), engine_rank.desc(), *newest]
    else:
        order = list(newest)
    stmt = stmt.order_by(*order).limit(query.limit).offset(query.offset)
    with store.connect() as conn:
        rows = conn.execute(stmt).all()
        hits = [
            _hit(r, float(r.relevance) if getattr(r, "relevance", None) is not None else None)
            for r in rows
        ]
        return _with_details(conn, hits)


def get_model(store: CatalogStore, model_id: int) -> ModelHit:
    """Everything the catalog knows of ``model_id``.

    Raises:
        CatalogError: The catalog has no such model (not published, or not synced yet).
    """
    with store.connect() as conn:
        row = conn.execute(_base_select(store).where(t.models.c.model_id == model_id)).first()
        if row is None:
            raise CatalogError(
                f"model {model_id} is not in the catalog: check the id, or run"
                " `daimm catalog sync` to read the latest blocks"
            )
        return _with_details(conn, [_hit(row)])[0]
