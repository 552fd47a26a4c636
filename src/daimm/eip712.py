"""EIP-712 typed data shared by the CLI, the relayer and the contracts' tests.

Pure functions over ``eth_account``: no chain, no network, no files. Three message types:

``Voucher`` (pay-per-use credit, checked on chain by ``CreditEscrow``)
    ``Voucher(uint256 modelId,address relayer,uint256 cumulativeAmount,uint256 chainId,
    address escrow)`` in the domain ``{name: "daimm CreditEscrow", version: "1", chainId,
    verifyingContract: escrow}``, where ``chainId`` and ``escrow`` are the voucher's own fields
    (the contract refuses a voucher naming another chain or escrow with ``WrongDomain``).

``PredictRequest`` (a caller's signed request to a relayer)
    ``PredictRequest(uint256 modelId,bytes32 bodyHash,uint256 nonce,uint256 deadline,
    uint256 chainId,address relayer)`` in the domain ``{name: "daimm Relayer", version: "1",
    chainId, verifyingContract: RelayerRegistry}``; ``deadline`` is a Unix time in seconds.

``Session`` (a licence holder's bounded, revocable delegation to a session key)
    ``Session(address holder,address key,uint256 modelId,address relayer,uint64 expiresAt,
    uint64 maxCalls,uint128 spendCap,uint256 nonce)`` in the domain ``{name: "daimm Sessions",
    version: "1", chainId, verifyingContract: SessionRegistry}``; ``modelId`` 0 means any model,
    ``relayer`` the zero address any relayer; ``expiresAt`` is a Unix time in seconds;
    ``spendCap`` is in the currency's smallest unit. Rules and the API key: :mod:`daimm.sessions`.

``Receipt`` (the relayer's signed answer)
    ``Receipt(uint256 modelId,string weightsCid,bytes32 inputsHash,bytes32 outputsHash,
    uint256 timestamp)`` in the same ``"daimm Relayer"`` domain; ``timestamp`` is a Unix time in
    seconds. Anyone verifies it against the relayer's registered address.

For each type ``X`` in ``voucher``, ``predict_request``, ``receipt`` and ``session``:

- ``X_typed_data(...) -> dict``: the full EIP-712 document (``types``, ``primaryType``,
  ``domain``, ``message``), ready for ``encode_typed_data(full_message=...)`` or a wallet's
  ``eth_signTypedData_v4``;
- ``X_digest(...) -> bytes``: the 32-byte hash that is signed (for vouchers, equal to
  ``CreditEscrow.voucherDigest``);
- ``signable_X(...) -> SignableMessage``: for accounts that sign messages themselves (an ape
  account: ``account.sign_message(signable_voucher(v)).encode_rsv()``);
- ``sign_X(..., private_key) -> bytes``: a 65-byte ``r || s || v`` signature with low ``s`` and
  ``v`` in {27, 28};
- ``recover_X_signer(..., signature) -> str``: the checksummed address that signed, raising
  :class:`~daimm.errors.SignatureError` for a malformed signature, a high-``s`` twin, or ``v``
  outside {27, 28} (the contracts refuse the same);
- ``verify_X(..., signature, expected_signer)``: raises :class:`~daimm.errors.SignatureError`
  unless ``expected_signer`` signed (``verify_session(session, signature)`` checks the session's
  own ``holder``).

The leading arguments are ``(voucher)``, ``(request, registry)``,
``(receipt, chain_id, registry)`` and ``(session)`` (which names its own chain and registry), where
``registry`` is the RelayerRegistry's address. Each message
type is a frozen dataclass with ``message()`` (the EIP-712 message dict) and ``from_message(dict)``
(which accepts ``0x`` hex for ``bytes32`` fields, as received over HTTP). :func:`keccak256` hashes
bodies, inputs and outputs for the ``bytes32`` fields.

Example::

    voucher = Voucher(model_id=1, relayer=relayer, cumulative_amount=10**15, chain_id=1337,
                      escrow=credit_escrow)
    signature = sign_voucher(voucher, payer_key)
    assert recover_voucher_signer(voucher, signature) == payer_address
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import is_address, to_checksum_address
from eth_utils import keccak as _keccak

from daimm.errors import SignatureError, ValidationError

__all__ = [
    "CREATOR_KEY_DOMAIN_NAME",
    "CREATOR_KEY_PURPOSE",
    "RELAYER_DOMAIN_NAME",
    "SECP256K1_N",
    "SESSION_DOMAIN_NAME",
    "UPLOAD_DOMAIN_NAME",
    "VOUCHER_DOMAIN_NAME",
    "ZERO_ADDRESS",
    "PredictRequest",
    "Receipt",
    "Session",
    "UploadRequest",
    "UploadSessionRequest",
    "Voucher",
    "creator_key_typed_data",
    "encode_signature",
    "is_low_s",
    "keccak256",
    "predict_request_digest",
    "predict_request_typed_data",
    "receipt_digest",
    "receipt_typed_data",
    "recover_predict_request_signer",
    "recover_receipt_signer",
    "recover_session_signer",
    "recover_voucher_signer",
    "session_digest",
    "session_typed_data",
    "sign_predict_request",
    "sign_receipt",
    "sign_session",
    "sign_upload",
    "sign_upload_session",
    "sign_voucher",
    "signable_creator_key",
    "signable_predict_request",
    "signable_receipt",
    "signable_session",
    "signable_voucher",
    "split_signature",
    "upload_session_typed_data",
    "upload_typed_data",
    "verify_creator_key",
    "verify_predict_request",
    "verify_receipt",
    "verify_session",
    "verify_upload",
    "verify_upload_session",
    "verify_voucher",
    "voucher_digest",
    "voucher_typed_data",
]

VOUCHER_DOMAIN_NAME = "daimm CreditEscrow"
RELAYER_DOMAIN_NAME = "daimm Relayer"
SESSION_DOMAIN_NAME = "daimm Sessions"
#: ``Session.relayer`` for "any relayer".
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DOMAIN_VERSION = "1"

#: Order of the secp256k1 group; a signature's ``s`` must be at most half of it.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_UINT256_MAX = 2**256 - 1

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_VOUCHER_TYPE = [
    {"name": "modelId", "type": "uint256"},
    {"name": "relayer", "type": "address"},
    {"name": "cumulativeAmount", "type": "uint256"},
    {"name": "chainId", "type": "uint256"},
    {"name": "escrow", "type": "address"},
]
_PREDICT_REQUEST_TYPE = [
    {"name": "modelId", "type": "uint256"},
    {"name": "bodyHash", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
    {"name": "chainId", "type": "uint256"},
    {"name": "relayer", "type": "address"},
]
_SESSION_TYPE = [
    {"name": "holder", "type": "address"},
    {"name": "key", "type": "address"},
    {"name": "modelId", "type": "uint256"},
    {"name": "relayer", "type": "address"},
    {"name": "expiresAt", "type": "uint64"},
    {"name": "maxCalls", "type": "uint64"},
    {"name": "spendCap", "type": "uint128"},
    {"name": "nonce", "type": "uint256"},
]
_RECEIPT_TYPE = [
    {"name": "modelId", "type": "uint256"},
    {"name": "weightsCid", "type": "string"},
    {"name": "inputsHash", "type": "bytes32"},
    {"name": "outputsHash", "type": "bytes32"},
    {"name": "timestamp", "type": "uint256"},
]


# ------------------------------------------------------------------ value checks
def _uint(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT256_MAX:
        raise ValidationError(f"{name} must be an integer in 0..2**256-1, got {value!r}")
    return value


def _bounded(name: str, value: int, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise ValidationError(f"{name} must be an integer in 0..2**{bits}-1, got {value!r}")
    return value


def _address(name: str, value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValidationError(f"{name} must be a 20-byte hex address, got {value!r}")
    return to_checksum_address(value)


def _bytes32(name: str, value: bytes | str) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ValidationError(f"{name} must be 32 bytes (or 64 hex digits)") from None
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise ValidationError(f"{name} must be 32 bytes (or 64 hex digits)")
    return bytes(value)


# ------------------------------------------------------------------ message types
@dataclass(frozen=True)
class Voucher:
    """A pay-per-use voucher: the payer agrees to pay ``cumulative_amount`` in total on a channel.

    Args:
        model_id: The model's token id.
        relayer: The relayer that serves the calls and alone may redeem the voucher.
        cumulative_amount: Everything agreed on the channel so far, in the currency's smallest unit.
        chain_id: The chain's EIP-155 id.
        escrow: The CreditEscrow's address.
    """

    model_id: int
    relayer: str
    cumulative_amount: int
    chain_id: int
    escrow: str

    def __post_init__(self) -> None:
        _uint("model_id", self.model_id)
        object.__setattr__(self, "relayer", _address("relayer", self.relayer))
        _uint("cumulative_amount", self.cumulative_amount)
        _uint("chain_id", self.chain_id)
        object.__setattr__(self, "escrow", _address("escrow", self.escrow))

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (camelCase keys), also the ABI tuple's fields in order."""
        return {
            "modelId": self.model_id,
            "relayer": self.relayer,
            "cumulativeAmount": self.cumulative_amount,
            "chainId": self.chain_id,
            "escrow": self.escrow,
        }

    def as_tuple(self) -> tuple[int, str, int, int, str]:
        """The voucher as the contract's ``Voucher`` struct (a tuple in field order)."""
        return (self.model_id, self.relayer, self.cumulative_amount, self.chain_id, self.escrow)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Voucher:
        """Build a voucher from its EIP-712 ``message`` dict (as received over HTTP)."""
        try:
            return cls(
                model_id=int(message["modelId"]),
                relayer=message["relayer"],
                cumulative_amount=int(message["cumulativeAmount"]),
                chain_id=int(message["chainId"]),
                escrow=message["escrow"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not a Voucher message: {exc}") from None


@dataclass(frozen=True)
class PredictRequest:
    """A caller's signed request for one prediction.

    Args:
        model_id: The model's token id.
        body_hash: ``keccak256`` of the request body (32 bytes; hex accepted).
        nonce: A number the caller never reuses with this relayer.
        deadline: Unix time in seconds after which the relayer refuses the request.
        chain_id: The chain's EIP-155 id.
        relayer: The relayer's signing address (a request for another relayer is refused).
    """

    model_id: int
    body_hash: bytes
    nonce: int
    deadline: int
    chain_id: int
    relayer: str

    def __post_init__(self) -> None:
        _uint("model_id", self.model_id)
        object.__setattr__(self, "body_hash", _bytes32("body_hash", self.body_hash))
        _uint("nonce", self.nonce)
        _uint("deadline", self.deadline)
        _uint("chain_id", self.chain_id)
        object.__setattr__(self, "relayer", _address("relayer", self.relayer))

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (camelCase keys; ``bodyHash`` as bytes)."""
        return {
            "modelId": self.model_id,
            "bodyHash": self.body_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "chainId": self.chain_id,
            "relayer": self.relayer,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> PredictRequest:
        """Build a request from its ``message`` dict; ``bodyHash`` may be ``0x`` hex."""
        try:
            return cls(
                model_id=int(message["modelId"]),
                body_hash=message["bodyHash"],
                nonce=int(message["nonce"]),
                deadline=int(message["deadline"]),
                chain_id=int(message["chainId"]),
                relayer=message["relayer"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not a PredictRequest message: {exc}") from None


@dataclass(frozen=True)
class Receipt:
    """A relayer's signed receipt for one answer.

    Args:
        model_id: The model's token id.
        weights_cid: CID of the encrypted weights the answer was computed with.
        inputs_hash: ``keccak256`` of the canonical inputs (32 bytes; hex accepted).
        outputs_hash: ``keccak256`` of the canonical outputs (32 bytes; hex accepted).
        timestamp: Unix time of the answer, in seconds.
    """

    model_id: int
    weights_cid: str
    inputs_hash: bytes
    outputs_hash: bytes
    timestamp: int

    def __post_init__(self) -> None:
        _uint("model_id", self.model_id)
        if not isinstance(self.weights_cid, str) or not self.weights_cid:
            raise ValidationError("weights_cid must be a non-empty string")
        object.__setattr__(self, "inputs_hash", _bytes32("inputs_hash", self.inputs_hash))
        object.__setattr__(self, "outputs_hash", _bytes32("outputs_hash", self.outputs_hash))
        _uint("timestamp", self.timestamp)

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (camelCase keys; hashes as bytes)."""
        return {
            "modelId": self.model_id,
            "weightsCid": self.weights_cid,
            "inputsHash": self.inputs_hash,
            "outputsHash": self.outputs_hash,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Receipt:
        """Build a receipt from its ``message`` dict; hashes may be ``0x`` hex."""
        try:
            return cls(
                model_id=int(message["modelId"]),
                weights_cid=message["weightsCid"],
                inputs_hash=message["inputsHash"],
                outputs_hash=message["outputsHash"],
                timestamp=int(message["timestamp"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not a Receipt message: {exc}") from None


@dataclass(frozen=True)
class Session:
    """A holder's signed delegation: ``key`` may sign requests for ``holder``, within bounds.

    Args:
        holder: The wallet that holds the licence, rental or credit, and signs the session.
        key: The session key's address (signs the requests).
        model_id: The one model the session covers, or 0 for any model.
        relayer: The one relayer the session covers, or :data:`ZERO_ADDRESS` for any.
        expires_at: Unix time in seconds from which the session is refused.
        max_calls: Most calls a relayer serves on the session (counted by each relayer).
        spend_cap: Most pay-per-use value the session may spend, in the currency's smallest unit
            (0: no pay-per-use).
        nonce: The holder's ``SessionRegistry.nonceOf`` when signing; ``revokeAll`` bumps it.
        chain_id: The chain's EIP-155 id (the domain's ``chainId``).
        registry: The SessionRegistry's address (the domain's ``verifyingContract``).
    """

    holder: str
    key: str
    model_id: int
    relayer: str
    expires_at: int
    max_calls: int
    spend_cap: int
    nonce: int
    chain_id: int
    registry: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "holder", _address("holder", self.holder))
        object.__setattr__(self, "key", _address("key", self.key))
        _uint("model_id", self.model_id)
        object.__setattr__(self, "relayer", _address("relayer", self.relayer))
        _bounded("expires_at", self.expires_at, 64)
        _bounded("max_calls", self.max_calls, 64)
        _bounded("spend_cap", self.spend_cap, 128)
        _uint("nonce", self.nonce)
        _uint("chain_id", self.chain_id)
        object.__setattr__(self, "registry", _address("registry", self.registry))

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (camelCase keys); chain and registry are the domain's."""
        return {
            "holder": self.holder,
            "key": self.key,
            "modelId": self.model_id,
            "relayer": self.relayer,
            "expiresAt": self.expires_at,
            "maxCalls": self.max_calls,
            "spendCap": self.spend_cap,
            "nonce": self.nonce,
        }

    def as_tuple(self) -> tuple[str, str, int, str, int, int, int, int]:
        """The session as the contract's ``Session`` struct (a tuple in field order)."""
        return (self.holder, self.key, self.model_id, self.relayer, self.expires_at,
                self.max_calls, self.spend_cap, self.nonce)  # fmt: skip

    @classmethod
    def from_message(cls, message: dict[str, Any], chain_id: int, registry: str) -> Session:
        """Build a session from its ``message`` dict and its domain's chain and registry."""
        try:
            return cls(
                holder=message["holder"],
                key=message["key"],
                model_id=int(message["modelId"]),
                relayer=message["relayer"],
                expires_at=int(message["expiresAt"]),
                max_calls=int(message["maxCalls"]),
                spend_cap=int(message["spendCap"]),
                nonce=int(message["nonce"]),
                chain_id=int(chain_id),
                registry=registry,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not a Session message: {exc}") from None


# ------------------------------------------------------------------ generic machinery
def keccak256(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (the hash the ``bytes32`` fields carry), 32 bytes."""
    return bytes(_keccak(data))


def _document(
    name: str, chain_id: int, verifying_contract: str, primary: str, fields: list, message: dict
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary: fields},
        "primaryType": primary,
        "domain": {
            "name": name,
            "version": DOMAIN_VERSION,
            "chainId": _uint("chain_id", chain_id),
            "verifyingContract": _address("verifying_contract", verifying_contract),
        },
        "message": message,
    }


def _signable(document: dict[str, Any]) -> SignableMessage:
    return encode_typed_data(full_message=document)


def _digest(document: dict[str, Any]) -> bytes:
    signable = _signable(document)
    return keccak256(b"\x19" + signable.version + signable.header + signable.body)


def is_low_s(s: int) -> bool:
    """Whether ``s`` is in the lower half of the group order (the only form the chain accepts)."""
    return 0 < s <= SECP256K1_N // 2


def encode_signature(v: int, r: int, s: int) -> bytes:
    """Pack ``(v, r, s)`` into the 65-byte ``r || s || v`` form the contracts take.

    Args:
        v: Recovery id, 27 or 28 (0 or 1 is moved up by 27).
        r: The signature's ``r``.
        s: The signature's ``s``.
    """
    if v in (0, 1):
        v += 27
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def split_signature(signature: bytes | str) -> tuple[int, int, int]:
    """Unpack a 65-byte ``r || s || v`` signature into ``(v, r, s)``, refusing what the chain does.

    Raises:
        SignatureError: Not 65 bytes, ``v`` not 27 or 28, ``r`` or ``s`` out of range, high ``s``.
    """
    if isinstance(signature, str):
        try:
            signature = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            raise SignatureError("signature is not hex: send 65 bytes as 0x-prefixed hex") from None
    signature = bytes(signature)
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes (r, s, v), got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(f"signature v must be 27 or 28, got {v}")
    if not 0 < r < SECP256K1_N:
        raise SignatureError("signature r is out of range")
    if not is_low_s(s):
        raise SignatureError("signature s is zero or in the upper half (high-s form): refused")
    return v, r, s


def _sign(document: dict[str, Any], private_key: bytes | str) -> bytes:
    signed = Account.sign_message(_signable(document), private_key=private_key)
    v, r, s = signed.v, signed.r, signed.s
    if not is_low_s(s):  # NOTE: eth_keys signs low-s already; normalise in case a backend does not.
        s, v = SECP256K1_N - s, 55 - v
    return encode_signature(v, r, s)


def _recover(document: dict[str, Any], signature: bytes | str) -> str:
    v, r, s = split_signature(signature)
    try:
        signer = Account.recover_message(_signable(document), vrs=(v, r, s))
    except Exception as exc:  # eth_keys raises several types for an unrecoverable point
        raise SignatureError(f"signature does not recover to an address: {exc}") from None
    return to_checksum_address(signer)


def _verify(document: dict[str, Any], signature: bytes | str, expected_signer: str) -> None:
    expected = _address("expected_signer", expected_signer)
    signer = _recover(document, signature)
    if signer != expected:
        raise SignatureError(f"signed by {signer}, not by {expected}")


# ------------------------------------------------------------------ Voucher
def voucher_typed_data(voucher: Voucher) -> dict[str, Any]:
    """The full EIP-712 document of ``voucher`` in the CreditEscrow domain it names."""
    return _document(
        VOUCHER_DOMAIN_NAME,
        voucher.chain_id,
        voucher.escrow,
        "Voucher",
        _VOUCHER_TYPE,
        voucher.message(),
    )


def voucher_digest(voucher: Voucher) -> bytes:
    """The 32-byte digest a payer signs; equals ``CreditEscrow.voucherDigest(voucher)`` on chain."""
    return _digest(voucher_typed_data(voucher))


def signable_voucher(voucher: Voucher) -> SignableMessage:
    """``voucher`` as a message for an account that signs itself (ape: ``account.sign_message``)."""
    return _signable(voucher_typed_data(voucher))


def sign_voucher(voucher: Voucher, private_key: bytes | str) -> bytes:
    """Sign ``voucher`` with ``private_key``; returns 65 bytes ``r || s || v`` (low ``s``)."""
    return _sign(voucher_typed_data(voucher), private_key)


def recover_voucher_signer(voucher: Voucher, signature: bytes | str) -> str:
    """The checksummed address that signed ``voucher``.

    Raises:
        SignatureError: The signature is malformed or in the high-``s`` form.
    """
    return _recover(voucher_typed_data(voucher), signature)


def verify_voucher(voucher: Voucher, signature: bytes | str, expected_signer: str) -> None:
    """Raise :class:`SignatureError` unless ``expected_signer`` (the payer) signed ``voucher``."""
    _verify(voucher_typed_data(voucher), signature, expected_signer)


# ------------------------------------------------------------------ PredictRequest
def predict_request_typed_data(request: PredictRequest, registry: str) -> dict[str, Any]:
    """The full EIP-712 document of ``request``.

    Args:
        request: The request; its ``chain_id`` is also the domain's.
        registry: The RelayerRegistry's address (the domain's ``verifyingContract``).
    """
    return _document(
        RELAYER_DOMAIN_NAME,
        request.chain_id,
        registry,
        "PredictRequest",
        _PREDICT_REQUEST_TYPE,
        request.message(),
    )


def predict_request_digest(request: PredictRequest, registry: str) -> bytes:
    """The 32-byte digest a caller signs for ``request``."""
    return _digest(predict_request_typed_data(request, registry))


def signable_predict_request(request: PredictRequest, registry: str) -> SignableMessage:
    """``request`` as a message for an account that signs itself."""
    return _signable(predict_request_typed_data(request, registry))


def sign_predict_request(request: PredictRequest, registry: str, private_key: bytes | str) -> bytes:
    """Sign ``request`` with ``private_key``; returns 65 bytes ``r || s || v`` (low ``s``)."""
    return _sign(predict_request_typed_data(request, registry), private_key)


def recover_predict_request_signer(
    request: PredictRequest, registry: str, signature: bytes | str
) -> str:
    """The checksummed address that signed ``request``.

    Raises:
        SignatureError: The signature is malformed or in the high-``s`` form.
    """
    return _recover(predict_request_typed_data(request, registry), signature)


def verify_predict_request(
    request: PredictRequest, registry: str, signature: bytes | str, expected_signer: str
) -> None:
    """Raise :class:`SignatureError` unless ``expected_signer`` signed ``request``."""
    _verify(predict_request_typed_data(request, registry), signature, expected_signer)


# ------------------------------------------------------------------ Receipt
def receipt_typed_data(receipt: Receipt, chain_id: int, registry: str) -> dict[str, Any]:
    """The full EIP-712 document of ``receipt``.

    Args:
        receipt: The receipt.
        chain_id: The chain's EIP-155 id (the domain's ``chainId``).
        registry: The RelayerRegistry's address (the domain's ``verifyingContract``).
    """
    return _document(
        RELAYER_DOMAIN_NAME, chain_id, registry, "Receipt", _RECEIPT_TYPE, receipt.message()
    )


def receipt_digest(receipt: Receipt, chain_id: int, registry: str) -> bytes:
    """The 32-byte digest a relayer signs for ``receipt``."""
    return _digest(receipt_typed_data(receipt, chain_id, registry))


def signable_receipt(receipt: Receipt, chain_id: int, registry: str) -> SignableMessage:
    """``receipt`` as a message for an account that signs itself."""
    return _signable(receipt_typed_data(receipt, chain_id, registry))


def sign_receipt(receipt: Receipt, chain_id: int, registry: str, private_key: bytes | str) -> bytes:
    """Sign ``receipt`` with the relayer's ``private_key``; 65 bytes ``r || s || v`` (low ``s``)."""
    return _sign(receipt_typed_data(receipt, chain_id, registry), private_key)


def recover_receipt_signer(
    receipt: Receipt, chain_id: int, registry: str, signature: bytes | str
) -> str:
    """The checksummed address that signed ``receipt``.

    Raises:
        SignatureError: The signature is malformed or in the high-``s`` form.
    """
    return _recover(receipt_typed_data(receipt, chain_id, registry), signature)


def verify_receipt(
    receipt: Receipt, chain_id: int, registry: str, signature: bytes | str, expected_signer: str
) -> None:
    """Raise :class:`SignatureError` unless ``expected_signer`` (the relayer) signed ``receipt``."""
    _verify(receipt_typed_data(receipt, chain_id, registry), signature, expected_signer)


# ------------------------------------------------------------------ CreatorKey
#: The creator-key domain: no chain id and no contract, so one key serves every chain.
CREATOR_KEY_DOMAIN_NAME = "daimm Creator Key"
#: The fixed text a creator signs to derive their X25519 key (`keys.derive_private_key`).
CREATOR_KEY_PURPOSE = (
    "Derive my daimm encryption key. Sign this only on a daimm page or with `daimm keys derive`:"
    " whoever holds this signature can decrypt the models I publish."
)
_CREATOR_KEY_TYPE = [
    {"name": "account", "type": "address"},
    {"name": "purpose", "type": "string"},
]


def creator_key_typed_data(account: str) -> dict[str, Any]:
    """The fixed EIP-712 document ``account`` signs to derive its creator X25519 key.

    ``CreatorKey(address account,string purpose)`` in the domain ``{name: "daimm Creator Key",
    version: "1"}``; the browser module (``js/creatorkey.js``) builds the same document.
    """
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE[:2], "CreatorKey": _CREATOR_KEY_TYPE},
        "primaryType": "CreatorKey",
        "domain": {"name": CREATOR_KEY_DOMAIN_NAME, "version": DOMAIN_VERSION},
        "message": {"account": _address("account", account), "purpose": CREATOR_KEY_PURPOSE},
    }


def signable_creator_key(account: str) -> SignableMessage:
    """For accounts that sign messages themselves (an ape account's ``sign_message``)."""
    return _signable(creator_key_typed_data(account))


def verify_creator_key(account: str, signature: bytes | str) -> None:
    """Raises :class:`~daimm.errors.SignatureError` unless ``account`` signed its CreatorKey."""
    _verify(creator_key_typed_data(account), signature, account)


# ------------------------------------------------------------------ Upload
UPLOAD_DOMAIN_NAME = "daimm Upload"
_UPLOAD_TYPE = [
    {"name": "uploader", "type": "address"},
    {"name": "bodyHash", "type": "bytes32"},
    {"name": "size", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """A wallet's permission for one CAR upload to ``daimm web`` (``POST /api/uploads``).

    ``bodyHash`` is the SHA-256 of the CAR's bytes, ``size`` its length, ``nonce`` any number
    the uploader has not used before, ``deadline`` a Unix time in seconds.
    """

    uploader: str
    body_hash: bytes
    size: int
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "uploader", _address("uploader", self.uploader))
        object.__setattr__(self, "body_hash", _bytes32("body_hash", self.body_hash))
        for name in ("size", "nonce", "deadline"):
            _uint(name, getattr(self, name))

    def message(self) -> dict[str, Any]:
        return {
            "uploader": self.uploader,
            "bodyHash": self.body_hash,
            "size": self.size,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


def upload_typed_data(request: UploadRequest, chain_id: int, registry: str) -> dict[str, Any]:
    """``Upload(address uploader,bytes32 bodyHash,uint256 size,uint256 nonce,uint256 deadline)``
    in the domain ``{name: "daimm Upload", version: "1", chainId, verifyingContract: registry}``
    (``registry`` is the deployment's ModelRegistry)."""
    return _document(
        UPLOAD_DOMAIN_NAME, chain_id, registry, "Upload", _UPLOAD_TYPE, request.message()
    )


def sign_upload(
    request: UploadRequest, chain_id: int, registry: str, private_key: bytes | str
) -> bytes:
    return _sign(upload_typed_data(request, chain_id, registry), private_key)


def verify_upload(
    request: UploadRequest, chain_id: int, registry: str, signature: bytes | str
) -> None:
    """Raises :class:`~daimm.errors.SignatureError` unless ``request.uploader`` signed it."""
    _verify(upload_typed_data(request, chain_id, registry), signature, request.uploader)


_UPLOAD_SESSION_TYPE = [
    {"name": "uploader", "type": "address"},
    {"name": "piecesHash", "type": "bytes32"},
    {"name": "pieces", "type": "uint256"},
    {"name": "size", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


@dataclass(frozen=True, slots=True)
class UploadSessionRequest:
    """A wallet's permission for one CAR uploaded in pieces (``POST /api/uploads/sessions``).

    ``piecesHash`` is the SHA-256 of the pieces' SHA-256 digests concatenated in order,
    ``pieces`` their number, ``size`` the CAR's total length; ``nonce`` and ``deadline`` as in
    :class:`UploadRequest` (one nonce space for both).
    """

    uploader: str
    pieces_hash: bytes
    pieces: int
    size: int
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "uploader", _address("uploader", self.uploader))
        object.__setattr__(self, "pieces_hash", _bytes32("pieces_hash", self.pieces_hash))
        for name in ("pieces", "size", "nonce", "deadline"):
            _uint(name, getattr(self, name))

    def message(self) -> dict[str, Any]:
        return {
            "uploader": self.uploader,
            "piecesHash": self.pieces_hash,
            "pieces": self.pieces,
            "size": self.size,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


def upload_session_typed_data(
    request: UploadSessionRequest, chain_id: int, registry: str
) -> dict[str, Any]:
    """``UploadSession(address uploader,bytes32 piecesHash,uint256 pieces,uint256 size,uint256
    nonce,uint256 deadline)`` in the ``Upload`` domain (:func:`upload_typed_data`)."""
    return _document(
        UPLOAD_DOMAIN_NAME, chain_id, registry, "UploadSession", _UPLOAD_SESSION_TYPE,
        request.message(),
    )  # fmt: skip


def sign_upload_session(
    request: UploadSessionRequest, chain_id: int, registry: str, private_key: bytes | str
) -> bytes:
    return _sign(upload_session_typed_data(request, chain_id, registry), private_key)


def verify_upload_session(
    request: UploadSessionRequest, chain_id: int, registry: str, signature: bytes | str
) -> None:
    """Raises :class:`~daimm.errors.SignatureError` unless ``request.uploader`` signed it."""
    _verify(upload_session_typed_data(request, chain_id, registry), signature, request.uploader)


# ------------------------------------------------------------------ ProofClaim (docs/ZK.md)
_PROOF_CLAIM_TYPE = [
    {"name": "receipt", "type": "bytes32"},
    {"name": "instancesHash", "type": "bytes32"},
]


def proof_claim_typed_data(
    receipt_digest_: bytes, instances_hash: bytes, chain_id: int, registry: str
) -> dict[str, Any]:
    """The EIP-712 ``ProofClaim(bytes32 receipt, bytes32 instancesHash)`` in the relayers' domain.

    A relayer signs it beside a receipt of a provable model: ``receipt`` is the receipt's digest,
    ``instancesHash`` the keccak256 of the circuit's public inputs and outputs (``daimm.zk``).
    """
    message = {
        "receipt": _bytes32("receipt", receipt_digest_),
        "instancesHash": _bytes32("instancesHash", instances_hash),
    }
    return _document(
        RELAYER_DOMAIN_NAME, chain_id, registry, "ProofClaim", _PROOF_CLAIM_TYPE, message
    )


def proof_claim_digest(
    receipt_digest_: bytes, instances_hash: bytes, chain_id: int, registry: str
) -> bytes:
    """The 32-byte digest a relayer signs for a ``ProofClaim``."""
    return _digest(proof_claim_typed_data(receipt_digest_, instances_hash, chain_id, registry))


def sign_proof_claim(
    receipt_digest_: bytes,
    instances_hash: bytes,
    chain_id: int,
    registry: str,
    private_key: bytes | str,
) -> bytes:
    """Sign a ``ProofClaim`` with the relayer's key; 65 bytes ``r || s || v`` (low ``s``)."""
    return _sign(
        proof_claim_typed_data(receipt_digest_, instances_hash, chain_id, registry), private_key
    )


def verify_proof_claim(
    receipt_digest_: bytes,
    instances_hash: bytes,
    chain_id: int,
    registry: str,
    signature: bytes | str,
    expected_signer: str,
) -> None:
    """Raise :class:`SignatureError` unless ``expected_signer`` signed the ``ProofClaim``."""
    _verify(
        proof_claim_typed_data(receipt_digest_, instances_hash, chain_id, registry),
        signature,
        expected_signer,
    )


__all__ += [
    "proof_claim_digest",
    "proof_claim_typed_data",
    "sign_proof_claim",
    "verify_proof_claim",
]


# ------------------------------------------------------------------ Session
def session_typed_data(session: Session) -> dict[str, Any]:
    """The full EIP-712 document of ``session`` in the SessionRegistry domain it names."""
    return _document(
        SESSION_DOMAIN_NAME,
        session.chain_id,
        session.registry,
        "Session",
        _SESSION_TYPE,
        session.message(),
    )


def session_digest(session: Session) -> bytes:
    """The 32-byte digest a holder signs: the session's hash (``SessionRegistry.revoke`` takes it,
    and ``SessionRegistry.sessionDigest`` computes it on chain)."""
    return _digest(session_typed_data(session))


def signable_session(session: Session) -> SignableMessage:
    """``session`` as a message for an account that signs itself (a wallet, an ape account)."""
    return _signable(session_typed_data(session))


def sign_session(session: Session, private_key: bytes | str) -> bytes:
    """Sign ``session`` with the holder's ``private_key``; 65 bytes ``r || s || v`` (low ``s``)."""
    return _sign(session_typed_data(session), private_key)


def recover_session_signer(session: Session, signature: bytes | str) -> str:
    """The checksummed address that signed ``session``.

    Raises:
        SignatureError: The signature is malformed or in the high-``s`` form.
    """
    return _recover(session_typed_data(session), signature)


def verify_session(session: Session, signature: bytes | str) -> None:
    """Raise :class:`SignatureError` unless ``session.holder`` signed ``session``."""
    _verify(session_typed_data(session), signature, session.holder)
