"""Who may have an answer: rate limits, request signatures, nonces, licences and vouchers.

The decision for one ``POST /v1/models/{id}/predict``, in this order (cheapest first, and nothing
that costs a signature recovery or a chain call before the per-IP limit):

1. the rate limit per client IP: 429;
2. the EIP-712 ``PredictRequest`` signature: missing or malformed headers, a deadline in the past
   (or too far ahead), another chain or relayer, a signature that is not the claimed address's,
   or a nonce already used: 401;
   then the rate limit per wallet, keyed on the *verified* signer (never on an address a request
   merely claims, which would let anyone spend a victim's allowance): 429;
3. the chain: the relayer must be authorised for the model (403 ``relayer_not_authorised``); the
   caller needs ``hasAccess`` (a live rental or perpetual licence), or else a pay-per-use voucher
   that covers what was spent plus one call and stays within the on-chain deposit (402 with what
   is missing); no licence and no voucher: 403 ``no_licence``. A chain that cannot be read: 503,
   never a refusal on stale belief and never an outage reported as "no licence". The 503 says what
   failed and nothing of the RPC endpoint (hosted URLs carry API keys): see :func:`chain_refusal`.

A request signed by a session key (``X-Daimm-Session``) is checked by ``relayer/sessions.py`` before
step 3, and step 3 then asks about the session's holder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address

from daimm import eip712
from daimm.errors import ChainError, ChainUnavailableError, RequestRefusedError, SignatureError
from daimm.relayer.chain import ChainReader
from daimm.relayer.models import ModelRef
from daimm.relayer.sessions import HEADER_SESSION, SessionGate, SessionGrant
from daimm.relayer.signing import DigestBuilder, SignatureVerifier, checksum_address
from daimm.relayer.vouchers import SessionCharge, VoucherStore
from daimm.units import format_amount, format_duration, format_time

__all__ = [
    "HEADER_ADDRESS",
    "HEADER_CHAIN_ID",
    "HEADER_DEADLINE",
    "HEADER_NONCE",
    "HEADER_RELAYER",
    "HEADER_SIGNATURE",
    "HEADER_VOUCHER",
    "AccessPolicy",
    "Decision",
    "RateLimiter",
    "SignedHeaders",
    "chain_refusal",
    "parse_signed_headers",
]

log = logging.getLogger("daimm.relayer")

HEADER_ADDRESS = "x-daimm-address"
HEADER_SIGNATURE = "x-daimm-signature"
HEADER_NONCE = "x-daimm-nonce"
HEADER_DEADLINE = "x-daimm-deadline"
HEADER_CHAIN_ID = "x-daimm-chain-id"
HEADER_RELAYER = "x-daimm-relayer"
#: ``<cumulativeAmount>:<0x signature>`` of a CreditEscrow voucher (pay-per-use only).
HEADER_VOUCHER = "x-daimm-voucher"


def _refuse(status: int, code: str, detail: str) -> RequestRefusedError:
    return RequestRefusedError(status, code, detail)


def chain_refusal(exc: Exception) -> RequestRefusedError:
    """The 503 for a chain that could not be read: what failed, never where from.

    The reader's message names the endpoint (with any path or API key redacted, see
    ``chain.redact_url``) and goes to the log; the client gets a fixed sentence, so no RPC URL,
    host or provider error text ever leaves the relayer.
    """
    # NOTE: debug, not warning: during an outage every request lands here; the log watcher logs
    # the outage (with the same message) once, as a warning.
    log.debug("chain read failed", extra={"error": str(exc)})
    return _refuse(
        503,
        "chain_unavailable",
        "the relayer cannot read the chain right now and refuses requests until it can: retry"
        " shortly",
    )


# ---------------------------------------------------------------------------- rate limits
class RateLimiter:
    """Token buckets by key: ``rate`` requests per second sustained, ``burst`` at once.

    Args:
        rate: Tokens added per second.
        burst: Bucket size.
        clock: Monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._forget_full(now)
        return True

    def _forget_full(self, now: float) -> None:
        # Buckets that have refilled are the same as absent ones: bound the memory.
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}


# ---------------------------------------------------------------------------- headers
@dataclass(frozen=True)
class SignedHeaders:
    """The signing headers of one request, parsed but not yet verified.

    Attributes:
        address: The claimed signer (checksummed).
        signature: 65-byte ``r || s || v``.
        nonce: The request's nonce.
        deadline: Unix time in seconds after which the request is refused.
        chain_id: The chain the caller signed for, if it said (else the relayer's is assumed).
        relayer: The relayer the caller signed for, if it said.
        voucher_amount: Cumulative amount of an attached voucher, if any.
        voucher_signature: Its signature.
        session: The ``X-Daimm-Session`` value when a session key signed the request.
    """

    address: str
    signature: bytes
    nonce: int
    deadline: int
    chain_id: int | None = None
    relayer: str | None = None
    voucher_amount: int | None = None
    voucher_signature: bytes | None = None
    session: str | None = None


def _uint(headers: Mapping[str, str], name: str) -> int:
    raw = headers.get(name)
    if raw is None:
        raise _refuse(401, "missing_signature", f"header {name} is missing: sign the request")
    try:
        value = int(raw, 0) if raw.lower().startswith("0x") else int(raw)
    except ValueError:
        raise _refuse(401, "bad_signature", f"header {name} must be an integer") from None
    if not 0 <= value < 2**256:
        raise _refuse(401, "bad_signature", f"header {name} is out of range")
    return value


def _hex_bytes(raw: str, name: str, status: int, code: str) -> bytes:
    try:
        return bytes.fromhex(raw.strip().removeprefix("0x"))
    except ValueError:
        raise _refuse(status, code, f"{name} must be 0x-prefixed hex") from None


def parse_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Parse the signing headers (case-insensitive mapping).

    Raises:
        RequestRefusedError: 401 when a header is missing or malformed.
    """
    raw_address = headers.get(HEADER_ADDRESS)
    if not raw_address:
        raise _refuse(401, "missing_signature", f"header {HEADER_ADDRESS} is missing")
    address = checksum_address(raw_address.strip())
    if address is None:
        raise _refuse(401, "bad_signature", f"header {HEADER_ADDRESS} is not an address")
    raw_signature = headers.get(HEADER_SIGNATURE)
    if not raw_signature:
        raise _refuse(401, "missing_signature", f"header {HEADER_SIGNATURE} is missing")
    signature = _hex_bytes(raw_signature, HEADER_SIGNATURE, 401, "bad_signature")
    chain_id = _uint(headers, HEADER_CHAIN_ID) if headers.get(HEADER_CHAIN_ID) else None
    raw_relayer = headers.get(HEADER_RELAYER)
    relayer = None if raw_relayer is None else checksum_address(raw_relayer.strip())
    if raw_relayer is not None and relayer is None:
        raise _refuse(401, "bad_signature", f"header {HEADER_RELAYER} is not an address")
    voucher_amount = voucher_signature = None
    raw_voucher = headers.get(HEADER_VOUCHER)
    if raw_voucher:
        amount, _, sig = raw_voucher.partition(":")
        try:
            voucher_amount = int(amount)
            if not 0 <= voucher_amount < 2**256:
                raise ValueError(amount)
        except ValueError:
            raise _refuse(
                402, "invalid_voucher", f"{HEADER_VOUCHER} must be <cumulativeAmount>:<0xsignature>"
            ) from None
        voucher_signature = _hex_bytes(sig, HEADER_VOUCHER, 402, "invalid_voucher")
    return SignedHeaders(
        address=address,
        signature=signature,
        nonce=_uint(headers, HEADER_NONCE),
        deadline=_uint(headers, HEADER_DEADLINE),
        chain_id=chain_id,
        relayer=relayer,
        voucher_amount=voucher_amount,
        voucher_signature=voucher_signature,
        session=headers.get(HEADER_SESSION) or None,
    )


# ---------------------------------------------------------------------------- the decision
@dataclass(frozen=True)
class Decision:
    """Why a request may be served.

    Attributes:
        ref: The model version to serve.
        paid_by: ``"licence"`` or ``"voucher"``.
        price: Value of the call charged to the voucher (0 for a licence).
        session: The session the request came under, if a session key signed it.
    """

    ref: ModelRef
    paid_by: str
    price: int = 0
    session: SessionGrant | None = None


class AccessPolicy:
    """Signature, nonce, licence and voucher checks for one relayer.

    Args:
        reader: The chain reader.
        store: Nonces and vouchers.
        relayer: This relayer's signing address.
        chain_id: The chain id requests and vouchers must be signed for.
        registry: The RelayerRegistry address (the request domain's verifying contract).
        escrow: The CreditEscrow address (the voucher domain's verifying contract).
        max_deadline_s: Furthest a deadline may lie in the future, in seconds.
        voucher_min_remaining_s: Refuse vouchers on channels expiring sooner than this.
        clock: Wall clock in seconds.
        sessions: The session checks (None: session-signed requests are refused).
    """

    def __init__(
        self,
        reader: ChainReader,
        store: VoucherStore,
        *,
        relayer: str,
        chain_id: int,
        registry: str,
        escrow: str,
        max_deadline_s: int = 3600,
        voucher_min_remaining_s: int = 600,
        clock: Callable[[], float] = time.time,
        sessions: SessionGate | None = None,
    ) -> None:
        self.reader, self.store = reader, store
        self.sessions = sessions
        self.relayer = to_checksum_address(relayer)
        self.chain_id = chain_id
        self.registry = to_checksum_address(registry)
        self.escrow = to_checksum_address(escrow)
        self.max_deadline_s = max_deadline_s
        self.voucher_min_remaining_s = voucher_min_remaining_s
        self.clock = clock
        self.digests = DigestBuilder(chain_id, self.registry)
        self.verifier = SignatureVerifier()

    # ------------------------------------------------------------------ 401
    def verify_request(self, model_id: int, body_hash: bytes, signed: SignedHeaders) -> None:
        """Check deadline, chain, relayer, signature and nonce (no chain call).

        Raises:
            RequestRefusedError: 401 naming what is wrong.
        """
        now = int(self.clock())
        if signed.deadline < now:
            raise _refuse(
                401, "expired", f"the request's deadline {signed.deadline} has passed (now {now})"
            )
        if signed.deadline > now + self.max_deadline_s:
            raise _refuse(
                401,
                "deadline_too_far",
                f"the deadline is more than {self.max_deadline_s} s ahead; sign a nearer one",
            )
        if signed.chain_id is not None and signed.chain_id != self.chain_id:
            raise _refuse(
                401,
                "wrong_chain",
                f"the request was signed for chain {signed.chain_id}; this relayer serves chain"
                f" {self.chain_id}",
            )
        if signed.relayer is not None and signed.relayer != self.relayer:
            raise _refuse(
                401,
                "wrong_relayer",
                f"the request was signed for relayer {signed.relayer}; this is {self.relayer}",
            )
        digest = self.digests.request(
            model_id, body_hash, signed.nonce, signed.deadline, self.chain_id, self.relayer
        )
        try:
            valid = self.verifier.is_signed_by(digest, signed.signature, signed.address)
        except SignatureError as exc:
            raise _refuse(
                401, "bad_signature", f"the request signature is invalid: {exc}"
            ) from None
        if not valid:
            raise _refuse(
                401,
                "bad_signature",
                f"the signature is not {signed.address}'s for this body, model, nonce, deadline,"
                f" chain {self.chain_id} and relayer {self.relayer}",
            )
        if self.store.nonce_used(signed.address, signed.nonce):
            raise _refuse(401, "nonce_reused", f"nonce {signed.nonce} was already used: replay")

    def use_nonce(self, signed: SignedHeaders) -> None:
        """Spend the nonce (atomically); the request is served only if this succeeds.

        Raises:
            RequestRefusedError: 401 when another request with the same nonce got there first.
        """
        if not self.store.use_nonce(signed.address, signed.nonce, signed.deadline):
            raise _refuse(401, "nonce_reused", f"nonce {signed.nonce} was already used: replay")

    # ------------------------------------------------------------------ chain: 403, 402, 503
    def model_ref(self, model_id: int) -> ModelRef:
        """The version of ``model_id`` this relayer may serve now.

        Raises:
            RequestRefusedError: 404 unknown model, 403 relayer not authorised, 503 chain down.
        """
        try:
            if not self.reader.is_authorised(model_id, self.relayer):
                raise _refuse(
                    403,
                    "relayer_not_authorised",
                    f"this relayer ({self.relayer}) is not authorised by the owner of model"
                    f" {model_id}; use one of the model's authorised relayers",
                )
            version = self.reader.latest_version(model_id)
            envelope = self.reader.envelope_of(model_id, self.relayer)
        except ChainUnavailableError as exc:
            raise chain_refusal(exc) from None
        except ChainError as exc:
            raise _refuse(404, "unknown_model", f"model {model_id}: {exc}") from None
        return ModelRef(
            model_id, version.version, version.weights_cid, envelope, version.metadata_cid
        )

    def decide(self, model_id: int, signed: SignedHeaders) -> Decision:
        """Whether the (verified) signer, or the holder of its session, may have an answer now.

        Raises:
            RequestRefusedError: 403 no licence, 402 voucher problems, 401/403 session problems,
                503 chain down.
        """
        grant = None
        if signed.session is not None:
            if self.sessions is None:
                raise _refuse(
                    401,
                    "sessions_unsupported",
                    "this relayer serves no session-signed requests: sign with the wallet itself",
                )
            grant = self.sessions.check(signed.session, model_id, signed.address)
        ref = self.model_ref(model_id)
        account = signed.address if grant is None else grant.holder
        try:
            if grant is not None:
                assert self.sessions is not None
                self.sessions.check_live(grant)
            if self.reader.has_access(model_id, account):
                return Decision(ref, "licence", session=grant)
            if grant is not None and signed.voucher_amount is not None:
                return self._voucher_decision(ref, signed, grant)
            if signed.voucher_amount is None:
                hint = ""
                try:
                    if self.reader.price_per_call(model_id) > 0:
                        hint = (
                            " (this model is also offered per call: deposit credit and send"
                            " a voucher)"
                        )
                except ChainError:
                    pass
                whose = "" if grant is None else " (the holder of this session)"
                raise _refuse(
                    403,
                    "no_licence",
                    f"{account}{whose} holds no live licence for model {model_id}{hint}",
                )
            return self._voucher_decision(ref, signed)
        except ChainError as exc:  # ChainUnavailableError, or a read that reverted
            raise chain_refusal(exc) from None

    def use_session_call(self, decision: Decision) -> None:
        """Count a session's call (committed before the answer); nothing for plain requests.

        Raises:
            RequestRefusedError: 403 ``session_call_cap``.
        """
        if decision.session is not None and self.sessions is not None:
            self.sessions.use_call(decision.session)

    def recheck_session(self, decision: Decision) -> None:
        """Ask again, just before answering, whether the session was revoked meanwhile.

        Raises:
            RequestRefusedError: 401 ``session_revoked``/``session_revoked_all``, 503 chain down.
        """
        if decision.session is None or self.sessions is None:
            return
        try:
            self.sessions.check_live(decision.session)
        except ChainError as exc:
            raise chain_refusal(exc) from None

    def _session_charge(self, grant: SessionGrant, signed: SignedHeaders) -> SessionCharge:
        assert signed.session is not None
        return SessionCharge(grant.hash, grant.session.spend_cap, signed.session)

    def _voucher_decision(
        self, ref: ModelRef, signed: SignedHeaders, grant: SessionGrant | None = None
    ) -> Decision:
        """A voucher-paid call: by the signer, or under ``grant`` (signed by its key, paid from its
        holder's channel, within its spend cap)."""
        model_id = ref.model_id
        assert signed.voucher_amount is not None and signed.voucher_signature is not None
        if grant is not None and grant.session.spend_cap == 0:
            raise _refuse(
                402,
                "session_no_spend",
                "this session has no pay-per-use spend cap (spendCap 0): ask the holder for a"
                " session with one, naming this relayer",
            )
        payer = signed.address if grant is None else grant.holder
        price = self.reader.price_per_call(model_id)
        if price == 0:
            raise _refuse(
                402,
                "no_pay_per_use",
                f"model {model_id} is not offered per call and {signed.address} holds no licence",
            )
        voucher = eip712.Voucher(
            model_id=model_id,
            relayer=self.relayer,
            cumulative_amount=signed.voucher_amount,
            chain_id=self.chain_id,
            escrow=self.escrow,
        )
        try:
            voucher_signer = eip712.recover_voucher_signer(voucher, signed.voucher_signature)
        except SignatureError as exc:
            raise _refuse(
                402, "invalid_voucher", f"the voucher signature is invalid: {exc}"
            ) from None
        if voucher_signer != signed.address:
            raise _refuse(402, "invalid_voucher", f"the voucher was not signed by {signed.address}")
        channel = self.reader.channel_of(payer, model_id, self.relayer)
        if channel.deposited == 0:
            raise _refuse(
                402,
                "no_credit",
                f"{payer} has no credit for model {model_id} with this relayer: deposit first",
            )

        def amount(value: int) -> str:
            # NOTE: read only to word a refusal (cached per token), never on a served call.
            symbol, decimals = self.reader.currency_units(channel.currency)
            return format_amount(value, decimals, symbol)

        if signed.voucher_amount > channel.deposited:
            raise _refuse(
                402,
                "voucher_above_deposit",
                f"the voucher is for {amount(signed.voucher_amount)} but only"
                f" {amount(channel.deposited)} was deposited: deposit more",
            )
        remaining = channel.expires_at - self.reader.chain_time()
        if remaining < self.voucher_min_remaining_s:
            raise _refuse(
                402,
                "channel_expiring",
                f"the credit channel expires in {format_duration(remaining)} (at"
                f" {format_time(channel.expires_at)}), too soon to redeem: deposit again to"
                " extend it",
            )
        stored = self.store.get(payer, model_id)
        spent = stored.spent if stored else 0
        if signed.voucher_amount < spent + price:
            raise _refuse(
                402,
                "insufficient_voucher",
                f"the voucher covers {amount(signed.voucher_amount)} but {amount(spent)} was"
                f" spent and a call costs {amount(price)}; sign one for at least"
                f" {amount(spent + price)} ({spent + price} in the smallest unit)",
            )
        if grant is not None:
            # Before the model runs; the charge checks again, atomically, in the state store.
            self.store.check_session_spend(
                payer, model_id, signed.voucher_amount, self._session_charge(grant, signed)
            )
        return Decision(ref, "voucher", price, session=grant)

    def charge(self, decision: Decision, signed: SignedHeaders) -> None:
        """Record a voucher-paid call durably (before the answer is sent).

        Raises:
            RequestRefusedError: 402 if a concurrent call used up the voucher first.
        """
        if decision.paid_by != "voucher":
            return
        assert signed.voucher_amount is not None and signed.voucher_signature is not None
        if decision.session is not None:
            self.store.record_session_call(
                decision.session.holder,
                decision.ref.model_id,
                signed.voucher_amount,
                signed.voucher_signature,
                decision.price,
                self._session_charge(decision.session, signed),
            )
            return
        self.store.record_call(
            signed.address,
            decision.ref.model_id,
            signed.voucher_amount,
            signed.voucher_signature,
            decision.price,
        )
