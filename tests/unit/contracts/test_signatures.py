"""Signatures: replays across chains, escrows and time are refused; high-s twins are refused;
EIP-712 digests agree between the chain, daimm.eip712 and an independent encoding; maxPrice stops a
front-run offer change.
"""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from tests.unit.contracts.conftest import PRICE_PER_CALL
from tests.utils.chain import ETH, only
from tests.utils.market import offer

from daimm import eip712
from daimm.eip712 import (
    SECP256K1_N,
    PredictRequest,
    Receipt,
    Voucher,
    encode_signature,
    split_signature,
)

DEPOSIT = 10 * PRICE_PER_CALL


def _hash_struct_independently(type_string: str, values: list[tuple[str, object]]) -> bytes:
    """EIP-712 hashStruct written out by hand (strings hashed, atomic values ABI-encoded)."""
    types, encoded = ["bytes32"], [keccak(text=type_string)]
    for kind, value in values:
        if kind == "string":
            types.append("bytes32")
            encoded.append(keccak(text=value))
        else:
            types.append(kind)
            encoded.append(value)
    return keccak(encode(types, encoded))


def _digest_independently(name: str, chain_id: int, contract: str, struct_hash: bytes) -> bytes:
    domain = _hash_struct_independently(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
        [("string", name), ("string", "1"), ("uint256", chain_id), ("address", contract)],
    )
    return keccak(b"\x19\x01" + domain + struct_hash)


@pytest.fixture
def channel(credit_escrow, eth_ppu_model, authorised_relayer, renter):
    credit_escrow.deposit(eth_ppu_model, authorised_relayer, DEPOSIT, value=DEPOSIT, sender=renter)
    return eth_ppu_model


def voucher_for(credit_escrow, chain, model_id, relayer, amount, **overrides) -> Voucher:
    fields = dict(
        model_id=model_id,
        relayer=relayer.address,
        cumulative_amount=amount,
        chain_id=chain.chain_id,
        escrow=credit_escrow.address,
    )
    return Voucher(**{**fields, **overrides})


# ------------------------------------------------------------------ digests
@pytest.mark.parametrize("amount", [0, 1, PRICE_PER_CALL, 2**256 - 1])
def test_voucher_digest__chain_equals_eth_account_and_an_independent_encoding(
    credit_escrow, chain, relayer, amount
):
    voucher = voucher_for(credit_escrow, chain, 7, relayer, amount)
    document = eip712.voucher_typed_data(voucher)
    signable = encode_typed_data(full_message=document)
    by_eth_account = keccak(b"\x19" + signable.version + signable.header + signable.body)
    by_hand = _digest_independently(
        "daimm CreditEscrow",
        chain.chain_id,
        credit_escrow.address,
        _hash_struct_independently(
            "Voucher(uint256 modelId,address relayer,uint256 cumulativeAmount,uint256 chainId,"
            "address escrow)",
            [
                ("uint256", 7),
                ("address", relayer.address),
                ("uint256", amount),
                ("uint256", chain.chain_id),
                ("address", credit_escrow.address),
            ],
        ),
    )

    on_chain = bytes(credit_escrow.voucherDigest(voucher.as_tuple()))

    assert on_chain == by_eth_account == by_hand == eip712.voucher_digest(voucher)


def test_predict_request_and_receipt_digests__equal_an_independent_encoding(
    chain, relayer_registry
):
    """No contract verifies these two types on chain; the relayer and the clients use
    daimm.eip712, which is checked here against EIP-712 written out by hand."""
    registry = relayer_registry.address
    request = PredictRequest(
        model_id=3,
        body_hash=keccak(b"{}"),
        nonce=2**200,
        deadline=1_900_000_000,
        chain_id=chain.chain_id,
        relayer="0x" + "ab" * 20,
    )
    receipt = Receipt(
        model_id=3,
        weights_cid="bafyweights",
        inputs_hash=keccak(b"in"),
        outputs_hash=keccak(b"out"),
        timestamp=1_800_000_000,
    )

    request_hash = _hash_struct_independently(
        "PredictRequest(uint256 modelId,bytes32 bodyHash,uint256 nonce,uint256 deadline,"
        "uint256 chainId,address relayer)",
        [
            ("uint256", 3),
            ("bytes32", keccak(b"{}")),
            ("uint256", 2**200),
            ("uint256", 1_900_000_000),
            ("uint256", chain.chain_id),
            ("address", "0x" + "ab" * 20),
        ],
    )
    receipt_hash = _hash_struct_independently(
        "Receipt(uint256 modelId,string weightsCid,bytes32 inputsHash,bytes32 outputsHash,"
        "uint256 timestamp)",
        [
            ("uint256", 3),
            ("string", "bafyweights"),
            ("bytes32", keccak(b"in")),
            ("bytes32", keccak(b"out")),
            ("uint256", 1_800_000_000),
        ],
    )

    assert eip712.predict_request_digest(request, registry) == _digest_independently(
        "daimm Relayer", chain.chain_id, registry, request_hash
    )
    assert eip712.receipt_digest(receipt, chain.chain_id, registry) == _digest_independently(
        "daimm Relayer", chain.chain_id, registry, receipt_hash
    )


def test_off_chain_verifiers__refuse_high_s_twins_and_other_domains(relayer):
    receipt = Receipt(
        model_id=1,
        weights_cid="bafy",
        inputs_hash=b"\x01" * 32,
        outputs_hash=b"\x02" * 32,
        timestamp=1,
    )
    registry = "0x" + "cd" * 20
    signature = eip712.sign_receipt(receipt, 1337, registry, relayer.private_key)
    v, r, s = split_signature(signature)

    eip712.verify_receipt(receipt, 1337, registry, signature, relayer.address)
    with pytest.raises(eip712.SignatureError):
        eip712.verify_receipt(
            receipt, 1337, registry, encode_signature(55 - v, r, SECP256K1_N - s), relayer.address
        )
    for chain_id, other in ((1, registry), (1337, "0x" + "ce" * 20)):
        with pytest.raises(eip712.SignatureError):
            eip712.verify_receipt(receipt, chain_id, other, signature, relayer.address)


# ------------------------------------------------------------------ replays on chain
def test_redeem__voucher_signed_for_another_chain__is_refused_even_with_fields_rewritten(
    credit_escrow, channel, authorised_relayer, renter, chain
):
    foreign = voucher_for(
        credit_escrow,
        chain,
        channel,
        authorised_relayer,
        PRICE_PER_CALL,
        chain_id=chain.chain_id + 1,
    )
    signature = eip712.sign_voucher(foreign, renter.private_key)
    local = voucher_for(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(
        credit_escrow.WrongDomain, chainId=chain.chain_id + 1, escrow=credit_escrow.address
    ):
        credit_escrow.redeem(renter, foreign.as_tuple(), signature, sender=authorised_relayer)
    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(renter, local.as_tuple(), signature, sender=authorised_relayer)


def test_redeem__voucher_signed_for_another_escrow__is_refused_there_and_here(
    credit_escrow, other_credit_escrow, channel, authorised_relayer, renter, chain
):
    for_other = voucher_for(
        credit_escrow,
        chain,
        channel,
        authorised_relayer,
        PRICE_PER_CALL,
        escrow=other_credit_escrow.address,
    )
    signature = eip712.sign_voucher(for_other, renter.private_key)
    here = voucher_for(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)

    with ape.reverts(credit_escrow.WrongDomain):
        credit_escrow.redeem(renter, for_other.as_tuple(), signature, sender=authorised_relayer)
    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(renter, here.as_tuple(), signature, sender=authorised_relayer)
    # And a voucher for this escrow is worthless at the other one (no channel there).
    good = eip712.sign_voucher(here, renter.private_key)
    with ape.reverts(other_credit_escrow.WrongDomain):
        other_credit_escrow.redeem(renter, here.as_tuple(), good, sender=authorised_relayer)


def test_redeem__valid_voucher_after_the_channel_expired__is_refused_and_credit_returns(
    credit_escrow, channel, authorised_relayer, renter, chain
):
    voucher = voucher_for(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)
    signature = eip712.sign_voucher(voucher, renter.private_key)
    expires = credit_escrow.channelOf(renter, channel, authorised_relayer).expiresAt
    chain.mine(timestamp=expires)

    with ape.reverts(credit_escrow.ChannelExpired, expiresAt=expires):
        credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)
    tx = credit_escrow.reclaim(channel, authorised_relayer, sender=renter)
    assert only(tx, credit_escrow.CreditReclaimed).amount == DEPOSIT


def test_redeem__same_voucher_twice_and_high_s_twin__are_refused(
    credit_escrow, channel, authorised_relayer, renter, chain
):
    voucher = voucher_for(credit_escrow, chain, channel, authorised_relayer, PRICE_PER_CALL)
    signature = eip712.sign_voucher(voucher, renter.private_key)
    v, r, s = split_signature(signature)
    twin = encode_signature(55 - v, r, SECP256K1_N - s)
    assert (
        Account._recover_hash(eip712.voucher_digest(voucher), vrs=(55 - v - 27, r, SECP256K1_N - s))
        == renter.address
    )  # the twin is a valid ECDSA signature by the same key

    with ape.reverts(credit_escrow.InvalidSignature):
        credit_escrow.redeem(renter, voucher.as_tuple(), twin, sender=authorised_relayer)
    credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)
    with ape.reverts(
        credit_escrow.VoucherNotMonotonic, cumulativeAmount=PRICE_PER_CALL, redeemed=PRICE_PER_CALL
    ):
        credit_escrow.redeem(renter, voucher.as_tuple(), signature, sender=authorised_relayer)


def test_permit__expired_replayed_or_other_chain__is_refused(token, renter, stranger, chain):
    def permit_signature(value: int, nonce: int, deadline: int, chain_id: int) -> tuple:
        document = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": token.name(),
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": token.address,
            },
            "message": {
                "owner": renter.address,
                "spender": stranger.address,
                "value": value,
                "nonce": nonce,
                "deadline": deadline,
            },
        }
        signed = Account.sign_message(encode_typed_data(full_message=document), renter.private_key)
        return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    now = chain.pending_timestamp
    with ape.reverts(token.ERC2612ExpiredSignature, deadline=now - 1):
        token.permit(
            renter,
            stranger,
            5,
            now - 1,
            *permit_signature(5, 0, now - 1, chain.chain_id),
            sender=stranger,
        )
    with ape.reverts(token.ERC2612InvalidSigner):
        token.permit(
            renter,
            stranger,
            5,
            now + 99,
            *permit_signature(5, 0, now + 99, chain.chain_id + 1),
            sender=stranger,
        )
    good = permit_signature(5, 0, now + 99, chain.chain_id)
    token.permit(renter, stranger, 5, now + 99, *good, sender=stranger)
    with ape.reverts(token.ERC2612InvalidSigner):
        token.permit(renter, stranger, 5, now + 99, *good, sender=stranger)  # nonce used
    assert token.allowance(renter, stranger) == 5


# ------------------------------------------------------------------ front-running an offer change
def test_buy__perpetual_price_raised_before_the_buyers_tx__reverts_price_above_max(
    escrow, aimt_model, creator, buyer, token
):
    quoted = escrow.offerOf(aimt_model).perpetualPrice
    escrow.setOffer(
        aimt_model, offer(token, perpetual_price=quoted * 2), sender=creator
    )  # front-run

    with ape.reverts(escrow.PriceAboveMax, price=quoted * 2, maxPrice=quoted):
        escrow.buy(aimt_model, quoted, sender=buyer)


def test_buy_listed__listing_repriced_before_the_buyers_tx__reverts_price_above_max(
    escrow, licences, aimt_model, buyer, renter
):
    lid = only(escrow.buy(aimt_model, 50 * 10**18, sender=buyer), escrow.Bought).licenceId
    licences.approve(escrow, lid, sender=buyer)
    escrow.list(lid, ETH, 10**17, sender=buyer)
    escrow.list(lid, ETH, 10**18, sender=buyer)  # the seller front-runs the purchase

    with ape.reverts(escrow.PriceAboveMax, price=10**18, maxPrice=10**17):
        escrow.buyListed(lid, 10**17, value=10**18, sender=renter)
