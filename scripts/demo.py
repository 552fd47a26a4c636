"""`make demo` (`ape run demo --network ethereum:local:foundry`): the whole daimm story, for real.

On a fresh local chain (anvil, spawned by ape-foundry) and the embedded block store, with the real
contracts, library, relayer daemon and catalog:

 1. the marketplace is deployed;
 2. a creator trains a small model (scikit-learn, breast-cancer data set) and exports it to ONNX;
 3. a relayer registers; the creator publishes the model encrypted, with its model card, an offer
    priced in AIMT and the relayer authorised, in one library call
    (`daimm.market.provision.publish_model`, as `daimm model publish --rent ... --authorise` and
    `daimm up` do), and beside it the image and text classifiers daimm ships (`daimm.samples`:
    handwritten digits, review sentiment);
 4. the relayer starts serving;
 5. Alice searches the catalog and finds the model;
 6. rents it with AIMT and calls the relayer: its predictions match the plaintext model's;
 7. Bob pays per call (credit, signed vouchers; the relayer redeems them on chain);
 8. Alice reviews the model;
 9. Carol buys a perpetual licence and resells it to Dave through the escrow's resale verbs
    (`market.escrow.list_licence` and `buy_listed`); the creator's royalty is paid;
10. the seller looks at the catalog's statistics (`daimm stats`, the one CLI command shown);
11. the dispute window passes (anvil's clock is moved), Bob reclaims his unspent credit and the
    payees withdraw;
12. every party's AIMT balance is printed, checked to the wei against the prices, and shown to add
    up: what the users paid in is what the creator, the reseller and the treasury took out.

Set DAIMM_DEMO_RESULT=FILE to also write the outcome as JSON (tests/e2e/test_demo.py does),
DAIMM_DEMO_KEEP=1 to keep the working folder (block store, catalog, relayer log).
"""

# NOTE: no `from __future__ import annotations`: `ape run` executes this file through runpy,
# where dataclasses cannot resolve string annotations (its module is not in sys.modules).
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from daimm.market.provision import (
    SAMPLE_PERPETUAL_PRICE,
    SAMPLE_PRICE_PER_CALL,
    SAMPLE_RENT_PER_HOUR,
)

HOUR = 3600
DAY = 24 * HOUR
AIMT = 10**18
FEE_BPS = 250
ROYALTY_BPS = 500
DISPUTE_WINDOW = DAY
CREDIT_TIMEOUT = 2 * DAY
#: The offer of every model the demo publishes: the sample models' (`daimm up` uses it too).
RENT_PRICE = SAMPLE_RENT_PER_HOUR  # per hour
RENT_HOURS = 3
PERPETUAL_PRICE = SAMPLE_PERPETUAL_PRICE
CALL_PRICE = SAMPLE_PRICE_PER_CALL
CREDIT_DEPOSIT = 1 * AIMT
PAID_CALLS = 3
RESALE_PRICE = 80 * AIMT
#: The shipped samples (`daimm.samples`) published beside the trained model.
SHIPPED = {"digits": "handwritten digits, image in", "sentiment": "review sentiment, text in"}
FUNDS = {"alice": 50 * AIMT, "bob": 5 * AIMT, "carol": 200 * AIMT, "dave": 100 * AIMT}


# ------------------------------------------------------------------------------------ printing
def fmt(value: int, symbol: str = "AIMT", decimals: int = 18) -> str:
    """An integer amount in whole units, exact (``1.5 AIMT``)."""
    text = format(Decimal(value).scaleb(-decimals).normalize(), "f")
    return f"{text} {symbol}"


class Story:
    """Prints the demo's sections and remembers how long each took."""

    def __init__(self, echo: Callable[[str], None] = click.echo) -> None:
        self.echo = echo
        self.started = time.monotonic()
        self.section_started = self.started
        self.current = ""
        self.timings: dict[str, float] = {}

    def section(self, title: str) -> None:
        self._close()
        self.current = title
        self.section_started = time.monotonic()
        self.echo("")
        self.echo(click.style(f"━━ {title} " + "━" * max(3, 76 - len(title)), bold=True))

    def _close(self) -> None:
        if self.current:
            self.timings[self.current] = round(time.monotonic() - self.section_started, 2)

    def say(self, text: str = "") -> None:
        self.echo(f"   {text}" if text else "")

    def ok(self, text: str) -> None:
        self.echo("   " + click.style("✓ ", fg="green") + text)

    def table(
        self, headers: list[str], rows: list[list[str]], right: set[int] | None = None
    ) -> None:
        right = right or set()
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            parts = [
                str(c).rjust(w) if i in right else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return "   " + "  ".join(parts).rstrip()

        self.echo(click.style(line(headers), underline=True))
        for row in rows:
            self.echo(line(row))

    def finish(self) -> float:
        self._close()
        return round(time.monotonic() - self.started, 1)


# ------------------------------------------------------------------------------------ helpers
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_url_of(provider: Any) -> str:
    """The JSON-RPC HTTP URL of ape's connected provider (anvil)."""
    from daimm.stack import provider_http_url

    url = provider_http_url(provider)
    if url is None:
        raise RuntimeError(
            "the demo needs a chain with an HTTP endpoint for the relayer: run it with"
            " `ape run demo --network ethereum:local:foundry` (that is what `make demo` does)"
        )
    return url


@contextmanager
def relayer_daemon(config: Path, env: dict[str, str], log_file: Path, url: str) -> Iterator[Any]:
    """Run `daimm relayer serve --config CONFIG` as a subprocess until the block exits."""
    import httpx

    daimm = Path(sys.executable).with_name("daimm")
    command = (
        [str(daimm), "relayer", "serve", "--config", str(config)]
        if daimm.exists()
        else [
            sys.executable,
            "-c",
            "from daimm.cli import main; main()",
            "relayer",
            "serve",
            "--config",
            str(config),
        ]
    )
    with log_file.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own executable and arguments
            command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the relayer exited with status {process.returncode}; see {log_file}"
                    )
                try:
                    if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the relayer did not answer within 60 s; see {log_file}")
                time.sleep(0.2)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@dataclass
class Outcome:
    """What the demo proved, for tests/e2e/test_demo.py."""

    model_id: int = 0
    sample_models: dict[str, int] = field(default_factory=dict)
    predictions: int = 0
    predictions_match: bool = False
    max_probability_difference: float = -1.0
    paid_calls: int = 0
    search_found_model: bool = False
    royalty: int = 0
    balances: dict[str, dict[str, str]] = field(default_factory=dict)
    balances_match_expected: bool = False
    money_in: str = "0"
    money_out: str = "0"
    money_adds_up: bool = False
    relayer_stopped: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ the story
def _iter_file(cid: str, backend: Any, limit: int) -> bytes:
    """The first ``limit`` bytes of the UnixFS file ``cid`` (verified)."""
    from daimm.ipfs import CID, iter_file

    out = b""
    for piece in iter_file(CID.parse(cid), backend.get_block):
        out += piece
        if len(out) >= limit:
            break
    return out[:limit]


class Demo:
    """The story, one method per section; state shared through attributes.

    Args:
        story: Where sections are printed.
        workdir: A scratch folder (block store, catalog, relayer files).
    """

    def __init__(self, story: Story, workdir: Path) -> None:
        from ape import accounts, chain

        self.story = story
        self.workdir = workdir
        self.chain = chain
        self.outcome = Outcome()
        test_accounts = accounts.test_accounts
        self.deployer, self.treasury, self.arbiter, self.creator = test_accounts[0:4]
        self.alice, self.bob, self.carol, self.dave, self.relayer = test_accounts[4:9]
        self.people = {
            "creator": self.creator,
            "alice": self.alice,
            "bob": self.bob,
            "carol": self.carol,
            "dave": self.dave,
            "relayer": self.relayer,
            "treasury": self.treasury,
        }

    def run(self) -> Outcome:
        """Every section in order; the relayer runs from section 4 to the end."""
        self.deploy()
        self.train()
        self.publish()
        with self.serve_relayer() as process:
            self.story.ok(f"`daimm relayer serve` running as pid {process.pid} (log: relayer.log)")
            self.search()
            self.rent_and_predict()
            self.pay_per_use()
            self.review()
            self.resell()
            self.seller_stats()
            self.time_passes()
            self.balances()
        self.outcome.relayer_stopped = process.poll() is not None
        return self.outcome

    # ------------------------------------------------------------------ 1
    def deploy(self) -> None:
        from ape import project

        from daimm.market.marketplace import Marketplace
        from daimm.market.wiring import DeployConfig, deploy_marketplace

        self.story.section("1. Deploy the marketplace on a local chain")
        chain = self.chain
        self.rpc_url = rpc_url_of(chain.provider)
        config = DeployConfig(
            fee_bps=FEE_BPS,
            treasury=self.treasury.address,
            arbiter=self.arbiter.address,
            dispute_window=DISPUTE_WINDOW,
            credit_timeout=CREDIT_TIMEOUT,
        )
        self.deployments_file = self.workdir / "deployments.json"
        # The path `ape run deploy` takes: deploy, verify the wiring, record the deployment.
        self.deployment = deploy_marketplace(
            project, self.deployer, config, path=self.deployments_file, force=True
        )
        self.network = self.deployment.network
        self.market = Marketplace(self.deployment)
        self.aimt = self.market.token.address
        self.story.say(f"chain {chain.chain_id} at {self.rpc_url} (anvil, spawned by ape-foundry)")
        for name, address in self.deployment.contracts.items():
            self.story.say(f"{name:<16} {address}")
        self.story.say(
            f"platform fee {FEE_BPS / 100:g}% to the treasury; payments held"
            f" {DISPUTE_WINDOW // HOUR} h for disputes; the AIMT supply starts at the treasury"
        )
        for name, amount in FUNDS.items():
            self.market.token.transfer(self.people[name], amount, sender=self.treasury)
        self.story.say(
            "the treasury funds the users: "
            + ", ".join(f"{name} {fmt(amount)}" for name, amount in FUNDS.items())
        )
        self.before = self.aimt_balances()

    def aimt_balances(self) -> dict[str, int]:
        """AIMT of every party and of both escrows, in the smallest unit."""
        token = self.market.token
        out = {name: token.balance_of(account) for name, account in self.people.items()}
        out["RentalEscrow"] = token.balance_of(self.market.escrow.address)
        out["CreditEscrow"] = token.balance_of(self.market.credit.address)
        return out

    # ------------------------------------------------------------------ 2
    def train(self) -> None:
        self.story.section("2. A creator trains a model")
        from daimm.samples.build import train_sample_model

        sample = train_sample_model(self.workdir)
        self.model_path, self.x_test, self.y_test = sample.path, sample.x_test, sample.y_test
        accuracy, self.document = sample.accuracy, sample.metadata
        self.story.say(
            "scikit-learn logistic regression on the breast-cancer data set that ships with it"
            f" ({self.x_test.shape[1]} features, {len(self.y_test)} held-out rows)"
        )
        self.story.say(
            f"held-out accuracy {accuracy:.3f}; exported with skl2onnx to {self.model_path.name}"
            f" ({self.model_path.stat().st_size} bytes)"
        )

    # ------------------------------------------------------------------ 3
    def publish(self) -> None:
        from daimm.crypto import generate_private_key, save_private_key
        from daimm.ipfs import LocalBlockstore
        from daimm.market.provision import ensure_relayer, publish_model, sample_offer
        from daimm.market.publishing import parse_metadata
        from daimm.samples import shipped_samples

        self.story.section("3. A relayer registers; the creator publishes the model for it")
        self.blockstore = LocalBlockstore(self.workdir / "blocks")
        self.creator_key = generate_private_key()
        save_private_key(self.workdir / "creator.x25519", self.creator_key)
        self.relayer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.relayer_port}"
        ensure_relayer(self.market, self.relayer, self.endpoint, self.workdir / "relayer.x25519")
        say = self.story.say
        say(f"relayer {self.relayer.address} registered at {self.endpoint} with its X25519 key")
        offer = sample_offer(self.aimt)

        def provision(path: Path, card: dict[str, Any]) -> Any:
            # One call: validate, encrypt, store, mint, authorise the relayer, then offer.
            return publish_model(
                self.market,
                path,
                parse_metadata(card),
                backend=self.blockstore,
                creator_key=self.creator_key,
                sender=self.creator,
                royalty_bps=ROYALTY_BPS,
                offer=offer,
                relayers=[self.relayer.address],
            )

        model = provision(self.model_path, self.document)
        self.model_id = self.outcome.model_id = model.model_id
        # The image and text classifiers daimm ships, as they are (`daimm up` publishes them too).
        for sample in shipped_samples(("digits", "sentiment")):
            self.outcome.sample_models[sample.key] = provision(sample.path, sample.card).model_id
        head = _iter_file(model.weights_cid, self.blockstore, 8)
        say(
            f"validated (loads in ONNX Runtime, schema matches, sample runs); model id"
            f" {self.model_id}"
        )
        say(
            f"encrypted weights  {model.weights_cid} ({model.weights_size} bytes,"
            f" begins {head.hex()}, not ONNX)"
        )
        say(f"metadata           {model.metadata_cid}")
        say(f"creator's envelope {model.envelope_cid}")
        say(
            f"relayer's envelope {model.authorisations[0].envelope_cid} (the content key wrapped"
            " for its registered X25519 key; the relayer is authorised on chain)"
        )
        say(
            f"offer: {fmt(RENT_PRICE)} an hour (1-720 h), {fmt(PERPETUAL_PRICE)} perpetual,"
            f" {fmt(CALL_PRICE)} a call; {ROYALTY_BPS / 100:g}% royalty on licence resales;"
            " set last, once the relayer can serve it"
        )
        say(
            "beside it, the shipped samples, same offer and relayer: "
            + ", ".join(
                f"model {model_id} ({SHIPPED[key]})"
                for key, model_id in self.outcome.sample_models.items()
            )
        )

    # ------------------------------------------------------------------ 4
    @contextmanager
    def serve_relayer(self) -> Iterator[Any]:
        from daimm.relayer.settings import write_settings

        self.story.section("4. The relayer starts serving")
        config = write_settings(
            self.workdir / "relayer.toml",
            rpc_url=self.rpc_url,
            chain_id=self.chain.chain_id,
            deployments_file=self.deployments_file,
            network=self.network,
            x25519_key_file=self.workdir / "relayer.x25519",
            storage="local",
            storage_path=self.workdir / "blocks",
            host="127.0.0.1",
            port=self.relayer_port,
            db_path=self.workdir / "relayer.sqlite3",
            redeem_interval_s=2.0,
            max_workers=1,
        )
        key = self.relayer.private_key
        key_hex = key if isinstance(key, str) else "0x" + bytes(key).hex()
        with relayer_daemon(
            config,
            {"DAIMM_RELAYER_ACCOUNT_KEY": key_hex},
            self.workdir / "relayer.log",
            self.endpoint,
        ) as process:
            yield process

    # ------------------------------------------------------------------ 5
    def search(self) -> None:
        from daimm.catalog import (
            CatalogContracts,
            CatalogStore,
            ChainReader,
            Indexer,
            SearchQuery,
            SortKey,
            ipfs_fetcher,
            search,
        )

        self.story.section("5. Alice searches the catalog")
        self.catalog_url = f"sqlite:///{self.workdir / 'catalog.sqlite'}"
        self.catalog = CatalogStore(self.catalog_url)
        self.indexer = Indexer(
            self.catalog,
            ChainReader.from_url(self.rpc_url),
            CatalogContracts.from_deployment(self.deployment),
            ipfs_fetcher(self.blockstore),
        )
        report = self.indexer.sync()
        self.story.say(
            f"the indexer reads blocks {report.from_block}..{report.to_block}: {report.events}"
            f" events, {report.metadata_fetched} metadata document(s) fetched, verified by CID"
        )
        query = SearchQuery(
            text="breast cancer tumour",
            task="tabular-classification",
            framework="onnx",
            currency=self.aimt,
            max_price=5 * AIMT,
            sort=SortKey.PRICE,
        )
        hits = search(self.catalog, query)
        self.story.say(
            'search "breast cancer tumour" --task tabular-classification'
            ' --framework onnx --max-price "5 AIMT" --sort price'
        )
        for hit in hits:
            self.story.say(
                f"  #{hit.model_id} {hit.name} · {hit.task} · {fmt(hit.price_per_period)}/h ·"
                f" {fmt(hit.price_per_call)}/call · {len(hit.relayers)} relayer(s)"
            )
        found = [h for h in hits if h.model_id == self.model_id]
        self.outcome.search_found_model = bool(found)
        if not found:
            raise RuntimeError(f"the catalog search did not find model {self.model_id}")
        self.story.ok(f"found model {self.model_id}, served by {found[0].relayers[0]}")

    # ------------------------------------------------------------------ 6
    def rent_and_predict(self) -> None:
        import numpy as np
        import onnxruntime as ort

        from daimm.client import ApeAccountSigner, RelayerClient

        self.story.section("6. Alice rents it with AIMT and asks the relayer for predictions")
        self.rental = self.market.escrow.rent(
            self.model_id, RENT_HOURS, sender=self.alice, approve=True
        )
        self.story.say(
            f"rented for {RENT_HOURS} h: licence {self.rental.licence_id}; paid"
            f" {fmt(RENT_HOURS * RENT_PRICE)}, held in escrow for the dispute window"
        )
        client = RelayerClient(
            self.endpoint, ApeAccountSigner(self.alice), expected_relayer=self.relayer.address
        )
        try:
            answer = client.predict(self.model_id, {"input": self.x_test.tolist()})
        finally:
            client.close()
        session = ort.InferenceSession(
            self.model_path.read_bytes(), providers=["CPUExecutionProvider"]
        )
        plain_labels, plain_probs = session.run(["label", "probabilities"], {"input": self.x_test})
        labels = np.asarray(answer.outputs["label"])
        probs = np.asarray(answer.outputs["probabilities"], dtype=np.float32)
        diff = float(np.max(np.abs(probs - plain_probs)))
        self.outcome.predictions = len(labels)
        self.outcome.max_probability_difference = diff
        self.outcome.predictions_match = bool(np.array_equal(labels, plain_labels)) and diff <= 1e-6
        rows = [
            [
                str(i),
                NAMES[int(self.y_test[i])],
                f"{NAMES[int(plain_labels[i])]} ({plain_probs[i][1]:.6f})",
                f"{NAMES[int(labels[i])]} ({probs[i][1]:.6f})",
            ]
            for i in range(6)
        ]
        self.story.table(["row", "truth", "plaintext model (p benign)", "relayer (p benign)"], rows)
        self.story.say(
            f"each answer carries a receipt signed by the relayer, verified against"
            f" its registered address {self.relayer.address[:10]}…"
        )
        if not self.outcome.predictions_match:
            raise RuntimeError(
                f"the relayer's predictions differ from the plaintext model ({diff})"
            )
        self.story.ok(
            f"all {len(labels)} labels identical to the plaintext model's; largest probability"
            f" difference {diff:.1e}"
        )

    # ------------------------------------------------------------------ 7
    def pay_per_use(self) -> None:
        from daimm.client import ApeAccountSigner, RelayerClient

        self.story.section("7. Bob pays per call: credit, signed vouchers, redemption on chain")
        self.market.credit.deposit(
            self.model_id, self.relayer.address, CREDIT_DEPOSIT, sender=self.bob, approve=True
        )
        self.story.say(
            f"Bob (no licence) deposits {fmt(CREDIT_DEPOSIT)} of credit for model"
            f" {self.model_id} at this relayer"
        )
        client = RelayerClient(
            self.endpoint, ApeAccountSigner(self.bob), expected_relayer=self.relayer.address
        )
        spent = 0
        try:
            for i in range(PAID_CALLS):
                answer = client.predict(
                    self.model_id, {"input": self.x_test[i : i + 1].tolist()}, pay_per_use=True
                )
                spent += answer.charged
                label = NAMES[int(answer.outputs["label"][0])]
                self.story.say(
                    f"call {i + 1}: voucher for {fmt(spent)} in total, signed by Bob;"
                    f" answer {label}"
                )
        finally:
            client.close()
        self.redeemed = PAID_CALLS * CALL_PRICE
        deadline = time.monotonic() + 90
        channel = self.market.credit.channel
        while channel(self.bob, self.model_id, self.relayer.address).redeemed < self.redeemed:
            if time.monotonic() > deadline:
                raise RuntimeError("the relayer did not redeem Bob's vouchers within 90 s")
            time.sleep(0.5)
        self.outcome.paid_calls = PAID_CALLS
        self.story.ok(
            f"the relayer redeemed the latest voucher in one transaction: {fmt(self.redeemed)}"
            f" for {PAID_CALLS} calls, paid into escrow as the model's revenue"
        )

    # ------------------------------------------------------------------ 8
    def review(self) -> None:
        from daimm.ipfs import add_file

        self.story.section("8. Alice reviews the model")
        comment = b"Accurate on my validation set, and fast through the relayer."
        comment_cid = str(add_file(io.BytesIO(comment), self.blockstore).cid)
        self.market.reviews.review(self.rental.licence_id, 5, comment_cid, sender=self.alice)
        self.story.ok(f"5 stars with licence {self.rental.licence_id}; comment at {comment_cid}")

    # ------------------------------------------------------------------ 9
    def resell(self) -> None:
        self.story.section("9. A licence is resold; the creator's royalty is paid")
        escrow = self.market.escrow
        bought = escrow.buy(self.model_id, sender=self.carol, approve=True)
        self.story.say(
            f"Carol buys a perpetual licence ({bought.licence_id}) for {fmt(PERPETUAL_PRICE)}"
        )
        listing = escrow.list_licence(
            bought.licence_id, RESALE_PRICE, self.aimt, sender=self.carol, approve=True
        )
        self.story.say(f"Carol lets the escrow transfer it and lists it for {fmt(listing.price)}")
        resale = escrow.buy_listed(bought.licence_id, sender=self.dave, approve=True)
        self.outcome.royalty = resale.royalty
        fee = resale.price * FEE_BPS // 10_000
        holder = self.market.licences.holder(bought.licence_id)
        who = "Dave" if holder == self.dave.address else holder
        self.story.ok(
            f"Dave buys it: {fmt(resale.royalty)} royalty to the creator, {fmt(fee)} fee,"
            f" {fmt(resale.price - resale.royalty - fee)} to Carol; the licence is now {who}'s"
        )

    # ------------------------------------------------------------------ 10
    def seller_stats(self) -> None:
        from daimm.cli import main as daimm_main

        self.story.section("10. The seller's view, from the catalog")
        report = self.indexer.sync()
        self.story.say(f"catalog synced to block {report.to_block} (+{report.events} events)")
        self.story.say(f"$ daimm stats --model {self.model_id} --plot stats.png")
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            daimm_main(
                [
                    "stats",
                    "--model",
                    str(self.model_id),
                    "--plot",
                    str(self.workdir / "stats.png"),
                    "--db-url",
                    self.catalog_url,
                ]
            )
        for line in buffer.getvalue().splitlines():
            self.story.say("  " + line)
        if os.environ.get("DAIMM_DEMO_KEEP") != "1":
            self.story.say(
                "(the plot is removed with the working folder; DAIMM_DEMO_KEEP=1 keeps it)"
            )

    # ------------------------------------------------------------------ 11
    def time_passes(self) -> None:
        self.story.section("11. The dispute window passes; payees withdraw")
        jump = CREDIT_TIMEOUT + HOUR
        self.chain.mine(1, deltatime=jump)
        self.story.say(
            f"anvil's clock moves {jump // HOUR} h: the {DISPUTE_WINDOW // HOUR} h dispute window"
            f" and Bob's {CREDIT_TIMEOUT // HOUR} h credit channel are over"
        )
        reclaimed = self.market.credit.reclaim(self.model_id, self.relayer.address, sender=self.bob)
        self.story.say(f"Bob reclaims his unspent credit: {fmt(reclaimed.amount)}")
        for name in ("creator", "carol", "treasury"):
            withdrawal = self.market.escrow.withdraw(self.aimt, sender=self.people[name])
            settled = len(withdrawal.settlements)
            how = f"settles {settled} held batch(es) and withdraws" if settled else "withdraws"
            self.story.say(f"{name} {how} {fmt(withdrawal.amount)}")

    # ------------------------------------------------------------------ 12
    def balances(self) -> None:
        self.story.section("12. Every party's AIMT, to the wei")
        after = self.aimt_balances()
        before = self.before

        def fee(amount: int) -> int:
            return amount * FEE_BPS // 10_000

        rent = RENT_HOURS * RENT_PRICE
        royalty = RESALE_PRICE * ROYALTY_BPS // 10_000
        calls = self.redeemed
        expected = {
            "creator": (rent - fee(rent))
            + (PERPETUAL_PRICE - fee(PERPETUAL_PRICE))
            + royalty
            + (calls - fee(calls)),
            "alice": -rent,
            "bob": -calls,
            "carol": -PERPETUAL_PRICE + (RESALE_PRICE - royalty - fee(RESALE_PRICE)),
            "dave": -RESALE_PRICE,
            "relayer": 0,
            "treasury": fee(rent) + fee(PERPETUAL_PRICE) + fee(RESALE_PRICE) + fee(calls),
            "RentalEscrow": 0,
            "CreditEscrow": 0,
        }
        rows = []
        all_match = True
        for name, want in expected.items():
            change = after[name] - before[name]
            all_match &= change == want
            self.outcome.balances[name] = {
                "before": str(before[name]),
                "after": str(after[name]),
                "change": str(change),
                "expected": str(want),
            }
            rows.append(
                [
                    name,
                    fmt(before[name]),
                    fmt(after[name]),
                    fmt(change, ""),
                    "✓" if change == want else f"✗ priced {fmt(want)}",
                ]
            )
        self.story.table(["party", "before", "after", "change", "as priced"], rows, right={1, 2, 3})
        changes = [after[n] - before[n] for n in after]
        money_in = -sum(c for c in changes if c < 0)
        money_out = sum(c for c in changes if c > 0)
        self.outcome.money_in, self.outcome.money_out = str(money_in), str(money_out)
        self.outcome.money_adds_up = money_in == money_out
        self.outcome.balances_match_expected = all_match
        self.story.say("")
        self.story.say(f"paid in by Alice, Bob, Carol and Dave:          {money_in} wei")
        self.story.say(f"taken out by the creator, Carol and the treasury: {money_out} wei")
        if not (all_match and self.outcome.money_adds_up):
            raise RuntimeError("the balances do not add up (see the table)")
        self.story.ok(
            "money in = money out, to the wei, and both escrows are empty; every change is what"
            " the prices, the 2.5% fee and the 5% royalty say (ETH moved only as gas)"
        )


NAMES = {0: "malignant", 1: "benign"}


# ------------------------------------------------------------------------------------ entry
def main() -> None:
    """Entry point of `ape run demo`."""
    logging.getLogger("ape").setLevel(logging.WARNING)
    story = Story()
    keep = os.environ.get("DAIMM_DEMO_KEEP") == "1"
    workdir = Path(tempfile.mkdtemp(prefix="daimm-demo-"))
    story.echo(
        click.style("daimm demo: a decentralized AI model marketplace, end to end", bold=True)
    )
    story.echo(f"working folder {workdir}{' (kept)' if keep else ' (removed at the end)'}")
    failed: str | None = None
    demo: Demo | None = None
    try:
        demo = Demo(story, workdir)
        demo.run()
    except Exception as exc:  # noqa: BLE001 - the demo prints one line, never a traceback
        failed = f"{type(exc).__name__}: {exc}"
        (workdir / "demo-error.txt").write_text(traceback.format_exc())
        keep = True
    outcome = demo.outcome if demo is not None else Outcome()
    outcome.seconds = story.finish()
    outcome.timings = story.timings
    result_file = os.environ.get("DAIMM_DEMO_RESULT")
    if result_file:
        data = dict(outcome.__dict__)
        data["error"] = failed
        Path(result_file).write_text(json.dumps(data, indent=2))
    story.echo("")
    if failed:
        story.echo(click.style(f"Demo stopped in “{story.current}”: {failed}", fg="red"), err=True)
        story.echo(f"(details in {workdir / 'demo-error.txt'})", err=True)
        sys.exit(1)
    story.echo(
        click.style(
            f"Done in {outcome.seconds:.0f} s; relayer stopped, nothing left running.", bold=True
        )
    )
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
