"""EIP-712 helpers: round trips, tampering, wrong domains, high-s twins, and the on-chain digest."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from daimm import eip712
from daimm.eip712 import (
    SECP256K1_N,
    PredictRequest,
    Receipt,
    Voucher,
    encode_signature,
    split_signature,
)
from daimm.errors import DaimmError, SignatureError, ValidationError

PAYER = Account.from_key(b"\x01" * 32)
RELAYER = Account.from_key(b"\x02" * 32)
ESCROW = "0x" + "c0" * 20
REGISTRY = "0x" + "e1" * 20
CHAIN_ID = 1337


def high_s_twin(signature: bytes) -> bytes:
    """The other valid ECDSA signature of the same digest: (r, n - s), recovery id flipped."""
    v, r, s = split_signature(signature)
    return encode_signature(55 - v, r, SECP256K1_N - s)


@pytest.fixture
def voucher() -> Voucher:
    return Voucher(
        model_id=7,
        relayer=RELAYER.address,
        cumulative_amount=3 * 10**15,
        chain_id=CHAIN_ID,
        escrow=ESCROW,
    )


@pytest.fixture
def request_() -> PredictRequest:
    return PredictRequest(
        model_id=7,
        body_hash=keccak(b'{"inputs": {"x": [[1.0, 2.0]]}}'),
        nonce=42,
        deadline=1_900_000_000,
        chain_id=CHAIN_ID,
        relayer=RELAYER.address,
    )


@pytest.fixture
def receipt() -> Receipt:
    return Receipt(
        model_id=7,
        weights_cid="bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        inputs_hash=keccak(b"inputs"),
        outputs_hash=keccak(b"outputs"),
        timestamp=1_800_000_000,
    )


# ------------------------------------------------------------------ Voucher
def test_voucher__signs_and_recovers_the_payer(voucher):
    signature = eip712.sign_voucher(voucher, PAYER.key)

    assert eip712.recover_voucher_signer(voucher, signature) == PAYER.address
    eip712.verify_voucher(voucher, signature, PAYER.address)


def test_voucher__signature_is_65_bytes_low_s_and_v_27_or_28(voucher):
    signature = eip712.sign_voucher(voucher, PAYER.key)

    v, r, s = split_signature(signature)
    assert len(signature) == 65
    assert v in (27, 28)
    assert 0 < s <= SECP256K1_N // 2
    assert signature[:32] == r.to_bytes(32, "big")


def test_voucher__digest_is_the_eip712_hash_built_by_hand(voucher):
    domain_type = (
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    voucher_type = (
        b"Voucher(uint256 modelId,address relayer,uint256 cumulativeAmount,uint256 chainId,"
        b"address escrow)"
    )

    def word(value: int | str) -> bytes:
        return (int(value, 16) if isinstance(value, str) else value).to_bytes(32, "big")

    domain_separator = keccak(
        keccak(domain_type)
        + keccak(b"daimm CreditEscrow")
        + keccak(b"1")
        + word(CHAIN_ID)
        + word(ESCROW)
    )
    struct_hash = keccak(
        keccak(voucher_type)
        + word(7)
        + word(RELAYER.address)
        + word(3 * 10**15)
        + word(CHAIN_ID)
        + word(ESCROW)
    )

    assert eip712.voucher_digest(voucher) == keccak(b"\x19\x01" + domain_separator + struct_hash)


def test_voucher__typed_data_is_accepted_by_eth_account_sign_typed_data(voucher):
    document = eip712.voucher_typed_data(voucher)

    signed = Account.sign_typed_data(PAYER.key, full_message=document)

    assert bytes(signed.signature) == eip712.sign_voucher(voucher, PAYER.key)
    assert document["domain"] == {
        "name": "daimm CreditEscrow",
        "version": "1",
        "chainId": CHAIN_ID,
        "verifyingContract": voucher.escrow,
    }
    assert document["primaryType"] == "Voucher"


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_id", 8),
        ("relayer", "0x" + "33" * 20),
        ("cumulative_amount", 3 * 10**15 + 1),
        ("chain_id", 1),
        ("escrow", "0x" + "c1" * 20),
    ],
)
def test_voucher__tampered_field__recovers_another_address(voucher, field, value):
    signature = eip712.sign_voucher(voucher, PAYER.key)
    tampered = Voucher(**{**voucher.__dict__, field: value})

    assert eip712.recover_voucher_signer(tampered, signature) != PAYER.address
    with pytest.raises(SignatureError, match="not by"):
        eip712.verify_voucher(tampered, signature, PAYER.address)


def test_voucher__chain_id_and_escrow_are_the_domain(voucher):
    other_chain = Voucher(**{**voucher.__dict__, "chain_id": 1})

    domain = eip712.voucher_typed_data(other_chain)["domain"]

    assert domain["chainId"] == 1
    assert eip712.voucher_digest(other_chain) != eip712.voucher_digest(voucher)


def test_voucher__high_s_twin__is_refused(voucher):
    signature = eip712.sign_voucher(voucher, PAYER.key)
    twin = high_s_twin(signature)
    # The twin is a valid ECDSA signature: eth_account alone accepts it.
    assert Account.recover_message(eip712.signable_voucher(voucher), signature=twin) == (
        PAYER.address
    )

    with pytest.raises(SignatureError, match="high-s"):
        eip712.recover_voucher_signer(voucher, twin)


def test_voucher__signable_message_signed_by_an_account_matches_sign_voucher(voucher):
    signed = PAYER.sign_message(eip712.signable_voucher(voucher))

    assert encode_signature(signed.v, signed.r, signed.s) == eip712.sign_voucher(voucher, PAYER.key)


def test_voucher__message_round_trips_through_from_message(voucher):
    assert Voucher.from_message(voucher.message()) == voucher
    assert voucher.as_tuple() == (7, RELAYER.address, 3 * 10**15, CHAIN_ID, voucher.escrow)


# ------------------------------------------------------------------ PredictRequest
def test_predict_request__signs_and_recovers_the_caller(request_):
    signature = eip712.sign_predict_request(request_, REGISTRY, PAYER.key)

    assert eip712.recover_predict_request_signer(request_, REGISTRY, signature) == PAYER.address
    eip712.verify_predict_request(request_, REGISTRY, signature, PAYER.address)


def test_predict_request__typed_data_names_the_relayer_domain(request_):
    document = eip712.predict_request_typed_data(request_, REGISTRY)

    assert document["primaryType"] == "PredictRequest"
    assert document["domain"]["name"] == "daimm Relayer"
    assert document["domain"]["version"] == "1"
    assert document["domain"]["chainId"] == CHAIN_ID
    assert document["domain"]["verifyingContract"].lower() == REGISTRY
    assert [f["name"] for f in document["types"]["PredictRequest"]] == [
        "modelId",
        "bodyHash",
        "nonce",
        "deadline",
        "chainId",
        "relayer",
    ]


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_id", 8),
        ("body_hash", keccak(b"another body")),
        ("nonce", 43),
        ("deadline", 1_900_000_001),
        ("chain_id", 1),
        ("relayer", "0x" + "33" * 20),
    ],
)
def test_predict_request__tampered_field__is_refused(request_, field, value):
    signature = eip712.sign_predict_request(request_, REGISTRY, PAYER.key)
    tampered = PredictRequest(**{**request_.__dict__, field: value})

    with pytest.raises(SignatureError):
        eip712.verify_predict_request(tampered, REGISTRY, signature, PAYER.address)


def test_predict_request__signed_for_another_registry__is_refused(request_):
    signature = eip712.sign_predict_request(request_, "0x" + "e2" * 20, PAYER.key)

    with pytest.raises(SignatureError, match="not by"):
        eip712.verify_predict_request(request_, REGISTRY, signature, PAYER.address)


def test_predict_request__high_s_twin__is_refused(request_):
    signature = eip712.sign_predict_request(request_, REGISTRY, PAYER.key)

    with pytest.raises(SignatureError, match="high-s"):
        eip712.recover_predict_request_signer(request_, REGISTRY, high_s_twin(signature))


def test_predict_request__from_message_accepts_hex_body_hash(request_):
    message = {**request_.message(), "bodyHash": "0x" + request_.body_hash.hex()}

    assert PredictRequest.from_message(message) == request_


# ------------------------------------------------------------------ Receipt
def test_receipt__signs_and_recovers_the_relayer(receipt):
    signature = eip712.sign_receipt(receipt, CHAIN_ID, REGISTRY, RELAYER.key)

    assert eip712.recover_receipt_signer(receipt, CHAIN_ID, REGISTRY, signature) == RELAYER.address
    eip712.verify_receipt(receipt, CHAIN_ID, REGISTRY, signature, RELAYER.address)


def test_receipt__digest_matches_eth_account_encoding(receipt):
    signable = encode_typed_data(
        full_message=eip712.receipt_typed_data(receipt, CHAIN_ID, REGISTRY)
    )

    expected = keccak(b"\x19\x01" + signable.header + signable.body)

    assert eip712.receipt_digest(receipt, CHAIN_ID, REGISTRY) == expected


@pytest.mark.parametrize(
    "field, value",
    [
        ("model_id", 8),
        ("weights_cid", "bafy-other"),
        ("inputs_hash", keccak(b"other inputs")),
        ("outputs_hash", keccak(b"other outputs")),
        ("timestamp", 1_800_000_001),
    ],
)
def test_receipt__tampered_field__is_refused(receipt, field, value):
    signature = eip712.sign_receipt(receipt, CHAIN_ID, REGISTRY, RELAYER.key)
    tampered = Receipt(**{**receipt.__dict__, field: value})

    with pytest.raises(SignatureError):
        eip712.verify_receipt(tampered, CHAIN_ID, REGISTRY, signature, RELAYER.address)


def test_receipt__signed_on_another_chain__is_refused(receipt):
    signature = eip712.sign_receipt(receipt, 1, REGISTRY, RELAYER.key)

    with pytest.raises(SignatureError, match="not by"):
        eip712.verify_receipt(receipt, CHAIN_ID, REGISTRY, signature, RELAYER.address)


def test_receipt__high_s_twin__is_refused(receipt):
    signature = eip712.sign_receipt(receipt, CHAIN_ID, REGISTRY, RELAYER.key)

    with pytest.raises(SignatureError, match="high-s"):
        eip712.verify_receipt(receipt, CHAIN_ID, REGISTRY, high_s_twin(signature), RELAYER.address)


def test_receipt__message_round_trips_with_hex_hashes(receipt):
    message = {
        **receipt.message(),
        "inputsHash": "0x" + receipt.inputs_hash.hex(),
        "outputsHash": receipt.outputs_hash.hex(),
    }

    assert Receipt.from_message(message) == receipt


# ------------------------------------------------------------------ malformed input
@pytest.mark.parametrize(
    "signature, message",
    [
        (b"\x00" * 64, "65 bytes"),
        ("0xzz", "not hex"),
        (b"\x11" * 32 + b"\x22" * 32 + b"\x01", "v must be 27 or 28"),
        (b"\x00" * 32 + b"\x22" * 32 + b"\x1b", "r is out of range"),
        (b"\x11" * 32 + b"\x00" * 32 + b"\x1b", "high-s"),
    ],
)
def test_recover__malformed_signature__raises_signature_error(voucher, signature, message):
    with pytest.raises(SignatureError, match=message):
        eip712.recover_voucher_signer(voucher, signature)


def test_signature_error__is_a_daimm_error():
    assert issubclass(SignatureError, DaimmError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_id": -1},
        {"model_id": 2**256},
        {"model_id": True},
        {"relayer": "0x1234"},
        {"escrow": "not an address"},
        {"cumulative_amount": 1.5},
    ],
)
def test_voucher__invalid_field__raises_validation_error(voucher, kwargs):
    with pytest.raises(ValidationError):
        Voucher(**{**voucher.__dict__, **kwargs})


@pytest.mark.parametrize("body_hash", [b"\x00" * 31, "0x" + "ab" * 33, "0xnothex"])
def test_predict_request__body_hash_not_32_bytes__raises_validation_error(request_, body_hash):
    with pytest.raises(ValidationError, match="32 bytes"):
        PredictRequest(**{**request_.__dict__, "body_hash": body_hash})


def test_receipt__empty_weights_cid__raises_validation_error(receipt):
    with pytest.raises(ValidationError, match="weights_cid"):
        Receipt(**{**receipt.__dict__, "weights_cid": ""})


def test_from_message__missing_field__raises_validation_error(voucher):
    message = voucher.message()
    del message["escrow"]

    with pytest.raises(ValidationError, match="not a Voucher"):
        Voucher.from_message(message)


# ------------------------------------------------------------------ the chain agrees
@pytest.fixture
def credit_escrow_alone(request):
    """A CreditEscrow with placeholder collaborators: `voucherDigest` reads none of them."""
    if not request.config.pluginmanager.hasplugin("ape_test"):
        pytest.skip("needs ape's test plugin (run under `ape test`)")
    accounts = request.getfixturevalue("accounts")
    project = request.getfixturevalue("project")
    chain = request.getfixturevalue("chain")
    escrow = project.CreditEscrow.deploy(
        accounts[1], accounts[2], accounts[3], 3600, sender=accounts[0]
    )
    return escrow, chain.chain_id


@pytest.mark.chain
def test_voucher_digest__equals_the_on_chain_voucher_digest(credit_escrow_alone):
    escrow, chain_id = credit_escrow_alone
    voucher = Voucher(
        model_id=7,
        relayer=RELAYER.address,
        cumulative_amount=3 * 10**15,
        chain_id=chain_id,
        escrow=escrow.address,
    )

    on_chain = bytes(escrow.voucherDigest(voucher.as_tuple()))

    assert on_chain == eip712.voucher_digest(voucher)


def test_upload_session__signs_verifies_and_refuses_another_field_or_signer() -> None:
    from dataclasses import replace

    session = eip712.UploadSessionRequest(
        uploader=PAYER.address, pieces_hash=b"\x11" * 32, pieces=3, size=1000, nonce=9,
        deadline=2_000_000_000,
    )  # fmt: skip
    signature = eip712.sign_upload_session(session, CHAIN_ID, REGISTRY, PAYER.key)
    eip712.verify_upload_session(session, CHAIN_ID, REGISTRY, signature)
    document = eip712.upload_session_typed_data(session, CHAIN_ID, REGISTRY)
    assert document["primaryType"] == "UploadSession"
    assert document["domain"]["name"] == eip712.UPLOAD_DOMAIN_NAME
    for changed in (replace(session, pieces=4), replace(session, pieces_hash=b"\x12" * 32)):
        with pytest.raises(SignatureError):
            eip712.verify_upload_session(changed, CHAIN_ID, REGISTRY, signature)
    forged = eip712.sign_upload_session(session, CHAIN_ID, REGISTRY, RELAYER.key)
    with pytest.raises(SignatureError):
        eip712.verify_upload_session(session, CHAIN_ID, REGISTRY, forged)
