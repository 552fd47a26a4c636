"""Session keys end to end on anvil, through real ``daimm relayer serve`` processes.

One holder signature makes an API key; ten predictions run on it; the holder revokes it on chain
and the next request is refused. Then the Python client fails over to the model's second relayer
when the first is stopped. Runs only on a real node (``--network ethereum:local:foundry``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.utils.relayer import free_port, node_url_or_skip, wait_until_current

from daimm.client import SessionClient, SessionRelayerClient
from daimm.errors import RequestRefusedError
from daimm.market.sessions import Sessions

pytestmark = [pytest.mark.chain]

ETH = "0x0000000000000000000000000000000000000000"
PERIOD = 3600
PRICE_PER_PERIOD = 10**15
ROOT = Path(__file__).resolve().parents[2]
INPUTS = {"input": [[5.1, 3.5, 1.4, 0.2]]}


def _iris() -> bytes:
    import importlib.util

    # NOTE: by path: a site-packages `tests` package (from pymultihash) can shadow ours.
    path = ROOT / "tests" / "utils" / "onnx_models.py"
    spec = importlib.util.spec_from_file_location("daimm_test_onnx_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.iris_classifier()[0]


def _start_relayer(work: Path, node_url: str, addresses: dict[str, str], key: Any,
                   x25519_file: Path, blocks: Path, port: int) -> subprocess.Popen:  # fmt: skip
    key_file = work / "relayer.eth"
    key_file.write_text(str(key.private_key))
    key_file.chmod(0o600)
    config = work / "relayer.toml"
    config.write_text(
        "\n".join(
            [
                "[relayer]",
                f'rpc_url = "{node_url}"',
                f'account_key_file = "{key_file}"',
                f'x25519_key_file = "{x25519_file}"',
                'storage = "local"',
                f'storage_path = "{blocks}"',
                f'db_path = "{work / "relayer.sqlite3"}"',
                f"port = {port}",
                "access_ttl_s = 2.0",
                "log_poll_s = 0.2",
                "[relayer.contracts]",
                *(f'{name} = "{address}"' for name, address in addresses.items()),
            ]
        )
    )
    log = open(work / "relayer.log", "wb")  # noqa: SIM115 - the process owns it until it exits
    daemon = subprocess.Popen(
        [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config", str(config)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return daemon
        except httpx.HTTPError:
            pass
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            pytest.fail("relayer did not start:\n" + (work / "relayer.log").read_text()[-3000:])
        time.sleep(0.2)


def _stop(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()


@pytest.fixture(scope="module")
def stack(
    chain: Any,
    project: Any,
    contracts: Any,
    deployer: Any,
    creator: Any,
    renter: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """An encrypted iris model, two relayers authorised for it and running, a renter's licence."""
    from ape import accounts

    from daimm.crypto import (
        encrypt_stream,
        generate_content_key,
        generate_private_key,
        model_associated_data,
        public_key_of,
        save_private_key,
        wrap_key,
    )
    from daimm.ipfs import LocalBlockstore, add_file
    from daimm.market.deploy_extensions import deploy_extensions

    node_url = node_url_or_skip(chain, "the relayer daemons read the chain over HTTP")
    work = tmp_path_factory.mktemp("sessions")
    ext = deploy_extensions(project, deployer, contracts)
    registry, relayers = contracts.registry, ext.relayer_registry
    blocks = LocalBlockstore(work / "blocks")
    model_id = int(registry.modelCount()) + 1
    content_key = generate_content_key()
    ciphertext = io.BytesIO()
    encrypt_stream(io.BytesIO(_iris()), ciphertext, content_key,
                   model_associated_data(model_id, 0))  # fmt: skip
    weights_cid = str(add_file(io.BytesIO(ciphertext.getvalue()), blocks).cid)
    registry.publishModel(weights_cid, weights_cid, 0, sender=creator)
    contracts.escrow.setOffer(
        model_id, (ETH, PRICE_PER_PERIOD, PERIOD, 1, 30, True, 0, 0), sender=creator
    )
    contracts.escrow.rent(model_id, 24, 24 * PRICE_PER_PERIOD, value=24 * PRICE_PER_PERIOD,
                          sender=renter)  # fmt: skip

    addresses = {**contracts.addresses(), **ext.addresses()}
    daemons: list[subprocess.Popen] = []
    served: list[tuple[str, str]] = []
    try:
        for index in range(2):
            home = work / f"relayer{index}"
            home.mkdir()
            key = accounts.test_accounts.generate_test_account()
            deployer.transfer(key.address, 10**18)
            x25519 = generate_private_key()
            save_private_key(home / "relayer.x25519", x25519)
            envelope = wrap_key(content_key, [public_key_of(x25519)])
            envelope_cid = str(add_file(io.BytesIO(envelope.to_json()), blocks).cid)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            relayers.register(key.address, public_key_of(x25519).raw, url, sender=key)
            relayers.authorise(model_id, key.address, envelope_cid, sender=creator)
            daemons.append(
                _start_relayer(
                    home, node_url, addresses, key, home / "relayer.x25519", work / "blocks", port
                )  # fmt: skip
            )
            served.append((url, key.address))
        yield {
            "model_id": model_id,
            "relayers": served,
            "daemons": daemons,
            "sessions": Sessions(ext.session_registry, chain_id=chain.chain_id),
            "relayer_registry": str(relayers.address),
        }
    finally:
        for daemon in daemons:
            _stop(daemon)


def test_session__one_signature_ten_predictions__revoked_on_chain__next_refused(
    stack: dict[str, Any], renter: Any, chain: Any
) -> None:
    sessions, model_id = stack["sessions"], stack["model_id"]
    url, address = stack["relayers"][0]
    api_key = sessions.create(renter, model_id=model_id)  # the one signature
    client = SessionRelayerClient(url, api_key.encode(), expected_relayer=address)
    wait_until_current(url, chain)

    labels = [client.predict(model_id, INPUTS).outputs["label"] for _ in range(10)]

    assert labels == [[0]] * 10
    sessions.revoke(api_key.hash, sender=renter)
    wait_until_current(url, chain)
    with pytest.raises(RequestRefusedError) as refused:
        client.predict(model_id, INPUTS)
    assert (refused.value.status, refused.value.code) == (401, "session_revoked")


def test_session__revoke_all__every_earlier_key_refused(
    stack: dict[str, Any], renter: Any, chain: Any
) -> None:
    sessions, model_id = stack["sessions"], stack["model_id"]
    url, address = stack["relayers"][0]
    client = SessionRelayerClient(url, sessions.create(renter, model_id=model_id),
                                  expected_relayer=address)  # fmt: skip
    wait_until_current(url, chain)
    assert client.predict(model_id, INPUTS).outputs

    sessions.revoke_all(sender=renter)
    wait_until_current(url, chain)

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(model_id, INPUTS)
    assert refused.value.code == "session_revoked_all"


def test_session_client__first_relayer_stopped__second_one_answers(
    stack: dict[str, Any], renter: Any, chain: Any
) -> None:
    sessions, model_id = stack["sessions"], stack["model_id"]
    (_first_url, _first), (second_url, second) = stack["relayers"]
    client = SessionClient(sessions.create(renter, model_id=model_id), stack["relayers"])
    wait_until_current(second_url, chain)
    assert client.predict(model_id, INPUTS).receipt["relayer"] == _first

    _stop(stack["daemons"][0])
    prediction = client.predict(model_id, INPUTS)

    assert prediction.outputs["label"] == [0]
    assert prediction.receipt["relayer"] == second
