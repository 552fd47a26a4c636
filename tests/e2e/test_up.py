"""`daimm up` end to end: the whole local stack as a newcomer starts it, used, then stopped.

`daimm up` runs as a subprocess on free ports with its own state folder, outside the checkout (so
it deploys from the contract types the package ships). It starts its own anvil, so this module
needs no particular ape network: it runs under `make test` on ape's in-process chain and never
touches that chain. A test account rents the seeded model through `daimm rent` (the market
library) and asks the relayer for predictions through the Python client; then SIGTERM (and, in a
second stack, SIGINT) must leave no process it started and no port it listened on.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.utils.relayer import free_port

from daimm.client import KeySigner, RelayerClient
from daimm.errors import RequestRefusedError
from daimm.stack import find_anvil

CREATOR = 3  # TEST::3, a funded user who publishes from a second terminal
RENTER = 5  # TEST::5, one of the user accounts `daimm up` funds with AIMT
STRANGER = 6  # TEST::6, funded but holding no licence
USER = 7  # TEST::7, rents the model published from a second terminal
READY = "daimm is up on chain"


@dataclass
class Up:
    """A running `daimm up` and what it printed."""

    process: subprocess.Popen[str]
    state: Path
    ports: list[int]
    lines: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def read_until(self, marker: str, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if marker in line:
                return
        pytest.fail(f"`daimm up` never printed {marker!r}; it printed:\n" + "".join(self.lines))

    def output(self) -> str:
        """Everything printed so far, once the process has ended."""
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return "".join(self.lines)


def _start_up(tmp: Path, *extra: str) -> Up:
    try:
        find_anvil()
    except Exception as exc:  # noqa: BLE001 - skip with the library's own message
        pytest.skip(str(exc))
    ports = [free_port() for _ in range(3)]
    state = tmp / "state"
    command = [
        sys.executable,
        "-c",
        "from daimm.cli import main; main()",
        "up",
        f"--state-dir={state}",
        f"--rpc-port={ports[0]}",
        f"--relayer-port={ports[1]}",
        f"--web-port={ports[2]}",
        *extra,
    ]
    process = subprocess.Popen(
        command,
        cwd=tmp,
        env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # signals come only from the test, as from a terminal
    )
    up = Up(process, state, ports)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            up._queue.put(line)
        up._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return up


def _started(up: Up) -> Up:
    up.read_until(READY)
    up.read_until("daimm search")  # the last line of what it prints
    up.info = json.loads((up.state / "stack.json").read_text())
    return up


def _stop(up: Up, signum: int) -> int:
    if up.process.poll() is None:
        up.process.send_signal(signum)
    try:
        return up.process.wait(timeout=120)
    finally:
        if up.process.poll() is None:
            os.killpg(up.process.pid, signal.SIGKILL)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _assert_nothing_left(up: Up) -> None:
    pids = up.info["pids"]
    assert set(pids) >= {"anvil", "relayer", "catalog", "web"}
    # Each daemon led its own process group; a group that still exists has a live member.
    assert [name for name, pid in pids.items() if _group_exists(pid)] == []
    assert [port for port in up.ports if _listening(port)] == []
    assert not (up.state / "stack.json").exists()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    up = _start_up(tmp_path_factory.mktemp("up"))
    try:
        yield _started(up)
    finally:
        _stop(up, signal.SIGTERM)


def _rent(up: Up, account: int) -> None:
    info = up.info
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from daimm.cli import main; main()",
            "rent",
            str(info["model_id"]),
            "--periods=1",
            "--approve",
            f"--account=TEST::{account}",
            f"--network={info['network']}",
            f"--deployments={info['deployments_file']}",
            "--yes",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _client(up: Up, account: int) -> RelayerClient:
    _, key = up.info["accounts"][account]
    return RelayerClient(
        up.info["relayer_url"], KeySigner(key), expected_relayer=up.info["relayer_address"]
    )


def _sample_input(up: Up) -> dict[str, Any]:
    return json.loads((up.state / "sample-input.json").read_text())


# ------------------------------------------------------------------------------------ the stack
def test_up_prints_the_urls_chain_id_and_the_dev_accounts_with_their_keys(stack: Up) -> None:
    text = "".join(stack.lines)
    info = stack.info

    assert info["chain_id"] == 1337
    assert f"RPC      {info['rpc_url']}  (chain id 1337)" in text
    assert info["relayer_url"] in text
    assert "TEST::0  0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in text
    assert "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" in text
    assert "MetaMask" in text
    assert [line for line in stack.lines if "[7/7]" in line] != []


def test_up_writes_its_deployment_and_key_files_into_the_state_folder(stack: Up) -> None:
    deployments = json.loads((stack.state / "deployments.json").read_text())

    assert deployments[stack.info["network_key"]]["chain_id"] == 1337
    assert set(deployments[stack.info["network_key"]]["contracts"]) >= {
        "RentalEscrow",
        "RelayerRegistry",
    }
    for key_file in ("relayer.x25519", "creator.x25519"):
        assert (stack.state / key_file).stat().st_mode & 0o777 == 0o600


def test_the_catalog_lists_the_seeded_model_with_its_relayer(stack: Up) -> None:
    from daimm.catalog import CatalogStore, SearchQuery, search

    hits = search(CatalogStore(stack.info["catalog_url"]), SearchQuery(text="breast cancer"))

    # The tabular sample and the provable one (the same data set, re-expressed for proofs).
    assert sorted(hit.model_id for hit in hits) == [
        stack.info["model_id"],
        stack.info["provable_model_id"],
    ]
    assert all(hit.relayers == (stack.info["relayer_address"],) for hit in hits)


def test_a_test_account_rents_the_seeded_model_and_gets_predictions_from_the_relayer(
    stack: Up,
) -> None:
    _rent(stack, RENTER)
    client = _client(stack, RENTER)
    try:
        answer = client.predict(stack.info["model_id"], _sample_input(stack))
    finally:
        client.close()

    assert len(answer.outputs["label"]) == 2
    assert all(label in (0, 1) for label in answer.outputs["label"])
    assert len(answer.outputs["probabilities"]) == 2


def test_the_printed_infer_command_works_for_the_renter(stack: Up) -> None:
    info = stack.info
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from daimm.cli import main; main()",
            "infer",
            str(info["model_id"]),
            f"--input={stack.state / 'sample-input.json'}",
            f"--account=TEST::{RENTER}",
            f"--relayer-url={info['relayer_url']}",
            f"--relayer={info['relayer_address']}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    # The sample's card has labels: one "[row] label<TAB>score" line per label, best first.
    lines = [line.split("\t") for line in done.stdout.splitlines() if line.startswith("[")]
    assert sorted({row.split(" ", 1)[0] for row, _ in lines}) == ["[0]", "[1]"]
    assert {row.split(" ", 1)[1] for row, _ in lines} == {"malignant", "benign"}


def test_infer_pay_per_use_while_holding_a_licence_says_the_licence_served_it(stack: Up) -> None:
    info = stack.info
    done = subprocess.run(
        [sys.executable, "-c", "from daimm.cli import main; main()", "infer",
         str(info["model_id"]), f"--input={stack.state / 'sample-input.json'}",
         f"--account=TEST::{RENTER}", f"--relayer-url={info['relayer_url']}",
         f"--relayer={info['relayer_address']}", "--pay-per-use"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "served this call under your licence" in done.stderr
    assert "no credit was charged" in done.stderr


def test_an_account_without_a_licence_is_refused_by_the_relayer(stack: Up) -> None:
    client = _client(stack, STRANGER)
    try:
        with pytest.raises(RequestRefusedError) as refused:
            client.predict(stack.info["model_id"], _sample_input(stack))
    finally:
        client.close()

    assert refused.value.status == 403


def test_the_web_server_serves_the_model_page_and_the_models_api(stack: Up) -> None:
    web = stack.info["web_url"]
    if not web:
        pytest.skip("`daimm web` (daimm.web) is not installed in this checkout yet")
    model_id = stack.info["model_id"]

    page = httpx.get(f"{web}/models/{model_id}", timeout=30)
    api = httpx.get(f"{web}/api/models", timeout=30)

    assert page.status_code == 200
    assert "Breast cancer tumour classifier" in page.text
    assert api.status_code == 200
    assert model_id in [m.get("model_id", m.get("id")) for m in _items(api.json())]


def _items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("models", "items", "results"):
        if isinstance(body.get(key), list):
            return list(body[key])
    return []


# ------------------------------------------------------------------ a second terminal (issue 15)
def _printed_exports(up: Up) -> dict[str, str]:
    """The ``export NAME=value`` lines `daimm up` printed for another terminal."""
    exports = {}
    for line in up.lines:
        if line.strip().startswith("export "):
            name, _, value = line.strip()[len("export ") :].partition("=")
            exports[name] = shlex.split(value)[0]
    return exports


def _second_terminal(
    up: Up, home: Path, *argv: str, drop: tuple[str, ...] = (), **extra: str
) -> subprocess.CompletedProcess[str]:
    """`daimm ARGV` as from a fresh terminal: only PATH, a fresh HOME and the printed exports."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "NO_COLOR": "1"}
    env.update({k: v for k, v in _printed_exports(up).items() if k not in drop}, **extra)
    return subprocess.run(
        [sys.executable, "-c", "from daimm.cli import main; main()", *argv],
        cwd=home, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample model's ONNX file and its metadata document, as a creator would have them."""
    from daimm.samples import shipped_samples

    folder = tmp_path_factory.mktemp("creator")
    (sample,) = shipped_samples(("breast_cancer",))
    meta = folder / "meta.json"
    meta.write_text(json.dumps({**sample.card, "name": "Second terminal classifier"}))
    return sample.path, meta


def _creator_key(up: Up, home: Path) -> Path:
    done = _second_terminal(up, home, "keys", "new", "-o", str(home / "creator.key"))
    assert done.returncode == 0, done.stdout + done.stderr
    return home / "creator.key"


def test_up_prints_every_variable_a_second_terminal_needs(stack: Up) -> None:
    exports = _printed_exports(stack)

    assert exports == stack.info["env"]
    assert exports["DAIMM_STORE"] == str(stack.state / "blocks")
    assert exports["DAIMM_NETWORK"] == stack.info["network"]
    assert exports["DAIMM_DEPLOYMENTS"] == stack.info["deployments_file"]
    assert exports["DAIMM_RPC_URL"] == stack.info["rpc_url"]
    assert {"DAIMM_CATALOG_URL", "DAIMM_RELAYER_URL"} <= set(exports)


def test_up_names_each_sample_model_it_published(stack: Up) -> None:
    printed = "".join(stack.lines)
    tabular, image, text = stack.info["model_ids"]

    assert f"Model    #{tabular} breast-cancer classifier" in printed
    assert f"Model    #{image} digit images" in printed
    assert f"Model    #{text} review sentiment" in printed


def test_a_second_terminal_with_the_printed_variables_publishes_a_model_the_relayer_serves(
    stack: Up, sample_files: tuple[Path, Path], tmp_path: Path
) -> None:
    from daimm.ipfs import CID, LocalBlockstore

    onnx, meta = sample_files
    key = _creator_key(stack, tmp_path)
    relayer = stack.info["relayer_address"]
    creator = f"--account=TEST::{CREATOR}"

    published = _second_terminal(
        stack, tmp_path, "model", "publish", str(onnx), f"--meta={meta}", f"--key={key}",
        creator, "--yes", "--json",
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    model = json.loads(published.stdout[published.stdout.index("{") :])
    model_id = model["model_id"]
    steps = [
        ("relayer", "authorise", str(model_id), relayer, f"--key={key}", creator, "--yes"),
        ("offer", "set", str(model_id), "--currency=AIMT", "--rent=1 AIMT", "--period=1h",
         creator, "--yes"),
        ("rent", str(model_id), "--periods=1", "--approve", f"--account=TEST::{USER}", "--yes"),
    ]  # fmt: skip
    for argv in steps:
        done = _second_terminal(stack, tmp_path, *argv)
        assert done.returncode == 0, (argv, done.stdout + done.stderr)
    inferred = _second_terminal(
        stack, tmp_path, "infer", str(model_id), f"--input={stack.state / 'sample-input.json'}",
        f"--account=TEST::{USER}", f"--relayer={relayer}",
    )  # fmt: skip

    assert LocalBlockstore(stack.state / "blocks").has_block(CID.parse(model["weights_cid"]))
    assert not (tmp_path / ".daimm" / "blocks").exists()
    assert inferred.returncode == 0, inferred.stdout + inferred.stderr
    # Two rows of the sample input, each answered with its labels best first ("[0] benign 0.99").
    rows = {line.split(" ", 1)[0] for line in inferred.stdout.splitlines()}
    assert rows == {"[0]", "[1]"}, inferred.stdout


def test_a_second_terminal_without_the_stacks_store_is_refused_before_storing(
    stack: Up, sample_files: tuple[Path, Path], tmp_path: Path
) -> None:
    onnx, meta = sample_files
    key = _creator_key(stack, tmp_path)

    done = _second_terminal(
        stack, tmp_path, "model", "publish", str(onnx), f"--meta={meta}", f"--key={key}",
        f"--account=TEST::{CREATOR}", "--yes", drop=("DAIMM_STORE",),
    )  # fmt: skip

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"reads blocks from {stack.state / 'blocks'}" in done.stderr
    assert f"export DAIMM_STORE={stack.state / 'blocks'}" in done.stderr
    assert not (tmp_path / ".daimm" / "blocks").exists()


def test_a_model_whose_blocks_are_out_of_reach_cannot_be_rented_from_the_cli_or_the_page(
    stack: Up, sample_files: tuple[Path, Path], tmp_path: Path
) -> None:
    onnx, meta = sample_files
    key = _creator_key(stack, tmp_path)
    # A deployments file copied elsewhere hides the stack: blocks go to ~/.daimm/blocks.
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(Path(stack.info["deployments_file"]).read_text())
    creator = f"--account=TEST::{CREATOR}"
    published = _second_terminal(
        stack, tmp_path, "model", "publish", str(onnx), f"--meta={meta}", f"--key={key}",
        creator, "--yes", "--json", drop=("DAIMM_STORE",), DAIMM_DEPLOYMENTS=str(elsewhere),
    )  # fmt: skip
    assert published.returncode == 0, published.stdout + published.stderr
    assert "Note: the blocks are in the local folder" in published.stderr
    model_id = json.loads(published.stdout[published.stdout.index("{") :])["model_id"]
    offered = _second_terminal(
        stack, tmp_path, "offer", "set", str(model_id), "--currency=AIMT", "--rent=1 AIMT",
        "--period=1h", "--perpetual=5 AIMT", creator, "--yes",
    )  # fmt: skip
    assert offered.returncode == 0, offered.stdout + offered.stderr

    rented = _second_terminal(
        stack, tmp_path, "rent", str(model_id), "--approve", f"--account=TEST::{STRANGER}", "--yes"
    )
    page = _wait_for_page(stack, model_id)

    assert rented.returncode == 1
    assert f"Error: model {model_id} cannot be served: its weights" in rented.stderr
    assert "nothing was paid" in rented.stderr
    assert 'id="offer-unservable"' in page
    assert 'id="rent-button"' not in page and 'id="buy-button"' not in page


def _wait_for_page(up: Up, model_id: int) -> str:
    """The model's page once the catalog lists it (the catalog follows the chain every second)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = httpx.get(f"{up.info['web_url']}/models/{model_id}", timeout=30)
        if page.status_code == 200 and "metadata has not been fetched yet" not in page.text:
            return page.text
        time.sleep(0.5)
    pytest.fail(f"the web page of model {model_id} never showed the catalogued model")


def test_sigterm_stops_every_process_up_started_and_frees_its_ports(stack: Up) -> None:
    status = _stop(stack, signal.SIGTERM)

    assert status == 0, stack.output()
    assert "Stopped; nothing left running." in stack.output()
    _assert_nothing_left(stack)


# ------------------------------------------------------------------------------------ SIGINT
def test_sigint_once_up_stops_every_process_it_started(tmp_path: Path) -> None:
    up = _started(_start_up(tmp_path, "--no-sample"))

    status = _stop(up, signal.SIGINT)

    assert status == 0, up.output()
    _assert_nothing_left(up)


def test_sigint_during_start_up_stops_what_was_already_started(tmp_path: Path) -> None:
    up = _start_up(tmp_path)
    up.read_until("[3/7]")  # anvil runs, the contracts are deployed, the model is published
    pids = _pids_of_children(up.process.pid)

    status = _stop(up, signal.SIGINT)

    assert status == 0, up.output()
    assert "Stopped; nothing left running." in up.output()
    assert "anvil" in pids
    assert [name for name, pid in pids.items() if _group_exists(pid)] == []
    assert [port for port in up.ports if _listening(port)] == []


def _pids_of_children(parent: int) -> dict[str, int]:
    """Children of ``parent`` by their command's first word (from ps; stack.json is written only
    once every step is done)."""
    ps = subprocess.run(
        ["ps", "-o", "pid=,comm=", "--ppid", str(parent)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = {}
    for line in ps.stdout.splitlines():
        pid, name = line.split(None, 1)
        found[name.strip()] = int(pid)
    return found


# ------------------------------------------------------------------------------------ errors
def _run_up_to_its_end(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`daimm up` with a state folder in `tmp_path`, free relayer and web ports and `args`, run
    until it exits (for the cases that must fail before anything starts)."""
    ports = [f"--relayer-port={free_port()}", f"--web-port={free_port()}"]
    return subprocess.run(
        [sys.executable, "-c", "from daimm.cli import main; main()", "up",
         f"--state-dir={tmp_path / 'state'}", *ports, *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_port_in_use_is_one_clear_error_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run_up_to_its_end(tmp_path, f"--rpc-port={port}")

    assert done.returncode == 1
    assert f"Error: port {port} on 127.0.0.1 (anvil's JSON-RPC) is already in use" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "state" / "anvil.log").exists()


def test_an_unreachable_chain_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    done = _run_up_to_its_end(
        tmp_path, f"--network=ethereum:local:http://127.0.0.1:{port}", "--account=TEST::0"
    )

    assert done.returncode == 1
    assert f"Error: cannot connect to ethereum:local:http://127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


# ------------------------------------------------------------------------------------ --network
def test_on_an_existing_chain_up_deploys_once_then_reuses_the_deployment_and_model(
    tmp_path: Path,
) -> None:
    port = free_port()
    anvil = subprocess.Popen(
        [find_anvil(), "--port", str(port), "--chain-id", "1337", "--silent"],
        start_new_session=True,
    )
    try:
        _wait_for_rpc(port)
        network = f"--network=ethereum:local:http://127.0.0.1:{port}"
        first = _started(_start_up(tmp_path, network, "--account=TEST::0"))
        assert _stop(first, signal.SIGTERM) == 0, first.output()
        second = _started(_start_up(tmp_path, network, "--account=TEST::0"))
        status = _stop(second, signal.SIGTERM)
    finally:
        os.killpg(anvil.pid, signal.SIGTERM)
        anvil.wait(timeout=30)

    assert status == 0, second.output()
    printed = "".join(first.lines)
    # The seven core and extension contracts plus SessionRegistry and ProofChallenges.
    assert {"SessionRegistry", "ProofChallenges"} <= set(first.info["contracts"])
    assert f"{len(first.info['contracts'])} contracts from block" in printed
    assert len(first.info["contracts"]) == 9
    assert "TEST::3-9 hold 1,000 AIMT or more each" in printed
    assert "TEST::4  0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65" in printed
    assert f"daimm rent {first.info['model_id']} --periods 1 --approve --account TEST::4" in printed
    assert f"daimm infer {first.info['model_id']} --input" in printed
    assert _printed_exports(first) == first.info["env"]
    assert _printed_exports(first)["DAIMM_STORE"] == str(first.state / "blocks")
    assert "reusing the deployment" in "".join(second.lines)
    assert f"reusing model {first.info['model_id']}" in "".join(second.lines)
    assert "already registered" in "".join(second.lines)
    assert "anvil" not in second.info["pids"]
    assert second.info["contracts"] == first.info["contracts"]


def _wait_for_rpc(port: int) -> None:
    probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.post(f"http://127.0.0.1:{port}", json=probe, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"anvil did not answer on port {port}")
