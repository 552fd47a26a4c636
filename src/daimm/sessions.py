"""Session keys: one holder signature, then many requests signed by a bounded, revocable key.

Pure (no chain, no network, no files). A licence holder's wallet signs one EIP-712
:class:`~daimm.eip712.Session` naming a fresh *session key*, the model (or any), the relayer (or
any), an expiry, a cap on calls and a cap on pay-per-use spend, and the holder's current
``SessionRegistry`` nonce. Requests are then signed by the session key and carry the session and
the holder's signature (the ``X-Daimm-Session`` header, :func:`encode_session_token`); the relayer
checks the rules below, that the holder has access in its own right, and that the session is not
revoked on chain (``SessionRegistry``).

The rules (:func:`check_session`, each refusal with its own ``code``):

- ``session_expired``: ``expires_at`` is at or before now;
- ``session_wrong_model`` / ``session_wrong_relayer``: the session names another model or relayer;
- ``session_wrong_domain``: signed for another chain or SessionRegistry;
- ``session_key_is_holder``: the key is the holder itself (sign plain requests instead);
- ``session_spend_needs_relayer``: a spend cap above 0 with "any relayer" (see below);
- ``session_no_calls``: ``max_calls`` is 0.

Design decisions:

- **No chains of delegation.** A session is valid only when its signature recovers to its
  ``holder``, and the holder must hold access (licence, rental or credit) in its own right, read on
  chain; there is no field for a parent session, so a session key signing a session for a third key
  delegates nothing it has. The relayer also refuses ``session_delegation`` when a session's holder
  is a key it has seen in another session, so the mistake is named rather than reported as "no
  licence".
- **Calls cap per relayer.** Each relayer counts a session's calls in its own state store
  (committed before the answer); a session for "any relayer" may make ``max_calls`` at each.
  Name one relayer for a global call cap.
- **Spend cap.** Pay-per-use through a session: the session key signs vouchers on the holder's
  channel; ``CreditEscrow.redeemSessionBatch`` counts each session's redeemed value on chain, so
  no batch of any relayer can redeem past the cap, and the relayer counts the spend before it
  serves (``docs/CONTRACTS-EXT.md``, "Sessions"). A spend cap requires one named relayer, so the
  relayer that serves the calls alone can redeem them.

The API key (``daimm_sk_...``, :class:`ApiKey`) is one string an application is given once: a
version byte, the session key's private key, the session and the holder's signature, and a 4-byte
checksum (Keccak-256), base64url without padding. A mangled paste fails the checksum and is refused
with :class:`~daimm.errors.ApiKeyError` before anything else is tried.

Example::

    session = new_session(holder, key_address, model_id=1, nonce=0, chain_id=1,
                          registry=session_registry, now=time.time())
    api_key = ApiKey(key_private, session, sign_session(session, holder_key))
    text = api_key.encode()            # "daimm_sk_..."
    assert parse_api_key(text) == api_key
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass

from eth_account import Account

from daimm.eip712 import (
    ZERO_ADDRESS,
    Session,
    keccak256,
    recover_session_signer,
    session_digest,
)
from daimm.errors import ApiKeyError, SessionError, SignatureError, ValidationError

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_MAX_CALLS",
    "DEFAULT_TTL_S",
    "MAX_TTL_S",
    "SESSION_VERSION",
    "ApiKey",
    "check_session",
    "decode_session_token",
    "encode_session_token",
    "new_session",
    "parse_api_key",
    "session_hash",
]

#: A session lasts 24 hours unless asked otherwise.
DEFAULT_TTL_S = 24 * 3600
#: The longest session :func:`new_session` makes (30 days): revocation is a transaction, expiry is
#: free, so long-lived keys are discouraged.
MAX_TTL_S = 30 * 24 * 3600
#: Calls per relayer a session allows unless asked otherwise.
DEFAULT_MAX_CALLS = 10_000
API_KEY_PREFIX = "daimm_sk_"
#: Version byte of the session token and API key layouts.
SESSION_VERSION = 1

# chain id 8 | registry 20 | holder 20 | key 20 | model id 32 | relayer 20 | expires at 8 |
# max calls 8 | spend cap 16 | nonce 32 (big-endian, fixed widths)
_SESSION_BYTES = 184
_SIGNATURE_BYTES = 65
_TOKEN_BYTES = 1 + _SESSION_BYTES + _SIGNATURE_BYTES
_API_KEY_BYTES = 1 + 32 + _SESSION_BYTES + _SIGNATURE_BYTES + 4


def session_hash(session: Session) -> bytes:
    """The session's 32-byte hash: its EIP-712 digest (what ``SessionRegistry.revoke`` takes)."""
    return session_digest(session)


def new_session(
    holder: str,
    key: str,
    *,
    model_id: int | None,
    nonce: int,
    chain_id: int,
    registry: str,
    relayer: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    max_calls: int = DEFAULT_MAX_CALLS,
    spend_cap: int = 0,
    now: float | None = None,
) -> Session:
    """A session following the defaults and rules (not yet signed).

    Args:
        holder: The wallet that will sign it (holds the licence, rental or credit).
        key: The session key's address.
        model_id: The model; ``None`` for any model (say so on purpose: one model is the default
            everywhere else).
        nonce: The holder's current ``SessionRegistry.nonceOf``.
        chain_id: The chain's id.
        registry: The SessionRegistry's address.
        relayer: One relayer, or ``None`` for any.
        ttl_s: Lifetime in seconds (1..``MAX_TTL_S``).
        max_calls: Calls each relayer serves on it (at least 1).
        spend_cap: Pay-per-use value it may spend (smallest unit); above 0 needs ``relayer``.
        now: Unix time in seconds (default: the clock).

    Raises:
        SessionError: A rule is broken (its ``code`` says which).
        ValidationError: A value is out of range.
    """
    if not 0 < ttl_s <= MAX_TTL_S:
        raise SessionError(
            "session_ttl", f"a session lasts 1..{MAX_TTL_S} s (30 days), not {ttl_s}"
        )
    start = int(time.time() if now is None else now)
    session = Session(
        holder=holder,
        key=key,
        model_id=0 if model_id is None else model_id,
        relayer=ZERO_ADDRESS if relayer is None else relayer,
        expires_at=start + ttl_s,
        max_calls=max_calls,
        spend_cap=spend_cap,
        nonce=nonce,
        chain_id=chain_id,
        registry=registry,
    )
    if model_id == 0:
        raise ValidationError("model ids start at 1; pass model_id=None for any model")
    _check_shape(session)
    return session


def _check_shape(session: Session) -> None:
    if session.key == session.holder:
        raise SessionError(
            "session_key_is_holder",
            "the session key is the holder's own address: sign requests with the wallet instead",
        )
    if session.max_calls == 0:
        raise SessionError("session_no_calls", "the session allows no calls: set max_calls >= 1")
    if session.spend_cap > 0 and session.relayer == ZERO_ADDRESS:
        raise SessionError(
            "session_spend_needs_relayer",
            "a session with a spend cap must name one relayer (the one that redeems its calls)",
        )


def check_session(
    session: Session,
    *,
    now: int,
    model_id: int,
    relayer: str,
    chain_id: int,
    registry: str,
) -> None:
    """Check ``session`` for one request to ``relayer`` on ``model_id`` at ``now``.

    Signature, access, revocation and call counts are the caller's (they need the chain or state).

    Args:
        session: The session the request carries.
        now: Unix time in seconds.
        model_id: The model asked for.
        relayer: The serving relayer's address (checksummed).
        chain_id: The chain the relayer serves.
        registry: The SessionRegistry the relayer trusts (checksummed).

    Raises:
        SessionError: The first rule broken, by ``code`` (see the module docstring).
    """
    if session.chain_id != chain_id or session.registry != registry:
        raise SessionError(
            "session_wrong_domain",
            f"the session was signed for chain {session.chain_id} and SessionRegistry"
            f" {session.registry}; this relayer uses chain {chain_id} and {registry}",
        )
    _check_shape(session)
    if session.expires_at <= now:
        raise SessionError(
            "session_expired",
            f"the session expired at {session.expires_at} (now {now}): ask the holder for a new"
            " one",
        )
    if session.model_id not in (0, model_id):
        raise SessionError(
            "session_wrong_model",
            f"the session is for model {session.model_id}, not model {model_id}",
        )
    if session.relayer not in (ZERO_ADDRESS, relayer):
        raise SessionError(
            "session_wrong_relayer",
            f"the session is for relayer {session.relayer}; this is {relayer}",
        )


# ------------------------------------------------------------------ the compact encoding
def _session_bytes(session: Session) -> bytes:
    if session.chain_id >= 2**64:
        raise ValidationError(f"chain id {session.chain_id} does not fit a session token")
    return b"".join(
        (
            session.chain_id.to_bytes(8, "big"),
            bytes.fromhex(session.registry[2:]),
            bytes.fromhex(session.holder[2:]),
            bytes.fromhex(session.key[2:]),
            session.model_id.to_bytes(32, "big"),
            bytes.fromhex(session.relayer[2:]),
            session.expires_at.to_bytes(8, "big"),
            session.max_calls.to_bytes(8, "big"),
            session.spend_cap.to_bytes(16, "big"),
            session.nonce.to_bytes(32, "big"),
        )
    )


def _session_from_bytes(raw: bytes) -> Session:
    assert len(raw) == _SESSION_BYTES

    def address(at: int) -> str:
        return "0x" + raw[at : at + 20].hex()

    def number(at: int, width: int) -> int:
        return int.from_bytes(raw[at : at + width], "big")

    return Session(
        chain_id=number(0, 8),
        registry=address(8),
        holder=address(28),
        key=address(48),
        model_id=number(68, 32),
        relayer=address(100),
        expires_at=number(120, 8),
        max_calls=number(128, 8),
        spend_cap=number(136, 16),
        nonce=number(152, 32),
    )


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise binascii.Error("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:  # NOTE: unused low bits in the last character: one spelling only
        raise binascii.Error("not canonical base64url")
    return raw


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def encode_session_token(session: Session, signature: bytes) -> str:
    """The ``X-Daimm-Session`` header value: base64url of version, session and holder signature."""
    if len(signature) != _SIGNATURE_BYTES:
        raise ValidationError("the holder's signature must be 65 bytes (r, s, v)")
    return _b64encode(bytes([SESSION_VERSION]) + _session_bytes(session) + bytes(signature))


def decode_session_token(text: str) -> tuple[Session, bytes]:
    """The session and holder signature in an ``X-Daimm-Session`` value (signature unchecked).

    Raises:
        SessionError: ``session_malformed``: not base64url, wrong length or version, or a field
            out of range.
    """
    try:
        raw = _b64decode(text.strip())
    except (binascii.Error, ValueError):
        raise SessionError("session_malformed", "the session header is not base64url") from None
    if len(raw) != _TOKEN_BYTES or raw[0] != SESSION_VERSION:
        raise SessionError(
            "session_malformed",
            f"the session header must be {_TOKEN_BYTES} bytes of version {SESSION_VERSION}",
        )
    try:
        session = _session_from_bytes(raw[1 : 1 + _SESSION_BYTES])
    except ValidationError as exc:
        raise SessionError("session_malformed", f"the session header: {exc}") from None
    return session, raw[1 + _SESSION_BYTES :]


# ------------------------------------------------------------------ API keys
@dataclass(frozen=True)
class ApiKey:
    """A session key with its signed session: everything an application needs to call relayers.

    Attributes:
        private_key: The session key's 32-byte private key (a secret: show it once).
        session: The session the holder signed.
        signature: The holder's 65-byte signature of ``session``.
    """

    private_key: bytes
    session: Session
    signature: bytes

    def __repr__(self) -> str:  # never print the key
        return f"ApiKey(key={self.session.key}, holder={self.session.holder}, session=...)"

    @property
    def hash(self) -> bytes:
        """The session's hash (revoke it with ``SessionRegistry.revoke``)."""
        return session_hash(self.session)

    @property
    def token(self) -> str:
        """The ``X-Daimm-Session`` header value."""
        return encode_session_token(self.session, self.signature)

    def encode(self) -> str:
        """The ``daimm_sk_...`` string (version, key, session, signature, checksum)."""
        if len(self.private_key) != 32:
            raise ValidationError("a session key is 32 bytes")
        body = (
            bytes([SESSION_VERSION])
            + self.private_key
            + _session_bytes(self.session)
            + self.signature
        )
        return API_KEY_PREFIX + _b64encode(body + keccak256(body)[:4])


def parse_api_key(text: str) -> ApiKey:
    """Parse and check a pasted ``daimm_sk_...`` key.

    Checks, in order: prefix, base64url, length, checksum (a mangled paste stops here), version,
    the private key matching the session's key, the holder's signature.

    Raises:
        ApiKeyError: ``api_key_malformed``, ``api_key_checksum``, ``api_key_version``,
            ``api_key_mismatch`` or ``api_key_bad_signature`` (the ``code`` says which).
    """
    text = text.strip()
    if not text.startswith(API_KEY_PREFIX):
        raise ApiKeyError(
            "api_key_malformed",
            f"an API key starts with {API_KEY_PREFIX!r}: paste the whole key",
        )
    try:
        raw = _b64decode(text[len(API_KEY_PREFIX) :])
    except (binascii.Error, ValueError):
        raise ApiKeyError(
            "api_key_malformed", "the API key holds characters outside base64url: paste it again"
        ) from None
    if len(raw) != _API_KEY_BYTES:
        raise ApiKeyError(
            "api_key_malformed",
            f"the API key is {len(raw)} bytes, not {_API_KEY_BYTES}: it was cut; paste it again",
        )
    body, checksum = raw[:-4], raw[-4:]
    if keccak256(body)[:4] != checksum:
        raise ApiKeyError(
            "api_key_checksum", "the API key's checksum does not match: it was mangled; paste again"
        )
    if body[0] != SESSION_VERSION:
        raise ApiKeyError(
            "api_key_version",
            f"API key version {body[0]} is not supported (this daimm reads {SESSION_VERSION})",
        )
    private_key = body[1:33]
    try:
        session = _session_from_bytes(body[33 : 33 + _SESSION_BYTES])
        address = Account.from_key(private_key).address
    except (ValidationError, ValueError) as exc:
        raise ApiKeyError("api_key_malformed", f"the API key holds a bad field: {exc}") from None
    if address != session.key:
        raise ApiKeyError(
            "api_key_mismatch", "the API key's private key is not its session's key: make a new one"
        )
    signature = body[33 + _SESSION_BYTES :]
    try:
        signer = recover_session_signer(session, signature)
    except SignatureError as exc:
        raise ApiKeyError("api_key_bad_signature", f"the session signature: {exc}") from None
    if signer != session.holder:
        raise ApiKeyError(
            "api_key_bad_signature",
            f"the session was signed by {signer}, not by its holder {session.holder}",
        )
    return ApiKey(private_key, session, signature)
