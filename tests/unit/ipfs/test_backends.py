"""Storage backends: the embedded blockstore for real, Kubo / pinning service / gateway against
small local HTTP stand-ins.

NOTE: no Kubo daemon or pinning service can run here, so `KuboStandIn`, `PinningStandIn` and
`GatewayStandIn` are stand-ins on 127.0.0.1 that speak the documented APIs (Kubo RPC v0:
https://docs.ipfs.tech/reference/kubo/rpc/ ; Pinning Service API:
https://ipfs.github.io/pinning-services-api-spec/ ; trustless gateway:
https://specs.ipfs.tech/http-gateways/trustless-gateway/). Everything else uses the real code.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from ipfs_helpers import deterministic_bytes

from daimm.errors import IntegrityError, StorageError
from daimm.ipfs import (
    KUBO_DEFAULT,
    Gateway,
    KuboRpc,
    LocalBlockstore,
    PinningService,
    Profile,
    add_file,
    fetch_file,
    fetch_file_via_car,
    hash_file,
    import_file,
)
from daimm.ipfs.car import write_car
from daimm.ipfs.multiformats import CID

SMALL = Profile("small", 0, False, 4096, 4)
TOKEN = "secret-token"


class _Server:
    """Run a handler class on 127.0.0.1 in a thread; `url` is its base URL."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: dict[str, Any]

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode())

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))


class KuboStandIn(_Handler):
    """Kubo RPC: POST /api/v0/block/{put,get,stat} and /api/v0/pin/add, errors as Kubo has them."""

    def _error(self, message: str) -> None:
        self._json(500, {"Message": message, "Code": 0, "Type": "error"})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        blocks: dict[bytes, bytes] = self.state["blocks"]
        self.state["calls"].append((url.path, query))
        if url.path == "/api/v0/block/put":
            boundary = re.search(r"boundary=(.+)", self.headers["Content-Type"]).group(1)
            body = self._body()
            part = body.split(b"--" + boundary.encode())[1]
            data = part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
            codec = {"dag-pb": 0x70, "raw": 0x55}[query["cid-codec"]]
            cid = CID.for_block(data, version=1, codec=codec)
            blocks[cid.digest] = data
            self._json(200, {"Key": str(cid), "Size": len(data)})
        elif url.path == "/api/v0/block/get":
            cid = CID.parse(query["arg"])
            if cid.digest not in blocks:
                self._error("block was not found locally (offline): ipld: could not find node")
                return
            data = blocks[cid.digest]
            if self.state.get("corrupt"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            self._send(200, data, "text/plain")
        elif url.path == "/api/v0/block/stat":
            cid = CID.parse(query["arg"])
            if cid.digest in blocks:
                self._json(200, {"Key": str(cid), "Size": len(blocks[cid.digest])})
            else:
                self._error("block was not found locally (offline)")
        elif url.path == "/api/v0/pin/add":
            self.state["pins"].append(query["arg"])
            self._json(200, {"Pins": [query["arg"]]})
        else:
            self._send(404, b"404 page not found", "text/plain")


class PinningStandIn(_Handler):
    """Pinning Service API: POST/GET /pins, GET/DELETE /pins/{requestid}, bearer auth."""

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._json(401, {"error": {"reason": "UNAUTHORIZED", "details": "bad token"}})
            return False
        return True

    def _status(self, request_id: str) -> dict[str, Any]:
        pin = self.state["pins"][request_id]
        return {
            "requestid": request_id,
            "status": pin["status"],
            "created": "2026-01-01T00:00:00Z",
            "pin": {"cid": pin["cid"], "name": pin.get("name")},
            "delegates": ["/ip4/203.0.113.1/tcp/4001/p2p/QmServicePeer"],
        }

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = json.loads(self._body())
        self.state["bodies"].append(body)
        request_id = f"req-{len(self.state['pins']) + 1}"
        self.state["pins"][request_id] = {**body, "status": "queued"}
        self._json(202, self._status(request_id))

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlparse(self.path)
        if url.path == "/pins":
            cid = parse_qs(url.query)["cid"][0]
            found = [self._status(r) for r, p in self.state["pins"].items() if p["cid"] == cid]
            self._json(200, {"count": len(found), "results": found})
        else:
            request_id = url.path.rsplit("/", 1)[1]
            if request_id not in self.state["pins"]:
                self._json(404, {"error": {"reason": "NOT_FOUND"}})
                return
            self._json(200, self._status(request_id))

    def do_DELETE(self) -> None:
        if not self._authorised():
            return
        self.state["pins"].pop(self.path.rsplit("/", 1)[1])
        self._send(202, b"")


class GatewayStandIn(_Handler):
    """Trustless gateway: GET /ipfs/{cid}?format=raw (a block) or ?format=car (the DAG)."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        cid = CID.parse(url.path.removeprefix("/ipfs/"))
        fmt = parse_qs(url.query).get("format", [""])[0]
        blocks: dict[bytes, bytes] = self.state["blocks"]
        corrupt: bytes | None = self.state.get("corrupt")
        self.state["requests"].append((fmt, self.headers.get("Accept")))
        if fmt == "raw":
            data = blocks.get(cid.digest)
            if data is None:
                self._send(404, b"not found", "text/plain")
                return
            if corrupt == cid.digest:
                data = b"\x00" + data[1:]
            self._send(200, data, "application/vnd.ipld.raw")
        elif fmt == "car":
            out = io.BytesIO()
            items = [
                (self.state["cids"][d], b"\x00" + b[1:] if corrupt == d else b)
                for d, b in blocks.items()
            ]
            write_car([cid], items, out)
            self._send(200, out.getvalue(), "application/vnd.ipld.car; version=1")
        else:
            self._send(406, b"not acceptable", "text/plain")


def _serve(handler: type[_Handler], state: dict[str, Any]) -> Iterator[tuple[_Server, dict]]:
    cls = type(handler.__name__, (handler,), {"state": state})
    server = _Server(cls)
    try:
        yield server, state
    finally:
        server.close()


@pytest.fixture
def kubo() -> Iterator[tuple[_Server, dict]]:
    yield from _serve(KuboStandIn, {"blocks": {}, "pins": [], "calls": []})


@pytest.fixture
def pinning() -> Iterator[tuple[_Server, dict]]:
    yield from _serve(PinningStandIn, {"pins": {}, "bodies": []})


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture
def model_bytes() -> bytes:
    return deterministic_bytes(50_000, "backend-model")


# ----------------------------------------------------------------------- local blockstore


def test_local_blockstore__add_then_fetch__same_bytes(tmp_path: Path, model_bytes: bytes) -> None:
    store = LocalBlockstore(tmp_path / "blocks")
    root = add_file(io.BytesIO(model_bytes), store, SMALL).cid
    out = io.BytesIO()

    fetch_file(root, store, out)

    assert out.getvalue() == model_bytes
    assert root == hash_file(io.BytesIO(model_bytes), SMALL).cid


def test_local_blockstore__interrupted_add_rerun__never_duplicates_blocks(
    tmp_path: Path, model_bytes: bytes
) -> None:
    store = LocalBlockstore(tmp_path / "blocks")
    written: list[CID] = []

    def crash_after_five(cid: CID, block: bytes) -> None:
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(cid)
        store.put_block(cid, block)

    with pytest.raises(KeyboardInterrupt):
        import_file(io.BytesIO(model_bytes), crash_after_five, SMALL)
    result = add_file(io.BytesIO(model_bytes), store, SMALL)
    distinct = {c.digest for c in _all_cids(model_bytes)}

    assert store.count() == len(distinct) == result.blocks
    assert not list((tmp_path / "blocks").glob("*/.tmp-*"))


def _all_cids(data: bytes) -> list[CID]:
    cids: list[CID] = []
    import_file(io.BytesIO(data), lambda c, _b: cids.append(c), SMALL)
    return cids


def test_local_blockstore__block_corrupted_on_disk__raises_naming_cid(
    tmp_path: Path, model_bytes: bytes
) -> None:
    store = LocalBlockstore(tmp_path / "blocks")
    root = add_file(io.BytesIO(model_bytes), store, SMALL).cid
    victim = next(p for p in (tmp_path / "blocks").glob("*/*.data") if p.stat().st_size > 100)
    victim.write_bytes(b"\xff" + victim.read_bytes()[1:])

    with pytest.raises(IntegrityError, match="failed verification"):
        fetch_file(root, store, io.BytesIO())


def test_local_blockstore__missing_block__raises_storage_error(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path / "blocks")
    cid = CID.for_block(b"never stored", version=1, codec=0x55)

    with pytest.raises(StorageError, match=str(cid)):
        store.get_block(cid)


# ------------------------------------------------------------------------------ Kubo RPC


def test_kubo__add_then_fetch__same_bytes_and_root_pinned(
    kubo: tuple[_Server, dict], client: httpx.Client, model_bytes: bytes
) -> None:
    server, state = kubo
    backend = KuboRpc(client, server.url)

    root = add_file(io.BytesIO(model_bytes), backend, KUBO_DEFAULT).cid
    out = io.BytesIO()
    fetch_file(root, backend, out)

    assert out.getvalue() == model_bytes
    assert state["pins"] == [str(root)]
    assert backend.has_block(root)
    assert not backend.has_block(CID.for_block(b"other", version=1, codec=0x55))
    puts = [q for path, q in state["calls"] if path == "/api/v0/block/put"]
    assert puts[0] == {"cid-codec": "dag-pb", "mhtype": "sha2-256", "mhlen": "32", "pin": "false"}


def test_kubo__node_returns_wrong_bytes__raises_naming_cid(
    kubo: tuple[_Server, dict], client: httpx.Client
) -> None:
    server, state = kubo
    backend = KuboRpc(client, server.url)
    root = add_file(io.BytesIO(b"weights"), backend).cid
    state["corrupt"] = True

    with pytest.raises(IntegrityError, match=str(root)):
        fetch_file(root, backend, io.BytesIO())


def test_kubo__missing_block__raises_with_kubos_message(
    kubo: tuple[_Server, dict], client: httpx.Client
) -> None:
    server, _ = kubo

    with pytest.raises(StorageError, match="not found locally"):
        KuboRpc(client, server.url).get_block(CID.for_block(b"x", version=1, codec=0x55))


def test_kubo__daemon_not_running__raises_one_clear_error(client: httpx.Client) -> None:
    backend = KuboRpc(client, "http://127.0.0.1:9")

    with pytest.raises(StorageError, match="could not be reached"):
        backend.get_block(CID.for_block(b"x", version=1, codec=0x55))


# ------------------------------------------------------------------ pinning service API


def test_pinning_service__pin__posts_cid_and_reports_status(
    pinning: tuple[_Server, dict], client: httpx.Client
) -> None:
    server, state = pinning
    service = PinningService(client, server.url, TOKEN, origins=("/ip4/198.51.100.7/tcp/4001",))
    cid = CID.parse("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")

    status = service.add_pin(cid, "model-7-v1")

    assert status.status == "queued"
    assert status.cid == str(cid)
    assert state["bodies"] == [
        {"cid": str(cid), "name": "model-7-v1", "origins": ["/ip4/198.51.100.7/tcp/4001"]}
    ]
    assert service.get_pin(status.request_id) == status
    assert service.find(cid) == [status]
    assert service.has_block(cid)
    service.remove_pin(status.request_id)
    assert service.find(cid) == []


def test_pinning_service__bad_token__raises_saying_check_token(
    pinning: tuple[_Server, dict], client: httpx.Client
) -> None:
    server, _ = pinning
    service = PinningService(client, server.url, "wrong")

    with pytest.raises(StorageError, match="HTTP 401 UNAUTHORIZED.*check the access token"):
        service.add_pin(CID.for_block(b"x", version=1, codec=0x55))


def test_pinning_service__no_token__raises() -> None:
    with pytest.raises(StorageError, match="DAIMM_PINNING_TOKEN"):
        PinningService(httpx.Client(), "http://127.0.0.1:1", "")


def test_pinning_service__get_block_without_upstream__raises(
    pinning: tuple[_Server, dict], client: httpx.Client
) -> None:
    server, _ = pinning

    with pytest.raises(StorageError, match="through a gateway"):
        PinningService(client, server.url, TOKEN).get_block(
            CID.for_block(b"x", version=1, codec=0x55)
        )


# ------------------------------------------------------------------------------ gateway


@pytest.fixture
def gateway(model_bytes: bytes) -> Iterator[tuple[_Server, dict, CID]]:
    blocks: dict[bytes, bytes] = {}
    cids: dict[bytes, CID] = {}

    def put(cid: CID, block: bytes) -> None:
        blocks[cid.digest] = block
        cids[cid.digest] = cid

    root = import_file(io.BytesIO(model_bytes), put, SMALL).cid
    state = {"blocks": blocks, "cids": cids, "requests": []}
    for server, st in _serve(GatewayStandIn, state):
        yield server, st, root


def test_gateway__fetch_raw_blocks__same_bytes_with_trustless_headers(
    gateway: tuple[_Server, dict, CID], client: httpx.Client, model_bytes: bytes
) -> None:
    server, state, root = gateway
    out = io.BytesIO()

    fetch_file(root, Gateway(client, server.url), out)

    assert out.getvalue() == model_bytes
    assert set(state["requests"]) == {("raw", "application/vnd.ipld.raw")}


def test_gateway__corrupted_block__raises_naming_that_cid(
    gateway: tuple[_Server, dict, CID], client: httpx.Client
) -> None:
    server, state, root = gateway
    victim = next(d for d, b in state["blocks"].items() if d != root.digest and len(b) > 100)
    state["corrupt"] = victim

    with pytest.raises(IntegrityError, match=str(state["cids"][victim])):
        fetch_file(root, Gateway(client, server.url), io.BytesIO())


def test_gateway__fetch_as_car__same_bytes(
    gateway: tuple[_Server, dict, CID], client: httpx.Client, model_bytes: bytes
) -> None:
    server, _, root = gateway
    out = io.BytesIO()

    fetch_file_via_car(root, Gateway(client, server.url), out)

    assert out.getvalue() == model_bytes


def test_gateway__corrupted_block_in_car__raises_naming_that_cid(
    gateway: tuple[_Server, dict, CID], client: httpx.Client
) -> None:
    server, state, root = gateway
    victim = next(d for d in state["blocks"] if d != root.digest)
    state["corrupt"] = victim

    with pytest.raises(IntegrityError, match=str(state["cids"][victim])):
        fetch_file_via_car(root, Gateway(client, server.url), io.BytesIO())


def test_gateway__is_read_only() -> None:
    with pytest.raises(StorageError, match="read only"):
        Gateway(httpx.Client(), "http://127.0.0.1:1").put_block(
            CID.for_block(b"x", version=1, codec=0x55), b"x"
        )
