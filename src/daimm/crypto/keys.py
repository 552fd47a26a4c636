"""daimm's own X25519 key pairs: text form of public keys, and private key files.

A public key is written `x25519:` followed by 64 hex digits. A private key file is a small JSON
document, created with mode 0600 and refused when others can read it::

    {"kind": "daimm-x25519-private-key", "version": 1, "public_key": "x25519:...",
     "private_key": "<hex>"}                                  # no passphrase
    {"kind": ..., "version": 1, "public_key": ..., "encrypted": {"kdf": "scrypt",
     "salt": "<hex>", "n": 32768, "r": 8, "p": 1, "cipher": "aes-256-gcm",
     "nonce": "<hex>", "ciphertext": "<hex>"}}                 # with a passphrase

The scrypt-derived key seals the private key with AES-256-GCM, its associated data binding the
public key, so a file cannot be spliced together from two others.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from daimm.errors import CryptoError

__all__ = [
    "PublicKey",
    "checked_exchange",
    "derive_private_key",
    "generate_private_key",
    "load_private_key",
    "parse_private_key",
    "public_key_of",
    "save_private_key",
    "serialize_private_key",
]

KIND = "daimm-x25519-private-key"
PUBLIC_PREFIX = "x25519:"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_MAX_SCRYPT_N = 1 << 20  # refuse files that would make loading take minutes or GiBs
#: HKDF info of a creator key derived from a wallet signature (`derive_private_key`).
DERIVE_INFO = b"daimm/creator-key/v1"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An X25519 public key (32 bytes), validated: low-order points are refused."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise CryptoError("an X25519 public key is 32 bytes")
        _refuse_low_order(self.raw)

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Parse `x25519:<64 hex digits>` (the prefix may be left out)."""
        body = text.strip()
        if body.startswith(PUBLIC_PREFIX):
            body = body[len(PUBLIC_PREFIX) :]
        try:
            raw = bytes.fromhex(body)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise CryptoError(
                f"{text!r} is not a daimm public key: expected x25519: and 64 hex digits "
                "(as printed by `daimm keys new`)"
            )
        return cls(raw)

    def to_cryptography(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(self.raw)

    def __str__(self) -> str:
        return PUBLIC_PREFIX + self.raw.hex()


def checked_exchange(private: X25519PrivateKey, public: bytes) -> bytes:
    """X25519 that refuses an all-zero shared secret (RFC 7748 section 6.1).

    A low-order public key forces the shared secret to zero whatever the private key, so anything
    derived from it would be known to everyone.

    Raises:
        CryptoError: the public key is malformed or a low-order point.
    """
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        shared = bytes(32)  # OpenSSL refuses the all-zero result itself; same outcome
    if shared == bytes(32):
        raise CryptoError(
            "refusing X25519 key agreement: all-zero shared secret (the public key is a "
            "low-order point, so the result would be public); ask for the recipient's real key"
        )
    return shared


def _refuse_low_order(public: bytes) -> None:
    # NOTE: low-order points give zero with every clamped scalar, so one throwaway key suffices.
    checked_exchange(X25519PrivateKey.generate(), public)


def generate_private_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def derive_private_key(signature: bytes) -> X25519PrivateKey:
    """The X25519 key a creator's wallet signature over the fixed `CreatorKey` message gives.

    ``HKDF-SHA256(ikm = r || s, salt = none, info = "daimm/creator-key/v1")``, 32 bytes, used as
    the X25519 private key (clamped by X25519 itself). ``s`` is first brought to its low form and
    ``v`` is left out, so the high-``s`` twin of a signature and either ``v`` encoding give the
    same key. Pure: the browser module (``js/creatorkey.js``) computes the same bytes.

    NOTE: the key is only as reproducible as the signature: wallets sign deterministically
    (RFC 6979), so the same account signing the same message recovers the same key.

    Raises:
        CryptoError: not a 65-byte ``r || s || v`` signature, or ``r``/``s`` out of range.
    """
    if len(signature) != 65:
        raise CryptoError(
            f"a wallet signature is 65 bytes (r, s, v), got {len(signature)}; sign the "
            "CreatorKey message with eth_signTypedData_v4"
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not (0 < r < _SECP256K1_N and 0 < s < _SECP256K1_N):
        raise CryptoError("the wallet signature's r or s is out of range: not a real signature")
    s = min(s, _SECP256K1_N - s)
    ikm = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DERIVE_INFO).derive(ikm)
    return X25519PrivateKey.from_private_bytes(raw)


def public_key_of(private: X25519PrivateKey) -> PublicKey:
    return PublicKey(private.public_key().public_bytes_raw())


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def serialize_private_key(private: X25519PrivateKey, passphrase: str | None = None) -> bytes:
    """The key file's bytes (JSON). With a passphrase the private key is scrypt-protected."""
    public = public_key_of(private)
    raw = private.private_bytes_raw()
    doc: dict[str, Any] = {"kind": KIND, "version": 1, "public_key": str(public)}
    if passphrase is None:
        doc["private_key"] = raw.hex()
    else:
        if not passphrase:
            raise CryptoError("an empty passphrase protects nothing; omit it or choose one")
        salt, nonce = os.urandom(16), os.urandom(12)
        key = _scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        sealed = AESGCM(key).encrypt(nonce, raw, KIND.encode() + public.raw)
        doc["encrypted"] = {
            "kdf": "scrypt",
            "salt": salt.hex(),
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "cipher": "aes-256-gcm",
            "nonce": nonce.hex(),
            "ciphertext": sealed.hex(),
        }
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _hex_field(doc: dict[str, Any], name: str, size: int | None = None) -> bytes:
    value = doc.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size is not None and len(raw) != size):
        raise CryptoError(f"malformed key file: field {name!r} is missing or not valid hex")
    return raw


def parse_private_key(data: bytes, passphrase: str | None = None) -> X25519PrivateKey:
    """Read a key file's bytes.

    Raises:
        CryptoError: malformed file, missing or wrong passphrase, or a public key that does not
            match the private key.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or doc.get("version") != 1:
        raise CryptoError("not a daimm private key file (create one with `daimm keys new`)")
    public = PublicKey.parse(str(doc.get("public_key", "")))
    sealed = doc.get("encrypted")
    if sealed is None:
        raw = _hex_field(doc, "private_key", 32)
    else:
        if not isinstance(sealed, dict) or sealed.get("kdf") != "scrypt":
            raise CryptoError("malformed key file: unknown protection scheme")
        if passphrase is None:
            raise CryptoError(
                "this private key is protected by a passphrase; pass --passphrase-file or set "
                "DAIMM_KEY_PASSPHRASE"
            )
        n, r, p = sealed.get("n"), sealed.get("r"), sealed.get("p")
        if not (
            isinstance(n, int)
            and isinstance(r, int)
            and isinstance(p, int)
            and 1 < n <= _MAX_SCRYPT_N
            and 0 < r <= 32
            and 0 < p <= 16
        ):
            raise CryptoError("malformed key file: implausible scrypt parameters")
        key = _scrypt(passphrase, _hex_field(sealed, "salt"), n, r, p)
        try:
            raw = AESGCM(key).decrypt(
                _hex_field(sealed, "nonce", 12),
                _hex_field(sealed, "ciphertext", 48),
                KIND.encode() + public.raw,
            )
        except InvalidTag:
            raise CryptoError("wrong passphrase for this private key file") from None
    private = X25519PrivateKey.from_private_bytes(raw)
    if public_key_of(private) != public:
        raise CryptoError("corrupt key file: its public key does not match its private key")
    return private


def save_private_key(
    path: str | os.PathLike[str],
    private: X25519PrivateKey,
    passphrase: str | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write a key file readable only by its owner (mode 0600).

    Raises:
        CryptoError: the file exists and `overwrite` is false, or it cannot be written.
    """
    data = serialize_private_key(private, passphrase)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CryptoError(f"{path} already exists; choose another file or remove it") from None
    except OSError as exc:
        raise CryptoError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # the umask or an existing file's mode must not widen it
        os.write(fd, data)
    finally:
        os.close(fd)


def load_private_key(
    path: str | os.PathLike[str], passphrase: str | None = None
) -> X25519PrivateKey:
    """Read a key file, refusing one that group or others can read.

    Raises:
        CryptoError: missing, too permissive, malformed, or a wrong passphrase.
    """
    file = Path(path)
    try:
        mode = file.stat().st_mode
        data = file.read_bytes()
    except FileNotFoundError:
        raise CryptoError(f"no private key file at {file}") from None
    except OSError as exc:
        raise CryptoError(f"cannot read {file}: {exc.strerror}") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CryptoError(
            f"{file} is accessible to other users (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {file}`"
        )
    return parse_private_key(data, passphrase)
