"""The marketplace verbs through click's runner, against the local chain.

Each command connects to the network ape's test runner is connected to (``--network`` in ape's
syntax), reads the deployment from a deployments file, and signs with a test account
(``--account TEST::n``). Role accounts: TEST::0 deployer, 1 treasury, 2 arbiter, 3 creator,
4 renter, 5 buyer, 6-8 payees, 9 stranger (tests/conftest.py).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tests.utils.market_fixtures import *  # noqa: F403 - deployment, market, iris, keys...

from daimm.cli import cli
from daimm.cli.relayer_admin import approve_operator as relayer_approve_operator
from daimm.cli.relayer_admin import authorise as relayer_authorise
from daimm.cli.relayer_admin import register as relayer_register
from daimm.crypto import public_key_of
from daimm.deployments import DeploymentsFile
from daimm.ipfs import LocalBlockstore
from daimm.units import format_time

CREATOR, RENTER, BUYER, ARBITER, TREASURY, OPERATOR, STRANGER = (
    "TEST::3",
    "TEST::4",
    "TEST::5",
    "TEST::2",
    "TEST::1",
    "TEST::6",
    "TEST::9",
)
AIMT = 10**18


@pytest.fixture
def network(chain):
    provider = chain.provider
    return f"{provider.network.ecosystem.name}:{provider.network.name}:{provider.name}"


@pytest.fixture
def run(network, deployments_path, tmp_path):
    """Invoke a daimm command; returns click's Result. ``command`` may be a click command object
    (for the relayer admin verbs) or None for the `daimm` group."""

    def invoke(*args, account=None, command=None, deployments=None, input=None):
        argv = [*args, "--network", network, "--deployments", str(deployments or deployments_path)]
        if account is not None:
            argv += ["--account", account]
        env = {"DAIMM_STORE": str(tmp_path / "blocks")}  # the embedded store, per test
        return CliRunner().invoke(command or cli, argv, input=input, env=env)

    return invoke


def _ok(result):
    assert result.exit_code == 0, result.output
    return result.output


def _error(result):
    """The one error line; fails on a traceback or several error lines."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _json(output):
    return json.loads(output[output.index("{") :])


@pytest.fixture
def publish(run, write_meta, creator_key):
    """Run `daimm model publish MODEL --meta DOCUMENT --key <creator key> --yes [EXTRA...]` as the
    creator; returns click's Result."""

    def invoke(model, document, *extra):
        return run(
            "model",
            "publish",
            str(model),
            "--meta",
            str(write_meta(document)),
            "--key",
            str(creator_key[1]),
            "--yes",
            *extra,
            account=CREATOR,
        )

    return invoke


@pytest.fixture
def published(publish, iris):
    """A model published through the CLI by the creator; returns its id."""
    path, document = iris
    return _json(_ok(publish(path, document, "--json")))["model_id"]


@pytest.fixture
def offered(run, published):
    _ok(
        run(
            "offer",
            "set",
            str(published),
            "--currency",
            "AIMT",
            "--rent",
            "2 AIMT",
            "--period",
            "1d",
            "--perpetual",
            "50 AIMT",
            "--per-call",
            "0.01 AIMT",
            "--yes",
            account=CREATOR,
        )
    )
    return published


# ------------------------------------------------------------------ model
def test_modelPublish_validatesEncryptsStoresAndMints(publish, iris, market):
    path, document = iris

    result = publish(path, document, "--royalty-bps", "500")

    out = _ok(result)
    assert "validated iris.onnx" in out
    assert "Cost: gas ~" in out
    model_id = int(out.split("Published model ")[1].split()[0])
    model = market.models.model(model_id)
    assert model.owner == market.models.owner_of(model_id)
    assert model.latest.weights_cid in out


def test_modelPublish__badMetadata__oneErrorLineAndNothingMinted(publish, iris, market):
    path, document = iris
    count = market.models.count()

    line = _error(publish(path, {**document, "name": ""}))

    assert line == "Error: card field 'name': '' should be non-empty"
    assert market.models.count() == count


def test_modelPublish__modelFailsValidation__namesTheMismatch(publish, iris, market):
    path, document = iris
    wrong = {**document, "inputs": [{"name": "input", "dtype": "float64", "shape": [None, 4]}]}
    count = market.models.count()

    line = _error(publish(path, wrong))

    assert line == ("Error: input 'input' is tensor(float) in the model but float64 in the card")
    assert market.models.count() == count


def test_modelPublish__notAnOnnxFile__saysItDoesNotLoad(publish, iris, tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"\x00garbage")

    line = _error(publish(bogus, iris[1]))

    assert line.startswith("Error: not an ONNX model")


def test_model_publish__rent_buy_per_call_and_authorise__offered_and_authorised_in_one_go(
    publish, iris, market, cli_relayer, relayer_key
):
    path, document = iris

    out = _ok(
        publish(
            path, document, "--rent", "2 AIMT", "--period", "1h", "--max-periods", "720",
            "--buy", "100 AIMT", "--per-call", "0.1 AIMT", "--authorise", cli_relayer.address,
        )
    )  # fmt: skip

    model_id = int(out.split("Published model ")[1].split()[0])
    assert "About to send 3 transactions:" in out
    assert f"authorise relayer {cli_relayer.address} for model {model_id}" in out
    assert "2 AIMT per 1 h (1-720), 100 AIMT perpetual, 0.1 AIMT a call" in out
    offer = market.escrow.offer(model_id)
    assert (offer.price_per_period, offer.period_seconds, offer.max_periods) == (
        2 * AIMT, 3600, 720,
    )  # fmt: skip
    assert (offer.perpetual_price, offer.price_per_call, offer.active) == (
        100 * AIMT, AIMT // 10, True,
    )  # fmt: skip
    assert market.relayers.is_authorised(model_id, cli_relayer)


def test_model_publish__json__names_the_model_its_cids_and_its_relayers(
    publish, iris, cli_relayer, market
):
    path, document = iris

    result = _json(_ok(publish(path, document, "--authorise", cli_relayer.address, "--json")))

    assert result["weights_cid"] == market.models.model(result["model_id"]).latest.weights_cid
    assert result["offer"] is None
    assert [a["relayer"] for a in result["authorisations"]] == [cli_relayer.address]


@pytest.mark.parametrize(
    ("relayer", "message"),
    [
        ("0x1234", "Error: relayer '0x1234' is not an Ethereum address"),
        (
            "0x000000000000000000000000000000000000dEaD",
            "Error: relayer 0x000000000000000000000000000000000000dEaD is not registered",
        ),
    ],
)
def test_model_publish__bad_or_unregistered_relayer__one_error_line_nothing_stored_or_minted(
    publish, iris, market, tmp_path, relayer, message
):
    path, document = iris
    count = market.models.count()

    line = _error(publish(path, document, "--rent", "1 AIMT", "--authorise", relayer))

    assert line.startswith(message)
    assert market.models.count() == count
    blocks = tmp_path / "blocks"
    assert not blocks.exists() or LocalBlockstore(blocks).count() == 0


def test_offer_set__buy_is_another_name_for_perpetual(run, published, market):
    _ok(run("offer", "set", str(published), "--buy", "7 AIMT", "--yes", account=CREATOR))

    assert market.escrow.offer(published).perpetual_price == 7 * AIMT


def test_modelVersion_thenShow(run, published, iris, write_meta, creator_key):
    path, document = iris
    _ok(
        run(
            "model",
            "version",
            str(published),
            str(path),
            "--meta",
            str(write_meta(document)),
            "--key",
            str(creator_key[1]),
            "--yes",
            account=CREATOR,
        )
    )

    shown = _json(_ok(run("model", "show", str(published), "--json")))

    assert shown["versions"] == 2
    assert shown["offer_active"] is False


# ------------------------------------------------------------------ offers and splits
def test_offerSet_thenShow_inHumanUnits(run, offered, market):
    out = _ok(run("offer", "show", str(offered)))

    assert "2 AIMT" in out and "50 AIMT" in out and "0.01 AIMT" in out
    offer = market.escrow.offer(offered)
    assert (offer.price_per_period, offer.period_seconds, offer.price_per_call) == (
        2 * AIMT,
        86400,
        AIMT // 100,
    )


def test_offerSet__notOwner__oneErrorLine(run, published):
    line = _error(run("offer", "set", str(published), "--rent", "1 AIMT", "--yes", account=RENTER))

    assert "does not own model" in line


def test_splitSet_recordsThePayees(run, offered, payees, market):
    result = run(
        "split",
        "set",
        str(offered),
        "--payee",
        f"{payees[0].address}:7000",
        "--payee",
        f"{payees[1].address}:3000",
        "--yes",
        "--json",
        account=CREATOR,
    )

    split = _json(_ok(result))
    assert split["payees"] == [payees[0].address, payees[1].address]
    assert split["bps"] == [7000, 3000]


def test_splitSet__sharesNot10000__oneErrorLine(run, offered, payees):
    line = _error(
        run(
            "split",
            "set",
            str(offered),
            "--payee",
            f"{payees[0].address}:7000",
            "--yes",
            account=CREATOR,
        )
    )

    assert line == "Error: shares must be positive and sum to 10000 bps, got 7000"


# ------------------------------------------------------------------ rent, buy
def test_rent_printsTheCostThenTheRental(run, offered, market, renter):
    out = _ok(run("rent", str(offered), "--periods", "2", "--yes", account=RENTER))

    assert "Cost: pays 4 AIMT + gas ~" in out
    assert "Rented model" in out and "4 AIMT" in out
    assert market.licences.has_access(offered, renter)


def test_rent__withoutYes__asksAndSendsNothingOnNo(run, offered, market, renter):
    result = run("rent", str(offered), input="n\n", account=RENTER)

    assert result.exit_code == 1
    assert "Send? [y/N]" in result.output
    assert not market.licences.has_access(offered, renter)


def test_rent__priceAboveMax__oneErrorLine(run, offered):
    line = _error(run("rent", str(offered), "--max-price", "1 AIMT", "--yes", account=RENTER))

    assert line == (
        "Error: the price is 2 AIMT, above your maximum of 1 AIMT: raise --max-price if you"
        " accept it"
    )


def test_rent__insufficientBalance__oneErrorLine(run, offered, stranger):
    line = _error(run("rent", str(offered), "--approve", "--yes", account=STRANGER))

    assert line == (f"Error: {stranger.address} holds 0 AIMT but needs 2 AIMT: get 2 AIMT more")


def test_rent__noAllowance__saysHowToApprove(run, offered, token, treasury, stranger):
    token.transfer(stranger, 10 * AIMT, sender=treasury)

    line = _error(run("rent", str(offered), "--yes", account=STRANGER))

    assert 'daimm token approve "2 AIMT" --spender escrow' in line
    assert "or pass --approve" in line


def test_rent__noDeploymentForTheNetwork__saysHowToDeploy(run, offered, network, tmp_path):
    empty = tmp_path / "none.json"
    DeploymentsFile(empty)  # the file does not exist: no network has a deployment

    line = _error(run("rent", str(offered), "--yes", account=RENTER, deployments=empty))

    assert f"no daimm deployment for network {network}" in line
    assert f"ape run deploy --network {network}" in line


def test_rent__deploymentOfAnotherChain__refusesIt(run, offered, network, deployment, tmp_path):
    from dataclasses import replace

    other = tmp_path / "other.json"
    DeploymentsFile(other).put(replace(deployment, chain_id=deployment.chain_id + 1))

    line = _error(run("rent", str(offered), "--yes", account=RENTER, deployments=other))

    assert "but the connected chain is" in line


def test_rent__unknownNetwork__isAUsageError(offered, deployments_path):
    result = CliRunner().invoke(
        cli,
        [
            "rent",
            str(offered),
            "--network",
            "ethereum:nowhere",
            "--yes",
            "--deployments",
            str(deployments_path),
            "--account",
            RENTER,
        ],
    )

    assert result.exit_code == 2
    assert "nowhere" in result.output


def test_buy_mintsAPerpetualLicence(run, offered, market, buyer):
    out = _ok(run("buy", str(offered), "--max-price", "50 AIMT", "--yes", "--json", account=BUYER))

    purchase = _json(out)
    assert purchase["price"] == 50 * AIMT
    assert market.licences.licence(purchase["licence_id"]).holder == buyer.address


# ------------------------------------------------------------------ reviews, disputes, withdrawals
def test_review__noLicence__oneErrorLine(run, offered, market, renter):
    rental = market.escrow.rent(offered, 1, sender=renter)

    line = _error(run("review", str(rental.licence_id), "--rating", "5", "--yes", account=STRANGER))

    assert "does not hold licence" in line


def test_review_storesTheCommentAndRates(run, offered, market, renter):
    rental = market.escrow.rent(offered, 1, sender=renter)

    out = _ok(
        run(
            "review",
            str(rental.licence_id),
            "--rating",
            "4",
            "--comment",
            "Works well",
            "--yes",
            "--json",
            account=RENTER,
        )
    )

    review = _json(out)
    assert review["rating"] == 4
    assert review["comment_cid"].startswith("Qm")
    assert market.reviews.rating_of(offered).count == 1


def test_disputeOpenThenResolveSplit(run, offered, market, renter):
    rental = market.escrow.rent(offered, 1, sender=renter)

    opened = _json(
        _ok(run("dispute", "open", str(rental.licence_id), "--yes", "--json", account=RENTER))
    )
    resolved = _json(
        _ok(
            run(
                "dispute",
                "resolve",
                str(opened["dispute_id"]),
                "--split",
                "5000",
                "--yes",
                "--json",
                account=ARBITER,
            )
        )
    )

    assert resolved["resolution"] == "split"
    assert resolved["refunded"] == AIMT


def test_disputeOpen__afterTheWindow__showsTheCustomErrorByName(
    run, offered, market, renter, chain
):
    rental = market.escrow.rent(offered, 1, sender=renter)
    chain.pending_timestamp = rental.release_at + 1

    line = _error(run("dispute", "open", str(rental.licence_id), "--yes", account=RENTER))

    assert line == (
        f"Error: RentalEscrow reverted with DisputeWindowClosed(licenceId={rental.licence_id})"
    )


def test_disputeResolve__notArbiter__oneErrorLine(run, offered, market, renter):
    rental = market.escrow.rent(offered, 1, sender=renter)
    opened = market.escrow.open_dispute(rental.licence_id, sender=renter)

    line = _error(
        run("dispute", "resolve", str(opened.dispute_id), "--release", "--yes", account=RENTER)
    )

    assert "is not an arbiter" in line


def test_withdraw__beforeTheWindow__thenAfterIt(run, offered, market, renter, creator, chain):
    rental = market.escrow.rent(offered, 1, sender=renter)

    line = _error(run("withdraw", "--currency", "AIMT", "--yes", account=CREATOR))
    assert "nothing to withdraw in AIMT" in line
    assert f"released at {format_time(rental.release_at)}" in line

    chain.pending_timestamp = rental.release_at + 1
    out = _json(_ok(run("withdraw", "--currency", "AIMT", "--yes", "--json", account=CREATOR)))
    assert out["amount"] == rental.price - rental.price * market.escrow.fee_bps() // 10_000
    assert out["account"] == creator.address


# ------------------------------------------------------------------ tokens
def test_tokenApproveAndBalanceAndTransfer(run, market, stranger, treasury):
    _ok(run("token", "transfer", "12.5 AIMT", "--to", stranger.address, "--yes", account=TREASURY))
    _ok(run("token", "approve", "3 AIMT", "--spender", "credit", "--yes", account=STRANGER))

    balances = _json(_ok(run("token", "balance", stranger.address, "--json")))

    assert balances["AIMT"] == "12.5 AIMT"
    assert market.token.allowance(stranger, market.credit.address) == 3 * AIMT


def test_tokenApprove__unknownCurrency__oneErrorLine(run):
    line = _error(run("token", "approve", "3 DOGE", "--yes", account=STRANGER))

    assert "unknown currency 'DOGE'" in line


# ------------------------------------------------------------------ relayers and credit
@pytest.fixture
def cli_relayer(run, accounts, relayer_key):
    """accounts[7] registered as a relayer by the operator (TEST::6) through the CLI, after the
    relayer address approved that operator."""
    relayer = accounts[7]
    _ok(run(accounts[6].address, "--yes", account="TEST::7", command=relayer_approve_operator))
    _ok(
        run(
            "--x25519",
            str(public_key_of(relayer_key[0])),
            "--endpoint",
            "https://relay.example",
            "--relayer",
            relayer.address,
            "--yes",
            account=OPERATOR,
            command=relayer_register,
        )
    )
    return relayer


def test_relayerRegister__withoutConsent__saysHowToApprove(run, accounts, relayer_key):
    line = _error(
        run(
            "--x25519",
            str(public_key_of(relayer_key[0])),
            "--endpoint",
            "https://relay.example",
            "--relayer",
            accounts[8].address,
            "--yes",
            account=OPERATOR,
            command=relayer_register,
        )
    )

    assert "has not consented" in line
    assert f"daimm relayer approve-operator {accounts[6].address}" in line


def test_relayerRegisterThenAuthorise_wrapsTheKeyForTheRelayer(
    run, cli_relayer, offered, market, creator_key
):
    out = _ok(
        run(
            str(offered),
            cli_relayer.address,
            "--key",
            str(creator_key[1]),
            "--yes",
            account=CREATOR,
            command=relayer_authorise,
        )
    )

    assert f"Authorised relayer {cli_relayer.address} for model {offered}" in out
    assert market.relayers.is_authorised(offered, cli_relayer)


def test_relayerAuthorise__wrongCreatorKey__oneErrorLine(run, cli_relayer, offered, relayer_key):
    line = _error(
        run(
            str(offered),
            cli_relayer.address,
            "--key",
            str(relayer_key[1]),
            "--yes",
            account=CREATOR,
            command=relayer_authorise,
        )
    )

    assert "has no entry for public key" in line


def test_creditDepositThenReclaim(run, cli_relayer, offered, market, creator_key, renter, chain):
    _ok(
        run(
            str(offered),
            cli_relayer.address,
            "--key",
            str(creator_key[1]),
            "--yes",
            account=CREATOR,
            command=relayer_authorise,
        )
    )

    deposit = _json(
        _ok(
            run(
                "credit",
                "deposit",
                str(offered),
                "0.5 AIMT",
                "--relayer",
                cli_relayer.address,
                "--approve",
                "--yes",
                "--json",
                account=RENTER,
            )
        )
    )
    shown = _ok(
        run("credit", "show", str(offered), "--relayer", cli_relayer.address, account=RENTER)
    )
    early = _error(
        run(
            "credit",
            "reclaim",
            str(offered),
            "--relayer",
            cli_relayer.address,
            "--yes",
            account=RENTER,
        )
    )
    chain.pending_timestamp = deposit["expires_at"] + 1
    reclaimed = _json(
        _ok(
            run(
                "credit",
                "reclaim",
                str(offered),
                "--relayer",
                cli_relayer.address,
                "--yes",
                "--json",
                account=RENTER,
            )
        )
    )

    assert deposit["amount"] == AIMT // 2
    assert f"Credit of {renter.address} for model {offered}" in shown
    assert "0.5 AIMT" in shown and format_time(deposit["expires_at"]) in shown
    assert f"live until {format_time(deposit['expires_at'])} (in " in early
    assert reclaimed["amount"] == AIMT // 2


# ------------------------------------------------------------------ sessions (API keys)
def test_session_new_then_revoke__api_key_parses_then_is_revoked_on_chain(run, market, renter):
    from daimm.sessions import parse_api_key

    made = _json(_ok(run("session", "new", "1", "--ttl", "1h", "--max-calls", "5", "--json",
                         account=RENTER)))  # fmt: skip
    api_key = parse_api_key(made["api_key"])
    assert api_key.session.holder == renter.address
    assert (api_key.session.model_id, api_key.session.max_calls) == (1, 5)
    assert market.sessions.is_live(api_key.session) is True

    _ok(run("session", "revoke", made["api_key"], "--yes", account=RENTER))

    assert market.sessions.is_revoked(renter.address, api_key.hash) is True
    assert "revoked already" in _error(
        run("session", "revoke", made["session_hash"], "--yes", account=RENTER)
    )


def test_session_revoke_all__bumps_the_nonce(run, market, renter):
    _ok(run("session", "revoke-all", "--yes", account=RENTER))

    assert market.sessions.nonce_of(renter.address) == 1


def test_session_new__neither_model_nor_any_model__usage_error(run):
    result = run("session", "new", account=RENTER)

    assert result.exit_code == 2
    assert "--any-model" in result.output


def test_session_revoke__mangled_api_key__one_error_line(run):
    line = _error(run("session", "revoke", "daimm_sk_AAAA", "--yes", account=RENTER))

    assert "API key" in line


# ------------------------------------------------------------------ resales
def test_resale_list_then_buy__the_licence_changes_hands_at_the_listed_price(
    run, offered, market, buyer, renter
):
    bought = market.escrow.buy(offered, sender=buyer)
    licence = str(bought.licence_id)

    listed = _ok(
        run("resale", "list", licence, "--price", "40 AIMT", "--approve", "--yes", account=BUYER)
    )
    shown = _json(_ok(run("resale", "show", licence, "--json")))
    resold = _json(_ok(run("resale", "buy", licence, "--max-price", "40 AIMT", "--yes", "--json",
                           account=RENTER)))  # fmt: skip

    assert f"Listed licence {licence} for 40 AIMT" in listed
    assert (shown["seller"], shown["price"]) == (buyer.address, 40 * AIMT)
    assert resold["buyer"] == renter.address
    assert (resold["price"], resold["royalty"]) == (40 * AIMT, 0)  # published without royalty
    assert market.licences.holder(bought.licence_id) == renter.address
    assert market.escrow.listing(bought.licence_id) is None


def test_resale_list__escrow_not_approved__says_to_pass_approve(run, offered, market, buyer):
    bought = market.escrow.buy(offered, sender=buyer)

    line = _error(run("resale", "list", str(bought.licence_id), "--price", "40 AIMT", "--yes",
                      account=BUYER))  # fmt: skip

    assert "approve it first (--approve" in line
    assert market.escrow.listing(bought.licence_id) is None


def test_resale_buy__not_listed__one_error_line(run, offered, market, buyer):
    bought = market.escrow.buy(offered, sender=buyer)

    line = _error(run("resale", "buy", str(bought.licence_id), "--yes", account=RENTER))

    licence = bought.licence_id
    assert line == f"Error: licence {licence} is not for sale (`daimm resale show {licence}`)"
