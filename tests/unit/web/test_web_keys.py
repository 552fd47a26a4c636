"""The API-key page (``/keys``) and ``/api/sessions/config``, rendered by the server (the signing
happens in the browser: tests/e2e/test_web_sessions.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daimm.sessions import DEFAULT_MAX_CALLS, DEFAULT_TTL_S, MAX_TTL_S


def test_keys_page__model_given__prefilled_and_linked_from_the_nav(
    client: Any, site: dict[str, Any]
) -> None:
    page = client.get(f"/keys?model={site['cancer']}")
    model = client.get(f"/models/{site['cancer']}")  # no relayer here: linked from "Try it" only

    assert page.status_code == 200
    assert f'id="key-model" type="number" min="1" value="{site["cancer"]}"' in page.text
    for part in ('id="key-create"', 'id="key-relayer"', 'id="key-ttl"', 'id="key-max-calls"',
                 'id="key-list"', 'id="key-revoke-all"', 'data-page="keys"'):  # fmt: skip
        assert part in page.text
    assert 'href="/keys" id="nav-keys"' in page.text
    assert 'href="/keys" id="nav-keys"' in model.text
    assert 'id="keys-unsupported"' not in page.text


def test_keys_page__bad_model__an_empty_form_not_an_error(client: Any) -> None:
    page = client.get("/keys?model=0")

    assert page.status_code == 200
    assert 'id="key-model" type="number" min="1" value=""' in page.text


def test_sessions_config__the_registry_its_abi_and_the_defaults(client: Any, site: dict) -> None:
    answer = client.get("/api/sessions/config").json()

    deployments = json.loads(Path(site["deployments"]).read_text())
    (record,) = deployments.values()
    assert answer["registry"] == record["contracts"]["SessionRegistry"]
    names = {item["name"] for item in answer["abi"]}
    assert {"nonceOf", "revoke", "revokeAll", "sessionState", "AlreadyRevoked"} <= names
    assert answer["defaults"] == {
        "ttl_s": DEFAULT_TTL_S, "max_ttl_s": MAX_TTL_S, "max_calls": DEFAULT_MAX_CALLS,
    }  # fmt: skip
