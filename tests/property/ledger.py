"""The Python ledger model of the marketplace's money and licences, for the stateful property tests.

An independent re-statement of what RentalEscrow, LicenseNFT and CreditEscrow promise: every wei a
buyer pays is either held (per settlement bucket), disputed, or credited to someone (fee to the
treasury, shares to payees, royalties, refunds); credits only leave through withdrawals; licences
give access exactly while paid and unexpired (or perpetual); channels never redeem beyond their
deposit. Each action first *predicts* (the custom error the chain must revert with, or ``None``) and
then *applies* its effects, returning the credits it expects the chain to log.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from eth_utils import to_checksum_address

__all__ = ["ETH", "BPS", "Ledger", "Licence", "Offer", "payee_single", "payee_split"]

ETH = "0x0000000000000000000000000000000000000000"
BPS = 10_000
GRANULARITY = 3600
SPLIT_BASE = 1 << 160


def payee_single(account: str) -> int:
    return int(account, 16)


def payee_split(model_id: int, nonce: int) -> int:
    return SPLIT_BASE + (model_id << 32) + nonce


@dataclass
class Offer:
    currency: str
    price_per_period: int
    period: int
    min_periods: int
    max_periods: int
    active: bool
    perpetual_price: int
    price_per_call: int

    def as_tuple(self) -> tuple:
        return (
            self.currency,
            self.price_per_period,
            self.period,
            self.min_periods,
            self.max_periods,
            self.active,
            self.perpetual_price,
            self.price_per_call,
        )


@dataclass
class Model:
    owner: str
    royalty_bps: int
    offer: Offer
    split_owner: str = ETH
    split_nonce: int = 0
    authorised_by: str = ETH  # who authorised the relayer


@dataclass
class Licence:
    model_id: int
    perpetual: bool
    holder: str  # ETH (zero) once terminated
    expires: int  # rentals only
    locked: bool = False


@dataclass
class Channel:
    currency: str = ETH
    deposited: int = 0
    redeemed: int = 0
    expires_at: int = 0


@dataclass
class Ledger:
    """The model.

    Addresses are checksummed strings; amounts in the smallest unit; times in seconds.
    """

    treasury: str
    fee_bps: int
    window: int
    credit_timeout: int
    fee_token: str  #: the fee-on-transfer token (1% burnt on every transfer)
    models: dict[int, Model] = field(default_factory=dict)
    allowed: dict[str, bool] = field(default_factory=dict)
    splits: dict[int, tuple[list[str], list[int]]] = field(default_factory=dict)
    licences: dict[int, Licence] = field(default_factory=dict)
    licence_count: int = 0
    buckets: dict[tuple[int, str, int], list[int]] = field(default_factory=dict)
    receipts: dict[tuple[int, str, int, str], list[int]] = field(default_factory=dict)
    listings: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    disputes: dict[int, dict] = field(default_factory=dict)
    dispute_count: int = 0
    owed: Counter = field(default_factory=Counter)  # (account, currency) -> amount
    credited: Counter = field(default_factory=Counter)  # all-time credits
    withdrawn: Counter = field(default_factory=Counter)  # all-time withdrawals
    credited_by_kind: Counter = field(default_factory=Counter)  # (kind, currency) -> amount
    paid_in: Counter = field(default_factory=Counter)  # currency -> received by the escrow
    channels: dict[tuple[str, int], Channel] = field(default_factory=lambda: defaultdict(Channel))
    credit_in: Counter = field(default_factory=Counter)  # currency -> received by CreditEscrow
    credit_redeemed: Counter = field(default_factory=Counter)
    credit_reclaimed: Counter = field(default_factory=Counter)

    # ------------------------------------------------------------------ helpers
    def received(self, currency: str, amount: int) -> int:
        """What arrives when ``amount`` of ``currency`` is transferred."""
        if currency == self.fee_token:
            return amount - amount * 100 // BPS
        return amount

    def fee(self, amount: int) -> int:
        return amount * self.fee_bps // BPS

    def release_at(self, ts: int) -> int:
        t = ts + self.window
        return -(-t // GRANULARITY) * GRANULARITY

    def payee_set(self, model_id: int) -> int:
        m = self.models[model_id]
        if m.split_owner == m.owner and m.split_owner != ETH:
            return payee_split(model_id, m.split_nonce)
        return payee_single(m.owner)

    def rental_of(self, model_id: int, holder: str) -> int:
        for lid, lic in self.licences.items():
            if lic.model_id == model_id and lic.holder == holder and not lic.perpetual:
                return lid
        return 0

    def has_access(self, model_id: int, account: str, now: int) -> bool:
        for lic in self.licences.values():
            live = lic.perpetual or lic.expires > now
            if lic.model_id == model_id and lic.holder == account and live:
                return True
        return False

    def held(self, currency: str) -> int:
        return sum(v[0] for k, v in self.buckets.items() if k[1] == currency)

    def disputed(self, currency: str) -> int:
        return sum(
            d["amount"] for d in self.disputes.values() if d["open"] and d["currency"] == currency
        )

    def owed_total(self, currency: str) -> int:
        return sum(v for k, v in self.owed.items() if k[1] == currency)

    def channel_total(self, currency: str) -> int:
        return sum(
            c.deposited - c.redeemed
            for c in self.channels.values()
            if c.currency == currency and c.expires_at
        )

    def _credit(self, credits: list, account: str, currency: str, amount: int, kind: str) -> None:
        if amount == 0:
            return
        self.owed[(account, currency)] += amount
        self.credited[(account, currency)] += amount
        self.credited_by_kind[(kind, currency)] += amount
        credits.append((account, currency, amount))

    def _release(
        self,
        credits: list,
        payee_set: int,
        currency: str,
        amount: int,
        fee: int,
        kind: str = "share",
    ) -> None:
        self._credit(credits, self.treasury, currency, fee, "fee")
        net = amount - fee
        if payee_set < SPLIT_BASE:
            self._credit(
                credits, to_checksum_address(payee_set.to_bytes(20, "big")), currency, net, kind
            )
            return
        payees, bps = self.splits[payee_set]
        shares = [net * b // BPS for b in bps]
        shares[0] = net - sum(shares[1:])
        for payee, share in zip(payees, shares, strict=True):
            self._credit(credits, payee, currency, share, kind)

    def _hold(
        self,
        ts: int,
        lid: int,
        payer: str,
        payee_set: int,
        currency: str,
        amount: int,
        fee: int,
        disputable: bool,
    ) -> None:
        release = self.release_at(ts)
        bucket = self.buckets.setdefault((payee_set, currency, release), [0, 0])
        bucket[0] += amount
        bucket[1] += fee
        if disputable:
            key = (lid, payer, payee_set, currency)
            receipt = self.receipts.get(key)
            if receipt is not None and receipt[2] == release:
                receipt[0] += amount
                receipt[1] += fee
            else:
                self.receipts[key] = [amount, fee, release]

    def _take_payment(self, currency: str, price: int) -> tuple[int, int]:
        received = self.received(currency, price)
        self.paid_in[currency] += received
        return received, self.fee(received)

    def _mint(self, model_id: int, holder: str, perpetual: bool, expires: int) -> int:
        self.licence_count += 1
        self.licences[self.licence_count] = Licence(model_id, perpetual, holder, expires)
        return self.licence_count

    # ------------------------------------------------------------------ marketplace actions
    # Each ``*_error`` returns the expected custom error name (or None); each ``do_*`` applies the
    # effects and returns the expected credits [(account, currency, amount)].

    def rent_error(self, user: str, model_id: int, periods: int, max_price: int) -> str | None:
        o = self.models[model_id].offer
        if not o.active:
            return "OfferInactive"
        if o.price_per_period == 0:
            return "NotForSale"
        if not o.min_periods <= periods <= o.max_periods:
            return "DurationOutOfRange"
        if periods * o.price_per_period > max_price:
            return "PriceAboveMax"
        lid = self.rental_of(model_id, user)
        if lid and self.licences[lid].locked:
            return "LicenceLocked"
        if not self.allowed[o.currency]:
            return "CurrencyNotAllowed"
        return None

    def do_rent(self, ts: int, user: str, model_id: int, periods: int) -> list:
        o = self.models[model_id].offer
        ps = self.payee_set(model_id)
        duration = periods * o.period
        lid = self.rental_of(model_id, user)
        if lid:
            lic = self.licences[lid]
            lic.expires = max(lic.expires, ts) + duration
        else:
            lid = self._mint(model_id, user, False, ts + duration)
        received, fee = self._take_payment(o.currency, periods * o.price_per_period)
        self._hold(ts, lid, user, ps, o.currency, received, fee, True)
        return []

    def buy_error(self, model_id: int, max_price: int) -> str | None:
        o = self.models[model_id].offer
        if not o.active:
            return "OfferInactive"
        if o.perpetual_price == 0:
            return "NotForSale"
        if o.perpetual_price > max_price:
            return "PriceAboveMax"
        if not self.allowed[o.currency]:
            return "CurrencyNotAllowed"
        return None

    def do_buy(self, ts: int, user: str, model_id: int) -> list:
        o = self.models[model_id].offer
        ps = self.payee_set(model_id)
        lid = self._mint(model_id, user, True, 2**64 - 1)
        received, fee = self._take_payment(o.currency, o.perpetual_price)
        self._hold(ts, lid, user, ps, o.currency, received, fee, True)
        return []

    def list_error(self, user: str, lid: int, currency: str) -> str | None:
        if self.licences[lid].holder != user:
            return "NotLicenceHolder"
        if not self.allowed[currency]:
            return "CurrencyNotAllowed"
        return None

    def buy_listed_error(self, buyer: str, lid: int, max_price: int) -> str | None:
        listing = self.listings.get(lid)
        lic = self.licences[lid]
        if listing is None or lic.holder != listing[0]:
            return "NotListed"
        if listing[2] > max_price:
            return "PriceAboveMax"
        if not self.allowed[listing[1]]:
            return "CurrencyNotAllowed"
        return self.transfer_error(lid, buyer)

    def transfer_error(self, lid: int, to: str) -> str | None:
        lic = self.licences[lid]
        if lic.locked:
            return "LicenceLocked"
        if not lic.perpetual:
            other = self.rental_of(lic.model_id, to)
            if other and other != lid:
                return "RentalAlreadyHeld"
        return None

    def do_buy_listed(self, ts: int, buyer: str, lid: int) -> list:
        seller, currency, price = self.listings.pop(lid)
        lic = self.licences[lid]
        model = self.models[lic.model_id]
        received, fee = self._take_payment(currency, price)
        royalty = received * model.royalty_bps // BPS
        self._hold(ts, lid, buyer, payee_single(seller), currency, received - royalty, fee, False)
        if royalty:
            self._hold(ts, lid, buyer, payee_single(model.owner), currency, royalty, 0, False)
        self.royalties[currency] += royalty
        lic.holder = buyer
        return []

    def dispute_error(
        self, user: str, lid: int, payee_set: int, currency: str, ts: int
    ) -> str | None:
        lic = self.licences[lid]
        if lic.holder != user:
            return "NotLicenceHolder"
        receipt = self.receipts.get((lid, user, payee_set, currency))
        if receipt is None or receipt[0] == 0:
            return "NothingToDispute"
        if ts >= receipt[2]:
            return "DisputeWindowClosed"
        if lic.locked:
            return "LicenceLocked"
        return None

    def do_dispute(self, user: str, lid: int, payee_set: int, currency: str) -> list:
        amount, fee, release = self.receipts.pop((lid, user, payee_set, currency))
        bucket = self.buckets[(payee_set, currency, release)]
        bucket[0] -= amount
        bucket[1] -= fee
        self.dispute_count += 1
        self.disputes[self.dispute_count] = {
            "licence": lid,
            "payer": user,
            "currency": currency,
            "payee_set": payee_set,
            "amount": amount,
            "fee": fee,
            "open": True,
        }
        self.licences[lid].locked = True
        return []

    def resolve_error(self, dispute_id: int, kind: int, refund_bps: int) -> str | None:
        d = self.disputes.get(dispute_id)
        if d is None or not d["open"]:
            return "DisputeNotOpen"
        if kind == 2 and not 0 < refund_bps < BPS:
            return "InvalidRefund"
        return None

    def do_resolve(self, dispute_id: int, kind: int, refund_bps: int) -> list:
        d = self.disputes[dispute_id]
        amount, fee = d["amount"], d["fee"]
        refund = refund_fee = 0
        if kind == 0:
            refund, refund_fee = amount, fee
        elif kind == 2:
            refund, refund_fee = amount * refund_bps // BPS, fee * refund_bps // BPS
        d["open"] = False
        credits: list = []
        self._credit(credits, d["payer"], d["currency"], refund, "refund")
        self._release(credits, d["payee_set"], d["currency"], amount - refund, fee - refund_fee)
        lic = self.licences[d["licence"]]
        if kind == 0:
            lic.holder = ETH  # terminated
        lic.locked = False
        return credits

    def settle_error(self, key: tuple[int, str, int], ts: int) -> str | None:
        if key[2] > ts:
            return "NotMatured"
        if self.buckets.get(key, [0, 0])[0] == 0:
            return "NothingHeld"
        return None

    def do_settle(self, key: tuple[int, str, int]) -> list:
        amount, fee = self.buckets.pop(key)
        credits: list = []
        self._release(credits, key[0], key[1], amount, fee)
        return credits

    def withdraw_error(self, account: str, currency: str) -> str | None:
        return None if self.owed[(account, currency)] else "NothingOwed"

    def do_withdraw(self, account: str, currency: str) -> int:
        amount = self.owed.pop((account, currency))
        self.withdrawn[(account, currency)] += amount
        return amount

    # ------------------------------------------------------------------ pay per use
    def deposit_error(self, user: str, model_id: int, amount: int) -> str | None:
        m = self.models[model_id]
        if not m.offer.active or m.offer.price_per_call == 0:
            return "NoPayPerUse"
        if m.authorised_by != m.owner:
            return "RelayerNotAuthorised"
        if amount == 0:
            return "ZeroAmount"
        if not self.allowed[m.offer.currency]:
            return "CurrencyNotAllowed"
        ch = self.channels[(user, model_id)]
        if ch.expires_at and ch.currency != m.offer.currency:
            return "CurrencyChanged"
        return None

    def do_deposit(self, ts: int, user: str, model_id: int, amount: int) -> None:
        currency = self.models[model_id].offer.currency
        ch = self.channels[(user, model_id)]
        if not ch.expires_at:
            ch.currency = currency
        received = self.received(currency, amount)
        ch.deposited += received
        ch.expires_at = ts + self.credit_timeout
        self.credit_in[currency] += received

    def redeem_error(self, user: str, model_id: int, cumulative: int, ts: int) -> str | None:
        ch = self.channels[(user, model_id)]
        if ts >= ch.expires_at:
            return "ChannelExpired"
        if cumulative <= ch.redeemed:
            return "VoucherNotMonotonic"
        if cumulative > ch.deposited:
            return "VoucherAboveDeposit"
        # A currency delisted after the deposit still redeems (RentalEscrow.depositRevenue).
        return None

    def do_redeem(self, ts: int, user: str, model_id: int, cumulative: int) -> list:
        ch = self.channels[(user, model_id)]
        paid = cumulative - ch.redeemed
        ch.redeemed = cumulative
        self.credit_redeemed[ch.currency] += paid
        received = self.received(ch.currency, paid)
        self.paid_in[ch.currency] += received
        self._hold(
            ts, 0, user, self.payee_set(model_id), ch.currency, received, self.fee(received), False
        )
        return []

    def reclaim_error(self, user: str, model_id: int, ts: int) -> str | None:
        ch = self.channels[(user, model_id)]
        if ts < ch.expires_at:
            return "ChannelLive"
        if ch.deposited == ch.redeemed:
            return "NothingToReclaim"
        return None

    def do_reclaim(self, user: str, model_id: int) -> int:
        ch = self.channels[(user, model_id)]
        amount = ch.deposited - ch.redeemed
        ch.deposited = ch.redeemed
        self.credit_reclaimed[ch.currency] += amount
        return amount

    royalties: Counter = field(default_factory=Counter)  # currency -> royalties booked
