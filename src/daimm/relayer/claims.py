"""The claim worker: the relayer answers, by itself, challenges of the receipts it issued.

A licence holder challenges a receipt of a provable model on chain (``ProofChallenges.challenge``,
docs/ZK.md); unanswered within the answer window, the dispute is refunded and the relayer gets a
strike. This worker polls ``Challenged`` events naming this relayer, and for each open challenge
of a receipt it keeps (:class:`daimm.relayer.proofs.ProofJobs`, persisted in SQLite) it proves the
receipt's row and sends ``answer(challengeId, proof, instances)`` signed with the relayer's key.

Restart-safe: the last block handled is kept in a small JSON file, the issued receipts in the
proof store's SQLite file, the model's circuit in its folder; a challenge is checked ``Open`` on
chain before it is answered, so handling the same event twice sends nothing twice. A challenge
that cannot be answered now (the prover failed, the chain is down) is retried at the next poll
until its deadline; one of a receipt this relayer does not keep is logged and skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from pathlib import Path
from typing import Any

from daimm.errors import DaimmError
from daimm.relayer.chain import ChainReader, TransactionSender, _topic

__all__ = ["ClaimWorker"]

log = logging.getLogger(__name__)

_CHALLENGED = _topic("Challenged(uint256,uint256,address,address,bytes32,bytes32,uint64)")
#: ``IProofChallenges.Status.Open``.
_OPEN = 1
#: Blocks read per ``eth_getLogs`` call.
_SPAN = 5_000


class ClaimWorker:
    """Answers challenges of this relayer's receipts with proofs (see the module's docstring).

    Args:
        jobs: The relayer's issued receipts and prover (``ProofJobs``).
        preparer: Makes a model version provable after a restart (``CircuitPreparer``), or None.
        reader: The relayer's chain reader (its web3).
        private_key: The relayer's Ethereum key (sends the answers).
        challenges: The ProofChallenges address.
        state_file: Where the last handled block is kept.
        start_block: Where to start when there is no state file (the deployment's block).
        poll_s: Seconds between polls.
        timeout_s: How long to wait for an answer's transaction.
        sender: The relayer's transaction sender, shared with the redeemer so the two never
            race for a nonce (a new one by default).
    """

    def __init__(
        self,
        jobs: Any,
        preparer: Any,
        reader: ChainReader,
        private_key: bytes,
        challenges: str,
        state_file: str | Path,
        *,
        start_block: int = 0,
        poll_s: float = 5.0,
        timeout_s: float = 120.0,
        sender: TransactionSender | None = None,
    ) -> None:
        from eth_account import Account
        from eth_utils import to_checksum_address

        from daimm import contracts

        self._jobs = jobs
        self._preparer = preparer
        self._reader = reader
        self._account = Account.from_key(private_key)
        self._sender = sender or TransactionSender(reader, private_key, timeout_s)
        abi = [
            e.model_dump(by_alias=True, mode="json", exclude_none=True)
            for e in contracts.load("ProofChallenges").abi
        ]
        self._contract = reader.w3.eth.contract(address=to_checksum_address(challenges), abi=abi)
        self._state_file = Path(state_file)
        self._poll_s = poll_s
        self._next_block = start_block
        if self._state_file.is_file():
            self._next_block = int(json.loads(self._state_file.read_text())["next_block"])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Challenge ids answered by this worker (for logs and tests).
        self.answered: list[int] = []

    # ------------------------------------------------------------------ one poll
    def poll_once(self) -> int:
        """Handle the ``Challenged`` events since the last poll; the number answered.

        Raises:
            ChainUnavailableError: The chain cannot be read (nothing is advanced).
        """
        w3 = self._reader.w3
        latest = int(self._reader._guard("the latest block", lambda: w3.eth.block_number))
        answered = 0
        while self._next_block <= latest:
            end = min(latest, self._next_block + _SPAN - 1)
            query: Any = {
                "address": self._contract.address,
                "fromBlock": self._next_block,
                "toBlock": end,
                "topics": [
                    "0x" + _CHALLENGED.hex(),
                    None,
                    None,
                    "0x" + bytes(12).hex() + self._account.address[2:].lower(),
                ],
            }
            logs = self._reader._guard("Challenged events", partial(w3.eth.get_logs, query))
            for entry in logs:
                event = self._contract.events.Challenged().process_log(entry)
                try:
                    answered += self._handle(event["args"])
                except DaimmError as exc:
                    # Retried at the next poll (until the challenge's deadline).
                    log.warning(
                        "challenge not answered yet",
                        extra={"challenge": int(event["args"]["challengeId"]), "error": str(exc)},
                    )
                    self._save(int(entry["blockNumber"]))
                    return answered
            self._save(end + 1)
        return answered

    def _save(self, next_block: int) -> None:
        self._next_block = next_block
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next_block": next_block}))
        tmp.replace(self._state_file)

    def _handle(self, args: Any) -> int:
        from daimm.zk.binding import Proof

        challenge_id = int(args["challengeId"])
        digest = "0x" + bytes(args["receiptDigest"]).hex()
        state = self._reader._guard(
            "ProofChallenges.challengeOf",
            lambda: self._contract.functions.challengeOf(challenge_id).call(),
        )
        if int(state[7]) != _OPEN:
            return 0
        if int(self._reader.chain_time()) > int(state[6]):
            log.warning("challenge deadline passed", extra={"challenge": challenge_id})
            return 0
        receipt = self._jobs.receipt(digest)
        if receipt is None:
            log.warning(
                "challenged receipt not kept here",
                extra={"challenge": challenge_id, "receipt": digest},
            )
            return 0
        if self._jobs.provable(receipt.model_id, receipt.weights_cid) is None:
            if self._preparer is None:
                raise DaimmError(f"model {receipt.model_id} is not provable here")
            self._preparer.prepare(self._ref(receipt.model_id, receipt.weights_cid))
        proof = Proof.from_document(self._jobs.prove_receipt(digest))
        self._send_answer(challenge_id, proof)
        self.answered.append(challenge_id)
        log.info("answered challenge", extra={"challenge": challenge_id})
        return 1

    def _ref(self, model_id: int, weights_cid: str) -> Any:
        from daimm.relayer.models import ModelRef

        count = int(self._reader._call("ModelRegistry", "versionCount", model_id))
        for version in range(count - 1, -1, -1):
            record = self._reader._call("ModelRegistry", "versionOf", model_id, version)
            if record[0] == weights_cid:
                envelope = self._reader.envelope_of(model_id, self._account.address)
                return ModelRef(model_id, version, weights_cid, envelope, record[1])
        raise DaimmError(f"model {model_id} has no version with weights {weights_cid}")

    def _send_answer(self, challenge_id: int, proof: Any) -> None:
        call = self._contract.functions.answer(challenge_id, *proof.calldata())
        self._sender.send(f"answer({challenge_id})", call, "ProofChallenges")

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        """Poll in a background thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="daimm-claims", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except DaimmError as exc:
                log.warning("claim worker poll failed", extra={"error": str(exc)[:300]})
            self._stop.wait(self._poll_s)

    def stop(self, timeout_s: float = 5) -> None:
        """Stop polling (a proof under way ends at its own timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
