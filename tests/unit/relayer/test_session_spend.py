"""Property: what the relayer counts for a session's spend bounds what the chain will charge it.

The relayer serves a voucher under a session only while its count stays within the spend cap
(``vouchers._session_spend``); the chain (``CreditEscrow.redeemSessionBatch``) charges each
redemption of a session-signed voucher, ``cumulative - redeemed``, to that session and refuses
past its cap. Whatever the mix of plain and session calls on a channel and whenever the relayer
redeems, no redemption of a call it served may be refused: the chain's charge below is a model
of the contract's rule (its tests are tests/unit/contracts/test_credit_escrow_sessions.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from daimm.errors import RequestRefusedError
from daimm.relayer.vouchers import SessionCharge, VoucherStore

PAYER = "0x" + "aa" * 20
SIG = b"\x01" * 65
PRICE = 10
SESSIONS = {1: SessionCharge(b"\x01" * 32, 25, "s1"), 2: SessionCharge(b"\x02" * 32, 35, "s2")}

# A step: ("call", signer) with signer 0 (the holder's own voucher) or a session; or ("redeem",).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.sampled_from([0, 1, 1, 2])), st.tuples(st.just("redeem"))
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_session_spend__any_calls_and_redemptions__chain_never_refuses_and_cap_holds(
    plan: list[tuple],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = VoucherStore(Path(tmp) / "relayer.sqlite3")
        chain_redeemed, chain_spent = 0, {1: 0, 2: 0}
        latest_signer = 0
        try:
            for step in plan:
                if step[0] == "call":
                    signer = step[1]
                    current = store.get(PAYER, 1)
                    cumulative = (current.spent if current else 0) + PRICE
                    try:
                        if signer:
                            session = SESSIONS[signer]
                            store.check_session_spend(PAYER, 1, cumulative, session)
                            store.record_session_call(PAYER, 1, cumulative, SIG, PRICE, session)
                        else:
                            store.record_call(PAYER, 1, cumulative, SIG, PRICE)
                    except RequestRefusedError as exc:
                        assert exc.code == "session_spend_cap"
                        continue
                    latest_signer = signer
                else:
                    stored = store.get(PAYER, 1)
                    if stored is None or stored.cumulative <= chain_redeemed:
                        continue
                    paid = stored.cumulative - chain_redeemed
                    if latest_signer:  # the contract's rule: charged to the signing session
                        chain_spent[latest_signer] += paid
                        assert chain_spent[latest_signer] <= SESSIONS[latest_signer].cap
                    chain_redeemed = stored.cumulative
                    store.mark_redeemed(PAYER, 1, stored.cumulative)
        finally:
            store.close()


def test_session_spend__only_session_calls__counts_exactly_the_served_value() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = VoucherStore(Path(tmp) / "relayer.sqlite3")
        session = SESSIONS[1]
        served = 0
        for n in range(1, 10):
            try:
                store.record_session_call(PAYER, 1, n * PRICE, SIG, PRICE, session)
                served += PRICE
            except RequestRefusedError:
                break
        store.close()

    assert served == 20  # 2 calls of 10 within the cap of 25: exact, not merely bounded
