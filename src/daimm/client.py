"""A Python client for daimm relayers: sign a request, call, verify the receipt, return outputs.

Example:
    >>> client = RelayerClient("http://127.0.0.1:8700", KeySigner(private_key),
    ...                        expected_relayer="0xRelayer...")
    >>> prediction = client.predict(1, {"input": [[5.1, 3.5, 1.4, 0.2]]})
    >>> prediction.outputs["label"]
    [0]
    >>> client.predict(7, image=Path("cat.png").read_bytes(), top_k=3).predictions[0][0]
    {'label': 'cat', 'score': 0.93}

The relayer's receipt is checked before anything is returned: signed by the expected relayer
(pin it to the address registered on chain), over the hash of the exact body sent and of the
answer received (outputs, and labelled predictions when the model's card has labels). Images,
strings and named features travel in the signed body as docs/RELAYER.md says
(:func:`daimm.modelformat.build_request`). For pay-per-use models
``predict(..., pay_per_use=True)`` signs the next CreditEscrow voucher (what was spent so far plus
one call's price).

Applications that hold an API key (``daimm_sk_...``, see :mod:`daimm.sessions`) instead of the
licence holder's key use :class:`SessionClient`: it signs with the session key, sends the session,
verifies receipts, and fails over to the next relayer authorised for the model when one is down:

    >>> relayers = [("https://r1.example", "0xR1..."), ("https://r2.example", "0xR2...")]
    >>> client = SessionClient(os.environ["DAIMM_API_KEY"], relayers)
    >>> client.predict(1, {"input": [[5.1, 3.5, 1.4, 0.2]]}).outputs

Failover, in order: the relayers are tried in the order given (:func:`authorised_relayers` lists the
model's authorised relayers from the chain, in ``RelayerRegistry.relayersOf`` order); a relayer
that cannot be reached within ``connect_timeout_s`` (2 s), does not answer within ``timeout_s``
(30 s), or answers 503 (chain or model unavailable) or 403 ``relayer_not_authorised`` is skipped
for ``cooldown_s`` (30 s) and the next one is tried with a freshly signed request (each relayer has
its own nonce space and signs for its own address). Any other refusal (401, 402, 403, 422, 429) is
an answer and is raised at once; so is a receipt that does not verify. NOTE: a relayer that timed
out may still have served (and counted) the call, so a failover can count one call twice.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from eth_account.messages import SignableMessage
from eth_utils import to_checksum_address

from daimm import eip712
from daimm.errors import (
    DaimmError,
    ReceiptError,
    RelayerError,
    RequestRefusedError,
    SignatureError,
)
from daimm.modelformat import answer_bytes, build_request, canonical_json

__all__ = [
    "ApeAccountSigner",
    "SessionClient",
    "SessionRelayerClient",
    "authorised_relayers",
    "KeySigner",
    "Prediction",
    "RelayerClient",
    "RelayerInfo",
    "Signer",
    "canonical_json",
    "verify_receipt_document",
]


class Signer(Protocol):
    """Something that signs EIP-712 messages for one address."""

    address: str

    def sign(self, message: SignableMessage) -> bytes:
        """65-byte ``r || s || v`` signature of ``message``."""
        ...


class KeySigner:
    """Signs with a raw private key held in memory.

    Args:
        private_key: 32 bytes or hex.
    """

    def __init__(self, private_key: bytes | str) -> None:
        from eth_account import Account

        self._account = Account.from_key(private_key)
        self.address = self._account.address

    def sign(self, message: SignableMessage) -> bytes:
        """Sign ``message`` (low ``s``, ``v`` in {27, 28})."""
        signed = self._account.sign_message(message)
        v, r, s = signed.v, signed.r, signed.s
        if not eip712.is_low_s(s):
            s, v = eip712.SECP256K1_N - s, 55 - v
        return eip712.encode_signature(v, r, s)


class ApeAccountSigner:
    """Signs with an ape account (keyfile, hardware wallet, ...), which may prompt the user.

    Args:
        account: An ``ape`` account object (``ape.accounts.load(alias)``).
    """

    def __init__(self, account: Any) -> None:
        self._account = account
        self.address = to_checksum_address(account.address)

    def sign(self, message: SignableMessage) -> bytes:
        """Sign ``message`` through ape."""
        signature = self._account.sign_message(message)
        if signature is None:
            raise SignatureError("the account declined to sign")
        return bytes(signature.encode_rsv())


@dataclass(frozen=True)
class RelayerInfo:
    """What a relayer says about itself at ``GET /v1/health``."""

    relayer: str
    chain_id: int
    registry: str
    escrow: str


@dataclass(frozen=True)
class Prediction:
    """A verified answer.

    Attributes:
        outputs: Output name -> value (nested lists).
        receipt: The receipt document as received (see :func:`verify_receipt_document`).
        charged: Value charged to the voucher for this call (0 under a licence).
        predictions: ``[{label, score}]`` per row, best first, for a classifier whose card has
            labels (None otherwise).
        proof_claim: For a provable model, the relayer's signed ``ProofClaim`` (``receipt``,
            ``instancesHash``, ``signature``; docs/ZK.md); None otherwise.
    """

    outputs: dict[str, Any]
    receipt: dict[str, Any]
    charged: int = 0
    predictions: list[list[dict[str, Any]]] | None = None
    proof_claim: dict[str, Any] | None = None


def verify_receipt_document(
    document: dict[str, Any],
    relayer: str,
    *,
    body: bytes | None = None,
    outputs: Any = None,
    predictions: Any = None,
) -> eip712.Receipt:
    """Check a relayer receipt: signed by ``relayer``; optionally over ``body`` and the answer.

    Args:
        document: The ``receipt`` object of an answer (``modelId``, ``weightsCid``,
            ``inputsHash``, ``outputsHash``, ``timestamp``, ``chainId``, ``verifyingContract``,
            ``signature``).
        relayer: The relayer's registered address.
        body: The exact request body, to check ``inputsHash``.
        outputs: The outputs received, to check ``outputsHash``.
        predictions: The predictions received with them, if any (they are hashed together).

    Raises:
        ReceiptError: Malformed, signed by someone else, or hashes that do not match.
    """
    try:
        receipt = eip712.Receipt.from_message(document)
        chain_id = int(document["chainId"])
        registry = str(document["verifyingContract"])
        signature = str(document["signature"])
    except (KeyError, TypeError, ValueError, DaimmError) as exc:
        raise ReceiptError(f"malformed receipt: {exc}") from None
    try:
        signer = eip712.recover_receipt_signer(receipt, chain_id, registry, signature)
    except SignatureError as exc:
        raise ReceiptError(f"receipt signature is invalid: {exc}") from None
    if signer != to_checksum_address(relayer):
        raise ReceiptError(f"receipt was signed by {signer}, not by relayer {relayer}")
    if body is not None and eip712.keccak256(body) != receipt.inputs_hash:
        raise ReceiptError("receipt inputsHash does not match the request body sent")
    if (
        outputs is not None
        and eip712.keccak256(answer_bytes(outputs, predictions)) != receipt.outputs_hash
    ):
        raise ReceiptError("receipt outputsHash does not match the outputs received")
    return receipt


class RelayerClient:
    """Calls one relayer.

    Args:
        base_url: The relayer's URL, e.g. ``http://127.0.0.1:8700``.
        signer: Signs requests and vouchers (:class:`KeySigner`, :class:`ApeAccountSigner`).
        expected_relayer: The relayer's registered address; receipts and the relayer's own claim
            must match it. When None, the address the relayer reports is trusted (not advised).
        timeout_s: HTTP timeout, in seconds.
        deadline_s: How long a signed request stays valid, in seconds.
        http: An ``httpx.Client`` to use (tests pass one bound to an app).
    """

    def __init__(
        self,
        base_url: str,
        signer: Signer,
        *,
        expected_relayer: str | None = None,
        timeout_s: float = 60.0,
        deadline_s: int = 300,
        http: httpx.Client | None = None,
    ) -> None:
        self.signer = signer
        self.expected_relayer = to_checksum_address(expected_relayer) if expected_relayer else None
        self.deadline_s = deadline_s
        self.http = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._info: RelayerInfo | None = None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def _get(self, path: str) -> dict[str, Any]:
        try:
            response = self.http.get(path)
        except httpx.HTTPError as exc:
            raise RelayerError(f"cannot reach the relayer: {exc}") from None
        return _json_or_raise(response)

    def info(self) -> RelayerInfo:
        """The relayer's identity (cached), checked against ``expected_relayer``.

        Raises:
            RelayerError: Unreachable, or it claims to be another address.
        """
        if self._info is None:
            data = self._get("/v1/health")
            try:
                info = RelayerInfo(
                    relayer=to_checksum_address(data["relayer"]),
                    chain_id=int(data["chain_id"]),
                    registry=to_checksum_address(data["contracts"]["RelayerRegistry"]),
                    escrow=to_checksum_address(data["contracts"]["CreditEscrow"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise RelayerError(f"the relayer's /v1/health is malformed: {exc}") from None
            if self.expected_relayer is not None and info.relayer != self.expected_relayer:
                raise RelayerError(
                    f"the relayer at this URL is {info.relayer}, not {self.expected_relayer}"
                )
            self._info = info
        return self._info

    def credit(self, model_id: int) -> tuple[int, int]:
        """``(spent, price_per_call)`` of this signer's channel for ``model_id`` at the relayer."""
        data = self._get(f"/v1/models/{model_id}/credit/{self.signer.address}")
        return int(data["spent"]), int(data["price_per_call"])

    def signed_headers(
        self, model_id: int, body: bytes, *, nonce: int | None = None, deadline: int | None = None
    ) -> dict[str, str]:
        """The headers that sign ``body`` for ``model_id`` (exposed for tests and tools)."""
        info = self.info()
        nonce = secrets.randbits(128) if nonce is None else nonce
        deadline = int(time.time()) + self.deadline_s if deadline is None else deadline
        request = eip712.PredictRequest(
            model_id=model_id,
            body_hash=eip712.keccak256(body),
            nonce=nonce,
            deadline=deadline,
            chain_id=info.chain_id,
            relayer=info.relayer,
        )
        signature = self.signer.sign(eip712.signable_predict_request(request, info.registry))
        return {
            "content-type": "application/json",
            "x-daimm-address": self.signer.address,
            "x-daimm-signature": "0x" + signature.hex(),
            "x-daimm-nonce": str(nonce),
            "x-daimm-deadline": str(deadline),
            "x-daimm-chain-id": str(info.chain_id),
            "x-daimm-relayer": info.relayer,
        }

    def voucher_header(self, model_id: int, cumulative_amount: int) -> str:
        """The ``x-daimm-voucher`` header for a voucher of ``cumulative_amount``."""
        info = self.info()
        voucher = eip712.Voucher(
            model_id=model_id,
            relayer=info.relayer,
            cumulative_amount=cumulative_amount,
            chain_id=info.chain_id,
            escrow=info.escrow,
        )
        signature = self.signer.sign(eip712.signable_voucher(voucher))
        return f"{cumulative_amount}:0x{signature.hex()}"

    def predict(
        self,
        model_id: int,
        inputs: dict[str, Any] | None = None,
        *,
        image: bytes | None = None,
        text: str | None = None,
        features: dict[str, Any] | list[dict[str, Any]] | None = None,
        top_k: int | None = None,
        pay_per_use: bool = False,
    ) -> Prediction:
        """Sign, send, verify; return the outputs (and labelled predictions).

        Give exactly one of ``inputs``, ``image``, ``text`` or ``features``.

        Args:
            model_id: The model.
            inputs: Input name -> nested list (or anything JSON-serialisable).
            image: An image file's bytes (PNG, JPEG, WebP, GIF), for an image model.
            text: A string, for a text model.
            features: ``{feature: number}`` (or a list of rows), for a tabular model.
            top_k: Labels per row in the predictions (the relayer's default is 5).
            pay_per_use: Attach a voucher for what was spent so far plus one call.

        Raises:
            RequestRefusedError: The relayer refused (status and code from its JSON error).
            ReceiptError: The answer's receipt does not verify.
            RelayerError: The relayer cannot be reached or answered garbage.
        """
        info = self.info()
        document = build_request(
            inputs=inputs, image=image, text=text, features=features, top_k=top_k
        )
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = self.signed_headers(model_id, body)
        if pay_per_use:
            spent, price = self.credit(model_id)
            headers["x-daimm-voucher"] = self.voucher_header(model_id, spent + price)
        try:
            response = self.http.post(
                f"/v1/models/{model_id}/predict", content=body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise RelayerError(f"cannot reach the relayer: {exc}") from None
        data = _json_or_raise(response)
        try:
            outputs, receipt = data["outputs"], data["receipt"]
        except (KeyError, TypeError):
            raise RelayerError("the relayer's answer has no outputs or receipt") from None
        predictions = data.get("predictions")
        verified = verify_receipt_document(
            receipt, info.relayer, body=body, outputs=outputs, predictions=predictions
        )
        if verified.model_id != model_id:
            raise ReceiptError(f"receipt is for model {verified.model_id}, not {model_id}")
        return Prediction(
            outputs, receipt, int(data.get("charged", 0)), predictions, data.get("proofClaim")
        )


def _json_or_raise(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise RelayerError(
            f"the relayer answered {response.status_code} with a body that is not JSON"
        ) from None
    if response.status_code >= 400:
        if isinstance(data, dict) and "error" in data:
            raise RequestRefusedError(
                response.status_code, str(data["error"]), str(data.get("detail", ""))
            )
        raise RelayerError(f"the relayer answered {response.status_code}")
    if not isinstance(data, dict):
        raise RelayerError("the relayer's answer is not a JSON object")
    return data


def fetch_proof(
    base_url: str,
    receipt_digest: str,
    *,
    http: httpx.Client | None = None,
    poll_s: float = 2.0,
    timeout_s: float = 900.0,
    on_state: Any = None,
) -> dict[str, Any]:
    """Ask a relayer to prove a receipt it issued and wait for the proof (docs/ZK.md).

    Args:
        base_url: The relayer's URL.
        receipt_digest: The receipt's EIP-712 digest (``0x`` hex; the answer's ``proofClaim``
            carries it).
        http: An ``httpx.Client`` to use (tests pass one bound to an app).
        poll_s: Seconds between polls.
        timeout_s: Seconds to wait in all.
        on_state: Called with each state seen (``queued``, ``proving``, ``done``).

    Returns:
        The ezkl proof document.

    Raises:
        RequestRefusedError: The relayer refused (404 unknown receipt, 429 queue full, ...).
        RelayerError: The proof failed, or did not come within ``timeout_s``.
    """
    client = http or httpx.Client(base_url=base_url.rstrip("/"), timeout=60.0)
    try:
        job = _json_or_raise(client.post("/v1/proofs", json={"receipt": receipt_digest}))
        deadline = time.monotonic() + timeout_s
        while True:
            if on_state is not None:
                on_state(job["state"])
            if job["state"] == "done":
                return dict(job["proof"])
            if job["state"] == "failed":
                raise RelayerError(f"the relayer could not prove it: {job.get('error')}")
            if time.monotonic() > deadline:
                raise RelayerError(f"no proof after {timeout_s:.0f} s (job {job['job']})")
            time.sleep(poll_s)
            job = _json_or_raise(client.get(f"/v1/proofs/{job['job']}"))
    except httpx.HTTPError as exc:
        raise RelayerError(f"cannot reach the relayer: {exc}") from None
    finally:
        if http is None:
            client.close()


__all__ += ["fetch_proof"]


# ------------------------------------------------------------------ API keys (session keys)
class SessionRelayerClient(RelayerClient):
    """A :class:`RelayerClient` that signs with an API key's session key and sends its session.

    Args:
        base_url: The relayer's URL.
        api_key: The ``daimm_sk_...`` string or a parsed :class:`~daimm.sessions.ApiKey`.
        **kwargs: As for :class:`RelayerClient` (``expected_relayer``, ``timeout_s``, ``http``...).

    Raises:
        ApiKeyError: The API key is malformed (its ``code`` says how).
    """

    def __init__(self, base_url: str, api_key: Any, **kwargs: Any) -> None:
        from daimm.sessions import ApiKey, parse_api_key

        self.api_key: ApiKey = parse_api_key(api_key) if isinstance(api_key, str) else api_key
        super().__init__(base_url, KeySigner(self.api_key.private_key), **kwargs)

    def signed_headers(
        self, model_id: int, body: bytes, *, nonce: int | None = None, deadline: int | None = None
    ) -> dict[str, str]:
        """The session key's signing headers plus ``x-daimm-session``."""
        headers = super().signed_headers(model_id, body, nonce=nonce, deadline=deadline)
        headers["x-daimm-session"] = self.api_key.token
        return headers

    def credit(self, model_id: int) -> tuple[int, int]:
        """``(spent, price_per_call)`` of the session holder's channel (vouchers under a session
        are signed by the session key and paid from the holder's credit)."""
        holder = self.api_key.session.holder
        data = self._get(f"/v1/models/{model_id}/credit/{holder}")
        return int(data["spent"]), int(data["price_per_call"])


#: Refusals after which the next relayer is tried (the others are answers about the request).
_FAILOVER_CODES = frozenset({"chain_unavailable", "model_unavailable", "relayer_not_authorised"})


class SessionClient:
    """Calls a model through the first relayer that answers, with an API key.

    Args:
        api_key: The ``daimm_sk_...`` string or a parsed :class:`~daimm.sessions.ApiKey`.
        relayers: ``(url, registered address)`` pairs in the order to try them (or plain URLs,
            whose reported address is then trusted: not advised).
        connect_timeout_s: Longest wait for a connection, in seconds.
        timeout_s: Longest wait for an answer, in seconds.
        cooldown_s: How long a relayer that failed is tried last, in seconds.
        http_factory: Builds the HTTP client for a URL (tests bind apps this way).
        clock: Monotonic clock in seconds.

    Raises:
        ApiKeyError: The API key is malformed.
        ValidationError: No relayer given.
    """

    def __init__(
        self,
        api_key: Any,
        relayers: Any,
        *,
        connect_timeout_s: float = 2.0,
        timeout_s: float = 30.0,
        cooldown_s: float = 30.0,
        http_factory: Any = None,
        clock: Any = time.monotonic,
    ) -> None:
        from daimm.errors import ValidationError
        from daimm.sessions import parse_api_key

        self.api_key = parse_api_key(api_key) if isinstance(api_key, str) else api_key
        pairs = [(r, None) if isinstance(r, str) else (r[0], r[1]) for r in relayers]
        if not pairs:
            raise ValidationError("give at least one relayer (URL and registered address)")
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        factory = http_factory or (
            lambda url: httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        )
        self._clients = [
            SessionRelayerClient(url, self.api_key, expected_relayer=address, http=factory(url))
            for url, address in pairs
        ]
        self.urls = [url for url, _ in pairs]
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._failed_at: dict[int, float] = {}

    def close(self) -> None:
        """Close every connection pool."""
        for client in self._clients:
            client.close()

    def _order(self) -> list[int]:
        now = self.clock()
        fresh = [i for i in range(len(self._clients))
                 if now - self._failed_at.get(i, -1e18) >= self.cooldown_s]  # fmt: skip
        return fresh + [i for i in range(len(self._clients)) if i not in fresh]

    def predict(self, model_id: int, inputs: dict[str, Any]) -> Prediction:
        """Sign, send to the first relayer that answers, verify; return the outputs.

        Raises:
            RequestRefusedError: A relayer refused (not an outage): raised at once.
            ReceiptError: The receipt does not verify.
            RelayerError: No relayer could answer (the message lists what each did).
        """
        failures: list[str] = []
        for index in self._order():
            client = self._clients[index]
            try:
                prediction = client.predict(model_id, inputs)
            except RequestRefusedError as exc:
                if exc.status != 503 and exc.code not in _FAILOVER_CODES:
                    raise
                failures.append(f"{self.urls[index]}: {exc.code}")
            except ReceiptError:
                raise
            except RelayerError as exc:
                failures.append(f"{self.urls[index]}: {exc}")
            else:
                self._failed_at.pop(index, None)
                return prediction
            self._failed_at[index] = self.clock()
        raise RelayerError("no relayer answered: " + "; ".join(failures))


def authorised_relayers(
    rpc_url: str, relayer_registry: str, model_id: int, *, timeout_s: float = 5.0
) -> list[tuple[str, str]]:
    """``(endpoint, address)`` of every relayer authorised for ``model_id`` now, in chain order.

    Args:
        rpc_url: A JSON-RPC endpoint of the chain.
        relayer_registry: The RelayerRegistry's address.
        model_id: The model.
        timeout_s: Timeout of each RPC call, in seconds.

    Raises:
        ChainUnavailableError: The chain cannot be read.
    """
    from web3 import HTTPProvider, Web3

    from daimm.errors import ChainUnavailableError

    relayer_struct = [
        {"name": "operator", "type": "address"},
        {"name": "x25519PublicKey", "type": "bytes32"},
        {"name": "endpoint", "type": "string"},
        {"name": "active", "type": "bool"},
    ]

    def fn(name: str, inputs: list[dict[str, str]], outputs: list[dict[str, Any]]) -> dict:
        return {"type": "function", "name": name, "stateMutability": "view",
                "inputs": inputs, "outputs": outputs}  # fmt: skip

    abi = [
        fn("relayersOf", [{"name": "modelId", "type": "uint256"}],
           [{"name": "", "type": "address[]"}]),
        fn("isAuthorised", [{"name": "modelId", "type": "uint256"},
                            {"name": "relayer", "type": "address"}],
           [{"name": "", "type": "bool"}]),
        fn("relayerOf", [{"name": "relayer", "type": "address"}],
           [{"name": "", "type": "tuple", "components": relayer_struct}]),
    ]  # fmt: skip
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    registry = w3.eth.contract(address=to_checksum_address(relayer_registry), abi=abi)
    try:
        found: list[tuple[str, str]] = []
        for address in registry.functions.relayersOf(model_id).call():
            if registry.functions.isAuthorised(model_id, address).call():
                record = registry.functions.relayerOf(address).call()
                found.append((str(record[2]), to_checksum_address(address)))
    except Exception as exc:  # noqa: BLE001 - any failure to read is an outage
        raise ChainUnavailableError(
            f"cannot list the relayers of model {model_id}: {exc}"
        ) from None
    return found
