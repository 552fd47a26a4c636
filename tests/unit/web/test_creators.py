"""The publish page's server side (daimm.web.creators): the page itself, the card check, the
relayer list and the key envelopes, through FastAPI's test client over the web fixtures' catalog."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.web.conftest import make_client

from daimm.crypto import generate_private_key, public_key_of, wrap_key
from daimm.ipfs import LocalBlockstore, add_file

SAMPLES = Path(__file__).resolve().parents[3] / "src" / "daimm" / "samples"


def _card() -> dict[str, Any]:
    return dict(json.loads((SAMPLES / "breast_cancer.card.json").read_text()))


def test_publish_page__served__loads_the_creator_module_and_onnx_runtime_from_daimm(client):
    response = client.get("/publish")

    assert response.status_code == 200
    assert 'data-page="publish"' in response.text
    assert '<script defer src="/static/daimm-creator.js">' in response.text
    assert '<script defer src="/static/ort.wasm.min.js">' in response.text
    assert "https://" not in response.text.split("<main>")[1].split("</main>")[0]


def test_publish_page__with_a_model__is_a_new_version_of_it(client, site):
    response = client.get(f"/publish?model={site['cancer']}")

    assert f"New version of model #{site['cancer']}" in response.text
    assert f'{{"version_of": {site["cancer"]}}}' in response.text


def test_check_card__complete_card__ok_with_its_summary(client):
    response = client.post("/api/cards/check", json=_card())

    assert response.status_code == 200
    assert response.json()["summary"]["labels"] == ["malignant", "benign"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: c.pop("name"), "name"),
        (lambda c: c.pop("sample_input"), "sample_input"),
        (lambda c: c.update(labels=["FILL IN: class 0", "benign"]), "labels[0]"),
        (lambda c: c["inputs"][0].update(dtype="float33"), "inputs[0].dtype"),
    ],
    ids=["no-name", "no-sample", "placeholder", "bad-dtype"],
)
def test_check_card__missing_or_unfinished_field__422_naming_it(client, change, field):
    card = _card()
    change(card)

    response = client.post("/api/cards/check", json=card)

    assert response.status_code == 422
    assert response.json()["error"] == "bad_card"
    assert field in response.json()["detail"]


def test_relayers__none_registered__empty_list(client):
    assert client.get("/api/relayers").json() == {"relayers": []}


def test_envelope__in_the_store_of_daimm_web_store__served_verified(site, tmp_path):
    store = LocalBlockstore(tmp_path / "blocks")
    envelope = wrap_key(b"\x07" * 32, [public_key_of(generate_private_key())]).to_json()
    cid = str(add_file(io.BytesIO(envelope), store).cid)
    card_cid = str(add_file(io.BytesIO(json.dumps(_card()).encode()), store).cid)

    with make_client(site, store=str(tmp_path / "blocks")) as client:
        served = client.get(f"/api/envelopes/{cid}")
        not_envelope = client.get(f"/api/envelopes/{card_cid}")

    assert served.status_code == 200 and served.content == envelope
    assert not_envelope.status_code == 404 and not_envelope.json()["error"] == "unknown_envelope"


def test_envelope__not_stored__404(client):
    answer = client.get(
        "/api/envelopes/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    )

    assert answer.status_code == 404 and answer.json()["error"] == "unknown_envelope"
