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
    """

    outputs: dict[str, Any]
    receipt: dict[str, Any]
    charged: int = 0
    predictions: list[list[dict[str, Any]]] | None = None


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
        return Prediction(outputs, receipt, int(data.get("charged", 0)), predictions)


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
