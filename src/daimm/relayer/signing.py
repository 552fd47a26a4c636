"""Fast EIP-712 digests and secp256k1 signing/verification for the relayer's hot path.

Every request costs one signature check and every answer one signature, so these run per call.
:mod:`daimm.eip712` is the reference (tests check that the digests here equal its digests and that
its recovery accepts the signatures made here); this module only makes the same results cheap:

- digests: type hashes and the domain separator are computed once; a request's digest is then two
  Keccak-256 calls over fixed-width fields (the generic typed-data encoder makes about a dozen);
- with ``coincurve`` installed (libsecp256k1; eth-keys then uses it too), signing and recovery
  call it directly (~25 us each; through eth-keys' wrappers they took ~50-75 us), and a recovered
  key is compared with the claimed address as 20 bytes, with no checksum encoding;
- checksummed spellings of addresses are cached (:func:`checksum_address`): EIP-55 costs a Keccak
  and ~10 us of Python per address, and the same few addresses sign every request;
- without it, eth-keys falls back to pure-Python elliptic-curve code (~2 ms per scalar
  multiplication, three per recovery). Then: signing computes ``k*G`` from a precomputed
  fixed-base table (32 additions instead of ~380 doublings and additions), and verification
  recovers a caller's public key once (slow), caches it, and afterwards verifies with OpenSSL
  (through ``cryptography``) against the cached key.

NOTE: neither the pure-Python nor eth-keys' native code is constant-time; a relayer that cares
about timing side channels on its receipt key installs ``coincurve``.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from typing import Any

from Crypto.Hash import keccak as _keccak
from eth_utils import is_address, to_checksum_address

from daimm import eip712
from daimm.errors import SignatureError

__all__ = [
    "FAST_BACKEND",
    "DigestBuilder",
    "ReceiptSigner",
    "SignatureVerifier",
    "checksum_address",
    "keccak",
]

try:  # pragma: no cover - depends on the environment
    import coincurve

    #: Whether libsecp256k1 (through coincurve) does the curve arithmetic.
    FAST_BACKEND = True
except ImportError:
    coincurve = None  # type: ignore[assignment]
    FAST_BACKEND = False

_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
_N = eip712.SECP256K1_N
_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def keccak(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (32 bytes)."""
    return _keccak.new(digest_bits=256, data=data).digest()


@functools.lru_cache(maxsize=65_536)
def _checksum_cached(raw: str) -> str | None:
    return to_checksum_address(raw) if is_address(raw) else None


def checksum_address(raw: str) -> str | None:
    """The EIP-55 spelling of ``raw``, or None if it is not an address (results cached).

    NOTE: only strings of an address's length are cached, so a client sending long junk cannot
    grow the cache beyond ~65,536 short entries.
    """
    if len(raw) > 42:
        return None
    return _checksum_cached(raw)


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes.fromhex(address[2:]).rjust(32, b"\x00")


def _type_hash(name: str, fields: list[dict[str, str]]) -> bytes:
    inner = ",".join(f"{f['type']} {f['name']}" for f in fields)
    return keccak(f"{name}({inner})".encode())


class DigestBuilder:
    """EIP-712 digests of ``PredictRequest`` and ``Receipt`` in one relayer's domain.

    Args:
        chain_id: The chain id (domain ``chainId``).
        registry: The RelayerRegistry address (domain ``verifyingContract``).
    """

    def __init__(self, chain_id: int, registry: str) -> None:
        domain_type = _type_hash("EIP712Domain", eip712._DOMAIN_TYPE)
        self._separator = keccak(
            domain_type
            + keccak(eip712.RELAYER_DOMAIN_NAME.encode())
            + keccak(eip712.DOMAIN_VERSION.encode())
            + _u256(chain_id)
            + _address_word(to_checksum_address(registry))
        )
        self._request_type = _type_hash("PredictRequest", eip712._PREDICT_REQUEST_TYPE)
        self._receipt_type = _type_hash("Receipt", eip712._RECEIPT_TYPE)

    def _digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self._separator + struct_hash)

    def request(
        self,
        model_id: int,
        body_hash: bytes,
        nonce: int,
        deadline: int,
        chain_id: int,
        relayer: str,
    ) -> bytes:
        """Digest of a ``PredictRequest`` (all integers must be uint256)."""
        return self._digest(
            keccak(
                self._request_type
                + _u256(model_id)
                + body_hash
                + _u256(nonce)
                + _u256(deadline)
                + _u256(chain_id)
                + _address_word(relayer)
            )
        )

    def receipt(
        self,
        model_id: int,
        weights_cid: str,
        inputs_hash: bytes,
        outputs_hash: bytes,
        timestamp: int,
    ) -> bytes:
        """Digest of a ``Receipt``."""
        return self._digest(
            keccak(
                self._receipt_type
                + _u256(model_id)
                + keccak(weights_cid.encode())
                + inputs_hash
                + outputs_hash
                + _u256(timestamp)
            )
        )


# ---------------------------------------------------------------------------- pure-Python k*G
def _add_affine(p: tuple[int, int] | None, q: tuple[int, int] | None) -> tuple[int, int] | None:
    if p is None:
        return q
    if q is None:
        return p
    (x1, y1), (x2, y2) = p, q
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        slope = 3 * x1 * x1 * pow(2 * y1, -1, _P) % _P
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


_TABLE: list[list[tuple[int, int] | None]] | None = None
_TABLE_LOCK = threading.Lock()


def _table() -> list[list[tuple[int, int] | None]]:
    """``table[i][j] = j * 256**i * G`` for i < 32, j < 256 (built once, ~0.2 s)."""
    global _TABLE
    with _TABLE_LOCK:
        if _TABLE is None:
            rows: list[list[tuple[int, int] | None]] = []
            base: tuple[int, int] | None = _G
            for _ in range(32):
                row: list[tuple[int, int] | None] = [None]
                acc: tuple[int, int] | None = None
                for _ in range(255):
                    acc = _add_affine(acc, base)
                    row.append(acc)
                rows.append(row)
                base = _add_affine(row[255], base)
            _TABLE = rows
        return _TABLE


def _mul_g(k: int) -> tuple[int, int]:
    """``k * G`` (affine) for 0 < k < n, by the fixed-base comb in Jacobian coordinates."""
    table = _table()
    x, y, z = 0, 1, 0
    for i in range(32):
        point = table[i][(k >> (8 * i)) & 255]
        if point is None:
            continue
        x2, y2 = point
        if z == 0:
            x, y, z = x2, y2, 1
            continue
        zz = z * z % _P
        h = (x2 * zz - x) % _P
        r = (y2 * z * zz - y) % _P
        if h == 0:  # equal x: only possible for a degenerate k; let the caller retry
            raise ArithmeticError("degenerate scalar")
        hh = h * h % _P
        hhh = h * hh % _P
        v = x * hh % _P
        x3 = (r * r - hhh - 2 * v) % _P
        y = (r * (v - x3) - y * hhh) % _P
        x, z = x3, z * h % _P
    zi = pow(z, -1, _P)
    zi2 = zi * zi % _P
    return x * zi2 % _P, y * zi2 * zi % _P


class ReceiptSigner:
    """Signs 32-byte digests with the relayer's key: 65 bytes ``r || s || v``, low ``s``.

    Args:
        private_key: 32 bytes.
    """

    def __init__(self, private_key: bytes) -> None:
        from eth_keys import keys

        self._key = keys.PrivateKey(private_key)
        self._fast_key = coincurve.PrivateKey(private_key) if FAST_BACKEND else None
        self._d = int.from_bytes(private_key, "big")
        self.address = self._key.public_key.to_checksum_address()
        if not FAST_BACKEND:
            _table()

    def sign(self, digest: bytes) -> bytes:
        """Sign ``digest``."""
        if FAST_BACKEND:
            if self._fast_key is None:  # FAST_BACKEND switched on after construction (tests)
                self._fast_key = coincurve.PrivateKey(self._key.to_bytes())
            # RFC 6979 nonce; libsecp256k1 always returns the low-s form; the last byte is 0/1.
            raw = self._fast_key.sign_recoverable(digest, hasher=None)
            return raw[:64] + bytes([raw[64] + 27])
        e = int.from_bytes(digest, "big")
        while True:
            k = secrets.randbelow(_N - 1) + 1  # a fresh secret nonce from the OS's CSPRNG
            try:
                x, y = _mul_g(k)
            except ArithmeticError:
                continue
            if x >= _N:  # r would need the recovery id's overflow bit; vanishingly rare
                continue
            r = x
            s = pow(k, -1, _N) * (e + r * self._d) % _N
            if s == 0:
                continue
            v = y & 1
            if s > _N // 2:
                s, v = _N - s, v ^ 1
            return eip712.encode_signature(v, r, s)


class SignatureVerifier:
    """Checks that a 65-byte signature over a digest was made by a claimed address.

    Args:
        max_keys: Public keys kept (LRU) for the OpenSSL fast path.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self._keys: OrderedDict[str, Any] = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def _recover(self, digest: bytes, v: int, r: int, s: int) -> Any:
        from eth_keys import keys

        try:
            return keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
        except Exception as exc:  # noqa: BLE001 - eth-keys raises several types
            raise SignatureError(f"signature does not recover to an address: {exc}") from None

    def is_signed_by(self, digest: bytes, signature: bytes, address: str) -> bool:
        """Whether ``signature`` over ``digest`` is ``address``'s.

        Raises:
            SignatureError: Malformed, ``v`` not 27/28, or high ``s``.
        """
        v, r, s = eip712.split_signature(signature)
        checked = checksum_address(address)
        if checked is None:
            raise ValueError(f"not an address: {address!r}")
        address = checked
        if FAST_BACKEND:
            try:
                public = coincurve.PublicKey.from_signature_and_message(
                    _u256(r) + _u256(s) + bytes([v - 27]), digest, hasher=None
                )
            except Exception as exc:  # noqa: BLE001 - coincurve raises ValueError and others
                raise SignatureError(f"signature does not recover to an address: {exc}") from None
            return keccak(public.format(compressed=False)[1:])[-20:] == bytes.fromhex(address[2:])
        with self._lock:
            cached = self._keys.get(address)
            if cached is not None:
                self._keys.move_to_end(address)
        if cached is not None:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec, utils

            try:
                # The digest goes in as-is: ECDSA over secp256k1 truncates nothing for 32 bytes.
                cached.verify(
                    utils.encode_dss_signature(r, s),
                    digest,
                    ec.ECDSA(utils.Prehashed(hashes.SHA256())),
                )
                return True
            except InvalidSignature:
                return False
        public = self._recover(digest, v, r, s)
        if public.to_checksum_address() != address:
            return False
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256K1(), b"\x04" + public.to_bytes()
        )
        with self._lock:
            self._keys[address] = key
            while len(self._keys) > self._max_keys:
                self._keys.popitem(last=False)
        return True
