"""The JSON API: the same filters as the pages, one error shape, the browser's config, and the
two pass-throughs (read-only RPC, registered relayers)."""

from __future__ import annotations

import json
import re
from importlib import resources

from tests.unit.web.conftest import make_client

from daimm import eip712


def test_api_models__filters_like_the_page(client, site):
    found = client.get("/api/models", params={"q": "reviews", "licence": "call"}).json()

    assert [m["model_id"] for m in found["models"]] == [site["sentiment"]]
    assert found["models"][0]["offer"]["price_per_call"] == str(10**17)
    assert found["models"][0]["offer"]["display"]["call"] == "0.1 AIMT"
    assert found["has_more"] is False


def test_api_models__malformed_query__is_422_with_a_message(client):
    answer = client.get("/api/models", params={"max_price": "5 FOO"})

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_query"
    assert "unknown currency 'FOO'" in answer.json()["detail"]


def test_api_model__detail_has_metadata_versions_and_sales(client, site):
    model = client.get(f"/api/models/{site['cancer']}").json()

    assert model["metadata"]["metrics"] == {"accuracy": 0.979}
    assert [v["version"] for v in model["versions"]] == [0]
    assert model["versions"][0]["weights_cid"] == model["weights_cid"]
    assert model["sales"]["rentals"] == 1


def test_api_model__unknown_id__is_404_json(client):
    answer = client.get("/api/models/999")

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_model"


def test_api_model__id_not_a_number__is_422_json(client):
    answer = client.get("/api/models/x")

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_query"


def test_api_dashboard__earnings_and_held_payments(client, site):
    board = client.get("/api/dashboard", params={"address": site["creator"]}).json()

    assert [e["net"] for e in board["earnings"]] == [str(585 * 10**16)]
    assert len(board["held"]) == 1
    assert board["held"][0]["amount"] == str(6 * 10**18)
    assert [r["total"] for r in board["rentals"]] == [1]


def test_api_config__abis_come_from_the_shipped_contract_types(client, site):
    config = client.get("/api/config").json()

    shipped = json.loads(
        resources.files("daimm.contracts").joinpath("RentalEscrow.json").read_text()
    )["abi"]
    assert config["abis"]["RentalEscrow"] == shipped
    assert config["chain_id"] == site["chain_id"]
    names = {e["name"] for e in config["errors"]}
    assert {"PriceAboveMax", "OfferInactive", "ERC20InsufficientBalance", "NotMatured"} <= names


def test_api_config__rpc_url_with_a_key__never_offered_to_pages(site):
    hosted = "https://user:KEY-1@rpc.example/v3/KEY-2?apikey=KEY-3"
    with make_client(site, rpc_url=hosted) as keyed:
        offered = keyed.get("/api/config").json()["rpc_url"]
    with make_client(site, rpc_url=hosted, public_rpc_url="https://public.example") as public:
        chosen = public.get("/api/config").json()["rpc_url"]
    with make_client(site, rpc_url="http://127.0.0.1:8545") as local:
        plain = local.get("/api/config").json()["rpc_url"]

    assert offered is None
    assert chosen == "https://public.example"
    assert plain == "http://127.0.0.1:8545"


def test_api_config__eip712_types_are_the_ones_the_cli_signs(client):
    config = client.get("/api/config").json()

    request = eip712.PredictRequest(1, b"\x00" * 32, 0, 0, 1, "0x" + "11" * 20)
    document = eip712.predict_request_typed_data(request, "0x" + "22" * 20)
    assert config["eip712"]["types"]["PredictRequest"] == document["types"]["PredictRequest"]
    assert config["eip712"]["domain"] == {
        "name": document["domain"]["name"],
        "version": document["domain"]["version"],
    }


def test_api_rpc__refuses_anything_but_reads(client):
    answer = client.post(
        "/api/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction", "params": []}
    )

    assert answer.status_code == 403
    assert answer.json()["error"] == "method_not_allowed"


def test_api_rpc__chain_down__is_502_not_an_answer(client):
    answer = client.post(
        "/api/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    )

    assert answer.status_code == 502
    assert answer.json()["error"] == "rpc_unavailable"


def test_api_health__reports_the_rpc_outage(client):
    health = client.get("/api/health").json()

    assert "not answering" in health["rpc"]


def test_api_relayer__unknown_relayer__is_404(client):
    answer = client.get("/api/relayers/0x" + "ab" * 20 + "/health")

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_relayer"


def test_openapi__documents_the_json_routes(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/api/models", "/api/models/{model_id}", "/api/config"} <= set(paths)
    assert "/" not in paths


def test_docs__served_offline__names_no_external_host_and_its_assets_load(client):
    page = client.get("/docs")
    assets = re.findall(r"""(?:src|href)="(/docs/assets/[^"]+)""", page.text)

    assert page.status_code == 200
    assert re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page.text) is None, page.text
    assert "cdn.jsdelivr.net" not in page.text
    assert len(assets) == 3  # script, style sheet, icon
    assert [client.get(a).status_code for a in assets] == [200, 200, 200]
    assert "/docs/openapi.json" in page.text
    assert (
        client.get("/docs/openapi.json").json()["paths"]
        == client.get("/openapi.json").json()["paths"]
    )
