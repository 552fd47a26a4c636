"""Key envelopes: a model's content key wrapped for each recipient's X25519 public key.

The envelope is a small JSON document stored apart from the ciphertext, so adding a recipient (a
new relayer, a perpetual licensee) changes only the envelope, never the weights' CID::

    {
      "kind": "daimm-key-envelope",
      "version": 1,
      "scheme": "hpke-x25519-sha256-aes256gcm",
      "recipients": [
        {"public_key": "x25519:<64 hex>", "enc": "<base64>", "wrapped_key": "<base64>"}
      ]
    }

Schemes:
- `hpke-x25519-sha256-aes256gcm`: RFC 9180 HPKE base mode (DHKEM(X25519, HKDF-SHA256),
  HKDF-SHA256, AES-256-GCM), used when the installed `cryptography` provides HPKE.
- `x25519-hkdf-sha256-aes256gcm`: ephemeral X25519; HKDF-SHA256(shared secret, salt = ephemeral
  public || recipient public, info = label) -> AES-256-GCM key; nonce of zeros (each key seals
  exactly one message); associated data = label || recipient public key.

Both bind the recipient's public key into the wrap (`info`), and both refuse an all-zero X25519
shared secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daimm.crypto.keys import PublicKey, checked_exchange, public_key_of
from daimm.errors import CryptoError

try:  # HPKE arrived in cryptography 45
    from cryptography.hazmat.primitives import hpke as _hpke
except ImportError:  # pragma: no cover - depends on the installed cryptography
    _hpke = None  # type: ignore[assignment]

__all__ = [
    "SCHEME_HPKE",
    "SCHEME_X25519",
    "KeyEnvelope",
    "Recipient",
    "add_recipient",
    "default_scheme",
    "unwrap_key",
    "wrap_key",
]

KIND = "daimm-key-envelope"
SCHEME_HPKE = "hpke-x25519-sha256-aes256gcm"
SCHEME_X25519 = "x25519-hkdf-sha256-aes256gcm"
_LABEL = b"daimm/key-envelope/v1"
_KEY_SIZE = 32
_WRAPPED_SIZE = _KEY_SIZE + 16
_MAX_RECIPIENTS = 1024


def default_scheme() -> str:
    """HPKE if this `cryptography` has it, else the equivalent X25519 + HKDF + AES-GCM."""
    return SCHEME_HPKE if _hpke is not None else SCHEME_X25519


@dataclass(frozen=True, slots=True)
class Recipient:
    public_key: PublicKey
    enc: bytes  # the ephemeral public key (HPKE `enc`)
    wrapped_key: bytes  # AEAD(content key) || tag


@dataclass(frozen=True, slots=True)
class KeyEnvelope:
    scheme: str
    recipients: tuple[Recipient, ...]

    def to_json(self) -> bytes:
        doc = {
            "kind": KIND,
            "version": 1,
            "scheme": self.scheme,
            "recipients": [
                {
                    "public_key": str(r.public_key),
                    "enc": base64.b64encode(r.enc).decode(),
                    "wrapped_key": base64.b64encode(r.wrapped_key).decode(),
                }
                for r in self.recipients
            ],
        }
        return (json.dumps(doc, indent=2) + "\n").encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str) -> KeyEnvelope:
        """Parse strictly; anything unexpected is refused.

        Raises:
            CryptoError: malformed envelope (the message says which part).
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise CryptoError("malformed key envelope: not JSON") from None
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise CryptoError("malformed key envelope: not a daimm key envelope")
        if doc.get("version") != 1:
            raise CryptoError(f"key envelope version {doc.get('version')!r} is not supported")
        if set(doc) != {"kind", "version", "scheme", "recipients"}:
            raise CryptoError("malformed key envelope: unexpected or missing fields")
        scheme = doc["scheme"]
        if scheme not in (SCHEME_HPKE, SCHEME_X25519):
            raise CryptoError(f"key envelope scheme {scheme!r} is not supported")
        items = doc["recipients"]
        if not isinstance(items, list) or not 0 < len(items) <= _MAX_RECIPIENTS:
            raise CryptoError("malformed key envelope: recipients must be a non-empty list")
        return cls(scheme, tuple(_parse_recipient(item) for item in items))


def _b64(item: dict[str, Any], name: str, size: int) -> bytes:
    value = item.get(name)
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size:
        raise CryptoError(f"malformed key envelope: {name!r} must be {size} bytes of base64")
    return raw


def _parse_recipient(item: Any) -> Recipient:
    if not isinstance(item, dict) or set(item) != {"public_key", "enc", "wrapped_key"}:
        raise CryptoError(
            "malformed key envelope: each recipient needs public_key, enc and wrapped_key"
        )
    if not isinstance(item["public_key"], str):
        raise CryptoError("malformed key envelope: public_key must be a string")
    return Recipient(
        PublicKey.parse(item["public_key"]),
        _b64(item, "enc", 32),
        _b64(item, "wrapped_key", _WRAPPED_SIZE),
    )


def _info(recipient: PublicKey) -> bytes:
    return _LABEL + recipient.raw


def _wrap_one(content_key: bytes, recipient: PublicKey, scheme: str) -> Recipient:
    if scheme == SCHEME_HPKE:
        if _hpke is None:
            raise CryptoError("this cryptography build has no HPKE; use scheme " + SCHEME_X25519)
        suite = _hpke.Suite(_hpke.KEM.X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.AES_256_GCM)
        sealed = suite.encrypt(content_key, recipient.to_cryptography(), info=_info(recipient))
        return Recipient(recipient, sealed[:32], sealed[32:])
    if scheme == SCHEME_X25519:
        ephemeral = X25519PrivateKey.generate()
        enc = ephemeral.public_key().public_bytes_raw()
        shared = checked_exchange(ephemeral, recipient.raw)
        key = _kdf(shared, enc, recipient)
        wrapped = AESGCM(key).encrypt(bytes(12), content_key, _info(recipient))
        return Recipient(recipient, enc, wrapped)
    raise CryptoError(f"unknown key envelope scheme {scheme!r}")


def _kdf(shared: bytes, enc: bytes, recipient: PublicKey) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=enc + recipient.raw, info=_info(recipient)
    ).derive(shared)


def wrap_key(
    content_key: bytes, recipients: list[PublicKey], *, scheme: str | None = None
) -> KeyEnvelope:
    """Wrap `content_key` for every recipient (each with its own ephemeral key)."""
    if len(content_key) != _KEY_SIZE:
        raise CryptoError("a content key is 32 bytes")
    if not recipients:
        raise CryptoError("a key envelope needs at least one recipient (--recipient)")
    scheme = scheme or default_scheme()
    return KeyEnvelope(scheme, tuple(_wrap_one(content_key, r, scheme) for r in recipients))


def add_recipient(envelope: KeyEnvelope, content_key: bytes, recipient: PublicKey) -> KeyEnvelope:
    """A new envelope that also opens for `recipient` (the ciphertext and its CID are unchanged).

    The caller proves it holds the content key (typically `unwrap_key` with its own private key).
    """
    if any(r.public_key == recipient for r in envelope.recipients):
        return envelope
    entry = _wrap_one(content_key, recipient, envelope.scheme)
    return replace(envelope, recipients=(*envelope.recipients, entry))


def unwrap_key(envelope: KeyEnvelope, private: X25519PrivateKey) -> bytes:
    """Recover the content key with the recipient's private key.

    Raises:
        CryptoError: no entry for this key, a low-order ephemeral key, or a wrap that fails to
            authenticate.
    """
    me = public_key_of(private)
    entries = [r for r in envelope.recipients if r.public_key == me]
    if not entries:
        raise CryptoError(
            f"this key envelope has no entry for public key {me}; ask the creator to add you"
        )
    entry = entries[0]
    shared = checked_exchange(private, entry.enc)  # refuses a low-order `enc` in either scheme
    try:
        if envelope.scheme == SCHEME_HPKE:
            if _hpke is None:
                raise CryptoError("this envelope uses HPKE; upgrade the cryptography package")
            suite = _hpke.Suite(_hpke.KEM.X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.AES_256_GCM)
            content_key = suite.decrypt(entry.enc + entry.wrapped_key, private, info=_info(me))
        else:
            key = _kdf(shared, entry.enc, me)
            content_key = AESGCM(key).decrypt(bytes(12), entry.wrapped_key, _info(me))
    except (InvalidTag, ValueError):
        raise CryptoError(
            "the wrapped key for this public key failed to authenticate: the envelope is "
            "corrupted or was tampered with"
        ) from None
    if len(content_key) != _KEY_SIZE:
        raise CryptoError("malformed key envelope: the wrapped key is not 32 bytes")
    return content_key
