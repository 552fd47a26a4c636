"""Stateful property test: random sequences of marketplace actions keep every money and access
promise.

Hypothesis drives RentalEscrow, LicenseNFT, CreditEscrow, ModelRegistry and RelayerRegistry through
random sequences of: offer and split changes, rent (and extend), buy, list, delist, resale, plain
licence transfers, credit deposits, voucher redemptions (fresh and replayed), reclaims, disputes
(one- and three-argument), resolutions (refund, release, split), settlements, withdrawals, time
jumps, model transfers, relayer re-authorisation, fee changes and currency delisting. A Python
ledger (``tests/property/ledger.py``) predicts each call's outcome: the exact custom error of
every revert, and every ``Credited`` log of every success.

After every step (``@invariant``):
- each escrow's balance, per currency, equals what it owes: RentalEscrow = held buckets + open
  disputes + owed balances; CreditEscrow = deposits - redeemed - reclaimed;
- nobody has withdrawn more than they were credited, and ``owed`` = credited - withdrawn;
- fees + payee shares (royalties included) + refunds + held + disputed = what buyers paid, to the
  wei;
- ``hasAccess`` is true exactly for held, paid, unexpired or perpetual licences (checked for the
  pairs a step touched or whose rental just expired; all pairs at the end of each sequence);
- a channel never redeems more than its deposit, and a replayed voucher is refused.

CI runs 200 sequences (``make test``); ``DAIMM_FUZZ=long`` (``make fuzz``) runs 2,000 longer ones.
Chain state is reset between sequences with an EVM snapshot.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from tests.property.conftest import CREDIT_TIMEOUT, FEE_BPS, LONG, WINDOW, Market
from tests.property.driver import Driver, error_selector, event_topic
from tests.property.ledger import BPS, ETH, Ledger, Model, Offer

from daimm.eip712 import Voucher, sign_voucher

pytestmark = pytest.mark.chain

EXAMPLES = int(os.environ.get("DAIMM_FUZZ_EXAMPLES", 2_000 if LONG else 200))
STEPS = 40 if LONG else 15

#: Every custom error the model may predict, by name.
ERRORS = {
    sig.split("(")[0]: error_selector(sig)
    for sig in (
        "OfferInactive(uint256)",
        "NotForSale(uint256)",
        "DurationOutOfRange(uint256,uint256,uint256,uint256)",
        "PriceAboveMax(uint256,uint256)",
        "LicenceLocked(uint256)",
        "CurrencyNotAllowed(address)",
        "NotLicenceHolder(uint256,address)",
        "NotListed(uint256)",
        "RentalAlreadyHeld(uint256,address,uint256)",
        "NothingToDispute(uint256)",
        "DisputeWindowClosed(uint256)",
        "DisputeNotOpen(uint256)",
        "InvalidRefund(uint16)",
        "NotMatured(uint256,uint256)",
        "NothingHeld(uint256,address,uint64)",
        "NothingOwed(address,address)",
        "NoPayPerUse(uint256)",
        "RelayerNotAuthorised(uint256,address)",
        "ZeroAmount()",
        "CurrencyChanged(address,address)",
        "ChannelExpired(uint64)",
        "VoucherNotMonotonic(uint256,uint256)",
        "VoucherAboveDeposit(uint256,uint256)",
        "ChannelLive(uint64)",
        "NothingToReclaim()",
    )
}
#: Outcomes seen, by (function, expected error or "ok"): printed with ``-s`` to show coverage.
STATS: Counter = Counter()
CREDITED = event_topic("Credited(address,address,uint256)")
OFFER_TYPE = "(address,uint96,uint32,uint16,uint16,bool,uint128,uint128)"
VOUCHER_TYPE = "(uint256,address,uint256,uint256,address)"

#: Offer prices are odd on purpose: fee, split and royalty arithmetic must round without losing wei.
MODEL_1 = Offer(ETH, 10**15 + 7, 600, 1, 6, True, 10**16 + 3, 10**12 + 1)
MODEL_2_PRICES = dict(
    price_per_period=1_000_003,
    period=900,
    min_periods=1,
    max_periods=4,
    perpetual_price=50_000_007,
    price_per_call=10_001,
)

users_ = st.integers(0, 2)
models_ = st.sampled_from([1, 2])
picks = st.integers(0, 2**16)


def _addr(account: Any) -> str:
    return to_checksum_address(str(getattr(account, "address", account)))


class MarketMachine(RuleBasedStateMachine):
    """One random sequence of marketplace actions against the ledger model."""

    # Set by the test before running: the market, the driver and the snapshot to start from.
    market: Market
    driver: Driver
    snapshot: Any
    chain: Any
    base_models: dict[int, Model]

    def __init__(self) -> None:
        super().__init__()
        self.driver.restore(self.snapshot)
        m = self.market
        self.users = [_addr(u) for u in m.users]
        self.accounts = {
            _addr(a): a
            for a in (
                *m.users,
                *m.creators,
                m.deployer,
                m.treasury,
                m.arbiter,
                m.relayer,
                m.collaborator,
            )
        }
        self.currencies = [ETH, _addr(m.token), _addr(m.fee_token)]
        self.ledger = Ledger(
            treasury=_addr(m.treasury),
            fee_bps=FEE_BPS,
            window=WINDOW,
            credit_timeout=CREDIT_TIMEOUT,
            fee_token=_addr(m.fee_token),
        )
        self.ledger.allowed = dict.fromkeys(self.currencies, True)
        for model_id, model in self.base_models.items():
            self.ledger.models[model_id] = Model(
                model.owner,
                model.royalty_bps,
                Offer(**vars(model.offer)),
                model.split_owner,
                model.split_nonce,
                model.authorised_by,
            )
        self.ledger.splits = dict(self.base_splits)
        self.vouchers: dict[tuple[str, int], list[tuple[Voucher, bytes]]] = {}
        self.touched_access: set[tuple[int, str]] = set()
        self.touched_currencies: set[str] = set()
        self.head = self.driver.head_timestamp()
        self.prev_head = self.head

    # ------------------------------------------------------------------ plumbing
    def _send(
        self,
        sender: Any,
        to: Any,
        signature: str,
        *args: Any,
        value: int = 0,
        error: str | None = None,
        credits_later: bool = False,
    ) -> Any:
        """Send and check the outcome against the model's prediction (error name or success).

        A success logs no ``Credited`` unless ``credits_later`` (the caller checks them).
        """
        ts = self._ts()
        outcome = self.driver.send(sender, to, signature, *args, value=value)
        STATS[(signature.split("(")[0], error or "ok")] += 1
        self.prev_head, self.head = self.head, self.driver.head_timestamp()
        assert self.head == ts, f"the model timed the transaction at {ts}, the chain at {self.head}"
        if error is not None:
            assert not outcome.ok, f"{signature} succeeded; the model expected {error}"
            assert outcome.revert[:4] == ERRORS[error], (
                f"{signature} reverted 0x{outcome.revert.hex()}; the model expected {error}"
            )
        else:
            assert outcome.ok, f"{signature} reverted 0x{outcome.revert.hex()}; model expected ok"
            if not credits_later:
                self._check_credits(outcome, [])
        return outcome

    def _ts(self) -> int:
        """``block.timestamp`` of the next transaction."""
        return self.driver.pending_timestamp()

    def _check_credits(self, outcome: Any, expected: list) -> None:
        escrow = _addr(self.market.escrow)
        logged = Counter(
            (
                to_checksum_address(topics[1][-20:]),
                to_checksum_address(topics[2][-20:]),
                int.from_bytes(data, "big"),
            )
            for address, topics, data in outcome.logs
            if address == escrow and topics and topics[0] == CREDITED
        )
        assert logged == Counter(expected), f"credits logged {logged}, model expected {expected}"

    def _owner(self, model_id: int) -> Any:
        return self.accounts[self.ledger.models[model_id].owner]

    def _pick(self, items: list, pick: int) -> Any:
        return items[pick % len(items)] if items else None

    # ------------------------------------------------------------------ model owners
    @rule(
        action=st.integers(0, 2),
        model_id=models_,
        a=st.integers(0, 2),
        b=st.booleans(),
        bps=st.integers(1, BPS - 2),
    )
    def model_owner(self, action: int, model_id: int, a: int, b: bool, bps: int) -> None:
        """The model's owner changes its offer or split, or hands the model to the other creator."""
        if action == 0:
            self.set_offer(model_id, a, b, [0, 1, 3][a], [0, 1, 997][bps % 3])
        elif action == 1:
            self.set_split(model_id, a, bps)
        else:
            self.transfer_model(model_id, b)

    def set_offer(
        self, model_id: int, currency: int, active: bool, scale: int, per_call: int
    ) -> None:
        cur = self.currencies[currency]
        offer = Offer(cur, 1_000_003 * scale, 600, 1, 5, active, 20_000_009 * scale, per_call)
        error = None if self.ledger.allowed[cur] else "CurrencyNotAllowed"
        self._send(
            self._owner(model_id),
            self.market.escrow,
            f"setOffer(uint256,{OFFER_TYPE})",
            model_id,
            offer.as_tuple(),
            error=error,
        )
        if error is None:
            self.ledger.models[model_id].offer = offer

    def set_split(self, model_id: int, kind: int, bps: int) -> None:
        ledger, m = self.ledger, self.market
        model = ledger.models[model_id]
        payees: list[str] = []
        shares: list[int] = []
        if kind == 1:
            payees, shares = [model.owner, _addr(m.collaborator)], [bps, BPS - bps]
        elif kind == 2:
            payees = [_addr(m.collaborator), model.owner, _addr(m.creators[1])]
            shares = [1, bps, BPS - bps - 1]
        self._send(
            self._owner(model_id),
            m.escrow,
            "setSplit(uint256,address[],uint16[])",
            model_id,
            payees,
            shares,
        )
        if kind == 0:
            model.split_owner = ETH
        else:
            model.split_nonce += 1
            model.split_owner = model.owner
            ledger.splits[(1 << 160) + (model_id << 32) + model.split_nonce] = (payees, shares)

    def transfer_model(self, model_id: int, reauthorise: bool) -> None:
        m, model = self.market, self.ledger.models[model_id]
        new_owner = next(c for c in m.creators if _addr(c) != model.owner)
        self._send(
            self._owner(model_id),
            m.registry,
            "transferFrom(address,address,uint256)",
            model.owner,
            _addr(new_owner),
            model_id,
        )
        model.owner = _addr(new_owner)
        if reauthorise and model.authorised_by != model.owner:
            self._send(
                new_owner,
                m.relayers,
                "authorise(uint256,address,string)",
                model_id,
                _addr(m.relayer),
                "bafkreienvelope",
            )
            model.authorised_by = model.owner

    # ------------------------------------------------------------------ buyers
    @rule(user=users_, model_id=models_, periods=st.integers(0, 7), short=st.booleans())
    def rent(self, user: int, model_id: int, periods: int, short: bool) -> None:
        who, ledger = self.users[user], self.ledger
        offer = ledger.models[model_id].offer
        price = periods * offer.price_per_period
        max_price = price - 1 if short and price else price
        error = ledger.rent_error(who, model_id, periods, max_price)
        value = price if offer.currency == ETH else 0
        ts = self._ts()
        self._send(
            self.market.users[user],
            self.market.escrow,
            "rent(uint256,uint256,uint256)",
            model_id,
            periods,
            max_price,
            value=value,
            error=error,
        )
        if error is None:
            ledger.do_rent(ts, who, model_id, periods)
            self.touched_currencies.add(offer.currency)
        self.touched_access.add((model_id, who))

    @rule(user=users_, model_id=models_, short=st.booleans())
    def buy(self, user: int, model_id: int, short: bool) -> None:
        who, ledger = self.users[user], self.ledger
        offer = ledger.models[model_id].offer
        max_price = offer.perpetual_price - (1 if short and offer.perpetual_price else 0)
        error = ledger.buy_error(model_id, max_price)
        value = offer.perpetual_price if offer.currency == ETH else 0
        ts = self._ts()
        self._send(
            self.market.users[user],
            self.market.escrow,
            "buy(uint256,uint256)",
            model_id,
            max_price,
            value=value,
            error=error,
        )
        if error is None:
            ledger.do_buy(ts, who, model_id)
            self.touched_currencies.add(offer.currency)
        self.touched_access.add((model_id, who))

    @precondition(lambda self: self.ledger.licences)
    @rule(
        user=users_,
        pick=picks,
        currency=st.integers(0, 2),
        price=st.sampled_from([0, 3, 999_999_937]),
        anyone=st.booleans(),
    )
    def list_licence(self, user: int, pick: int, currency: int, price: int, anyone: bool) -> None:
        lid = self._pick(sorted(self.ledger.licences), pick)
        holder = self.ledger.licences[lid].holder
        who = holder if holder in self.users and not anyone else self.users[user]
        cur = self.currencies[currency]
        error = self.ledger.list_error(who, lid, cur)
        self._send(
            self.accounts[who],
            self.market.escrow,
            "list(uint256,address,uint128)",
            lid,
            cur,
            price,
            error=error,
        )
        if error is None:
            self.ledger.listings[lid] = (who, cur, price)

    @precondition(lambda self: self.ledger.listings)
    @rule(pick=picks)
    def delist(self, pick: int) -> None:
        lid = self._pick(sorted(self.ledger.listings), pick)
        seller = self.ledger.listings[lid][0]
        self._send(self.accounts[seller], self.market.escrow, "delist(uint256)", lid)
        del self.ledger.listings[lid]

    @precondition(lambda self: self.ledger.listings)
    @rule(user=users_, pick=picks, short=st.booleans())
    def buy_listed(self, user: int, pick: int, short: bool) -> None:
        ledger = self.ledger
        lid = self._pick(sorted(ledger.listings), pick)
        seller, cur, price = ledger.listings[lid]
        who = self.users[user]
        max_price = price - 1 if short and price else price
        error = ledger.buy_listed_error(who, lid, max_price)
        ts = self._ts()
        self._send(
            self.market.users[user],
            self.market.escrow,
            "buyListed(uint256,uint256)",
            lid,
            max_price,
            value=price if cur == ETH else 0,
            error=error,
        )
        if error is None:
            ledger.do_buy_listed(ts, who, lid)
            self.touched_currencies.add(cur)
        model_id = ledger.licences[lid].model_id
        self.touched_access.update({(model_id, who), (model_id, seller)})

    @precondition(
        lambda self: any(lic.holder in self.users for lic in self.ledger.licences.values())
    )
    @rule(pick=picks, to=users_)
    def transfer_licence(self, pick: int, to: int) -> None:
        ledger = self.ledger
        lid = self._pick(
            sorted(i for i, lic in ledger.licences.items() if lic.holder in self.users), pick
        )
        lic = ledger.licences[lid]
        holder, receiver = lic.holder, self.users[to]
        error = ledger.transfer_error(lid, receiver)
        self._send(
            self.accounts[holder],
            self.market.licences,
            "transferFrom(address,address,uint256)",
            holder,
            receiver,
            lid,
            error=error,
        )
        if error is None:
            lic.holder = receiver
            # A transfer ends the licence's listing for good, even if the licence comes back.
            ledger.listings.pop(lid, None)
        self.touched_access.update({(lic.model_id, holder), (lic.model_id, receiver)})

    # ------------------------------------------------------------------ disputes
    @precondition(lambda self: self.ledger.licences)
    @rule(user=users_, pick=picks, explicit=st.booleans())
    def open_dispute(self, user: int, pick: int, explicit: bool) -> None:
        ledger = self.ledger
        who = self.users[user]
        mine = [k for k in ledger.receipts if k[1] == who]
        if explicit and mine:
            lid, _, payee_set, cur = self._pick(sorted(mine), pick)
            args: tuple = (lid, payee_set, cur)
            signature = "openDispute(uint256,uint256,address)"
        else:
            lid = self._pick(sorted(ledger.licences), pick)
            model_id = ledger.licences[lid].model_id
            payee_set, cur = ledger.payee_set(model_id), ledger.models[model_id].offer.currency
            args, signature = (lid,), "openDispute(uint256)"
        error = ledger.dispute_error(who, lid, payee_set, cur, self._ts())
        self._send(self.market.users[user], self.market.escrow, signature, *args, error=error)
        if error is None:
            ledger.do_dispute(who, lid, payee_set, cur)
            self.touched_currencies.add(cur)

    @precondition(lambda self: self.ledger.dispute_count)
    @rule(
        pick=picks,
        kind=st.integers(0, 2),
        refund_bps=st.sampled_from([0, 1, 3_333, 9_999, 10_000]),
        anyone=st.booleans(),
    )
    def resolve(self, pick: int, kind: int, refund_bps: int, anyone: bool) -> None:
        ledger = self.ledger
        open_ = [i for i, d in ledger.disputes.items() if d["open"]]
        dispute_id = (
            self._pick(open_, pick) if open_ and not anyone else pick % ledger.dispute_count + 1
        )
        error = ledger.resolve_error(dispute_id, kind, refund_bps)
        outcome = self._send(
            self.market.arbiter,
            self.market.escrow,
            "resolveDispute(uint256,uint8,uint16)",
            dispute_id,
            kind,
            refund_bps,
            error=error,
            credits_later=True,
        )
        if error is None:
            d = ledger.disputes[dispute_id]
            lic = ledger.licences[d["licence"]]
            self.touched_access.add((lic.model_id, lic.holder))
            self._check_credits(outcome, ledger.do_resolve(dispute_id, kind, refund_bps))
            self.touched_currencies.add(d["currency"])

    # ------------------------------------------------------------------ settlement and withdrawal
    @precondition(lambda self: self.ledger.buckets)
    @rule(pick=picks, wait=st.booleans(), anyone=st.booleans(), then_withdraw=st.booleans())
    def settle(self, pick: int, wait: bool, anyone: bool, then_withdraw: bool) -> None:
        """Anyone settles a bucket; with ``wait``, after time has moved to its release; with
        ``then_withdraw``, one of the credited payees withdraws at once."""
        ledger = self.ledger
        if wait:
            latest = max(k[2] for k in ledger.buckets)
            if latest > self.head:
                self.time_jump(latest - self.head)
        ts = self._ts()
        matured = sorted(k for k in ledger.buckets if k[2] <= ts)
        key = self._pick(matured if matured and not anyone else sorted(ledger.buckets), pick)
        error = ledger.settle_error(key, ts)
        outcome = self._send(
            self.market.deployer,
            self.market.escrow,
            "settle(uint256,address,uint64)",
            *key,
            error=error,
            credits_later=True,
        )
        if error is None:
            credits = ledger.do_settle(key)
            self._check_credits(outcome, credits)
            self.touched_currencies.add(key[1])
            if then_withdraw and credits:
                who, cur, _ = credits[pick % len(credits)]
                if ledger.owed[(who, cur)]:
                    self._send(self.accounts[who], self.market.escrow, "withdraw(address)", cur)
                    ledger.do_withdraw(who, cur)
        elif ledger.buckets.get(key) == [0, 0]:
            del ledger.buckets[key]

    @rule(pick=picks, currency=st.integers(0, 2), anyone=st.booleans())
    def withdraw(self, pick: int, currency: int, anyone: bool) -> None:
        ledger = self.ledger
        owed = sorted(k for k, v in ledger.owed.items() if v)
        if owed and not anyone:
            who, cur = self._pick(owed, pick)
        else:
            who, cur = self._pick(sorted(self.accounts), pick), self.currencies[currency]
        error = ledger.withdraw_error(who, cur)
        self._send(self.accounts[who], self.market.escrow, "withdraw(address)", cur, error=error)
        if error is None:
            ledger.do_withdraw(who, cur)
            self.touched_currencies.add(cur)

    # ------------------------------------------------------------------ pay per use
    @rule(user=users_, model_id=models_, amount=st.sampled_from([0, 1, 99, 10**6 + 1]))
    def deposit_credit(self, user: int, model_id: int, amount: int) -> None:
        ledger, m = self.ledger, self.market
        who = self.users[user]
        cur = ledger.models[model_id].offer.currency
        error = ledger.deposit_error(who, model_id, amount)
        ts = self._ts()
        self._send(
            m.users[user],
            m.credit,
            "deposit(uint256,address,uint256)",
            model_id,
            _addr(m.relayer),
            amount,
            value=amount if cur == ETH else 0,
            error=error,
        )
        if error is None:
            ledger.do_deposit(ts, who, model_id, amount)
            self.touched_currencies.add(cur)

    @precondition(lambda self: any(c.expires_at for c in self.ledger.channels.values()))
    @rule(pick=picks, delta=st.sampled_from([0, 1, 50, 10**6]), replay=st.booleans())
    def redeem(self, pick: int, delta: int, replay: bool) -> None:
        ledger, m = self.ledger, self.market
        who, model_id = self._pick(
            sorted(k for k, c in ledger.channels.items() if c.expires_at), pick
        )
        channel = ledger.channels[(who, model_id)]
        signed = self.vouchers.setdefault((who, model_id), [])
        if replay and signed:
            voucher, signature = signed[pick % len(signed)]
        else:
            voucher = Voucher(
                model_id=model_id,
                relayer=_addr(m.relayer),
                cumulative_amount=channel.redeemed + delta,
                chain_id=self.driver.chain_id,
                escrow=_addr(m.credit),
            )
            signature = sign_voucher(voucher, self.accounts[who].private_key)
            signed.append((voucher, signature))
        ts = self._ts()
        error = ledger.redeem_error(who, model_id, voucher.cumulative_amount, ts)
        self._send(
            m.relayer,
            m.credit,
            f"redeem(address,{VOUCHER_TYPE},bytes)",
            who,
            voucher.as_tuple(),
            signature,
            error=error,
        )
        if error is None:
            ledger.do_redeem(ts, who, model_id, voucher.cumulative_amount)
            self.touched_currencies.add(channel.currency)

    @precondition(lambda self: any(c.expires_at for c in self.ledger.channels.values()))
    @rule(pick=picks)
    def reclaim(self, pick: int) -> None:
        ledger = self.ledger
        who, model_id = self._pick(
            sorted(k for k, c in ledger.channels.items() if c.expires_at), pick
        )
        user = self.users.index(who)
        error = ledger.reclaim_error(who, model_id, self._ts())
        self._send(
            self.market.users[user],
            self.market.credit,
            "reclaim(uint256,address)",
            model_id,
            _addr(self.market.relayer),
            error=error,
        )
        if error is None:
            self.touched_currencies.add(ledger.channels[(who, model_id)].currency)
            ledger.do_reclaim(who, model_id)

    # ------------------------------------------------------------------ time and admin
    @rule(seconds=st.sampled_from([1, 599, 3_599, WINDOW + 1, WINDOW + 3_601, 86_400]))
    def time_jump(self, seconds: int) -> None:
        self.driver.time_travel(self.head + seconds)
        self.prev_head, self.head = self.head, self.driver.head_timestamp()

    @rule(
        action=st.integers(0, 2),
        fee_bps=st.sampled_from([0, 1, 999, 1_000]),
        currency=st.integers(0, 2),
    )
    def admin(self, action: int, fee_bps: int, currency: int) -> None:
        """The admin changes the fee, delists a currency or lists it again."""
        if action == 0:
            self._send(self.market.deployer, self.market.escrow, "setFee(uint16)", fee_bps)
            self.ledger.fee_bps = fee_bps
            return
        cur, allowed = self.currencies[currency], action == 2
        self._send(
            self.market.deployer,
            self.market.escrow,
            "setCurrencyAllowed(address,bool)",
            cur,
            allowed,
        )
        self.ledger.allowed[cur] = allowed

    # ------------------------------------------------------------------ invariants
    def _balance(self, holder: Any, currency: str) -> int:
        if currency == ETH:
            return self.driver.eth_balance(_addr(holder))
        return self.driver.call(currency, "balanceOf(address)", _addr(holder))[0]

    @invariant()
    def escrows_hold_exactly_what_they_owe(self) -> None:
        ledger, m = self.ledger, self.market
        for cur in {ETH} | self.touched_currencies:
            owes = ledger.held(cur) + ledger.disputed(cur) + ledger.owed_total(cur)
            assert self._balance(m.escrow, cur) == owes, f"RentalEscrow balance != owed in {cur}"
            channels = (
                ledger.credit_in[cur] - ledger.credit_redeemed[cur] - ledger.credit_reclaimed[cur]
            )
            assert ledger.channel_total(cur) == channels
            assert self._balance(m.credit, cur) == channels, (
                f"CreditEscrow balance != owed in {cur}"
            )
        self.touched_currencies.clear()

    @invariant()
    def payments_are_accounted_to_the_wei(self) -> None:
        ledger = self.ledger
        for cur in self.currencies:
            paid_out = sum(ledger.credited_by_kind[(k, cur)] for k in ("fee", "share", "refund"))
            assert paid_out + ledger.held(cur) + ledger.disputed(cur) == ledger.paid_in[cur]
        for key, credited in ledger.credited.items():
            assert ledger.withdrawn[key] <= credited
            assert ledger.owed[key] == credited - ledger.withdrawn[key]

    @invariant()
    def access_matches_paid_licences(self) -> None:
        ledger = self.ledger
        pairs = set(self.touched_access)
        pairs.update(
            (lic.model_id, lic.holder)
            for lic in ledger.licences.values()
            if not lic.perpetual and self.prev_head < lic.expires <= self.head
        )
        for model_id, account in pairs:
            if account == ETH:
                continue
            actual = self.driver.call(
                self.market.licences,
                "hasAccess(uint256,address)",
                model_id,
                account,
                returns=("bool",),
            )[0]
            assert actual == ledger.has_access(model_id, account, self.head), (model_id, account)
        self.touched_access.clear()

    def teardown(self) -> None:
        """End of a sequence: compare every balance, bucket, channel and access with the model."""
        ledger, m, d = self.ledger, self.market, self.driver
        try:
            for account, cur in ledger.credited:
                owed = d.call(m.escrow, "owed(address,address)", account, cur)[0]
                assert owed == ledger.owed[(account, cur)], (account, cur)
            for key, (amount, fee) in ledger.buckets.items():
                assert d.call(
                    m.escrow, "held(uint256,address,uint64)", *key, returns=("uint128", "uint128")
                ) == (amount, fee), key
            for (who, model_id), ch in ledger.channels.items():
                _, deposited, redeemed, expires = d.call(
                    m.credit,
                    "channelOf(address,uint256,address)",
                    who,
                    model_id,
                    _addr(m.relayer),
                    returns=("address", "uint128", "uint128", "uint64"),
                )
                assert (deposited, redeemed) == (ch.deposited, ch.redeemed)
                assert redeemed <= deposited
            for model_id in ledger.models:
                for who in self.users:
                    actual = d.call(
                        m.licences, "hasAccess(uint256,address)", model_id, who, returns=("bool",)
                    )[0]
                    assert actual == ledger.has_access(model_id, who, self.head)
            # LicenseNFT keeps ERC-721 owners and balances in its own slots: both must match
            # (a terminated licence has holder ETH, the zero address).
            licences = ledger.licences.items()
            live = {n: lic.holder.lower() for n, lic in licences if lic.holder != ETH}
            for licence_id, holder in live.items():
                owner = d.call(m.licences, "ownerOf(uint256)", licence_id, returns=("address",))[0]
                assert owner.lower() == holder, licence_id
            held_by = Counter(live.values())
            for who in self.users:
                count = d.call(m.licences, "balanceOf(address)", who, returns=("uint256",))[0]
                assert count == held_by[_addr(who).lower()], who
            for cur in self.currencies:
                owes = ledger.held(cur) + ledger.disputed(cur) + ledger.owed_total(cur)
                assert self._balance(m.escrow, cur) == owes
        finally:
            self.driver.restore(self.snapshot)


def test_market__random_action_sequences__keep_every_promise(market: Market, chain: Any) -> None:
    m = market
    creator, creator2 = m.creators
    m.registry.publishModel("bafyweights1", "bafkmeta1", 500, sender=creator)
    m.registry.publishModel("bafyweights2", "bafkmeta2", 1_000, sender=creator2)
    m.escrow.setOffer(1, MODEL_1.as_tuple(), sender=creator)
    model_2 = Offer(_addr(m.fee_token), active=True, **MODEL_2_PRICES)
    m.escrow.setOffer(2, model_2.as_tuple(), sender=creator2)
    m.escrow.setSplit(1, [creator, m.collaborator], [7_001, 2_999], sender=creator)
    for model_id, owner in ((1, creator), (2, creator2)):
        m.relayers.authorise(model_id, m.relayer, "bafkreienvelope", sender=owner)
    # Move the chain well ahead of the wall clock so every block is exactly one second after the
    # last one (py-evm uses max(now, parent + 1)): sequences replay identically when shrunk.
    chain.pending_timestamp = chain.pending_timestamp + 30 * 86_400
    chain.mine()

    MarketMachine.market = m
    MarketMachine.driver = Driver(chain, m.deployer)
    MarketMachine.chain = chain
    MarketMachine.snapshot = MarketMachine.driver.snapshot()
    MarketMachine.base_models = {
        1: Model(_addr(creator), 500, MODEL_1, _addr(creator), 1, _addr(creator)),
        2: Model(_addr(creator2), 1_000, model_2, ETH, 0, _addr(creator2)),
    }
    MarketMachine.base_splits = {
        (1 << 160) + (1 << 32) + 1: ([_addr(creator), _addr(m.collaborator)], [7_001, 2_999])
    }
    run_state_machine_as_test(
        MarketMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        ),
    )
    for (function, outcome), count in sorted(STATS.items()):
        print(f"{function:>20} {outcome:<24} {count}")
