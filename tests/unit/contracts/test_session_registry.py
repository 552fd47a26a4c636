"""SessionRegistry: holders revoke one session by hash, or all of theirs by bumping a nonce.

Tests call the Python library (``daimm.market.sessions``) where a user would and the raw contract
where an attacker would.
"""

from __future__ import annotations

import ape
import pytest
from eth_account import Account
from tests.utils.chain import ZERO_ADDRESS, only

from daimm import eip712
from daimm.errors import PreflightError
from daimm.market.sessions import Sessions
from daimm.sessions import new_session, parse_api_key, session_hash

KEY = Account.from_key(b"\x42" * 32)


@pytest.fixture
def sessions(session_registry, chain) -> Sessions:
    return Sessions(session_registry, chain_id=chain.chain_id)


def make_session(sessions: Sessions, holder, **changes) -> eip712.Session:
    args = dict(model_id=1, nonce=sessions.nonce_of(holder.address), chain_id=sessions.chain_id,
                registry=sessions.address)  # fmt: skip
    args.update(changes)
    return new_session(holder.address, KEY.address, **args)


# ------------------------------------------------------------------ digest and domain
def test_session_digest__equals_the_python_digest(sessions, renter):
    session = make_session(sessions, renter, relayer="0x" + "ab" * 20, spend_cap=10**18,
                           max_calls=7)  # fmt: skip

    assert sessions.session_digest(session) == eip712.session_digest(session)


def test_eip712_domain__names_the_sessions_domain(session_registry, chain):
    domain = session_registry.eip712Domain()

    assert (domain[1], domain[2], domain[3], domain[4]) == (
        "daimm Sessions", "1", chain.chain_id, session_registry.address
    )  # fmt: skip


# ------------------------------------------------------------------ revoke
def test_revoke__holder_revokes_one_session__event_and_views(sessions, session_registry, renter):
    session = make_session(sessions, renter)
    other = make_session(sessions, renter, model_id=2)
    digest = session_hash(session)
    assert sessions.is_live(session) is True

    revocation = sessions.revoke(digest, sender=renter)

    assert revocation.holder == renter.address
    assert revocation.session_hash == digest
    assert sessions.is_revoked(renter.address, digest) is True
    assert sessions.is_live(session) is False
    assert sessions.is_live(other) is True
    assert session_registry.sessionState(renter, digest) == (True, 0)


def test_revoke__by_someone_else__leaves_the_holders_session_live(
    sessions, session_registry, renter, stranger
):
    session = make_session(sessions, renter)
    digest = session_hash(session)

    tx = session_registry.revoke(digest, sender=stranger)

    assert only(tx, session_registry.SessionRevoked).holder == stranger.address
    assert sessions.is_revoked(renter.address, digest) is False
    assert sessions.is_live(session) is True


def test_revoke__twice__reverts_already_revoked(sessions, session_registry, renter):
    digest = session_hash(make_session(sessions, renter))
    session_registry.revoke(digest, sender=renter)

    with ape.reverts(session_registry.AlreadyRevoked, holder=renter.address, sessionHash=digest):
        session_registry.revoke(digest, sender=renter)


def test_plan_revoke__revoked_already__preflight_error_sends_nothing(sessions, renter, chain):
    digest = session_hash(make_session(sessions, renter))
    sessions.revoke(digest, sender=renter)
    nonce = renter.nonce

    with pytest.raises(PreflightError):
        sessions.revoke(digest, sender=renter)
    assert renter.nonce == nonce


# ------------------------------------------------------------------ revokeAll
def test_revoke_all__bumps_the_nonce__old_sessions_dead_new_ones_live(
    sessions, session_registry, renter, buyer
):
    old = make_session(sessions, renter)
    theirs = make_session(sessions, buyer)

    result = sessions.revoke_all(sender=renter)

    assert (result.holder, result.nonce) == (renter.address, 1)
    assert sessions.nonce_of(renter.address) == 1
    assert sessions.is_live(old) is False
    assert sessions.is_live(make_session(sessions, renter)) is True
    assert sessions.is_live(theirs) is True
    tx = session_registry.revokeAll(sender=renter)
    assert only(tx, session_registry.SessionsRevokedAll).nonce == 2


# ------------------------------------------------------------------ create (one signature)
def test_create__ape_account_signs__api_key_parses_and_is_live(sessions, renter):
    api_key = sessions.create(renter, model_id=3, max_calls=5)

    parsed = parse_api_key(api_key.encode())
    assert parsed.session.holder == renter.address
    assert parsed.session.model_id == 3
    assert parsed.session.relayer == ZERO_ADDRESS
    assert parsed.session.registry == sessions.address
    assert sessions.is_live(parsed.session) is True
