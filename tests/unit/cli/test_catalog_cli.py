"""`daimm catalog`, `daimm search` and `daimm stats`, called the way a user calls them.

Commands run in-process through `daimm.cli.main` (the console entry point) against ape's local
chain, so errors are checked as a user sees them: one line on stderr, non-zero exit, no traceback.
The catalog fixtures (contracts, block store, publish, offers) come from tests/unit/catalog.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.utils import load_by_path

from daimm.cli import main

AIMT = 10**18
Run = Callable[..., tuple[int, str, str]]


_fixtures = load_by_path("tests/unit/catalog/conftest.py", "daimm_catalog_fixtures")
rival = _fixtures.rival
relayer = _fixtures.relayer
market = _fixtures.market
blockstore = _fixtures.blockstore
put_json = _fixtures.put_json
publish = _fixtures.publish
set_offer = _fixtures.set_offer


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def deployment_env(monkeypatch, tmp_path, chain, market, blockstore) -> dict[str, str]:
    """A deployments file for ape's local test network, and the storage location."""
    from daimm.deployments import provider_key

    network = provider_key(chain.provider)
    deployments = tmp_path / "deployments.json"
    record = {
        "chain_id": chain.chain_id,
        "block": market.start_block,
        "contracts": market.addresses,
        "currencies": {"AIMT": market.token.address},
    }
    deployments.write_text(json.dumps({network: record}))
    monkeypatch.setenv("DAIMM_NETWORK", network)
    monkeypatch.setenv("DAIMM_STORE", str(blockstore.root))
    monkeypatch.setenv("DAIMM_DEPLOYMENTS", str(deployments))
    monkeypatch.delenv("DAIMM_CATALOG_URL", raising=False)
    monkeypatch.delenv("DAIMM_KUBO_URL", raising=False)
    monkeypatch.delenv("DAIMM_GATEWAY_URL", raising=False)
    return {"network": network, "deployments": str(deployments)}


@pytest.fixture
def env(deployment_env, catalog_url, monkeypatch) -> dict[str, str]:
    """`deployment_env` and a fresh catalog of the backend under test (SQLite, then PostgreSQL)."""
    monkeypatch.setenv("DAIMM_CATALOG_URL", catalog_url)
    return {**deployment_env, "db": catalog_url}


@pytest.fixture
def listed(market, creator, renter, publish, set_offer, run, env, blockstore) -> dict[str, int]:
    """Two models, one rented and reviewed, then `daimm catalog sync`."""
    fraud = publish(
        creator,
        {"name": "Card fraud detector", "task": "tabular-classification", "tags": ["fraud"]},
    )
    set_offer(creator, fraud, rent=3, call=1)
    iris = publish(creator, {"name": "Iris", "task": "tabular-classification"})
    set_offer(creator, iris, rent=9)
    market.escrow.rent(fraud, 2, 6 * AIMT, sender=renter)
    market.reviews.review(int(market.licences.rentalOf(fraud, renter)), 5, "c", sender=renter)
    code, out, err = run("catalog", "sync")
    assert code == 0, err
    return {"fraud": fraud, "iris": iris}


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err
    assert fragment in err


def test_catalog_sync_reports_blocks_events_and_metadata(listed, run, env, blockstore):
    code, out, _ = run("catalog", "sync", "--json")

    report = json.loads(out)
    assert code == 0
    assert (report["events"], report["metadata"]) == (0, {"ok": 2})


def test_catalog_status_shows_the_checkpoint_and_counts(listed, run, env):
    code, out, _ = run("catalog", "status", "--json")

    status = json.loads(out)
    assert code == 0
    assert (status["models"], status["reviews"], status["metadata"]) == (2, 1, {"ok": 2})
    assert status["last_block"] > 0


def test_search_prints_a_table_of_matching_models(listed, run, env):
    code, out, _ = run("search", "fraud detection")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "TASK"]
    assert len(lines) == 2 and "Card fraud detector" in lines[1] and "3 AIMT/1h" in lines[1]


def test_search_with_the_issue_filters_returns_json(listed, run, env):
    code, out, _ = run(
        "search",
        "fraud detection",
        "--task",
        "tabular-classification",
        "--framework",
        "onnx",
        "--max-price",
        "5 AIMT",
        "--min-rating",
        "4",
        "--sort",
        "price",
        "--json",
    )

    [hit] = json.loads(out)
    assert code == 0
    assert (hit["model_id"], hit["offer"]["price_per_period"]) == (listed["fraud"], str(3 * AIMT))
    assert hit["rating"] == {"count": 1, "sum": 5, "average": 5.0}
    assert hit["creator_reputation"]["score"] == 3.5


def test_search_max_price_in_an_unknown_currency_is_one_line_error(listed, run, env):
    code, _, err = run("search", "--max-price", "5 DOGE")

    assert_one_line_error(code, err, "unknown currency 'DOGE'")


def test_search_rejects_a_rating_out_of_range(listed, run, env):
    code, _, err = run("search", "--min-rating", "7")

    assert code == 2
    assert "--min-rating" in err and "Traceback" not in err


def test_search_with_no_match_says_so(listed, run, env):
    code, out, _ = run("search", "speech recognition")

    assert (code, out.strip()) == (0, "No models match.")


def test_stats_prints_revenue_sales_and_ratings_and_draws_a_plot(listed, run, env, tmp_path):
    plot = tmp_path / "stats.png"

    code, out, _ = run("stats", "--model", str(listed["fraud"]), "--plot", str(plot))

    assert code == 0
    assert "Card fraud detector" in out
    assert "AIMT       6 AIMT" in out  # gross: 2 hours at 3 AIMT
    assert "Rentals 1 (+0 extensions)" in out and "Rating 5.00 from 1 review(s)" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_stats_json_has_amounts_in_the_smallest_unit(listed, run, env):
    code, out, _ = run("stats", "--model", str(listed["fraud"]), "--json")

    stats = json.loads(out)
    assert code == 0
    [revenue] = stats["revenue"]
    assert (revenue["gross"], revenue["fee"], revenue["net"]) == (
        str(6 * AIMT),
        str(6 * AIMT * 250 // 10_000),
        str(6 * AIMT - 6 * AIMT * 250 // 10_000),
    )


def test_stats_of_a_model_not_in_the_catalog_is_one_line_error(listed, run, env):
    code, _, err = run("stats", "--model", "42")

    assert_one_line_error(code, err, "model 42 is not in the catalog")


def test_catalog_sync_on_a_network_without_a_deployment_is_one_line_error(
    run, env, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAIMM_DEPLOYMENTS", str(tmp_path / "none.json"))

    code, _, err = run("catalog", "sync")

    assert_one_line_error(code, err, "no daimm deployment for network")


def test_catalog_sync_with_an_unreachable_rpc_url_is_one_line_error(run, env):
    code, _, err = run("catalog", "sync", "--rpc-url", "http://127.0.0.1:9")

    assert_one_line_error(code, err, "cannot read the chain id")


def test_every_catalog_command_has_help_with_an_example(run):
    for argv in (["catalog", "sync"], ["catalog", "status"], ["search"], ["stats"]):
        code, out, _ = run(*argv, "--help")
        assert code == 0
        assert "Example" in out, argv


def test_a_malformed_catalog_url_is_one_line_error(run):
    code, _, err = run("catalog", "status", "--db-url", "not a database")

    assert_one_line_error(code, err, "is not a database URL")


def test_an_unreachable_postgres_catalog_is_one_line_error(run):
    code, _, err = run("search", "fraud", "--db-url", "postgresql://daimm@127.0.0.1:9/catalog")

    assert_one_line_error(code, err, "cannot connect to the catalog database")
    assert "check --db-url" in err


def test_a_postgres_server_lost_mid_sync_is_one_line_error_and_the_next_sync_resumes(
    market, creator, publish, set_offer, run, deployment_env, monkeypatch
):
    from tests.utils.postgres import PostgresServer, PostgresUnavailable, postgres_bin

    from daimm.catalog.indexer import Indexer

    try:
        postgres_bin()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    for i in range(3):
        set_offer(creator, publish(creator, {"name": f"lost {i}"}), rent=1)
    fold = Indexer._fold
    with PostgresServer.running() as server:
        url = server.create_database("lost")
        folds = {"n": 0}

        def fold_then_crash(self: Indexer, *args: Any, **kwargs: Any) -> None:
            # NOTE: fault injection: the real server stops like a crash in the middle of a batch.
            folds["n"] += 1
            if folds["n"] == 3:
                server.stop(mode="immediate")
            fold(self, *args, **kwargs)

        monkeypatch.setattr(Indexer, "_fold", fold_then_crash)
        lost = run("catalog", "sync", "--db-url", url)
        down = run("catalog", "status", "--db-url", url)
        server.start()
        monkeypatch.setattr(Indexer, "_fold", fold)
        resumed = run("catalog", "sync", "--db-url", url, "--json")

    assert_one_line_error(lost[0], lost[2], "is unavailable")
    assert "resumes from its last checkpoint" in lost[2]
    assert_one_line_error(down[0], down[2], "cannot connect to the catalog database")
    assert resumed[0] == 0, resumed[2]
