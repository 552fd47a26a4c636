"""Two relayer replicas on one PostgreSQL store, on anvil: nothing is served or charged twice.

Runs only on a real local node: ``ape test tests/e2e/test_relayer_replicas.py --network
ethereum:local:foundry`` (on ape's in-process chain, which has no HTTP endpoint, it is skipped).
Nothing is mocked: two ``daimm relayer serve`` processes with one key and one ``state_url`` (a
database on the tests' throwaway PostgreSQL server, :mod:`tests.utils.postgres`) read anvil, as
an operator's replicas behind a load balancer would; the tests send each request to both.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.utils import onnx_models
from tests.utils.relayer import (
    Daemon,
    new_relayer,
    node_url_or_skip,
    publish_encrypted_model,
    start_daemon,
    stop_daemon,
    wait_until_current,
)

from daimm.client import ApeAccountSigner, RelayerClient, SessionRelayerClient
from daimm.errors import RequestRefusedError
from daimm.market.sessions import Sessions

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
PRICE_PER_PERIOD = 10**15
PRICE_PER_CALL = 10**13
BODY = json.dumps({"inputs": {"input": [[5.1, 3.5, 1.4, 0.2]]}}).encode()


@dataclass
class Replicas:
    """Two relayer processes sharing one key and one PostgreSQL store."""

    a: Daemon
    b: Daemon
    model_id: int
    relayer: str
    credit: Any
    sessions: Sessions

    @property
    def path(self) -> str:
        return f"/v1/models/{self.model_id}/predict"

    def client(self, account: Any, url: str) -> RelayerClient:
        return RelayerClient(url, ApeAccountSigner(account), expected_relayer=self.relayer)

    def current(self, chain: Any) -> None:
        for replica in (self.a, self.b):
            wait_until_current(replica.url, chain)

    def funded_client(self, payer: Any, deposit: int, chain: Any) -> RelayerClient:
        """``payer`` deposits credit for this relayer; its client, once both replicas saw it."""
        self.credit.deposit(self.model_id, self.relayer, deposit, value=deposit, sender=payer)
        self.current(chain)
        return self.client(payer, self.a.url)


@pytest.fixture(scope="module")
def replicas(
    chain: Any,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    escrow: Any,
    renter: Any,
    buyer: Any,
    stranger: Any,
    catalog_databases: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Replicas]:
    """An encrypted iris model published and authorised; two replicas of its relayer running.

    Asks for every session fixture the tests use, so that ape's isolation has them before this
    module's snapshot (else it rebuilds module fixtures).
    """

    from daimm.market.deploy_extensions import deploy_extensions

    node_url = node_url_or_skip(chain, "the relayer daemons read the chain over HTTP")
    work = tmp_path_factory.mktemp("replicas")
    ext = deploy_extensions(project, deployer, contracts)
    registry, relayers = contracts.registry, ext.relayer_registry
    relayer_eth, x25519 = new_relayer(work, relayers, deployer, port=1)  # behind a balancer

    model_bytes, _ = onnx_models.iris_classifier()
    model_id, envelope_cid = publish_encrypted_model(work, registry, creator, model_bytes, x25519)
    # (currency, pricePerPeriod, periodSeconds, minPeriods, maxPeriods, active, perpetualPrice,
    #  pricePerCall)
    offer = (ETH, PRICE_PER_PERIOD, 3600, 1, 30, True, 0, PRICE_PER_CALL)
    contracts.escrow.setOffer(model_id, offer, sender=creator)
    relayers.authorise(model_id, relayer_eth.address, envelope_cid, sender=creator)

    state_url = catalog_databases.server.create_database(
        f"relayer_replicas_{os.getpid()}_{time.monotonic_ns()}"
    )
    addresses = {**contracts.addresses(), **ext.addresses()}
    # Each replica gets its own db_path from start_daemon, as on its own machine: the shared
    # state_url must take its place.
    settings = {
        "rpc_url": node_url,
        "account_key_file": str(work / "relayer.eth"),
        "x25519_key_file": str(work / "relayer.x25519"),
        "storage": "local",
        "storage_path": str(work / "blocks"),
        "state_url": state_url,
        "access_ttl_s": 1.0,
        "log_poll_s": 0.2,
        "redeem_interval_s": 1.0,
        # One client sends every request of these tests: no per-IP limit may get in the way.
        "rate_per_ip": 10000.0,
        "burst_per_ip": 10000,
        "rate_per_address": 10000.0,
        "burst_per_address": 10000,
    }
    a = start_daemon(work, "a", settings, addresses)
    try:
        b = start_daemon(work, "b", settings, addresses)
        try:
            sessions = Sessions(ext.session_registry, chain_id=chain.chain_id)
            yield Replicas(a, b, model_id, relayer_eth.address, ext.credit_escrow, sessions)
        finally:
            stop_daemon(b)
    finally:
        stop_daemon(a)


def _post_at_once(requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    """POST ``BODY`` to each (url, headers) from its own thread, the threads released together."""
    barrier = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def send(index: int) -> None:
        url, headers = requests[index]
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            answers[index] = client.post(url, content=BODY, headers=headers)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _outcome(response: httpx.Response) -> str:
    return "served" if response.status_code == 200 else response.json()["error"]


def test_one_signed_request_sent_to_both_replicas_at_once__is_served_once(
    replicas: Replicas, escrow: Any, renter: Any, chain: Any
) -> None:
    escrow.rent(replicas.model_id, 1, PRICE_PER_PERIOD, value=PRICE_PER_PERIOD, sender=renter)
    replicas.current(chain)
    client = replicas.client(renter, replicas.a.url)

    rounds = []
    for _ in range(10):
        headers = client.signed_headers(replicas.model_id, BODY)
        both = [replica.url + replicas.path for replica in (replicas.a, replicas.b)]
        answers = _post_at_once([(url, headers) for url in both])
        rounds.append(sorted(map(_outcome, answers)))

    assert rounds == [["nonce_reused", "served"]] * 10


def test_one_voucher_used_on_both_replicas__is_charged_once_and_redeemed_once(
    replicas: Replicas, buyer: Any, chain: Any
) -> None:
    credit, model_id, relayer = replicas.credit, replicas.model_id, replicas.relayer
    client = replicas.funded_client(buyer, 10 * PRICE_PER_CALL, chain)

    rounds = []
    for calls in range(1, 6):
        # Two different requests (two nonces), one voucher: enough for one more call only.
        voucher = client.voucher_header(model_id, calls * PRICE_PER_CALL)
        requests = []
        for replica in (replicas.a, replicas.b):
            headers = client.signed_headers(model_id, BODY)
            requests.append((replica.url + replicas.path, {**headers, "x-daimm-voucher": voucher}))
        rounds.append(sorted(map(_outcome, _post_at_once(requests))))

    assert rounds == [["insufficient_voucher", "served"]] * 5
    for replica in (replicas.a, replicas.b):
        spent = httpx.get(f"{replica.url}/v1/models/{model_id}/credit/{buyer.address}").json()
        assert int(spent["spent"]) == 5 * PRICE_PER_CALL
    # Both replicas run a redeemer; the chain ends with the latest voucher redeemed, once.
    # A liveness bound, not a timing: redemption rounds run every second, but a loaded
    # machine delays each round's transaction (once past 30 s in a full anvil run).
    deadline = time.monotonic() + 120
    while credit.channelOf(buyer, model_id, relayer).redeemed < 5 * PRICE_PER_CALL:
        assert time.monotonic() < deadline, "the voucher was not redeemed"
        time.sleep(0.5)
    assert credit.channelOf(buyer, model_id, relayer).redeemed == 5 * PRICE_PER_CALL


def test_session_call_cap__calls_at_both_replicas__counted_together(
    replicas: Replicas, escrow: Any, accounts: Any, deployer: Any, chain: Any
) -> None:
    holder = accounts.generate_test_account()
    deployer.transfer(holder, 10**18)
    escrow.rent(replicas.model_id, 1, PRICE_PER_PERIOD, value=PRICE_PER_PERIOD, sender=holder)
    replicas.current(chain)
    api_key = replicas.sessions.create(holder, model_id=replicas.model_id, max_calls=4)
    at = [SessionRelayerClient(replica.url, api_key, expected_relayer=replicas.relayer)
          for replica in (replicas.a, replicas.b)]  # fmt: skip

    for call in range(4):
        assert at[call % 2].predict(replicas.model_id, json.loads(BODY)["inputs"]).outputs

    for client in at:
        with pytest.raises(RequestRefusedError) as refused:
            client.predict(replicas.model_id, json.loads(BODY)["inputs"])
        assert (refused.value.status, refused.value.code) == (403, "session_call_cap")


def test_pay_per_call_under_a_session__at_both_replicas__redeemed_within_the_cap(
    replicas: Replicas, accounts: Any, deployer: Any, chain: Any
) -> None:
    """Deposit credit, one session with a spend cap of 3 calls, pay per call with vouchers the
    session key signs at either replica; the fourth is refused; the redeemers redeem on chain
    with the session, and the chain counts the session's spend."""
    from daimm.eip712 import session_digest

    credit, model_id, relayer = replicas.credit, replicas.model_id, replicas.relayer
    holder = accounts.generate_test_account()
    deployer.transfer(holder, 10**18)
    credit.deposit(model_id, relayer, 10 * PRICE_PER_CALL, value=10 * PRICE_PER_CALL, sender=holder)
    replicas.current(chain)
    api_key = replicas.sessions.create(
        holder, model_id=model_id, relayer=relayer, spend_cap=3 * PRICE_PER_CALL
    )
    at = [SessionRelayerClient(replica.url, api_key, expected_relayer=relayer)
          for replica in (replicas.a, replicas.b)]  # fmt: skip
    inputs = json.loads(BODY)["inputs"]

    charged = [at[call % 2].predict(model_id, inputs, pay_per_use=True).charged
               for call in range(3)]  # fmt: skip
    with pytest.raises(RequestRefusedError) as refused:
        at[1].predict(model_id, inputs, pay_per_use=True)

    assert charged == [PRICE_PER_CALL] * 3
    assert (refused.value.status, refused.value.code) == (402, "session_spend_cap")
    # A liveness bound, not a timing: redemption rounds run every second, but a loaded
    # machine delays each round's transaction (once past 30 s in a full anvil run).
    deadline = time.monotonic() + 120
    while credit.channelOf(holder, model_id, relayer).redeemed < 3 * PRICE_PER_CALL:
        assert time.monotonic() < deadline, "the session's vouchers were not redeemed"
        time.sleep(0.5)
    assert credit.channelOf(holder, model_id, relayer).redeemed == 3 * PRICE_PER_CALL
    assert credit.sessionSpent(session_digest(api_key.session)) == 3 * PRICE_PER_CALL


def test_a_replica_killed_mid_request__loses_nothing_the_other_serves_on(
    replicas: Replicas, stranger: Any, chain: Any
) -> None:
    model_id, deposit = replicas.model_id, 400 * PRICE_PER_CALL
    client = replicas.funded_client(stranger, deposit, chain)
    voucher = client.voucher_header(model_id, deposit)  # covers every call below
    a_url = replicas.a.url + replicas.path
    served: list[dict[str, str]] = []
    broken: list[dict[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as http:
            for _ in range(100):  # bounded: the kill comes long before
                if stop.is_set():
                    return
                with lock:
                    headers = {**client.signed_headers(model_id, BODY), "x-daimm-voucher": voucher}
                try:
                    answer = http.post(a_url, content=BODY, headers=headers)
                except httpx.TransportError:
                    with lock:
                        broken.append(headers)
                    return
                assert answer.status_code == 200, answer.text
                with lock:
                    served.append(headers)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    while len(served) < 40:
        assert all(t.is_alive() for t in threads), "the clients stopped before the kill"
        time.sleep(0.01)
    replicas.a.process.send_signal(signal.SIGKILL)  # mid-request: 16 clients are in flight
    replicas.a.process.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert broken, "no request was in flight when the replica was killed"
    # Every answered call is recorded: B refuses each one's nonce and has charged for each.
    b = replicas.b.url
    replays = _post_at_once([(b + replicas.path, headers) for headers in served[:8]])
    assert {_outcome(answer) for answer in replays} == {"nonce_reused"}
    spent = int(httpx.get(f"{b}/v1/models/{model_id}/credit/{stranger.address}").json()["spent"])
    # A call killed after its charge committed and before its answer left is charged unanswered.
    assert len(served) * PRICE_PER_CALL <= spent <= (len(served) + len(broken)) * PRICE_PER_CALL
    # B serves on from the same state: the next call is charged on top of what A recorded.
    headers = {**client.signed_headers(model_id, BODY), "x-daimm-voucher": voucher}
    answer = httpx.post(b + replicas.path, content=BODY, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    after = int(httpx.get(f"{b}/v1/models/{model_id}/credit/{stranger.address}").json()["spent"])
    assert after == spent + PRICE_PER_CALL
