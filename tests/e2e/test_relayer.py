"""The relayer end to end on anvil: publish an encrypted model, rent, predict, and every refusal.

Runs only on a real local node: ``ape test tests/e2e/test_relayer.py --network
ethereum:local:foundry`` (anvil through ape-foundry); on ape's in-process test chain, which has no
HTTP endpoint for the daemon to read, the module is skipped. The contracts are driven through ape
(as users and attackers would), the relayer runs as its own process (``daimm relayer serve
--config``), reading the chain over HTTP through a TCP proxy the tests can cut to simulate the RPC
endpoint going away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tests.utils import load_by_path
from tests.utils.relayer import (
    TcpProxy,
    free_port,
    new_relayer,
    node_url_or_skip,
    publish_encrypted_model,
    relayer_daemon,
    wait_until_current,
)

from daimm.client import ApeAccountSigner, RelayerClient, verify_receipt_document
from daimm.errors import RequestRefusedError

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
PERIOD = 3600
PRICE_PER_PERIOD = 10**15
PRICE_PER_CALL = 10**13


def _onnx_helpers() -> Any:
    return load_by_path("tests/utils/onnx_models.py", "daimm_test_onnx_models")


def _offer(price_per_call: int = PRICE_PER_CALL) -> tuple[Any, ...]:
    # (currency, pricePerPeriod, periodSeconds, minPeriods, maxPeriods, active, perpetualPrice,
    #  pricePerCall)
    return (ETH, PRICE_PER_PERIOD, PERIOD, 1, 30, True, 0, price_per_call)


@pytest.fixture(scope="module")
def node_url(chain: Any) -> str:
    return node_url_or_skip(chain, "the relayer daemon reads the chain over HTTP")


@pytest.fixture(scope="module")
def stack(
    node_url: str,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Extensions deployed, an encrypted iris model published and authorised, a relayer running."""
    from daimm.market.deploy_extensions import deploy_extensions
    from daimm.relayer.settings import write_settings

    work = tmp_path_factory.mktemp("relayer")
    ext = deploy_extensions(project, deployer, contracts)
    registry, relayers, credit = contracts.registry, ext.relayer_registry, ext.credit_escrow

    # The relayer's two keys: Ethereum (signs receipts, redeems) and X25519 (opens envelopes),
    # registered by the relayer address itself (the registry refuses squatting by others).
    port = free_port()
    relayer_eth, x25519 = new_relayer(work, relayers, deployer, port)
    key_file = work / "relayer.eth"

    # The creator encrypts and stores the model, then mints it.
    helpers = _onnx_helpers()
    model_bytes, rows = helpers.iris_classifier()
    model_id, envelope_cid = publish_encrypted_model(work, registry, creator, model_bytes, x25519)
    contracts.escrow.setOffer(model_id, _offer(), sender=creator)

    relayers.authorise(model_id, relayer_eth.address, envelope_cid, sender=creator)

    proxy = TcpProxy(("127.0.0.1", int(node_url.rsplit(":", 1)[1].split("/")[0])))
    proxy.start()
    addresses = {**contracts.addresses(), **ext.addresses()}
    config = write_settings(
        work / "relayer.toml",
        rpc_url=proxy.url,
        rpc_timeout_s=1.0,
        account_key_file=key_file,
        x25519_key_file=work / "relayer.x25519",
        storage="local",
        storage_path=work / "blocks",
        db_path=work / "relayer.sqlite3",
        port=port,
        access_ttl_s=2.0,
        log_poll_s=0.2,
        redeem_interval_s=1.0,
        contracts=addresses,
    )
    try:
        with relayer_daemon(config, port, work / "relayer.log") as url:
            yield {
                "url": url,
                "model_id": model_id,
                "model_bytes": model_bytes,
                "rows": rows,
                "relayer": relayer_eth.address,
                "relayers": relayers,
                "credit": credit,
                "proxy": proxy,
                "log": work / "relayer.log",
            }
    finally:
        proxy.stop()


def _client(stack: dict[str, Any], account: Any) -> RelayerClient:
    return RelayerClient(stack["url"], ApeAccountSigner(account), expected_relayer=stack["relayer"])


def _rent(stack: dict[str, Any], escrow: Any, account: Any, periods: int = 1) -> None:
    price = periods * PRICE_PER_PERIOD
    escrow.rent(stack["model_id"], periods, price, value=price, sender=account)


def _rented_client(stack: dict[str, Any], escrow: Any, renter: Any, chain: Any) -> RelayerClient:
    """Rent the model for one period, wait until the relayer has seen it, return renter's client."""
    _rent(stack, escrow, renter)
    wait_until_current(stack["url"], chain)
    return _client(stack, renter)


# ------------------------------------------------------------------ the happy path
def test_a_renter_gets_the_outputs_of_onnx_runtime_on_the_plaintext_model(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)

    prediction = client.predict(stack["model_id"], {"input": stack["rows"].tolist()})

    session = ort.InferenceSession(stack["model_bytes"], providers=["CPUExecutionProvider"])
    label, probabilities = session.run(None, {"input": stack["rows"]})
    assert prediction.outputs["label"] == label.tolist()
    np.testing.assert_allclose(prediction.outputs["probabilities"], probabilities, rtol=1e-6)
    registered = stack["relayers"].relayerOf(stack["relayer"])
    assert registered.active
    receipt = verify_receipt_document(prediction.receipt, stack["relayer"])
    assert receipt.model_id == stack["model_id"]
    assert receipt.weights_cid == prediction.receipt["weightsCid"]


# ------------------------------------------------------------------ refusals
def test_a_wallet_without_a_licence_is_refused_403(stack: Any, stranger: Any, chain: Any) -> None:
    wait_until_current(stack["url"], chain)
    with pytest.raises(RequestRefusedError) as refused:
        _client(stack, stranger).predict(stack["model_id"], {"input": [[1.0, 2.0, 3.0, 4.0]]})
    assert (refused.value.status, refused.value.code) == (403, "no_licence")
    assert "offered per call" in refused.value.detail


def test_a_replayed_request_is_refused_401(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)
    body = json.dumps({"inputs": {"input": [[5.1, 3.5, 1.4, 0.2]]}}).encode()
    headers = client.signed_headers(stack["model_id"], body)
    path = f"{stack['url']}/v1/models/{stack['model_id']}/predict"

    first = httpx.post(path, content=body, headers=headers, timeout=30)
    replay = httpx.post(path, content=body, headers=headers, timeout=30)

    assert first.status_code == 200
    assert (replay.status_code, replay.json()["error"]) == (401, "nonce_reused")


def test_malformed_and_oversized_requests_are_refused_by_the_daemon(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)

    with pytest.raises(RequestRefusedError) as wrong_shape:
        client.predict(stack["model_id"], {"input": [[1.0, 2.0]]})
    too_big = httpx.post(
        f"{stack['url']}/v1/models/{stack['model_id']}/predict",
        content=b"x" * (13 << 20),  # past max_body_bytes (12 MiB)
        timeout=30,
    )

    assert wrong_shape.value.status == 422
    assert "inputs.input" in wrong_shape.value.detail
    assert (too_big.status_code, too_big.json()["error"]) == (413, "body_too_large")


def test_a_rental_that_expires_stops_being_served(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)
    assert client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]}).outputs

    chain.pending_timestamp += PERIOD + 1
    chain.mine()
    wait_until_current(stack["url"], chain)

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]})
    assert (refused.value.status, refused.value.code) == (403, "no_licence")


def test_a_model_owner_who_deauthorises_the_relayer_stops_it_serving(
    stack: Any, escrow: Any, renter: Any, creator: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)
    assert client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]}).outputs

    stack["relayers"].deauthorise(stack["model_id"], stack["relayer"], sender=creator)
    wait_until_current(stack["url"], chain)

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]})
    assert (refused.value.status, refused.value.code) == (403, "relayer_not_authorised")


# ------------------------------------------------------------------ pay per use
def test_pay_per_use_deposit_calls_redeem_and_reclaim(stack: Any, buyer: Any, chain: Any) -> None:
    credit, model_id, relayer = stack["credit"], stack["model_id"], stack["relayer"]
    deposit = 10 * PRICE_PER_CALL
    credit.deposit(model_id, relayer, deposit, value=deposit, sender=buyer)
    wait_until_current(stack["url"], chain)
    client = _client(stack, buyer)

    charged = [
        client.predict(model_id, {"input": [[5.1, 3.5, 1.4, 0.2]]}, pay_per_use=True).charged
        for _ in range(3)
    ]

    assert charged == [PRICE_PER_CALL] * 3
    # The daemon's redeemer (every second in this config) redeems the latest voucher on chain.
    # A liveness bound, not a timing: redemption rounds run every second, but a loaded
    # machine delays each round's transaction (once past 30 s in a full anvil run).
    deadline = time.monotonic() + 120
    while credit.channelOf(buyer, model_id, relayer).redeemed < 3 * PRICE_PER_CALL:
        assert time.monotonic() < deadline, "voucher was not redeemed"
        time.sleep(0.5)
    channel = credit.channelOf(buyer, model_id, relayer)
    assert (channel.deposited, channel.redeemed) == (deposit, 3 * PRICE_PER_CALL)

    chain.pending_timestamp = int(channel.expiresAt) + 1
    before = buyer.balance
    tx = credit.reclaim(model_id, relayer, sender=buyer)

    reclaimed = tx.events.filter(credit.CreditReclaimed)[0]
    assert reclaimed.amount == deposit - 3 * PRICE_PER_CALL
    assert buyer.balance == before + reclaimed.amount - tx.total_fees_paid


def test_a_voucher_beyond_the_deposit_is_refused_402(stack: Any, buyer: Any, chain: Any) -> None:
    credit, model_id, relayer = stack["credit"], stack["model_id"], stack["relayer"]
    credit.deposit(model_id, relayer, PRICE_PER_CALL, value=PRICE_PER_CALL, sender=buyer)
    wait_until_current(stack["url"], chain)
    client = _client(stack, buyer)
    body = json.dumps({"inputs": {"input": [[5.1, 3.5, 1.4, 0.2]]}}).encode()
    headers = client.signed_headers(model_id, body)
    headers["x-daimm-voucher"] = client.voucher_header(model_id, 10**30)

    response = httpx.post(
        f"{stack['url']}/v1/models/{model_id}/predict", content=body, headers=headers, timeout=30
    )

    assert (response.status_code, response.json()["error"]) == (402, "voucher_above_deposit")
    # Amounts in the channel's currency, not in wei (10**30 wei and 10**13 wei).
    assert "for 1000000000000 ETH but only 0.00001 ETH was deposited" in response.json()["detail"]


def test_currency_units__an_erc20_and_eth__read_from_the_chain(
    node_url: str, contracts: Any
) -> None:
    from daimm.relayer.chain import ChainReader

    reader = ChainReader(node_url, {})

    assert reader.currency_units(str(contracts.token.address)) == ("AIMT", 18)
    assert reader.currency_units("0x" + "00" * 20) == ("ETH", 18)
    # An address with no token behind it: the amount stays in the smallest unit, never an error.
    assert reader.currency_units("0x" + "11" * 20)[1] == 0


# ------------------------------------------------------------------ faults
def test_the_rpc_endpoint_going_away_gives_503_then_recovers(
    stack: Any, escrow: Any, renter: Any, chain: Any
) -> None:
    client = _rented_client(stack, escrow, renter, chain)
    assert client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]}).outputs

    stack["proxy"].stop()
    try:
        time.sleep(1.0)  # a few watcher polls fail: the cache is dropped
        with pytest.raises(RequestRefusedError) as refused:
            client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]})
        health = httpx.get(stack["url"] + "/v1/health", timeout=5).json()
    finally:
        stack["proxy"].start()

    assert (refused.value.status, refused.value.code) == (503, "chain_unavailable")
    assert health["status"] == "chain_unavailable"
    wait_until_current(stack["url"], chain)
    assert client.predict(stack["model_id"], {"input": [[5.1, 3.5, 1.4, 0.2]]}).outputs


def test_the_infer_and_verify_receipt_commands_work_against_the_daemon(
    stack: Any, escrow: Any, tmp_path: Path, chain: Any
) -> None:
    from ape import accounts
    from click.testing import CliRunner

    from daimm.cli import cli

    user = accounts.test_accounts[6]  # a test account: its private key can go in a key file
    key_file = tmp_path / "user.key"
    key_file.write_text(str(user.private_key))
    key_file.chmod(0o600)
    _rent(stack, escrow, user)
    wait_until_current(stack["url"], chain)
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"inputs": {"input": [[5.1, 3.5, 1.4, 0.2]]}}))
    answer = tmp_path / "answer.json"
    runner = CliRunner()

    inferred = runner.invoke(
        cli,
        ["infer", str(stack["model_id"]), "--input", str(inputs), "--relayer-url", stack["url"],
         "--relayer", stack["relayer"], "--key-file", str(key_file),
         "--receipt-out", str(answer)],
    )  # fmt: skip
    verified = runner.invoke(cli, ["verify-receipt", str(answer), "--relayer", stack["relayer"]])
    forged = runner.invoke(cli, ["verify-receipt", str(answer), "--relayer", user.address])

    assert inferred.exit_code == 0, inferred.output
    assert json.loads(inferred.stdout.strip().splitlines()[-1])["label"] == [0]
    assert verified.exit_code == 0, verified.output
    assert "OK" in verified.output
    assert forged.exit_code != 0
