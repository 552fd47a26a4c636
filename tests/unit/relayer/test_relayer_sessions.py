"""Session-signed requests through the relayer's app (the chain is the conftest test double).

One holder signature, then many requests signed by the session key; every bad input or attack of
issue 17 is refused with its own code. NOTE: the chain is ``ChainDouble`` (see conftest.py); the
same flow runs against anvil and the real SessionRegistry in tests/e2e/test_sessions.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from daimm import eip712
from daimm.client import SessionClient, SessionRelayerClient
from daimm.eip712 import ZERO_ADDRESS, Session
from daimm.errors import ApiKeyError, RelayerError, RequestRefusedError
from daimm.relayer.app import create_app
from daimm.relayer.chain import Channel
from daimm.sessions import ApiKey, session_hash

# The same values as conftest.py (test modules here are not a package, so they are repeated).
CHAIN_ID = 31337
SESSION_REGISTRY = "0x" + "56" * 20
INPUTS = {"input": [[5.1, 3.5, 1.4, 0.2]]}


def make_key(
    holder: Any, now: int, *, signer: Any = None, key: Any = None, **changes: Any
) -> ApiKey:
    key = key or Account.create()
    fields: dict[str, Any] = dict(
        holder=holder.address, key=key.address, model_id=1, relayer=ZERO_ADDRESS,
        expires_at=now + 3600, max_calls=100, spend_cap=0, nonce=0, chain_id=CHAIN_ID,
        registry=SESSION_REGISTRY,
    )  # fmt: skip
    fields.update(changes)
    session = Session(**fields)
    return ApiKey(bytes(key.key), session, eip712.sign_session(session, (signer or holder).key))


@pytest.fixture
def relayer(create_services: Any, chain: Any, user: Any, relayer_account: Any) -> Any:
    """A relayer authorised for model 1 with ``user`` (the holder) holding a licence."""
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services()
    http = TestClient(create_app(services))
    with http:

        def client(api_key: ApiKey) -> SessionRelayerClient:
            return SessionRelayerClient(
                "http://testserver", api_key, expected_relayer=relayer_account.address, http=http
            )

        yield services, client, http


def refusal(client: Any, model_id: int = 1) -> tuple[int, str]:
    with pytest.raises(RequestRefusedError) as refused:
        client.predict(model_id, INPUTS)
    return refused.value.status, refused.value.code


# ------------------------------------------------------------------ served
def test_session__one_holder_signature__ten_predictions_served_and_counted(
    relayer: Any, chain: Any, user: Any
) -> None:
    services, client_for, _http = relayer
    api_key = make_key(user, chain.now)
    client = client_for(api_key.encode())

    predictions = [client.predict(1, INPUTS) for _ in range(10)]

    assert all(p.outputs["label"] == [0] for p in predictions)
    assert services.policy.sessions.store.calls(session_hash(api_key.session)) == 10


def test_session__any_model_and_named_relayer__served(
    relayer: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    _services, client_for, _http = relayer
    api_key = make_key(user, chain.now, model_id=0, relayer=relayer_account.address)

    assert client_for(api_key).predict(1, INPUTS).outputs


def test_session__largest_call_cap__served(relayer: Any, chain: Any, user: Any) -> None:
    _services, client_for, _http = relayer
    api_key = make_key(user, chain.now, max_calls=2**64 - 1)  # beyond SQLite's signed 64 bits

    assert client_for(api_key).predict(1, INPUTS).outputs


# ------------------------------------------------------------------ refused, each with its code
def test_session__expired__401_session_expired(relayer: Any, chain: Any, user: Any) -> None:
    _services, client_for, _http = relayer
    client = client_for(make_key(user, chain.now, expires_at=chain.now + 100))
    client.predict(1, INPUTS)
    chain.now += 100  # the request's own deadline (wall clock + 300 s) is still ahead

    assert refusal(client) == (401, "session_expired")


def test_session__over_its_call_cap__403_session_call_cap(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    client = client_for(make_key(user, chain.now, max_calls=2))
    client.predict(1, INPUTS)
    client.predict(1, INPUTS)

    assert refusal(client) == (403, "session_call_cap")


def test_session__revoked__401_session_revoked(relayer: Any, chain: Any, user: Any) -> None:
    _services, client_for, _http = relayer
    api_key = make_key(user, chain.now)
    client = client_for(api_key)
    client.predict(1, INPUTS)
    chain.revoked.add((user.address, api_key.hash))

    assert refusal(client) == (401, "session_revoked")


def test_session__holder_revoked_all__401_session_revoked_all(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    client = client_for(make_key(user, chain.now))
    client.predict(1, INPUTS)
    chain.session_nonces[user.address] = 1

    assert refusal(client) == (401, "session_revoked_all")
    assert client_for(make_key(user, chain.now, nonce=1)).predict(1, INPUTS).outputs


def test_session__revoked_while_the_model_runs__401_and_no_answer(
    relayer: Any, chain: Any, user: Any
) -> None:
    services, client_for, _http = relayer
    api_key = make_key(user, chain.now)
    client = client_for(api_key)
    client.predict(1, INPUTS)  # warm: the model is loaded and the session check cached
    answer = services.models.answer

    async def answer_then_revoke(*args: Any) -> Any:
        outputs = await answer(*args)
        chain.revoked.add((user.address, api_key.hash))  # the watcher saw SessionRevoked
        return outputs

    services.models.answer = answer_then_revoke  # type: ignore[method-assign]

    assert refusal(client) == (401, "session_revoked")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model_id": 2}, (403, "session_wrong_model")),
        ({"relayer": "0x" + "cd" * 20}, (403, "session_wrong_relayer")),
        ({"chain_id": 1}, (401, "session_wrong_domain")),
        ({"registry": "0x" + "99" * 20}, (401, "session_wrong_domain")),
    ],
)
def test_session__for_another_model_relayer_or_domain__refused_with_its_code(
    relayer: Any, chain: Any, user: Any, changes: dict, expected: tuple[int, str]
) -> None:
    _services, client_for, _http = relayer

    assert refusal(client_for(make_key(user, chain.now, **changes))) == expected


def test_session__holder_without_licence__403_no_licence_naming_the_holder(
    relayer: Any, chain: Any
) -> None:
    _services, client_for, _http = relayer
    stranger = Account.create()

    with pytest.raises(RequestRefusedError) as refused:
        client_for(make_key(stranger, chain.now)).predict(1, INPUTS)

    assert (refused.value.status, refused.value.code) == (403, "no_licence")
    assert stranger.address in refused.value.detail


def test_session__holders_licence_expired_meanwhile__403_no_licence(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    client = client_for(make_key(user, chain.now))
    client.predict(1, INPUTS)
    chain.access.discard((1, user.address))

    assert refusal(client) == (403, "no_licence")


def test_session__signed_by_a_session_key__401_session_delegation(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    first_key = Account.create()
    client_for(make_key(user, chain.now, key=first_key)).predict(1, INPUTS)
    # The session key signs a session of its own for a third key: a chain of delegation.
    chained = make_key(first_key, chain.now)

    assert refusal(client_for(chained)) == (401, "session_delegation")


def test_session__not_signed_by_its_holder__401_session_bad_signature(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    key = Account.create()
    forged = make_key(user, chain.now, key=key, signer=key)
    client = client_for(forged)  # passed parsed: parse_api_key would refuse it in the client

    assert refusal(client) == (401, "session_bad_signature")


def test_session__request_signed_by_another_key__401_session_key_mismatch(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    api_key = make_key(user, chain.now)
    other = dataclasses.replace(api_key, private_key=bytes(Account.create().key))

    assert refusal(client_for(other)) == (401, "session_key_mismatch")


def test_session__replayed_request__401_nonce_reused(relayer: Any, chain: Any, user: Any) -> None:
    _services, client_for, http = relayer
    client = client_for(make_key(user, chain.now))
    body = b'{"inputs":{"input":[[5.1,3.5,1.4,0.2]]}}'
    headers = client.signed_headers(1, body)

    first = http.post("/v1/models/1/predict", content=body, headers=headers)
    again = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (401, "nonce_reused")


def test_session__malformed_header__401_session_malformed(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, http = relayer
    client = client_for(make_key(user, chain.now))
    body = b'{"inputs":{"input":[[5.1,3.5,1.4,0.2]]}}'
    headers = client.signed_headers(1, body)
    headers["x-daimm-session"] = headers["x-daimm-session"][:-4]

    answer = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert (answer.status_code, answer.json()["error"]) == (401, "session_malformed")


PRICE = 100


@pytest.fixture
def credit(relayer: Any, chain: Any, user: Any) -> Any:
    """The holder has no licence but credit of 10 calls on model 1 with this relayer."""
    chain.access.discard((1, user.address))
    chain.prices[1] = PRICE
    chain.channels[(user.address, 1)] = Channel(ZERO_ADDRESS, 10 * PRICE, 0, chain.now + 86_400)
    return relayer


def spending_key(user: Any, chain: Any, relayer_account: Any, **changes: Any) -> ApiKey:
    fields = dict(relayer=relayer_account.address, spend_cap=3 * PRICE)
    fields.update(changes)
    return make_key(user, chain.now, **fields)


def test_session_voucher__key_signs_within_the_cap__served_and_paid_from_the_holders_channel(
    credit: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    services, client_for, _http = credit
    api_key = spending_key(user, chain, relayer_account)
    client = client_for(api_key)

    first = client.predict(1, INPUTS, pay_per_use=True)
    second = client.predict(1, INPUTS, pay_per_use=True)

    assert (first.charged, second.charged) == (PRICE, PRICE)
    stored = services.store.get(user.address, 1)
    assert (stored.cumulative, stored.spent) == (2 * PRICE, 2 * PRICE)
    assert stored.session_token == api_key.token
    assert services.store.get(api_key.session.key, 1) is None


def test_session_voucher__past_the_spend_cap__402_session_spend_cap(
    credit: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    services, client_for, _http = credit
    client = client_for(spending_key(user, chain, relayer_account))
    for _ in range(3):
        client.predict(1, INPUTS, pay_per_use=True)

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, INPUTS, pay_per_use=True)

    assert (refused.value.status, refused.value.code) == (402, "session_spend_cap")
    assert services.store.get(user.address, 1).spent == 3 * PRICE


def test_session_voucher__session_without_spend_cap__402_session_no_spend(
    credit: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = credit

    with pytest.raises(RequestRefusedError) as refused:
        client_for(make_key(user, chain.now)).predict(1, INPUTS, pay_per_use=True)

    assert (refused.value.status, refused.value.code) == (402, "session_no_spend")


def test_session_voucher__spend_cap_with_any_relayer__401_session_spend_needs_relayer(
    credit: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = credit
    api_key = make_key(user, chain.now, spend_cap=3 * PRICE)  # relayer: any

    with pytest.raises(RequestRefusedError) as refused:
        client_for(api_key).predict(1, INPUTS, pay_per_use=True)

    assert (refused.value.status, refused.value.code) == (401, "session_spend_needs_relayer")


def test_session_voucher__signed_by_the_holder_not_the_key__402_invalid_voucher(
    credit: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    _services, client_for, http = credit
    client = client_for(spending_key(user, chain, relayer_account))
    body = b'{"inputs":{"input":[[5.1,3.5,1.4,0.2]]}}'
    headers = client.signed_headers(1, body)
    info = client.info()
    voucher = eip712.Voucher(model_id=1, relayer=info.relayer, cumulative_amount=PRICE,
                             chain_id=info.chain_id, escrow=info.escrow)  # fmt: skip
    headers["x-daimm-voucher"] = f"{PRICE}:0x{eip712.sign_voucher(voucher, user.key).hex()}"

    answer = http.post("/v1/models/1/predict", content=body, headers=headers)

    assert (answer.status_code, answer.json()["error"]) == (402, "invalid_voucher")


def test_session_voucher__holder_without_credit__402_no_credit(
    credit: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    _services, client_for, _http = credit
    del chain.channels[(user.address, 1)]

    with pytest.raises(RequestRefusedError) as refused:
        client_for(spending_key(user, chain, relayer_account)).predict(1, INPUTS, pay_per_use=True)

    assert (refused.value.status, refused.value.code) == (402, "no_credit")


def test_session__chain_down__503_never_a_session_refusal(
    relayer: Any, chain: Any, user: Any
) -> None:
    _services, client_for, _http = relayer
    client = client_for(make_key(user, chain.now))
    chain.down = True

    assert refusal(client) == (503, "chain_unavailable")


def test_session__deployment_without_session_registry__401_sessions_unsupported(
    create_services: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    chain.authorised.add(1)
    chain.access.add((1, user.address))
    services = create_services(session_registry=None)
    with TestClient(create_app(services)) as http:
        client = SessionRelayerClient(
            "http://testserver", make_key(user, chain.now), http=http,
            expected_relayer=relayer_account.address,
        )  # fmt: skip

        assert refusal(client) == (401, "sessions_unsupported")


def test_session_client__malformed_api_key__api_key_error_before_any_request() -> None:
    with pytest.raises(ApiKeyError) as info:
        SessionClient("daimm_sk_not-a-key", ["http://127.0.0.1:9"])
    assert info.value.code == "api_key_malformed"


# ------------------------------------------------------------------ failover
def test_session_client__first_relayer_down__second_answers_then_down_one_is_tried_last(
    relayer: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    _services, _client_for, http = relayer
    api_key = make_key(user, chain.now)
    # NOTE: a real socket nobody listens on (port 9, discard, closed here): the stopped relayer.
    down = "http://127.0.0.1:9"
    attempts: list[str] = []

    def factory(url: str) -> Any:
        if url == down:
            client = httpx.Client(base_url=url, timeout=httpx.Timeout(2.0, connect=0.5))
            client.event_hooks["request"] = [lambda _r: attempts.append(down)]
            return client
        return http

    client = SessionClient(
        api_key, [(down, relayer_account.address), ("http://testserver", relayer_account.address)],
        http_factory=factory,
    )  # fmt: skip

    assert client.predict(1, INPUTS).outputs["label"] == [0]
    assert client.predict(1, INPUTS).outputs["label"] == [0]
    assert attempts == [down]  # the second call went to the live relayer first


def test_session_client__refusal_is_an_answer__raised_without_failover(
    relayer: Any, chain: Any, user: Any, relayer_account: Any
) -> None:
    _services, _client_for, http = relayer
    stranger = Account.create()
    client = SessionClient(
        make_key(stranger, chain.now),
        [("http://a", relayer_account.address), ("http://b", relayer_account.address)],
        http_factory=lambda _url: http,
    )

    with pytest.raises(RequestRefusedError) as refused:
        client.predict(1, INPUTS)
    assert refused.value.code == "no_licence"


def test_session_client__every_relayer_down__relayer_error_lists_them() -> None:
    api_key = make_key(Account.create(), 2_000_000_000)

    client = SessionClient(api_key, ["http://127.0.0.1:9"], connect_timeout_s=0.5)

    with pytest.raises(RelayerError, match="no relayer answered"):
        client.predict(1, INPUTS)
