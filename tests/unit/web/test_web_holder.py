"""The licence holder's routes (daimm.web.holder): the "My licences" page, an address's licences
and credit channels from the catalog, and the ABIs the holder's pages call."""

from __future__ import annotations


def test_api_holder__renter__lists_the_rental_with_its_expiry(client, site):
    answer = client.get(f"/api/holders/{site['renter'].lower()}")

    assert answer.status_code == 200
    doc = answer.json()
    assert doc["address"] == site["renter"]
    [licence] = [x for x in doc["licences"] if x["model_id"] == site["cancer"]]
    assert licence["kind"] == "rental" and licence["model_name"].startswith("Breast cancer")
    assert isinstance(licence["expires"], int) and licence["expires"] > 0
    assert doc["channels"] == []


def test_api_holder__address_with_nothing__empty_lists(client, site):
    doc = client.get(f"/api/holders/{site['creator']}").json()
    assert (doc["licences"], doc["channels"]) == ([], [])


def test_api_holder__not_an_address__is_422(client):
    answer = client.get("/api/holders/0x1234")
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_query"


def test_me_page__renders_the_sections_and_the_nav_links_to_it(client):
    page = client.get("/me")

    assert page.status_code == 200
    for section in ("my-licences", "my-channels", "my-sessions", "my-receipts"):
        assert f'id="{section}"' in page.text
    assert 'data-page="licences"' in page.text
    assert 'href="/me"' in client.get("/").text


def test_api_abis__holder_contracts_served__others_refused(client):
    abi = client.get("/api/abis/ReviewRegistry").json()
    assert any(item.get("name") == "review" for item in abi)
    assert client.get("/api/abis/RentalEscrow").status_code == 404
