"""What the pages and the JSON API show, read from the catalog and shaped for people.

Everything here reads the catalog store (``daimm.catalog``); nothing reads the chain or sends a
transaction. Amounts stay integers in the currency's smallest unit and are formatted with
:func:`daimm.units.format_amount` for display; JSON carries both (integers as decimal strings).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daimm.catalog import ModelHit, PriceKind, SearchQuery, SortKey, search
from daimm.catalog.queries import HeldBucket, held_payments, model_page, token_currencies
from daimm.catalog.stats import ModelStats, model_stats
from daimm.catalog.store import CatalogStore
from daimm.errors import ValidationError
from daimm.units import format_amount, parse_amount

__all__ = [
    "ETH",
    "LICENCE_KINDS",
    "Dashboard",
    "Filters",
    "HeldBucket",
    "Page",
    "dashboard",
    "hit_json",
    "known_currencies",
    "model_detail",
    "parse_address",
    "parse_filters",
    "run_filters",
    "unservable_reason",
]

ETH = "0x0000000000000000000000000000000000000000"
#: The ``licence`` filter: which kind of licence the model must offer -> the price that says so.
LICENCE_KINDS: dict[str, PriceKind] = {
    "rental": PriceKind.RENTAL,
    "perpetual": PriceKind.PERPETUAL,
    "call": PriceKind.CALL,
}
#: Most results a filtered listing looks at (pages past it are refused with a message).
MAX_RESULTS = 2_000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def parse_address(text: str | None) -> str:
    """A checksummed address from ``text``.

    Raises:
        ValidationError: Not ``0x`` and 40 hex digits.
    """
    from eth_utils import to_checksum_address

    if text is None or not _ADDRESS.match(text.strip()):
        raise ValidationError(f"address: {text!r} is not 0x followed by 40 hex digits")
    return str(to_checksum_address(text.strip()))


def known_currencies(
    store: CatalogStore, deployment_currencies: Mapping[str, str]
) -> dict[str, tuple[str, int]]:
    """Upper-case symbol -> (address, decimals) of every currency a price can be typed in."""
    known = token_currencies(store)
    by_address = {a.lower(): (s, d) for s, (a, d) in known.items()}
    for symbol, address in deployment_currencies.items():
        if int(address, 16) == 0:
            continue
        hit = by_address.get(address.lower())
        if hit is not None:
            known.setdefault(symbol.upper(), (address, hit[1]))
    known["ETH"] = (ETH, 18)
    return known


@dataclass(frozen=True)
class Filters:
    """The listing's query string, validated (what the form shows back)."""

    text: str = ""
    task: str = ""
    licence: str = ""
    max_price: str = ""
    min_rating: float | None = None
    sort: str = SortKey.RELEVANCE.value
    page: int = 1

    def query_string(self, **changes: Any) -> str:
        """The query string of these filters with ``changes`` (for pagination links)."""
        from urllib.parse import urlencode

        values = {
            "q": self.text,
            "task": self.task,
            "licence": self.licence,
            "max_price": self.max_price,
            "min_rating": "" if self.min_rating is None else f"{self.min_rating:g}",
            "sort": self.sort,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == "1")})


def parse_filters(
    params: Mapping[str, str], currencies: Mapping[str, tuple[str, int]], page_size: int
) -> tuple[Filters, SearchQuery]:
    """Validate a listing's query string (``q``, ``task``, ``licence``, ``max_price``,
    ``min_rating``, ``sort``, ``page``) into the filters and the catalog query.

    Raises:
        ValidationError: A parameter that cannot be read; the message names it and says what to
            write instead.
    """
    text = params.get("q", "").strip()[:200]
    task = params.get("task", "").strip()[:64]
    licence = params.get("licence", "").strip().lower()
    if licence and licence not in LICENCE_KINDS:
        raise ValidationError(f"licence: {licence!r} is not one of {', '.join(LICENCE_KINDS)}")
    sort = params.get("sort", "").strip().lower() or SortKey.RELEVANCE.value
    try:
        sort_key = SortKey(sort)
    except ValueError:
        choices = ", ".join(k.value for k in SortKey)
        raise ValidationError(f"sort: {sort!r} is not one of {choices}") from None
    min_rating = None
    raw_rating = params.get("min_rating", "").strip()
    if raw_rating:
        try:
            min_rating = float(raw_rating)
        except ValueError:
            raise ValidationError(f"min_rating: {raw_rating!r} is not a number") from None
        if not 1 <= min_rating <= 5:
            raise ValidationError(f"min_rating: {raw_rating} is not between 1 and 5 stars")
    raw_page = params.get("page", "").strip() or "1"
    if not raw_page.isdigit() or int(raw_page) < 1:
        raise ValidationError(f"page: {raw_page!r} is not a page number (1, 2, ...)")
    page = int(raw_page)
    if page * page_size > MAX_RESULTS:
        raise ValidationError(
            f"page: {page} is past the last {MAX_RESULTS} results; narrow the search"
        )
    max_price = params.get("max_price", "").strip()
    currency = max_value = None
    if max_price:
        try:
            amount = parse_amount(max_price, {s: d for s, (_, d) in currencies.items()})
        except ValidationError as exc:
            raise ValidationError(f"max_price: {exc}") from None
        currency, _ = currencies[amount.symbol.upper()]
        max_value = amount.value
    kind = LICENCE_KINDS.get(licence, PriceKind.RENTAL)
    filters = Filters(text, task, licence, max_price, min_rating, sort_key.value, page)
    query = SearchQuery(
        text=text or None,
        task=task or None,
        currency=currency,
        max_price=max_value,
        price_kind=kind,
        min_rating=min_rating,
        sort=sort_key,
        # NOTE: the licence filter is applied to the results (the catalog filters by price only
        # with a currency), so a filtered listing asks for every match up to MAX_RESULTS.
        limit=MAX_RESULTS if licence else page * page_size + 1,
    )
    return filters, query


@dataclass(frozen=True)
class Page:
    """One page of a listing."""

    filters: Filters
    hits: list[ModelHit]
    page_size: int
    has_more: bool


def run_filters(store: CatalogStore, filters: Filters, query: SearchQuery, page_size: int) -> Page:
    """Run ``query`` and cut out the page ``filters`` asks for."""
    hits = search(store, query)
    if filters.licence:
        kind = LICENCE_KINDS[filters.licence]
        hits = [h for h in hits if h.price(kind) > 0]
    start = (filters.page - 1) * page_size
    return Page(filters, hits[start : start + page_size], page_size, len(hits) > start + page_size)


def _period(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}"
    return f"{seconds} s"


def prices(hit: ModelHit) -> dict[str, str | None]:
    """The offer's prices for people (None where not offered)."""
    symbol = hit.symbol or "?"

    def fmt(value: int) -> str | None:
        return format_amount(value, hit.decimals, symbol) if value else None

    rental = fmt(hit.price_per_period)
    return {
        "rental": f"{rental} / {_period(hit.period_seconds)}" if rental else None,
        "perpetual": fmt(hit.perpetual_price),
        "call": fmt(hit.price_per_call),
    }


def hit_json(hit: ModelHit) -> dict[str, Any]:
    """A model as the JSON API shows it: :meth:`ModelHit.to_json` (amounts as decimal strings in
    the smallest unit) with the prices in human units under ``offer.display``."""
    doc = hit.to_json()
    doc["offer"]["display"] = prices(hit)
    return doc


def model_detail(store: CatalogStore, model_id: int) -> dict[str, Any]:
    """Everything the model page shows: the model, its metadata document, versions with their
    CIDs, reviews, relayers with their endpoints, and sales counts (the model is read once).

    Raises:
        CatalogError: No such model in the catalog.
    """
    page = model_page(store, model_id)
    stats = page.stats
    return {
        **hit_json(page.model),
        "royalty_bps": None,
        "metadata": page.document,
        "versions": [
            {"version": v.version, "weights_cid": v.weights_cid, "metadata_cid": v.metadata_cid,
             "block": v.block, "timestamp": v.timestamp, "tx_hash": v.tx_hash}
            for v in page.versions
        ],
        "reviews": [
            {"licence_id": r.licence_id, "reviewer": r.reviewer, "rating": r.rating,
             "comment_cid": r.comment_cid, "timestamp": r.timestamp}
            for r in page.reviews
        ],
        "relayers": [
            {"address": a, "endpoint": page.endpoints.get(a, "")} for a in page.model.relayers
        ],
        "sales": {
            "rentals": stats.rentals,
            "rental_extensions": stats.rental_extensions,
            "purchases": stats.purchases,
            "resales": stats.resales,
            "calls": stats.calls,
            "refunds": stats.refunds,
        },
    }  # fmt: skip


def unservable_reason(detail: Mapping[str, Any], blocks: Any | None) -> str | None:
    """Why a model cannot be served (so must not be rented or bought), or None if it can.

    The catalog says whether the metadata document was fetched; ``blocks`` (the block store the
    relayers read, a :class:`daimm.ipfs.Backend`, or None to skip) must hold the root block of the
    encrypted weights, which a relayer fetches on the first prediction.

    Args:
        detail: :func:`model_detail`'s document.
        blocks: The relayers' block store, or None.
    """
    from daimm.ipfs import CID

    status = detail.get("metadata_status")
    if status != "ok":
        state = "has not been fetched yet" if status == "pending" else f"is {status}"
        return (
            f"its metadata {detail.get('metadata_cid')} {state}: the catalog (and a relayer) could"
            " not read it from the block store"
        )
    if blocks is not None:
        cid = str(detail.get("weights_cid") or "")
        try:
            present = bool(blocks.has_block(CID.parse(cid)))
        except Exception:  # noqa: BLE001 - a malformed CID or a store error: not servable
            present = False
        if not present:
            return (
                f"its encrypted weights {cid} are not in the block store the relayers read, so"
                " every prediction would fail"
            )
    return None


@dataclass(frozen=True)
class Dashboard:
    """A creator's dashboard, from the catalog: their models, earnings, rentals over time, and
    the held payments the browser checks on chain before offering to withdraw.

    Attributes:
        earnings: Per currency: symbol, decimals, gross, fee, refunded, net (smallest unit).
        rentals: ``(timestamp, cumulative rentals)`` over every model, in time order.
        revenue: Symbol -> ``(timestamp, cumulative net revenue in whole units)``.
    """

    address: str
    models: list[ModelHit]
    stats: list[ModelStats]
    earnings: list[dict[str, Any]]
    rentals: list[tuple[int, int]]
    revenue: dict[str, list[tuple[int, float]]]
    held: list[HeldBucket] = field(default_factory=list)


def dashboard(store: CatalogStore, address: str) -> Dashboard:
    """The dashboard of the models ``address`` created (a checksummed address)."""
    hits = search(
        store,
        SearchQuery(creator=address, include_inactive=True, sort=SortKey.NEWEST, limit=MAX_RESULTS),
    )
    stats = [model_stats(store, h.model_id, model=h) for h in hits]
    money: dict[str, dict[str, Any]] = {}
    rentals: list[int] = []
    points: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for s in stats:
        for r in s.revenue:
            m = money.setdefault(
                r.currency,
                {"currency": r.currency, "symbol": r.symbol, "decimals": r.decimals,
                 "gross": 0, "fee": 0, "refunded": 0, "net": 0},
            )  # fmt: skip
            for key in ("gross", "fee", "refunded", "net"):
                m[key] += getattr(r, key)
        decimals = {r.currency: (r.symbol, r.decimals) for r in s.revenue}
        for p in s.timeline:
            if p.kind == "rental":
                rentals.append(p.timestamp)
            symbol, dec = decimals.get(p.currency, (p.currency[:8], 18))
            points[symbol].append((p.timestamp, p.amount, dec))
    revenue: dict[str, list[tuple[int, float]]] = {}
    for symbol, series in points.items():
        total, out = 0, []
        for ts, amount, dec in sorted(series):
            total += amount
            out.append((ts, total / 10**dec))
        revenue[symbol] = out
    earnings = []
    for m in money.values():
        fmt = {
            k: format_amount(m[k], m["decimals"], m["symbol"])
            for k in ("gross", "fee", "refunded", "net")
        }
        earnings.append({**m, "display": fmt})
    return Dashboard(
        address=address,
        models=hits,
        stats=stats,
        earnings=earnings,
        rentals=[(ts, i + 1) for i, ts in enumerate(sorted(rentals))],
        revenue=revenue,
        held=held_payments(store, [h.model_id for h in hits]),
    )
