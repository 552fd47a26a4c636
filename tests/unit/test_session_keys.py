"""Session rules, the session token and the ``daimm_sk_`` API key (unit and property tests)."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from daimm import eip712
from daimm.eip712 import ZERO_ADDRESS, Session
from daimm.errors import ApiKeyError, SessionError, SignatureError, ValidationError
from daimm.sessions import (
    API_KEY_PREFIX,
    DEFAULT_TTL_S,
    ApiKey,
    check_session,
    decode_session_token,
    encode_session_token,
    new_session,
    parse_api_key,
    session_hash,
)

HOLDER = Account.from_key(b"\x11" * 32)
KEY = Account.from_key(b"\x22" * 32)
OTHER = Account.from_key(b"\x33" * 32)
RELAYER = "0x" + "ab" * 20
REGISTRY = "0x" + "5e" * 20
CHAIN_ID = 31337
NOW = 1_800_000_000


def make(**changes: object) -> Session:
    fields: dict[str, object] = dict(
        holder=HOLDER.address, key=KEY.address, model_id=1, relayer=ZERO_ADDRESS,
        expires_at=NOW + 3600, max_calls=10, spend_cap=0, nonce=0, chain_id=CHAIN_ID,
        registry=REGISTRY,
    )  # fmt: skip
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


def check(session: Session, **changes: object) -> None:
    args: dict[str, object] = dict(
        now=NOW, model_id=1, relayer=eip712._address("r", RELAYER), chain_id=CHAIN_ID,
        registry=eip712._address("r", REGISTRY),
    )  # fmt: skip
    args.update(changes)
    check_session(session, **args)  # type: ignore[arg-type]


def api_key(session: Session | None = None) -> ApiKey:
    session = session or make()
    return ApiKey(KEY.key, session, eip712.sign_session(session, HOLDER.key))


# ------------------------------------------------------------------ EIP-712
def test_sign_session__holder_key__recovers_holder() -> None:
    session = make()
    signature = eip712.sign_session(session, HOLDER.key)
    assert eip712.recover_session_signer(session, signature) == HOLDER.address
    eip712.verify_session(session, signature)


def test_verify_session__signed_by_the_session_key__raises() -> None:
    session = make()
    with pytest.raises(SignatureError):
        eip712.verify_session(session, eip712.sign_session(session, KEY.key))


def test_session_digest__any_field_changed__differs() -> None:
    base = session_hash(make())
    for change in (
        {"model_id": 2}, {"relayer": RELAYER}, {"expires_at": NOW + 1}, {"max_calls": 11},
        {"spend_cap": 1}, {"nonce": 1}, {"chain_id": 1}, {"key": OTHER.address},
        {"holder": OTHER.address}, {"registry": RELAYER},
    ):  # fmt: skip
        assert session_hash(make(**change)) != base, change


def test_session_typed_data__domain__names_the_session_registry() -> None:
    domain = eip712.session_typed_data(make())["domain"]
    assert domain["name"] == "daimm Sessions"
    assert domain["verifyingContract"] == eip712._address("r", REGISTRY)
    assert domain["chainId"] == CHAIN_ID


# ------------------------------------------------------------------ new_session
def test_new_session__defaults__one_model_24_hours_any_relayer() -> None:
    session = new_session(
        HOLDER.address, KEY.address, model_id=3, nonce=0, chain_id=CHAIN_ID, registry=REGISTRY,
        now=NOW,
    )  # fmt: skip
    assert (session.model_id, session.expires_at, session.relayer, session.spend_cap) == (
        3, NOW + DEFAULT_TTL_S, ZERO_ADDRESS, 0
    )  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"key": HOLDER.address}, "session_key_is_holder"),
        ({"max_calls": 0}, "session_no_calls"),
        ({"spend_cap": 10}, "session_spend_needs_relayer"),
        ({"ttl_s": 0}, "session_ttl"),
        ({"ttl_s": 31 * 24 * 3600}, "session_ttl"),
    ],
)
def test_new_session__rule_broken__refused_with_its_code(changes: dict, code: str) -> None:
    args = dict(model_id=1, nonce=0, chain_id=CHAIN_ID, registry=REGISTRY, now=NOW)
    key = changes.pop("key", KEY.address)
    args.update(changes)
    with pytest.raises(SessionError) as info:
        new_session(HOLDER.address, key, **args)  # type: ignore[arg-type]
    assert info.value.code == code


def test_new_session__model_zero__refused_use_none_for_any() -> None:
    with pytest.raises(ValidationError):
        new_session(HOLDER.address, KEY.address, model_id=0, nonce=0, chain_id=1, registry=REGISTRY)


def test_new_session__spend_cap_with_relayer__accepted() -> None:
    session = new_session(
        HOLDER.address, KEY.address, model_id=1, nonce=0, chain_id=CHAIN_ID, registry=REGISTRY,
        relayer=RELAYER, spend_cap=10**18,
    )  # fmt: skip
    assert session.spend_cap == 10**18


# ------------------------------------------------------------------ check_session
def test_check_session__within_bounds__passes() -> None:
    check(make())
    check(make(model_id=0), model_id=99)
    check(make(relayer=RELAYER))


@pytest.mark.parametrize(
    ("session_changes", "request_changes", "code"),
    [
        ({"expires_at": NOW}, {}, "session_expired"),
        ({"expires_at": NOW - 1}, {}, "session_expired"),
        ({"model_id": 2}, {}, "session_wrong_model"),
        ({"relayer": "0x" + "cd" * 20}, {}, "session_wrong_relayer"),
        ({"chain_id": 1}, {}, "session_wrong_domain"),
        ({"registry": "0x" + "77" * 20}, {}, "session_wrong_domain"),
        ({"key": HOLDER.address}, {}, "session_key_is_holder"),
        ({"spend_cap": 5}, {}, "session_spend_needs_relayer"),
        ({"max_calls": 0}, {}, "session_no_calls"),
    ],
)
def test_check_session__out_of_bounds__refused_with_its_code(
    session_changes: dict, request_changes: dict, code: str
) -> None:
    with pytest.raises(SessionError) as info:
        check(make(**session_changes), **request_changes)
    assert info.value.code == code


@settings(max_examples=200, deadline=None)
@given(
    expires_at=st.integers(0, 2**64 - 1),
    now=st.integers(0, 2**63),
    session_model=st.integers(0, 5),
    asked_model=st.integers(1, 5),
    any_relayer=st.booleans(),
)
def test_check_session__property__passes_exactly_within_expiry_and_scope(
    expires_at: int, now: int, session_model: int, asked_model: int, any_relayer: bool
) -> None:
    session = make(
        expires_at=expires_at, model_id=session_model,
        relayer=ZERO_ADDRESS if any_relayer else RELAYER,
    )  # fmt: skip
    allowed = now < expires_at and session_model in (0, asked_model)
    try:
        check(session, now=now, model_id=asked_model)
    except SessionError:
        assert not allowed
    else:
        assert allowed


# ------------------------------------------------------------------ the session token
sessions = st.builds(
    Session,
    holder=st.just(HOLDER.address),
    key=st.just(KEY.address),
    model_id=st.integers(0, 2**256 - 1),
    relayer=st.sampled_from([ZERO_ADDRESS, RELAYER]),
    expires_at=st.integers(0, 2**64 - 1),
    max_calls=st.integers(0, 2**64 - 1),
    spend_cap=st.integers(0, 2**128 - 1),
    nonce=st.integers(0, 2**256 - 1),
    chain_id=st.integers(0, 2**64 - 1),
    registry=st.just(REGISTRY),
)


@settings(max_examples=100, deadline=None)
@given(session=sessions, signature=st.binary(min_size=65, max_size=65))
def test_session_token__property__round_trips(session: Session, signature: bytes) -> None:
    assert decode_session_token(encode_session_token(session, signature)) == (session, signature)


@pytest.mark.parametrize("text", ["", "!!!", "AAAA", "A" * 334])
def test_decode_session_token__malformed__session_malformed(text: str) -> None:
    with pytest.raises(SessionError) as info:
        decode_session_token(text)
    assert info.value.code == "session_malformed"


# ------------------------------------------------------------------ API keys
def test_api_key__encode_then_parse__same_key() -> None:
    key = api_key()
    text = key.encode()
    assert text.startswith(API_KEY_PREFIX)
    assert parse_api_key(text) == key
    assert parse_api_key("  " + text + "\n") == key
    assert KEY.key.hex() not in repr(key)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parse_api_key__property__any_one_character_changed__refused(data: st.DataObject) -> None:
    text = api_key().encode()
    at = data.draw(st.integers(len(API_KEY_PREFIX), len(text) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= "
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != text[at]))
    mangled = text[:at] + new + text[at + 1 :]
    with pytest.raises(ApiKeyError):
        parse_api_key(mangled)


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: t.replace(API_KEY_PREFIX, "daimm_pk_"), "api_key_malformed"),
        (lambda t: t[:-10], "api_key_malformed"),
        (lambda t: t[:40] + "*" + t[41:], "api_key_malformed"),
        (lambda t: t[:40] + ("B" if t[40] != "B" else "C") + t[41:], "api_key_checksum"),
    ],
)
def test_parse_api_key__mangled__refused_with_its_code(mangle, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiKeyError) as info:
        parse_api_key(mangle(api_key().encode()))
    assert info.value.code == code


def _reencode(body: bytes) -> str:
    from daimm.sessions import _b64encode

    return API_KEY_PREFIX + _b64encode(body + eip712.keccak256(body)[:4])


def _body(key: ApiKey) -> bytes:
    from daimm.sessions import _b64decode

    return _b64decode(key.encode()[len(API_KEY_PREFIX) :])[:-4]


def test_parse_api_key__other_version__api_key_version() -> None:
    body = _body(api_key())
    with pytest.raises(ApiKeyError) as info:
        parse_api_key(_reencode(b"\x02" + body[1:]))
    assert info.value.code == "api_key_version"


def test_parse_api_key__private_key_not_the_sessions__api_key_mismatch() -> None:
    body = _body(api_key())
    with pytest.raises(ApiKeyError) as info:
        parse_api_key(_reencode(body[:1] + OTHER.key + body[33:]))
    assert info.value.code == "api_key_mismatch"


def test_parse_api_key__session_signed_by_the_key_itself__api_key_bad_signature() -> None:
    session = make()
    forged = ApiKey(KEY.key, session, eip712.sign_session(session, KEY.key))
    with pytest.raises(ApiKeyError) as info:
        parse_api_key(forged.encode())
    assert info.value.code == "api_key_bad_signature"
