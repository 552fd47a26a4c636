"""CreditEscrow.redeemSessionBatch: vouchers signed by session keys, each session within its cap.

The cap holds on chain per session, across every batch (docs/CONTRACTS-EXT.md, "Sessions").
Tests call the raw contract, where a relayer (or an attacker posing as one) would.
"""

from __future__ import annotations

from dataclasses import replace

import ape
import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector as selector
from tests.unit.contracts.conftest import PRICE_PER_CALL
from tests.utils.chain import ZERO_ADDRESS, only

from daimm import eip712
from daimm.eip712 import Session, Voucher

KEY = Account.from_key(b"\x51" * 32)
OTHER_KEY = Account.from_key(b"\x52" * 32)
DEPOSIT = 10 * PRICE_PER_CALL
CAP = 3 * PRICE_PER_CALL
REENTRANT = selector("ReentrancyGuardReentrantCall()")


def make_session(chain, registry, holder, relayer, model_id, **changes) -> Session:
    fields = dict(holder=holder.address, key=KEY.address, model_id=model_id,
                  relayer=relayer.address, expires_at=2**40, max_calls=100, spend_cap=CAP,
                  nonce=0, chain_id=chain.chain_id, registry=registry.address)  # fmt: skip
    fields.update(changes)
    return Session(**fields)


def make_voucher(chain, credit_escrow, model_id, relayer, amount) -> Voucher:
    return Voucher(model_id=model_id, relayer=relayer.address, cumulative_amount=amount,
                   chain_id=chain.chain_id, escrow=credit_escrow.address)  # fmt: skip


@pytest.fixture
def session(chain, session_registry, credit_escrow, eth_ppu_model, authorised_relayer, renter):
    """`renter` deposited DEPOSIT wei and signed a session (cap CAP) for KEY with that relayer."""
    credit_escrow.deposit(eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter)
    return make_session(chain, session_registry, renter, authorised_relayer, eth_ppu_model)


@pytest.fixture
def redeem(chain, credit_escrow, eth_ppu_model, authorised_relayer, renter):
    """Redeem, in one batch, the vouchers for the given amounts under the given sessions."""

    def _redeem(*items, key=KEY, holder=renter, sender=authorised_relayer):
        sessions, session_sigs, vouchers, sigs = [], [], [], []
        for session, amount in items:
            voucher = make_voucher(chain, credit_escrow, eth_ppu_model, authorised_relayer, amount)
            sessions.append(session.as_tuple())
            session_sigs.append(eip712.sign_session(session, holder.private_key))
            vouchers.append(voucher.as_tuple())
            sigs.append(eip712.sign_voucher(voucher, key.key))
        return credit_escrow.redeemSessionBatch(
            sessions, session_sigs, vouchers, sigs, sender=sender
        )

    return _redeem


def test_redeem_session_batch__within_the_cap__pays_from_the_holders_channel_and_counts(
    credit_escrow, session, redeem, renter, eth_ppu_model, authorised_relayer
):
    digest = eip712.session_digest(session)

    tx = redeem((session, 2 * PRICE_PER_CALL))

    spent = only(tx, credit_escrow.SessionSpent)
    assert spent.sessionHash == digest
    assert spent.paid == 2 * PRICE_PER_CALL
    assert spent.spent == 2 * PRICE_PER_CALL
    redeemed = only(tx, credit_escrow.VoucherRedeemed)
    assert redeemed.payer == renter.address
    assert redeemed.paid == 2 * PRICE_PER_CALL
    assert credit_escrow.sessionSpent(digest) == 2 * PRICE_PER_CALL
    channel = credit_escrow.channelOf(renter, eth_ppu_model, authorised_relayer)
    assert channel.redeemed == 2 * PRICE_PER_CALL


def test_redeem_session_batch__cap_across_two_batches__second_past_the_cap_reverts(
    credit_escrow, session, redeem
):
    digest = eip712.session_digest(session)
    redeem((session, 2 * PRICE_PER_CALL))

    with ape.reverts(
        credit_escrow.SessionCapExceeded,
        sessionHash=digest,
        spent=4 * PRICE_PER_CALL,
        spendCap=CAP,
    ):
        redeem((session, 4 * PRICE_PER_CALL))

    redeem((session, 3 * PRICE_PER_CALL))  # exactly the cap is allowed
    assert credit_escrow.sessionSpent(digest) == CAP


def test_redeem_session_batch__one_batch_passing_the_cap__reverts_whole(
    credit_escrow, session, redeem, renter, eth_ppu_model, authorised_relayer
):
    digest = eip712.session_digest(session)

    with ape.reverts(
        credit_escrow.SessionCapExceeded,
        sessionHash=digest,
        spent=4 * PRICE_PER_CALL,
        spendCap=CAP,
    ):
        redeem((session, 2 * PRICE_PER_CALL), (session, 4 * PRICE_PER_CALL))

    assert credit_escrow.sessionSpent(digest) == 0
    assert credit_escrow.channelOf(renter, eth_ppu_model, authorised_relayer).redeemed == 0


def test_redeem_session_batch__any_relayer_session__reverts_wrong_relayer(
    credit_escrow, session, redeem, authorised_relayer
):
    anywhere = replace(session, relayer=ZERO_ADDRESS)

    with ape.reverts(
        credit_escrow.SessionWrongRelayer,
        sessionRelayer=ZERO_ADDRESS,
        voucherRelayer=authorised_relayer.address,
    ):
        redeem((anywhere, PRICE_PER_CALL))


def test_redeem_session_batch__session_for_another_model__reverts(
    credit_escrow, session, redeem, eth_ppu_model
):
    elsewhere = replace(session, model_id=eth_ppu_model + 1000)

    with ape.reverts(
        credit_escrow.SessionWrongModel,
        sessionModelId=eth_ppu_model + 1000,
        voucherModelId=eth_ppu_model,
    ):
        redeem((elsewhere, PRICE_PER_CALL))


def test_redeem_session_batch__any_model_session__is_accepted(credit_escrow, session, redeem):
    any_model = replace(session, model_id=0)

    redeem((any_model, PRICE_PER_CALL))

    assert credit_escrow.sessionSpent(eip712.session_digest(any_model)) == PRICE_PER_CALL


def test_redeem_session_batch__session_not_signed_by_its_holder__reverts(
    credit_escrow, session, redeem, stranger
):
    with ape.reverts(
        credit_escrow.InvalidSessionSignature, sessionHash=eip712.session_digest(session)
    ):
        redeem((session, PRICE_PER_CALL), holder=stranger)


def test_redeem_session_batch__voucher_not_signed_by_the_session_key__reverts(
    credit_escrow, session, redeem
):
    with ape.reverts(credit_escrow.InvalidSignature):
        redeem((session, PRICE_PER_CALL), key=OTHER_KEY)


def test_redeem_session_batch__by_another_account__reverts_not_relayer(
    credit_escrow, session, redeem, authorised_relayer, stranger
):
    with ape.reverts(
        credit_escrow.NotRelayer, expected=authorised_relayer.address, caller=stranger.address
    ):
        redeem((session, PRICE_PER_CALL), sender=stranger)


def test_redeem_session_batch__revoked_after_the_calls__still_pays_what_was_served(
    credit_escrow, session_registry, session, redeem, renter
):
    digest = eip712.session_digest(session)
    session_registry.revoke(digest, sender=renter)

    redeem((session, PRICE_PER_CALL))

    assert credit_escrow.sessionSpent(digest) == PRICE_PER_CALL


def test_redeem_session_batch__arrays_of_different_lengths__revert(
    credit_escrow, session, authorised_relayer
):
    with ape.reverts(credit_escrow.BatchLengthMismatch):
        credit_escrow.redeemSessionBatch(
            [session.as_tuple()], [], [], [], sender=authorised_relayer
        )
    with ape.reverts(credit_escrow.EmptyBatch):
        credit_escrow.redeemSessionBatch([], [], [], [], sender=authorised_relayer)


def test_redeem_session_batch__plain_voucher_then_session__session_charged_only_its_delta(
    chain, credit_escrow, session, redeem, renter, eth_ppu_model, authorised_relayer
):
    plain = make_voucher(chain, credit_escrow, eth_ppu_model, authorised_relayer, PRICE_PER_CALL)
    credit_escrow.redeem(
        renter, plain.as_tuple(), eip712.sign_voucher(plain, renter.private_key),
        sender=authorised_relayer,
    )  # fmt: skip

    redeem((session, 3 * PRICE_PER_CALL))

    assert credit_escrow.sessionSpent(eip712.session_digest(session)) == 2 * PRICE_PER_CALL


def test_redeem_session_batch__token_reentering_on_transfer__refused_and_spend_counted_first(
    project, deployer, escrow, credit_escrow, session_registry, model_id, set_offer,
    authorised_relayer, renter, chain,
):  # fmt: skip
    token = project.HostileReentrantToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    set_offer(model_id, token)
    token.mint(renter, 10**20, sender=deployer)
    token.approve(credit_escrow, 2**256 - 1, sender=renter)
    credit_escrow.deposit(model_id, authorised_relayer, 10**6, sender=renter)
    session = make_session(chain, session_registry, renter, authorised_relayer, model_id,
                           spend_cap=10**6)  # fmt: skip
    digest = eip712.session_digest(session)
    voucher = make_voucher(chain, credit_escrow, model_id, authorised_relayer, 10**5)
    args = ([session.as_tuple()], [eip712.sign_session(session, renter.private_key)],
            [voucher.as_tuple()], [eip712.sign_voucher(voucher, KEY.key)])  # fmt: skip
    session_type = "(address,address,uint256,address,uint64,uint64,uint128,uint256)"
    voucher_type = "(uint256,address,uint256,uint256,address)"
    types = [f"{session_type}[]", "bytes[]", f"{voucher_type}[]", "bytes[]"]
    # During the payout's transfer, the token first reads the session's spend (effects must be
    # written by then), then, in a second redemption, replays the batch.
    token.arm(credit_escrow, selector("sessionSpent(bytes32)") + digest, sender=renter)

    credit_escrow.redeemSessionBatch(*args, sender=authorised_relayer)

    assert token.reentered()
    assert int.from_bytes(bytes(token.lastRevert()), "big") == 10**5  # counted before paying
    second = make_voucher(chain, credit_escrow, model_id, authorised_relayer, 2 * 10**5)
    args = (args[0], args[1], [second.as_tuple()], [eip712.sign_voucher(second, KEY.key)])
    token.arm(
        credit_escrow,
        selector(f"redeemSessionBatch({','.join(types)})") + encode(types, list(args)),
        sender=renter,
    )

    credit_escrow.redeemSessionBatch(*args, sender=authorised_relayer)

    assert not token.reentered()
    assert bytes(token.lastRevert())[:4] == REENTRANT
    assert credit_escrow.sessionSpent(digest) == 2 * 10**5
    assert token.balanceOf(escrow) == 2 * 10**5
