"""AIModelToken: fixed supply at the treasury, ERC-2612 permit."""

from __future__ import annotations

import ape
from eth_account import Account
from eth_account.messages import encode_typed_data
from tests.utils.chain import ZERO_ADDRESS
from tests.utils.market import FUNDS

from daimm.market.deploy import DEFAULT_TOKEN_SUPPLY


def test_token__has_its_name_symbol_and_18_decimals(token):
    assert token.name() == "daimm AI Model Token"
    assert token.symbol() == "AIMT"
    assert token.decimals() == 18


def test_constructor__mints_the_whole_supply_to_the_treasury(token, treasury):
    assert token.totalSupply() == DEFAULT_TOKEN_SUPPLY
    # The fixtures handed FUNDS to the renter and the buyer.
    assert token.balanceOf(treasury) == DEFAULT_TOKEN_SUPPLY - 2 * FUNDS


def test_constructor__zero_treasury__reverts(project, fresh_deployer):
    with ape.reverts(project.AIModelToken.ZeroTreasury):
        project.AIModelToken.deploy(ZERO_ADDRESS, 1, sender=fresh_deployer)


def test_permit__a_signed_approval_sets_the_allowance(token, chain, stranger, escrow):
    owner = Account.create()
    deadline = chain.pending_timestamp + 3600
    value = 123
    message = encode_typed_data(
        full_message={
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
                "name": "daimm AI Model Token",
                "version": "1",
                "chainId": chain.chain_id,
                "verifyingContract": token.address,
            },
            "message": {
                "owner": owner.address,
                "spender": escrow.address,
                "value": value,
                "nonce": 0,
                "deadline": deadline,
            },
        }
    )
    signed = owner.sign_message(message)
    # NOTE: r and s as 32 bytes: an int with a leading zero byte (1 signature in ~128, the owner is
    # a fresh random key) is not encoded as that bytes32 by ape's conversion, and the permit fails.
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")

    token.permit(owner.address, escrow, value, deadline, signed.v, r, s, sender=stranger)

    assert token.allowance(owner.address, escrow) == value
    assert token.nonces(owner.address) == 1
