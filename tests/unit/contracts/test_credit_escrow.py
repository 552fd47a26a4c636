"""CreditEscrow: pay-per-use channels, EIP-712 vouchers, redemption into RentalEscrow, reclaim."""

from __future__ import annotations

import ape
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from tests.unit.contracts.conftest import CREDIT_TIMEOUT, PRICE_PER_CALL
from tests.utils.chain import ETH, ZERO_ADDRESS, block_time, only

from daimm import eip712
from daimm.eip712 import SECP256K1_N, Voucher, encode_signature, split_signature
from daimm.errors import ConfigError
from daimm.market.deploy_extensions import deploy_extensions, verify_extensions

DEPOSIT = 10 * PRICE_PER_CALL


def make_voucher(credit_escrow, chain, model_id, relayer, amount, **overrides) -> Voucher:
    fields = {
        "model_id": model_id,
        "relayer": relayer.address,
        "cumulative_amount": amount,
        "chain_id": chain.chain_id,
        "escrow": credit_escrow.address,
    }
    return Voucher(**{**fields, **overrides})


def high_s_twin(signature: bytes) -> bytes:
    v, r, s = split_signature(signature)
    return encode_signature(55 - v, r, SECP256K1_N - s)


@pytest.fixture
def channel(credit_escrow, eth_ppu_model, authorised_relayer, renter):
    """`renter` deposited DEPOSIT wei for `eth_ppu_model` served by `authorised_relayer`."""
    credit_escrow.deposit(eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter)
    return eth_ppu_model


@pytest.fixture
def sign(renter):
    def _sign(voucher: Voucher, signer=None) -> bytes:
        return eip712.sign_voucher(voucher, (signer or renter).private_key)

    return _sign


# ------------------------------------------------------------------ deposit
def test_deposit__eth__opens_a_channel_and_holds_the_credit(
    credit_escrow, eth_ppu_model, authorised_relayer, renter, chain
):
    before = credit_escrow.balance

    tx = credit_escrow.deposit(
        eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter
    )

    log = only(tx, credit_escrow.CreditDeposited)
    expires_at = block_time(chain, tx) + CREDIT_TIMEOUT
    assert log.payer == renter.address
    assert log.modelId == eth_ppu_model
    assert log.relayer == authorised_relayer.address
    assert log.currency == ETH
    assert log.amount == DEPOSIT
    assert log.expiresAt == expires_at
    assert credit_escrow.channelOf(renter, eth_ppu_model, authorised_relayer) == (
        ETH,
        DEPOSIT,
        0,
        expires_at,
    )
    assert credit_escrow.balance == before + DEPOSIT


def test_deposit__token__pulls_the_tokens_into_the_channel(
    credit_escrow, token, token_ppu_model, authorised_relayer, renter
):
    token.approve(credit_escrow, DEPOSIT, sender=renter)
    renter_before = token.balanceOf(renter)

    tx = credit_escrow.deposit(token_ppu_model, authorised_relayer, DEPOSIT, sender=renter)

    log = only(tx, credit_escrow.CreditDeposited)
    assert log.currency == token.address
    assert log.amount == DEPOSIT
    assert token.balanceOf(credit_escrow) == DEPOSIT
    assert token.balanceOf(renter) == renter_before - DEPOSIT
    channel = credit_escrow.channelOf(renter, token_ppu_model, authorised_relayer)
    assert channel.currency == token.address
    assert channel.deposited == DEPOSIT


def test_deposit__second_deposit__adds_credit_and_extends_the_expiry(
    credit_escrow, channel, authorised_relayer, renter, chain
):
    chain.pending_timestamp += 1000

    tx = credit_escrow.deposit(channel, authorised_relayer, 5, value=5, sender=renter)

    state = credit_escrow.channelOf(renter, channel, authorised_relayer)
    assert state.deposited == DEPOSIT + 5
    assert state.expiresAt == block_time(chain, tx) + CREDIT_TIMEOUT


def test_deposit__model_without_price_per_call__reverts(
    credit_escrow, escrow, eth_ppu_model, authorised_relayer, renter, creator, set_offer
):
    set_offer(eth_ppu_model, ETH, price_per_call=0)

    with ape.reverts(credit_escrow.NoPayPerUse, modelId=eth_ppu_model):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__inactive_offer__reverts(
    credit_escrow, eth_ppu_model, authorised_relayer, renter, set_offer
):
    set_offer(eth_ppu_model, ETH, active=False)

    with ape.reverts(credit_escrow.NoPayPerUse, modelId=eth_ppu_model):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__model_without_offer__reverts(credit_escrow, model_id, authorised_relayer, renter):
    with ape.reverts(credit_escrow.NoPayPerUse, modelId=model_id):
        credit_escrow.deposit(model_id, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__relayer_not_authorised__reverts(
    credit_escrow, relayer_registry, eth_ppu_model, authorised_relayer, renter, creator
):
    relayer_registry.deauthorise(eth_ppu_model, authorised_relayer, sender=creator)

    with ape.reverts(
        credit_escrow.RelayerNotAuthorised,
        modelId=eth_ppu_model,
        relayer=authorised_relayer.address,
    ):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__relayer_authorised_by_a_previous_model_owner__reverts(
    credit_escrow, registry, eth_ppu_model, authorised_relayer, renter, creator, buyer
):
    registry.transferFrom(creator, buyer, eth_ppu_model, sender=creator)

    with ape.reverts(credit_escrow.RelayerNotAuthorised):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__retired_relayer__reverts(
    credit_escrow, relayer_registry, eth_ppu_model, authorised_relayer, renter, operator
):
    relayer_registry.retire(authorised_relayer, sender=operator)

    with ape.reverts(credit_escrow.RelayerNotAuthorised):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 1, value=1, sender=renter)


def test_deposit__zero_amount__reverts(credit_escrow, eth_ppu_model, authorised_relayer, renter):
    with ape.reverts(credit_escrow.ZeroAmount):
        credit_escrow.deposit(eth_ppu_model, authorised_relayer, 0, sender=renter)


def test_deposit__eth_value_differs_from_amount__reverts(
    credit_escrow, eth_ppu_model, authorised_relayer, renter
):
    with ape.reverts(credit_escrow.WrongPayment, expected=DEPOSIT, received=DEPOSIT - 1):
        credit_escrow.deposit(
            eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT - 1, sender=renter
        )


def test_deposit__eth_sent_with_a_token_offer__reverts(
    credit_escrow, token, token_ppu_model, authorised_relayer, renter
):
    token.approve(credit_escrow, DEPOSIT, sender=renter)

    with ape.reverts(credit_escrow.WrongPayment, expected=0, received=1):
        credit_escrow.deposit(token_ppu_model, authorised_relayer, DEPOSIT, value=1, sender=renter)


def test_deposit__offer_currency_changed_since_the_channel_opened__reverts(
    credit_escrow, token, channel, authorised_relayer, renter, set_offer
):
    set_offer(channel, token.address)
    token.approve(credit_escrow, DEPOSIT, sender=renter)

    with ape.reverts(
        credit_escrow.CurrencyChanged, channelCurrency=ETH, offerCurrency=token.address
    ):
        credit_escrow.deposit(channel, authorised_relayer, DEPOSIT, sender=renter)


# ------------------------------------------------------------------ voucher digest
def test_voucher_digest__equals_eth_account_typed_data_hash(
    credit_escrow, channel, authorised_relayer, chain
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, 3 * PRICE_PER_CALL)
    signable = encode_typed_data(full_message=eip712.voucher_typed_data(voucher))

    on_chain = bytes(credit_escrow.voucherDigest(voucher.as_tuple()))

    assert on_chain == keccak(b"\x19\x01" + signable.header + signable.body)
    assert on_chain == eip712.voucher_digest(voucher)


def test_eip712_domain__names_the_credit_escrow_domain(credit_escrow, chain):
    domain = credit_escrow.eip712Domain()

    assert domain[1] == "daimm CreditEscrow"
    assert domain[2] == "1"
    assert domain[3] == chain.chain_id
    assert domain[4] == credit_escrow.address


# ------------------------------------------------------------------ redeem
def test_redeem__pays_the_delta_into_the_rental_escrow_with_fee_and_split(
    credit_escrow,
    escrow,
    channel,
    authorised_relayer,
    renter,
    creator,
    collaborator,
    treasury,
    chain,
    sign,
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, 3 * PRICE_PER_CALL)
    escrow_before = escrow.balance

    tx = credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)

    paid = 3 * PRICE_PER_CALL
    log = only(tx, credit_escrow.VoucherRedeemed)
    assert log.payer == renter.address
    assert log.modelId == channel
    assert log.relayer == authorised_relayer.address
    assert log.cumulativeAmount == paid
    assert log.paid == paid
    assert credit_escrow.channelOf(renter, channel, authorised_relayer).redeemed == paid
    assert credit_escrow.balance == DEPOSIT - paid
    assert escrow.balance == escrow_before + paid

    fee = paid * escrow.feeBps() // 10_000
    revenue = only(tx, escrow.RevenueDeposited)
    assert revenue.modelId == channel
    assert revenue.source == credit_escrow.address
    assert revenue.currency == ETH
    assert revenue.amount == paid
    assert revenue.fee == fee
    held = only(tx, escrow.PaymentHeld)
    assert held.modelId == channel
    assert held.payer == renter.address
    assert held.currency == ETH
    assert held.amount == paid
    assert held.fee == fee
    assert escrow.held(held.payeeSet, ETH, held.releaseAt) == (paid, fee)

    # After the dispute window the split pays out: 70% creator, 30% collaborator, fee to treasury.
    chain.pending_timestamp = held.releaseAt + 1
    escrow.settle(held.payeeSet, ETH, held.releaseAt, sender=renter)
    share = paid - fee
    assert escrow.owed(treasury, ETH) == fee
    assert escrow.owed(creator, ETH) == share * 7_000 // 10_000
    assert escrow.owed(collaborator, ETH) == share - share * 7_000 // 10_000


def test_redeem__token_channel__moves_tokens_to_the_rental_escrow(
    credit_escrow, escrow, token, token_ppu_model, authorised_relayer, renter, chain, sign
):
    token.approve(credit_escrow, DEPOSIT, sender=renter)
    credit_escrow.deposit(token_ppu_model, authorised_relayer, DEPOSIT, sender=renter)
    voucher = make_voucher(
        credit_escrow, chain, token_ppu_model, authorised_relayer, 4 * PRICE_PER_CALL
    )
    escrow_before = token.balanceOf(escrow)

    tx = credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)

    assert token.balanceOf(escrow) == escrow_before + 4 * PRICE_PER_CALL
    assert token.balanceOf(credit_escrow) == DEPOSIT - 4 * PRICE_PER_CALL
    held = only(tx, escrow.PaymentHeld)
    assert held.currency == token.address
    assert held.amount == 4 * PRICE_PER_CALL


def test_redeem__later_voucher__pays_only_the_difference(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    first = make_voucher(credit_escrow, chain, channel, authorised_relayer, 2 * PRICE_PER_CALL)
    credit_escrow.redeem(renter, first.as_tuple(), sign(first), sender=authorised_relayer)
    latest = make_voucher(credit_escrow, chain, channel, authorised_relayer, 7 * PRICE_PER_CALL)

    tx = credit_escrow.redeem(renter, latest.as_tuple(), sign(latest), sender=authorised_relayer)

    assert only(tx, credit_escrow.VoucherRedeemed).paid == 5 * PRICE_PER_CALL
    assert (
        credit_escrow.channelOf(renter, channel, authorised_relayer).redeemed == 7 * PRICE_PER_CALL
    )


def test_redeem__voucher_signed_by_an_ape_account__is_accepted(
    credit_escrow, channel, authorised_relayer, renter, chain
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)
    signature = renter.sign_message(eip712.signable_voucher(voucher)).encode_rsv()

    tx = credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)

    assert only(tx, credit_escrow.VoucherRedeemed).paid == PRICE_PER_CALL


def test_redeem__the_whole_deposit__is_allowed(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, DEPOSIT)

    credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)

    assert credit_escrow.balance == 0


def test_redeem__twice__reverts(credit_escrow, channel, authorised_relayer, renter, chain, sign):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, 3 * PRICE_PER_CALL)
    signature = sign(voucher)
    credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)

    with ape.reverts(
        credit_escrow.VoucherNotMonotonic,
        cumulativeAmount=3 * PRICE_PER_CALL,
        redeemed=3 * PRICE_PER_CALL,
    ):
        credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)


def test_redeem__older_voucher_after_a_newer_one__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    old = make_voucher(credit_escrow, chain, channel, authorised_relayer, 2 * PRICE_PER_CALL)
    new = make_voucher(credit_escrow, chain, channel, authorised_relayer, 5 * PRICE_PER_CALL)
    credit_escrow.redeem(renter, new.as_tuple(), sign(new), sender=authorised_relayer)

    with ape.reverts(
        credit_escrow.VoucherNotMonotonic,
        cumulativeAmount=2 * PRICE_PER_CALL,
        redeemed=5 * PRICE_PER_CALL,
    ):
        credit_escrow.redeem(renter, old.as_tuple(), sign(old), sender=authorised_relayer)


def test_redeem__zero_voucher__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, 0)

    with ape.reverts(credit_escrow.VoucherNotMonotonic, cumulativeAmount=0, redeemed=0):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__beyond_the_deposit__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, DEPOSIT + 1)

    with ape.reverts(
        credit_escrow.VoucherAboveDeposit, cumulativeAmount=DEPOSIT + 1, deposited=DEPOSIT
    ):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__voucher_for_another_chain__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    other_chain = chain.chain_id + 1
    voucher = make_voucher(
        credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL, chain_id=other_chain
    )

    with ape.reverts(credit_escrow.WrongDomain, chainId=other_chain, escrow=credit_escrow.address):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__voucher_for_another_escrow__reverts(
    credit_escrow, other_credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    # A voucher signed for another CreditEscrow deployment (a real one, in its own domain).
    voucher = make_voucher(
        credit_escrow,
        chain,
        channel,
        authorised_relayer,
        PRICE_PER_CALL,
        escrow=other_credit_escrow.address,
    )

    with ape.reverts(
        credit_escrow.WrongDomain, chainId=chain.chain_id, escrow=other_credit_escrow.address
    ):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__domain_fields_rewritten_to_this_escrow__fail_the_signature(
    credit_escrow, other_credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    signed_elsewhere = make_voucher(
        credit_escrow,
        chain,
        channel,
        authorised_relayer,
        PRICE_PER_CALL,
        escrow=other_credit_escrow.address,
    )
    rewritten = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(
            renter, rewritten.as_tuple(), sign(signed_elsewhere), sender=authorised_relayer
        )


def test_redeem__not_the_vouchers_relayer__reverts(
    credit_escrow, channel, authorised_relayer, renter, creator, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(
        credit_escrow.NotRelayer, expected=authorised_relayer.address, caller=creator.address
    ):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=creator)


def test_redeem__signed_by_someone_else__reverts(
    credit_escrow, channel, authorised_relayer, renter, creator, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(
            renter, voucher.as_tuple(), sign(voucher, signer=creator), sender=authorised_relayer
        )


def test_redeem__high_s_twin_of_a_valid_signature__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)
    twin = high_s_twin(sign(voucher))
    # The twin recovers to the payer with plain ecrecover: only the low-s rule refuses it.
    signable = eip712.signable_voucher(voucher)
    assert Account.recover_message(signable, signature=twin) == renter.address

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(renter, voucher.as_tuple(), twin, sender=authorised_relayer)


@pytest.mark.parametrize("signature", [b"", b"\x01" * 64, b"\x01" * 66])
def test_redeem__malformed_signature__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, signature
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)


def test_redeem__after_the_channel_expired__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    expires_at = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)
    chain.pending_timestamp = expires_at

    with ape.reverts(credit_escrow.ChannelExpired, expiresAt=expires_at):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__no_channel__reverts_as_expired(
    credit_escrow, eth_ppu_model, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, eth_ppu_model, authorised_relayer, 1)

    with ape.reverts(credit_escrow.ChannelExpired, expiresAt=0):
        credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)


def test_redeem__relayer_deauthorised_after_serving__still_redeems(
    credit_escrow, relayer_registry, channel, authorised_relayer, renter, creator, chain, sign
):
    relayer_registry.deauthorise(channel, authorised_relayer, sender=creator)
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    tx = credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)

    assert only(tx, credit_escrow.VoucherRedeemed).paid == PRICE_PER_CALL


# ------------------------------------------------------------------ reclaim
def test_reclaim__before_the_timeout__reverts(credit_escrow, channel, authorised_relayer, renter):
    expires_at = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt

    with ape.reverts(credit_escrow.ChannelLive, expiresAt=expires_at):
        credit_escrow.reclaim(channel, authorised_relayer, sender=renter)


def test_reclaim__after_the_timeout__pays_back_what_was_not_redeemed(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, 3 * PRICE_PER_CALL)
    credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)
    state = credit_escrow.channelOf(renter, channel, authorised_relayer)
    chain.pending_timestamp = state.expiresAt
    before = renter.balance

    tx = credit_escrow.reclaim(channel, authorised_relayer, sender=renter)

    remainder = DEPOSIT - 3 * PRICE_PER_CALL
    log = only(tx, credit_escrow.CreditReclaimed)
    assert log.payer == renter.address
    assert log.modelId == channel
    assert log.relayer == authorised_relayer.address
    assert log.amount == remainder
    assert renter.balance == before + remainder - tx.total_fees_paid
    assert credit_escrow.balance == 0
    after = credit_escrow.channelOf(renter, channel, authorised_relayer)
    assert after.deposited == after.redeemed == 3 * PRICE_PER_CALL


def test_reclaim__token_channel__returns_the_tokens(
    credit_escrow, token, token_ppu_model, authorised_relayer, renter, chain
):
    token.approve(credit_escrow, DEPOSIT, sender=renter)
    tx = credit_escrow.deposit(token_ppu_model, authorised_relayer, DEPOSIT, sender=renter)
    chain.pending_timestamp = only(tx, credit_escrow.CreditDeposited).expiresAt
    before = token.balanceOf(renter)

    credit_escrow.reclaim(token_ppu_model, authorised_relayer, sender=renter)

    assert token.balanceOf(renter) == before + DEPOSIT
    assert token.balanceOf(credit_escrow) == 0


def test_reclaim__twice__reverts(credit_escrow, channel, authorised_relayer, renter, chain):
    chain.pending_timestamp = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt
    credit_escrow.reclaim(channel, authorised_relayer, sender=renter)

    with ape.reverts(credit_escrow.NothingToReclaim):
        credit_escrow.reclaim(channel, authorised_relayer, sender=renter)


def test_reclaim__no_channel__reverts(credit_escrow, eth_ppu_model, authorised_relayer, renter):
    with ape.reverts(credit_escrow.NothingToReclaim):
        credit_escrow.reclaim(eth_ppu_model, authorised_relayer, sender=renter)


def test_reclaim__fully_redeemed_channel__reverts(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, DEPOSIT)
    credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)
    chain.pending_timestamp = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt

    with ape.reverts(credit_escrow.NothingToReclaim):
        credit_escrow.reclaim(channel, authorised_relayer, sender=renter)


def test_reclaim__then_redeposit__an_unredeemed_voucher_is_paid_from_the_new_credit(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    # The relayer served 4 calls but did not redeem in time; the payer reclaimed everything.
    late = make_voucher(credit_escrow, chain, channel, authorised_relayer, 4 * PRICE_PER_CALL)
    late_signature = sign(late)
    chain.pending_timestamp = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt
    credit_escrow.reclaim(channel, authorised_relayer, sender=renter)
    with ape.reverts(credit_escrow.ChannelExpired):
        credit_escrow.redeem(renter, late.as_tuple(), late_signature, sender=authorised_relayer)

    credit_escrow.deposit(channel, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter)
    tx = credit_escrow.redeem(renter, late.as_tuple(), late_signature, sender=authorised_relayer)

    # `cumulativeAmount` is what the payer agreed to pay in all: the served calls are still owed.
    assert only(tx, credit_escrow.VoucherRedeemed).paid == 4 * PRICE_PER_CALL


# ------------------------------------------------------------------ views and constructor
def test_views__name_the_wiring_and_the_timeout(
    credit_escrow, escrow, relayer_registry, eth_ppu_model
):
    assert credit_escrow.timeout() == CREDIT_TIMEOUT
    assert escrow.offerOf(eth_ppu_model).pricePerCall == PRICE_PER_CALL
    assert credit_escrow.rentalEscrow() == escrow.address
    assert credit_escrow.relayerRegistry() == relayer_registry.address


def test_channel_of__unknown_channel__is_all_zero(credit_escrow, renter, relayer):
    assert credit_escrow.channelOf(renter, 1, relayer) == (ZERO_ADDRESS, 0, 0, 0)


def test_constructor__zero_timeout__reverts(
    project, deployer, escrow, relayer_registry, session_registry
):
    with ape.reverts(project.CreditEscrow.InvalidTimeout, timeout=0):
        project.CreditEscrow.deploy(escrow, relayer_registry, session_registry, 0, sender=deployer)


@pytest.mark.parametrize("which", ["escrow", "relayers", "sessions"])
def test_constructor__zero_address__reverts(
    project, deployer, escrow, relayer_registry, session_registry, which
):
    args = {
        "escrow": escrow.address,
        "relayers": relayer_registry.address,
        "sessions": session_registry.address,
        which: ZERO_ADDRESS,
    }

    with ape.reverts(project.CreditEscrow.ZeroAddress):
        project.CreditEscrow.deploy(
            args["escrow"], args["relayers"], args["sessions"], 60, sender=deployer
        )


def test_redeem__without_the_revenue_source_role__reverts_and_the_payer_can_reclaim(
    project,
    deployer,
    escrow,
    relayer_registry,
    session_registry,
    eth_ppu_model,
    authorised_relayer,
    renter,
    chain,
):
    unwired = project.CreditEscrow.deploy(
        escrow, relayer_registry, session_registry, 60, sender=deployer
    )
    unwired.deposit(eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter)
    voucher = make_voucher(unwired, chain, eth_ppu_model, authorised_relayer, PRICE_PER_CALL)
    signature = eip712.sign_voucher(voucher, renter.private_key)

    with ape.reverts():
        unwired.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)

    chain.pending_timestamp = unwired.channelOf(renter, eth_ppu_model, authorised_relayer).expiresAt
    unwired.reclaim(eth_ppu_model, authorised_relayer, sender=renter)
    assert unwired.balance == 0


# ------------------------------------------------------------------ batched redemption
@pytest.fixture
def two_channels(credit_escrow, channel, authorised_relayer, buyer):
    """`channel` (the renter's) and a second payer's, `buyer`, on the same model and relayer."""
    credit_escrow.deposit(channel, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=buyer)
    return channel


def test_redeem_batch__pays_every_voucher_as_single_redemptions_would(
    credit_escrow, escrow, two_channels, authorised_relayer, renter, buyer, chain, sign
):
    model = two_channels
    first = make_voucher(credit_escrow, chain, model, authorised_relayer, 2 * PRICE_PER_CALL)
    other = make_voucher(credit_escrow, chain, model, authorised_relayer, 4 * PRICE_PER_CALL)
    later = make_voucher(credit_escrow, chain, model, authorised_relayer, 5 * PRICE_PER_CALL)
    escrow_before = escrow.balance

    batch = (
        [renter, buyer, renter],
        [first.as_tuple(), other.as_tuple(), later.as_tuple()],
        [sign(first), sign(other, buyer), sign(later)],
    )
    total = credit_escrow.redeemBatch.call(*batch, sender=authorised_relayer)

    tx = credit_escrow.redeemBatch(*batch, sender=authorised_relayer)

    logs = list(tx.events.filter(credit_escrow.VoucherRedeemed))
    assert [(log.payer, log.paid) for log in logs] == [
        (renter.address, 2 * PRICE_PER_CALL),
        (buyer.address, 4 * PRICE_PER_CALL),
        (renter.address, 3 * PRICE_PER_CALL),
    ]
    assert total == 9 * PRICE_PER_CALL
    assert credit_escrow.channelOf(renter, model, authorised_relayer).redeemed == 5 * PRICE_PER_CALL
    assert credit_escrow.channelOf(buyer, model, authorised_relayer).redeemed == 4 * PRICE_PER_CALL
    assert escrow.balance == escrow_before + 9 * PRICE_PER_CALL
    assert credit_escrow.balance == 2 * DEPOSIT - 9 * PRICE_PER_CALL
    assert len(list(tx.events.filter(escrow.RevenueDeposited))) == 3


def test_redeem_batch__one_bad_signature__reverts_the_whole_batch(
    credit_escrow, two_channels, authorised_relayer, renter, buyer, chain, sign
):
    model = two_channels
    good = make_voucher(credit_escrow, chain, model, authorised_relayer, PRICE_PER_CALL)
    forged = make_voucher(credit_escrow, chain, model, authorised_relayer, DEPOSIT)

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeemBatch(
            [renter, buyer],
            [good.as_tuple(), forged.as_tuple()],
            [sign(good), sign(forged)],  # the buyer's channel, signed by the renter
            sender=authorised_relayer,
        )

    assert credit_escrow.channelOf(renter, model, authorised_relayer).redeemed == 0
    assert credit_escrow.channelOf(buyer, model, authorised_relayer).redeemed == 0
    assert credit_escrow.balance == 2 * DEPOSIT


def test_redeem_batch__out_of_order_vouchers_of_one_channel__revert(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    high = make_voucher(credit_escrow, chain, channel, authorised_relayer, 3 * PRICE_PER_CALL)
    low = make_voucher(credit_escrow, chain, channel, authorised_relayer, 2 * PRICE_PER_CALL)

    with ape.reverts(
        credit_escrow.VoucherNotMonotonic,
        cumulativeAmount=2 * PRICE_PER_CALL,
        redeemed=3 * PRICE_PER_CALL,
    ):
        credit_escrow.redeemBatch(
            [renter, renter],
            [high.as_tuple(), low.as_tuple()],
            [sign(high), sign(low)],
            sender=authorised_relayer,
        )


def test_redeem_batch__not_the_vouchers_relayer__reverts(
    credit_escrow, channel, authorised_relayer, renter, stranger, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(
        credit_escrow.NotRelayer, expected=authorised_relayer.address, caller=stranger.address
    ):
        credit_escrow.redeemBatch([renter], [voucher.as_tuple()], [sign(voucher)], sender=stranger)


def test_redeem_batch__arrays_of_different_lengths__revert(
    credit_escrow, channel, authorised_relayer, renter, chain, sign
):
    voucher = make_voucher(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(credit_escrow.BatchLengthMismatch, payers=2, vouchers=1, signatures=1):
        credit_escrow.redeemBatch(
            [renter, renter], [voucher.as_tuple()], [sign(voucher)], sender=authorised_relayer
        )


def test_redeem_batch__empty__reverts(credit_escrow, authorised_relayer):
    with ape.reverts(credit_escrow.EmptyBatch):
        credit_escrow.redeemBatch([], [], [], sender=authorised_relayer)


# ------------------------------------------------------------------ fee-on-transfer tokens
@pytest.fixture
def fee_token(project, deployer, escrow, renter):
    """MockFeeToken (burns 1% of every transfer), allowed by the escrow and minted to `renter`."""
    token = project.MockFeeToken.deploy(sender=deployer)
    escrow.setCurrencyAllowed(token, True, sender=deployer)
    token.mint(renter, 10**18, sender=deployer)
    return token


def test_fee_on_transfer_token__every_booked_wei_was_received(
    credit_escrow, escrow, fee_token, model_id, set_offer, authorised_relayer, renter, chain, sign
):
    set_offer(model_id, fee_token)
    fee_token.approve(credit_escrow, 10_000, sender=renter)

    tx = credit_escrow.deposit(model_id, authorised_relayer, 10_000, sender=renter)

    # The channel is credited with what arrived (1% burnt on the way in).
    assert only(tx, credit_escrow.CreditDeposited).amount == 9_900
    assert credit_escrow.channelOf(renter, model_id, authorised_relayer).deposited == 9_900
    assert fee_token.balanceOf(credit_escrow) == 9_900

    voucher = make_voucher(credit_escrow, chain, model_id, authorised_relayer, 5_000)
    escrow_before = fee_token.balanceOf(escrow)
    tx = credit_escrow.redeem(renter, voucher.as_tuple(), sign(voucher), sender=authorised_relayer)

    # The payer is charged 5,000; the RentalEscrow books the 4,950 it received.
    assert only(tx, credit_escrow.VoucherRedeemed).paid == 5_000
    assert only(tx, escrow.RevenueDeposited).amount == 4_950
    assert fee_token.balanceOf(escrow) == escrow_before + 4_950
    assert fee_token.balanceOf(credit_escrow) == 4_900

    chain.pending_timestamp = credit_escrow.channelOf(
        renter, model_id, authorised_relayer
    ).expiresAt
    tx = credit_escrow.reclaim(model_id, authorised_relayer, sender=renter)

    assert only(tx, credit_escrow.CreditReclaimed).amount == 4_900
    assert fee_token.balanceOf(credit_escrow) == 0


# ------------------------------------------------------------------ deployment wiring
def test_deploy_extensions__grants_credit_escrow_the_revenue_source_role(escrow, credit_escrow):
    assert escrow.hasRole(escrow.REVENUE_SOURCE_ROLE(), credit_escrow) is True


def test_verify_extensions__role_revoked__raises_config_error(
    contracts, ext, escrow, credit_escrow, deployer
):
    verify_extensions(contracts, ext)
    escrow.revokeRole(escrow.REVENUE_SOURCE_ROLE(), credit_escrow, sender=deployer)

    with pytest.raises(ConfigError, match="REVENUE_SOURCE_ROLE"):
        verify_extensions(contracts, ext)


def test_deploy_extensions__deployer_without_escrow_admin__raises_config_error(
    project, contracts, stranger
):
    with pytest.raises(ConfigError, match="DEFAULT_ADMIN_ROLE"):
        deploy_extensions(project, stranger, contracts)


# ------------------------------------------------------------------ storage limits and views
def test_constructor__timeout_above_uint32__reverts(
    project, deployer, escrow, relayer_registry, session_registry
):
    sessions = session_registry
    project.CreditEscrow.deploy(escrow, relayer_registry, sessions, 2**32 - 1, sender=deployer)

    with ape.reverts(project.CreditEscrow.InvalidTimeout, timeout=2**32):
        project.CreditEscrow.deploy(escrow, relayer_registry, sessions, 2**32, sender=deployer)


def test_deploy_extensions__timeout_above_uint32__raises_config_error(project, deployer, contracts):
    with pytest.raises(ConfigError, match="credit_timeout"):
        deploy_extensions(project, deployer, contracts, credit_timeout=2**32)


def test_deposit__credit_above_2_96__reverts_and_below_is_kept(
    project,
    deployer,
    stranger,
    credit_escrow,
    escrow,
    model_id,
    set_offer,
    authorised_relayer,
    renter,
):
    # NOTE: deployed by `stranger`, not `deployer`: ape keeps the contract type of every address it
    # deployed to, and after the rollback the next test's deployer reuses this nonce, so its
    # contract's address. On anvil, test_escrow_admin.py's reverting RentalEscrow deployments were
    # then decoded with MockERC20's ABI (eth_abi InvalidPointer instead of the custom error).
    big = project.MockERC20.deploy("Big", "BIG", 18, sender=stranger)
    escrow.setCurrencyAllowed(big, True, sender=deployer)
    set_offer(model_id, big)
    big.mint(renter, 2**97, sender=stranger)
    big.approve(credit_escrow, 2**97, sender=renter)
    most = 2**96 - 1

    credit_escrow.deposit(model_id, authorised_relayer, most, sender=renter)
    with ape.reverts(credit_escrow.DepositTooLarge, deposited=2**96, max=most):
        credit_escrow.deposit(model_id, authorised_relayer, 1, sender=renter)

    channel = credit_escrow.channelOf(renter, model_id, authorised_relayer)
    assert (channel.currency, channel.deposited) == (big.address, most)
    assert big.balanceOf(credit_escrow) == most


def test_pay_per_use_of__reports_the_offer_and_its_currency(
    escrow, token, token_ppu_model, deployer
):
    currency_id, currency, active, allowed, price = escrow.payPerUseOf(token_ppu_model)

    assert (currency, active, allowed, price) == (token.address, True, True, PRICE_PER_CALL)
    assert escrow.currencyAt(currency_id) == token.address
    escrow.setCurrencyAllowed(token, False, sender=deployer)
    assert escrow.payPerUseOf(token_ppu_model)[3] is False
    assert escrow.currencyAt(0) == ZERO_ADDRESS


def test_channel_of__a_channel_never_opened__is_all_zero(credit_escrow, eth_ppu_model, renter):
    assert credit_escrow.channelOf(renter, eth_ppu_model, renter) == (ZERO_ADDRESS, 0, 0, 0)
