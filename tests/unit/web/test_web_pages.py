"""The server-rendered pages: browse and search, the model card, the dashboard, and the error
pages every bad input gets instead of a traceback."""

from __future__ import annotations

import re
from typing import Any

from tests.unit.web.conftest import make_client


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-model-id="(\d+)"', html)]


def test_index__text_search__finds_the_model_by_its_description(client, site):
    page = client.get("/", params={"q": "wisconsin cancer"})

    assert page.status_code == 200
    assert _ids(page.text) == [site["cancer"]]
    assert "Breast cancer tumour classifier" in page.text
    assert "2 AIMT / h" in page.text


def test_index__filters__task_licence_price_and_rating(client, site):
    by_task = client.get("/", params={"task": "text-classification"})
    by_licence = client.get("/", params={"licence": "call"})
    rentable = client.get("/", params={"licence": "rental", "max_price": "2 AIMT"})
    too_cheap = client.get("/", params={"licence": "rental", "max_price": "1.5 AIMT"})
    rated = client.get("/", params={"min_rating": "4"})

    assert _ids(by_task.text) == [site["sentiment"]]
    assert _ids(by_licence.text) == [site["sentiment"]]
    assert _ids(rentable.text) == [site["cancer"]]
    assert _ids(too_cheap.text) == []
    assert 'id="no-results"' in too_cheap.text
    assert _ids(rated.text) == []


def test_index__sort_and_pagination__one_model_a_page(site):
    with make_client(site, page_size=1) as small:
        first = small.get("/", params={"sort": "name"})
        second = small.get("/", params={"sort": "name", "page": "2"})

    assert _ids(first.text) == [site["cancer"]]
    assert 'id="next-page"' in first.text
    assert "sort=name&amp;page=2" in first.text
    assert _ids(second.text) == [site["sentiment"]]
    assert 'id="next-page"' not in second.text


def test_model_page__is_a_model_card_with_versions_offer_and_relayers(client, site):
    page = client.get(f"/models/{site['cancer']}")

    assert page.status_code == 200
    text = page.text
    assert "Breast cancer tumour classifier" in text
    assert "accuracy" in text and "0.979" in text
    assert "Research use only." in text
    assert 'id="versions"' in text and "bafyweights" in text
    assert "2 AIMT / h" in text and "100 AIMT" in text
    assert "1 rental(s)" in text
    assert "1 version(s)" in text
    assert 'id="rent-button"' in text and 'id="buy-button"' in text
    assert "No relayer serves this model yet." in text


def test_model_page__weights_not_in_the_relayers_store__refuses_rent_and_buy_saying_why(
    site, tmp_path
):
    with make_client(site, store=str(tmp_path)) as client:  # an empty block store
        page = client.get(f"/models/{site['cancer']}")
        api = client.get(f"/api/models/{site['cancer']}").json()

    assert page.status_code == 200
    assert 'id="offer-unservable"' in page.text
    assert "Cannot be rented or bought:" in page.text
    assert "encrypted weights bafyweights" in page.text
    assert 'id="rent-button"' not in page.text and 'id="buy-button"' not in page.text
    assert "are not in the block store the relayers read" in api["unservable"]


def test_unservable_reason__metadata_not_fetched__names_the_cid_and_the_state():
    from daimm.web.data import unservable_reason

    for status, state in (("unavailable", "is unavailable"), ("pending", "not been fetched yet")):
        reason = unservable_reason({"metadata_status": status, "metadata_cid": "bafymeta"}, None)

        assert reason is not None and "metadata bafymeta" in reason and state in reason
    assert unservable_reason({"metadata_status": "ok", "weights_cid": "x"}, None) is None


def test_dashboard__shows_earnings_per_currency_and_a_rentals_chart(client, site):
    page = client.get("/dashboard", params={"address": site["creator"].lower()})

    assert page.status_code == 200
    # 3 hours at 2 AIMT: 6 AIMT paid, 2.5% fee (0.15 AIMT), 5.85 AIMT to the payees.
    assert "6 AIMT" in page.text and "0.15 AIMT" in page.text and "5.85 AIMT" in page.text
    assert "<svg" in page.text and "Rentals over time" in page.text
    assert 'id="withdraw-button"' in page.text


def test_dashboard__without_an_address__asks_for_a_wallet(client):
    page = client.get("/dashboard")

    assert page.status_code == 200
    assert 'id="dashboard-connect"' in page.text


def test_pages__rpc_down__show_the_chain_banner(client, site):
    page = client.get(f"/models/{site['cancer']}")

    assert "Chain unavailable:" in page.text
    assert "not answering" in page.text


def test_model_page__unknown_id__is_a_404_page(client):
    page = client.get("/models/999")

    assert page.status_code == 404
    assert "model 999 is not in the catalog" in page.text
    assert "Traceback" not in page.text


def test_model_page__id_not_a_number__is_a_422_page(client):
    page = client.get("/models/abc")

    assert page.status_code == 422
    assert "model_id" in page.text and "integer" in page.text


def test_index__malformed_query__is_a_422_page_naming_the_parameter(client):
    cases: dict[str, Any] = {
        "sort": ("bogus", "sort: 'bogus' is not one of"),
        "licence": ("lease", "licence: 'lease' is not one of"),
        "min_rating": ("9", "min_rating: 9 is not between 1 and 5"),
        "max_price": ("5", "max_price: amount '5' has no unit"),
        "page": ("0", "page: '0' is not a page number"),
    }
    for name, (value, message) in cases.items():
        page = client.get("/", params={name: value})

        assert page.status_code == 422, name
        assert message in page.text.replace("&#39;", "'"), name


def test_dashboard__malformed_address__is_a_422_page(client):
    page = client.get("/dashboard", params={"address": "0x12"})

    assert page.status_code == 422
    assert "is not 0x followed by 40 hex digits" in page.text


def test_unknown_path__is_a_404_page(client):
    page = client.get("/nothing/here")

    assert page.status_code == 404
    assert "no such page" in page.text
