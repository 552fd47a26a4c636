"""The voucher store on SQLite and on PostgreSQL: vouchers survive a crash, never serve twice,
nonces are spent exactly once (across threads, and across processes sharing PostgreSQL).

Every store test runs on both backends (``location``): a SQLite file, and a new database on the
session's throwaway PostgreSQL server (:mod:`tests.utils.postgres`, the one the catalog tests use).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.utils.at_once import errors_at_once

from daimm.errors import (
    ChainUnavailableError,
    RelayerError,
    RequestRefusedError,
    TransactionError,
)
from daimm.relayer.sessions import SessionStore
from daimm.relayer.vouchers import Redeemer, SessionCharge, VoucherStore

PAYER = "0x" + "aa" * 20
SIG = b"\x01" * 65
_numbers = itertools.count(1)


def _new_location(backend: str, tmp_path: Path, catalog_databases: Any) -> str:
    """Where a new store lives: a new SQLite file, or a new PostgreSQL database (by URL)."""
    number = next(_numbers)
    if backend == "sqlite":
        return str(tmp_path / f"relayer-{number}.sqlite3")
    return str(catalog_databases.server.create_database(f"relayer_{number}"))


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path, catalog_databases: Any) -> str:
    """Where a fresh store lives: a SQLite file, or a new PostgreSQL database (by URL)."""
    return _new_location(request.param, tmp_path, catalog_databases)


def test_a_recorded_call_survives_a_crash_right_after_commit(location: str) -> None:
    db = location
    # A real process records a call and is killed (SIGKILL) before it could close anything.
    script = textwrap.dedent(
        f"""
        import os, signal
        from daimm.relayer.vouchers import VoucherStore
        store = VoucherStore({db!r})
        store.record_call({PAYER!r}, 1, 100, b"\\x01" * 65, 100)
        store.use_nonce({PAYER!r}, 42, 2**40)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -9

    store = VoucherStore(db)
    recorded = store.get(PAYER, 1)

    assert recorded is not None
    assert (recorded.cumulative, recorded.spent, recorded.redeemed) == (100, 100, 0)
    assert recorded.signature == SIG
    assert store.nonce_used(PAYER, 42)
    assert [v.payer for v in store.unredeemed()] == [PAYER]
    # The same voucher cannot pay for a second call after the restart.
    with pytest.raises(RequestRefusedError) as refused:
        store.record_call(PAYER, 1, 100, SIG, 100)
    assert refused.value.status == 402


def test_vouchers_are_monotonic_and_must_cover_spent_plus_price(location: str) -> None:
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)

    with pytest.raises(RequestRefusedError, match="stale_voucher"):
        store.record_call(PAYER, 1, 200, SIG, 100)
    store.record_call(PAYER, 1, 300, SIG, 100)  # a voucher may cover several calls
    store.record_call(PAYER, 1, 300, SIG, 100)
    with pytest.raises(RequestRefusedError, match="insufficient_voucher"):
        store.record_call(PAYER, 1, 300, SIG, 100)

    assert store.get(PAYER, 1).spent == 300  # type: ignore[union-attr]


def test_a_nonce_is_spent_exactly_once_under_concurrency(location: str) -> None:
    store = VoucherStore(location)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def spend() -> None:
        barrier.wait()
        results.append(store.use_nonce(PAYER, 7, 2**40))

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]


_RACER = textwrap.dedent(
    """
    import json, sys
    from daimm.errors import RequestRefusedError
    from daimm.relayer.vouchers import VoucherStore
    store = VoucherStore(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # every racer starts at once
    nonces = [n for n in range(200) if store.use_nonce(sys.argv[2], n, 2**40)]
    charged = []
    for k in range(1, 101):  # the voucher for k calls of 10, each offered by every racer
        try:
            store.record_call(sys.argv[2], 1, 10 * k, b"\\x01" * 65, 10)
            charged.append(k)
        except RequestRefusedError:
            pass
    print(json.dumps([nonces, charged]), flush=True)
    """
)


def test_racing_processes_on_one_store__spend_each_nonce_and_each_voucher_once(
    location: str,
) -> None:
    # Three real processes (as three relayer replicas) offer the same 200 nonces and the same
    # 100 vouchers to one store at the same time.
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, location, PAYER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]

    nonces = sorted(n for won, _ in results for n in won)
    charged = sorted(k for _, calls in results for k in calls)
    assert nonces == list(range(200))  # every nonce accepted, by exactly one process
    assert len(charged) == len(set(charged))  # no voucher paid for two calls
    recorded = VoucherStore(location).get(PAYER, 1)
    assert recorded is not None
    assert recorded.spent == 10 * len(charged) <= recorded.cumulative


def _open_state(location: str) -> None:
    VoucherStore(location).close()
    SessionStore(location).close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_several_processes_open_one_new_store_at_once__none_fails(
    backend: str, tmp_path: Path, catalog_databases: Any
) -> None:
    # Replicas starting together open one new file: each used to see the session columns missing
    # and add them, and the slower one failed "duplicate column name" (seen in fresh-clone CI).
    found = []
    for _attempt in range(8):
        found += errors_at_once(_open_state, (_new_location(backend, tmp_path, catalog_databases),))
    assert found == []


def test_one_voucher_offered_by_many_threads__is_charged_once(location: str) -> None:
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 100, SIG, 100)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def charge() -> None:
        barrier.wait()
        try:
            store.record_call(PAYER, 1, 200, SIG, 100)
            outcomes.append("charged")
        except RequestRefusedError as refused:
            outcomes.append(refused.code)

    threads = [threading.Thread(target=charge) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["charged"] + ["insufficient_voucher"] * 7
    assert store.get(PAYER, 1).spent == 200  # type: ignore[union-attr]


def test_expired_nonces_are_pruned(location: str) -> None:
    store = VoucherStore(location)
    store.use_nonce(PAYER, 1, deadline=100)
    store.use_nonce(PAYER, 2, deadline=300)

    assert store.prune_nonces(now=200) == 1
    assert not store.nonce_used(PAYER, 1)
    assert store.nonce_used(PAYER, 2)


class _Sender:
    """Records redeemBatch calls. NOTE: a stand-in for the chain; the real path runs in e2e tests.

    ``fail`` makes every call fail as an unreachable chain does; a batch holding a payer in
    ``reverting`` reverts as the contract reverts a batch with one bad voucher.
    """

    def __init__(self, fail: bool = False, reverting: frozenset[str] = frozenset()) -> None:
        self.batches: list[list[tuple[Any, ...]]] = []
        self.fail, self.reverting = fail, reverting

    @property
    def sent(self) -> list[tuple[Any, ...]]:
        return [item for batch in self.batches for item in batch]

    def redeem_batch(self, items: list[tuple[str, tuple[Any, ...], bytes]]) -> str:
        if self.fail:
            raise ChainUnavailableError("stand-in failure")
        if any(payer in self.reverting for payer, _, _ in items):
            raise TransactionError("stand-in revert: InvalidSignature")
        self.batches.append(list(items))
        return "0x" + f"{len(self.batches):064x}"


class _Reader:
    """NOTE: a stand-in for the chain reader (the real one is exercised in e2e tests)."""

    def __init__(self, expires_at: int, now: int, redeemed: int = 0) -> None:
        self.expires_at, self.now, self.redeemed = expires_at, now, redeemed

    def channel_of(self, payer: str, model_id: int, relayer: str) -> Any:
        from daimm.relayer.chain import Channel

        return Channel("0x" + "00" * 20, 1000, self.redeemed, self.expires_at)

    def chain_time(self) -> int:
        return self.now


def test_redeemer_redeems_channels_close_to_expiry_and_records_it(location: str) -> None:
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)
    sender = _Sender()
    relayer, escrow = "0x" + "bb" * 20, "0x" + "cc" * 20
    far = Redeemer(store, _Reader(expires_at=10_000, now=0), sender, relayer=relayer,
                   chain_id=5, escrow=escrow, margin_s=3600)  # fmt: skip
    near = Redeemer(store, _Reader(expires_at=3000, now=0), sender, relayer=relayer,
                    chain_id=5, escrow=escrow, margin_s=3600)  # fmt: skip

    assert far.redeem_due() == []
    assert len(near.redeem_due()) == 1

    assert sender.sent == [(PAYER, (1, relayer, 300, 5, escrow), SIG)]
    assert store.unredeemed() == []
    assert store.get(PAYER, 1).redeemed == 300  # type: ignore[union-attr]


def test_a_failed_redemption_keeps_the_voucher_for_the_next_round(location: str) -> None:
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)
    redeemer = Redeemer(store, _Reader(0, 0), _Sender(fail=True), relayer="0x" + "bb" * 20,
                        chain_id=5, escrow="0x" + "cc" * 20)  # fmt: skip

    assert redeemer.redeem_due(everything=True) == []
    assert len(store.unredeemed()) == 1


def test_a_voucher_already_redeemed_on_chain_is_recorded_without_a_transaction(
    location: str,
) -> None:
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)
    sender = _Sender()
    redeemer = Redeemer(store, _Reader(0, 0, redeemed=300), sender, relayer="0x" + "bb" * 20,
                        chain_id=5, escrow="0x" + "cc" * 20)  # fmt: skip

    assert redeemer.redeem_due(everything=True) == []
    assert sender.sent == []
    assert store.unredeemed() == []


def test_due_vouchers_go_out_in_batches_of_batch_size(location: str) -> None:
    store = VoucherStore(location)
    payers = [f"0x{i:040x}" for i in range(1, 6)]
    for payer in payers:
        store.record_call(payer, 1, 300, SIG, 100)
    sender = _Sender()
    redeemer = Redeemer(store, _Reader(0, 0), sender, relayer="0x" + "bb" * 20, chain_id=5,
                        escrow="0x" + "cc" * 20, batch_size=2)  # fmt: skip

    sent = redeemer.redeem_due(everything=True)

    assert [len(batch) for batch in sender.batches] == [2, 2, 1]
    assert len(set(sent)) == 3
    assert sorted(payer for payer, _, _ in sender.sent) == sorted(payers)
    assert store.unredeemed() == []


def test_a_reverting_batch_is_retried_one_by_one_and_only_the_bad_voucher_stays(
    location: str,
) -> None:
    store = VoucherStore(location)
    good, bad = "0x" + "01" * 20, "0x" + "02" * 20
    store.record_call(good, 1, 300, SIG, 100)
    store.record_call(bad, 1, 300, SIG, 100)
    sender = _Sender(reverting=frozenset({bad}))
    redeemer = Redeemer(store, _Reader(0, 0), sender, relayer="0x" + "bb" * 20, chain_id=5,
                        escrow="0x" + "cc" * 20)  # fmt: skip

    sent = redeemer.redeem_due(everything=True)

    assert len(sent) == 1
    assert [payer for payer, _, _ in sender.sent] == [good]
    assert [v.payer for v in store.unredeemed()] == [bad]


def test_batch_size_below_one_is_refused(location: str) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Redeemer(VoucherStore(location), _Reader(0, 0), _Sender(), relayer="0x" + "bb" * 20,
                 chain_id=5, escrow="0x" + "cc" * 20, batch_size=0)  # fmt: skip


def test_redemption_rounds__on_a_shared_postgres_store__go_to_one_replica_at_a_time(
    location: str,
) -> None:
    first, second = VoucherStore(location), VoucherStore(location)

    with first.redemption_turn() as mine, second.redemption_turn() as theirs:
        turns = (mine, theirs)
    with second.redemption_turn() as later:
        pass

    # SQLite belongs to one process, which always has the turn.
    assert turns == ((True, True) if location.endswith(".sqlite3") else (True, False))
    assert later is True


def test_a_redeemer_without_the_turn__sends_nothing(location: str) -> None:
    if location.endswith(".sqlite3"):
        pytest.skip("SQLite belongs to one process: its redeemer always has the turn")
    holder, store = VoucherStore(location), VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)
    sender = _Sender()
    redeemer = Redeemer(store, _Reader(0, 0), sender, relayer="0x" + "bb" * 20, chain_id=5,
                        escrow="0x" + "cc" * 20)  # fmt: skip

    with holder.redemption_turn():
        assert redeemer.redeem_due(everything=True) == []
    assert len(redeemer.redeem_due(everything=True)) == 1
    assert len(sender.sent) == 1


def test_a_lost_postgres_connection__fails_the_charge_503_and_reconnects_for_the_rest(
    location: str, catalog_databases: Any
) -> None:
    if location.endswith(".sqlite3"):
        pytest.skip("a SQLite file has no connection to lose")
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 100, SIG, 100)

    catalog_databases.server.terminate_connections(location.split("@/")[1].split("?")[0])
    with pytest.raises(RequestRefusedError) as lost:
        store.record_call(PAYER, 1, 200, SIG, 100)

    # A charge whose commit is in doubt is never sent again (it could be paid twice) ...
    assert (lost.value.status, lost.value.code) == (503, "state_unavailable")
    assert store.record_call(PAYER, 1, 200, SIG, 100).spent == 200
    # ... while a nonce, which at worst is refused as used, goes out again on a new connection.
    assert store.use_nonce(PAYER, 5, 2**40)
    assert store.nonce_used(PAYER, 5)


def test_an_unreachable_postgres_url__is_one_relayer_error_without_the_password() -> None:
    with pytest.raises(RelayerError, match="cannot reach the relayer state database") as failed:
        VoucherStore("postgresql://relayer:hunter2@127.0.0.1:9/relayer")

    assert "hunter2" not in str(failed.value)


# ------------------------------------------------------------------ vouchers under a session
def _charge(n: int, cap: int) -> SessionCharge:
    return SessionCharge(bytes([n]) * 32, cap, f"token-{n}")


def test_session_calls_are_counted_and_refused_past_the_spend_cap(location: str) -> None:
    store = VoucherStore(location)
    session = _charge(1, 250)
    store.record_session_call(PAYER, 1, 100, SIG, 100, session)
    store.record_session_call(PAYER, 1, 200, SIG, 100, session)

    with pytest.raises(RequestRefusedError) as refused:
        store.check_session_spend(PAYER, 1, 300, session)
    assert (refused.value.status, refused.value.code) == (402, "session_spend_cap")
    with pytest.raises(RequestRefusedError) as refused:
        store.record_session_call(PAYER, 1, 300, SIG, 100, session)

    assert refused.value.code == "session_spend_cap"
    stored = store.get(PAYER, 1)
    assert stored is not None
    assert (stored.cumulative, stored.spent, stored.session_token) == (200, 200, "token-1")


def test_a_plain_voucher_after_a_session_one_clears_the_session_on_the_channel(
    location: str,
) -> None:
    store = VoucherStore(location)
    store.record_session_call(PAYER, 1, 100, SIG, 100, _charge(1, 1000))

    store.record_call(PAYER, 1, 200, SIG, 100)

    stored = store.get(PAYER, 1)
    assert stored is not None and stored.session_token is None


def test_session_spend_holds_under_concurrency(location: str) -> None:
    store = VoucherStore(location)
    session = _charge(2, 500)
    results: list[str] = []

    def call(i: int) -> None:
        try:
            # Every caller signs the next voucher it believes in: only 5 calls fit the cap.
            current = store.get(PAYER, 1)
            cumulative = (current.cumulative if current else 0) + 100
            store.record_session_call(PAYER, 1, cumulative, SIG, 100, session)
            results.append("ok")
        except RequestRefusedError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = store.get(PAYER, 1)
    assert stored is not None and stored.spent <= 500
    assert results.count("ok") * 100 == stored.spent


class _SessionSender(_Sender):
    def __init__(self) -> None:
        super().__init__()
        self.session_batches: list[list[tuple[Any, ...]]] = []

    def redeem_session_batch(self, items: list[tuple[Any, ...]]) -> str:
        self.session_batches.append(list(items))
        return "0x" + f"{100 + len(self.session_batches):064x}"


def test_redeemer_sends_session_vouchers_with_their_session(location: str) -> None:
    from eth_account import Account

    from daimm.eip712 import Session
    from daimm.sessions import encode_session_token

    holder, key = Account.from_key(b"\x61" * 32), Account.from_key(b"\x62" * 32)
    relayer, escrow = "0x" + "bb" * 20, "0x" + "cc" * 20
    session = Session(holder=holder.address, key=key.address, model_id=1, relayer=relayer,
                      expires_at=10**10, max_calls=10, spend_cap=1000, nonce=0, chain_id=5,
                      registry="0x" + "dd" * 20)  # fmt: skip
    holder_sig = b"\x02" * 65
    token = encode_session_token(session, holder_sig)
    store = VoucherStore(location)
    store.record_call(PAYER, 1, 300, SIG, 100)
    store.record_session_call(holder.address, 1, 200, SIG, 100,
                              SessionCharge(b"\x07" * 32, 1000, token))  # fmt: skip
    sender = _SessionSender()
    redeemer = Redeemer(store, _Reader(0, 0), sender, relayer=relayer, chain_id=5, escrow=escrow)

    assert len(redeemer.redeem_due(everything=True)) == 2

    assert sender.sent == [(PAYER, (1, relayer, 300, 5, escrow), SIG)]
    assert sender.session_batches == [
        [(session.as_tuple(), holder_sig, (1, relayer, 200, 5, escrow), SIG)]
    ]
    assert store.unredeemed() == []


def test_session_call_cap_holds_across_two_stores_sharing_the_state(location: str) -> None:
    """Two SessionStores on one location: two replicas on one PostgreSQL store (or two
    processes on one SQLite file); the cap counts their calls together."""
    from daimm.eip712 import Session
    from daimm.relayer.sessions import SessionGrant, SessionStore

    session = Session(holder="0x" + "61" * 20, key="0x" + "62" * 20, model_id=1,
                      relayer="0x" + "bb" * 20, expires_at=10**10, max_calls=5, spend_cap=0,
                      nonce=0, chain_id=5, registry="0x" + "dd" * 20)  # fmt: skip
    grant = SessionGrant(session, b"\x09" * 32)
    replica_a, replica_b = SessionStore(location), SessionStore(location)
    served: list[int | None] = []

    def call(store: SessionStore) -> None:
        served.append(store.use_call(grant))

    threads = [
        threading.Thread(target=call, args=(replica_a if i % 2 else replica_b,)) for i in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(n for n in served if n is not None) == [1, 2, 3, 4, 5]
    assert served.count(None) == 7
    assert replica_a.is_session_key(session.key) or replica_b.is_session_key(session.key)
    assert SessionStore(location).is_session_key(session.key)  # a replica started later knows it
    replica_a.close()
    replica_b.close()
