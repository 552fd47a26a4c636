"""The creator's browser module (``static/daimm-creator.js``) in Chromium, against the Python code.

- A file encrypted in the page (both envelope schemes, sizes at segment boundaries) decrypts with
  `daimm pack decrypt`, and equals Python's byte for byte given the same key, salt and nonce;
  one encrypted by `daimm pack encrypt` decrypts in the page, and a flipped bit fails there with
  the Python code's message.
- CIDs computed in the page equal `daimm ipfs add`'s (every profile), and the page's CAR reads
  with daimm's verifying CAR reader.
- A 200 MB file generated in the page is encrypted with a moving progress bar and a bounded JS
  heap (the figure is printed), and the ciphertext decrypts in Python.
- On anvil: the creator key the page derives from the wallet's signature equals `daimm keys
  derive --account TEST::0`'s, the page's signed CAR upload is stored by ``POST /api/uploads``,
  and a 200 MB file is uploaded by the page in 16 MiB pieces (``/api/uploads/sessions``).

The page is a bare HTML file loading the bundle, served with the upload endpoint by a small FastAPI
app under uvicorn (``/sink/{name}`` receives what the page sends back). NOTE: the wallet is the
stand-in of tests/e2e/test_web.py (an EIP-1193 provider forwarding to anvil's unlocked accounts),
because a real wallet's UI cannot run here.

The anvil tests run with ``--network ethereum:local:foundry`` (make test-foundry); the others run
on any network.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from tests.utils.relayer import node_url_or_skip
from tests.utils.web import CHROMIUM, chromium, serve_in_thread

from daimm.crypto import decrypt_stream, model_associated_data
from daimm.crypto.keys import generate_private_key, public_key_of, save_private_key
from daimm.ipfs import LocalBlockstore
from daimm.ipfs.car import CarReader
from daimm.ipfs.files import fetch_file

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "src" / "daimm" / "web" / "static" / "daimm-creator.js"
#: For the heap figures: exact `performance.memory`, and `window.gc()`.
MEMORY_ARGS = ("--enable-precise-memory-info", "--js-flags=--expose-gc")
DAIMM = str(Path(sys.executable).parent / "daimm")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ANVIL_ACCOUNT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # TEST::0
SEGMENT = 64 * 1024
BIG_MB = 200
PIECES_MB = 200
PIECE_BYTES = 16 << 20

WALLET_JS = """
(() => {
  const cfg = window.__wallet;
  window.ethereum = {
    async request({ method, params }) {
      const response = await fetch(cfg.rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: params || [] }),
      });
      const answer = await response.json();
      if (answer.error) throw Object.assign(new Error(answer.error.message), answer.error);
      return answer.result;
    },
  };
})();
"""


def daimm(*args: str | Path) -> str:
    done = subprocess.run(
        [DAIMM, *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The bundle and test files under /, ``POST /sink/{name}``, ``POST /api/uploads``."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium`")
    if not BUNDLE.exists():
        pytest.skip("the creator bundle is not built: run `make web` (make setup does)")
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from daimm.web.upload import UploadSettings, mount_uploads

    work = tmp_path_factory.mktemp("browser-crypto")
    public, sink, store_dir = work / "public", work / "sink", work / "blocks"
    public.mkdir()
    sink.mkdir()
    shutil.copy(BUNDLE, public / "daimm-creator.js")
    (public / "index.html").write_text(
        '<!doctype html><html><body><script src="/daimm-creator.js"></script></body></html>'
    )
    store = LocalBlockstore(store_dir)

    @contextlib.contextmanager
    def backend() -> Iterator[LocalBlockstore]:
        yield store

    app = FastAPI()
    settings = UploadSettings(
        backend, work / "ledger.sqlite", max_bytes=1 << 30, quota_bytes=2 << 30,
        piece_bytes=PIECE_BYTES,
    )  # fmt: skip
    mount_uploads(app, chain_id=31337, registry=REGISTRY, settings=settings)

    @app.post("/sink/{name}")
    async def receive(name: str, request: Request) -> dict[str, int]:
        size = 0
        with (sink / name).open("wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
                size += len(chunk)
        return {"bytes": size}

    app.mount("/", StaticFiles(directory=str(public), html=True), name="public")
    with serve_in_thread(app) as url:
        yield {"url": url, "public": public, "sink": sink, "store": store, "work": work}


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    with chromium(MEMORY_ARGS) as launched:
        yield launched


@contextlib.contextmanager
def open_page(site: dict[str, Any], browser: Any, node_url: str | None = None) -> Iterator[Any]:
    """The bundle's page, with the stand-in wallet on ``node_url`` when given."""
    context = browser.new_context()
    if node_url is not None:
        context.add_init_script(f"window.__wallet = {json.dumps({'rpc': node_url})};")
        context.add_init_script(WALLET_JS)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(site["url"] + "/index.html")
    page.wait_for_function("() => window.daimmCreator !== undefined")
    yield page
    context.close()


@pytest.fixture
def page(site: dict[str, Any], browser: Any) -> Iterator[Any]:
    with open_page(site, browser) as opened:
        yield opened


@pytest.fixture
def relayer(tmp_path: Path) -> tuple[Path, Any]:
    private = generate_private_key()
    path = tmp_path / "relayer.key"
    save_private_key(path, private)
    return path, private


# Runs in the page: fetch a plaintext, encrypt it and wrap the key, send both back to /sink.
ENCRYPT_JS = """
async ({ name, recipient, scheme, segmentSize }) => {
  const { aead, envelope } = window.daimmCreator;
  const plain = await (await fetch(`/${name}`)).blob();
  const key = aead.generateContentKey();
  const parts = [];
  await aead.encryptBlob(plain, async (bytes) => parts.push(bytes), key,
                         aead.modelAssociatedData(7n, 1n), { segmentSize });
  const wrapped = await envelope.wrapKey(key, [recipient], scheme);
  await fetch(`/sink/${name}.enc`, { method: "POST", body: new Blob(parts) });
  const text = envelope.envelopeToJson(wrapped);
  const r = await fetch(`/sink/${name}.env`, { method: "POST", body: text });
  if (!r.ok) throw new Error(`sink: ${r.status} ${await r.text()}`);
}
"""


@pytest.mark.parametrize("size", [0, 1, SEGMENT, 3 * SEGMENT + 5], ids=lambda n: f"{n}B")
@pytest.mark.parametrize("scheme", ["hpke-x25519-sha256-aes256gcm", "x25519-hkdf-sha256-aes256gcm"])
def test_page_encrypts__daimm_pack_decrypt__same_bytes(
    site: dict[str, Any], page: Any, relayer: tuple[Path, Any], size: int, scheme: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    name = f"plain-{scheme[:4]}-{size}.bin"
    plaintext = os.urandom(size)
    (site["public"] / name).write_bytes(plaintext)
    key_path, private = relayer
    page.evaluate(
        ENCRYPT_JS,
        {"name": name, "recipient": str(public_key_of(private)), "scheme": scheme,
         "segmentSize": SEGMENT},
    )  # fmt: skip
    ciphertext, envelope = site["sink"] / f"{name}.enc", site["sink"] / f"{name}.env"
    assert json.loads(envelope.read_text())["scheme"] == scheme
    out = tmp_path / "out.bin"
    daimm("pack", "decrypt", ciphertext, "--envelope", envelope, "--key", key_path,
          "--model-id", 7, "--model-version", 1, "-o", out)  # fmt: skip
    assert out.read_bytes() == plaintext
    # The envelope is the very text Python writes for the same entries.
    from daimm.crypto.envelope import KeyEnvelope

    assert KeyEnvelope.from_json(envelope.read_bytes()).to_json() == envelope.read_bytes()


SAME_BYTES_JS = """
async ({ name, key, salt, noncePrefix, segmentSize }) => {
  const { aead } = window.daimmCreator;
  const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
  const plain = await (await fetch(`/${name}`)).blob();
  const gathered = aead.blobSink();
  await aead.encryptBlob(plain, gathered.sink, hex(key), aead.modelAssociatedData(7n, 1n),
                         { segmentSize, salt: hex(salt), noncePrefix: hex(noncePrefix) });
  const digest = await crypto.subtle.digest("SHA-256", await gathered.blob().arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
"""


@pytest.mark.parametrize(
    ("size", "segment"),
    [(0, SEGMENT), (1, SEGMENT), (SEGMENT, SEGMENT), (3 * SEGMENT + 5, SEGMENT),
     (2_500_000, 1 << 20)],
    ids=["empty", "1B", "one-segment", "partial-last", "default-segments"],
)  # fmt: skip
def test_page_and_python_encrypt__same_key_salt_nonce__identical_bytes(
    site: dict[str, Any], page: Any, monkeypatch: pytest.MonkeyPatch, size: int, segment: int
) -> None:
    from daimm.crypto import aead, encrypt_stream

    name = f"same-{size}-{segment}.bin"
    plaintext = os.urandom(size)
    (site["public"] / name).write_bytes(plaintext)
    key, salt, prefix = os.urandom(32), os.urandom(32), os.urandom(7)
    # The file's salt and nonce prefix are its only random draws (os.urandom(32), then (7)).
    monkeypatch.setattr(aead.os, "urandom", lambda n: {32: salt, 7: prefix}[n])
    expected = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), expected, key, model_associated_data(7, 1),
                   segment_size=segment)  # fmt: skip
    monkeypatch.undo()
    in_page = page.evaluate(
        SAME_BYTES_JS,
        {"name": name, "key": key.hex(), "salt": salt.hex(), "noncePrefix": prefix.hex(),
         "segmentSize": segment},
    )  # fmt: skip
    assert in_page == hashlib.sha256(expected.getvalue()).hexdigest()


DECRYPT_JS = """
async ({ name, privateKey, modelId }) => {
  const { aead, envelope } = window.daimmCreator;
  const hex = (s) => Uint8Array.from(s.match(/../g), (h) => parseInt(h, 16));
  const wrapped = envelope.envelopeFromJson(await (await fetch(`/${name}.envelope.json`)).text());
  const key = await envelope.unwrapKey(wrapped, hex(privateKey));
  const parts = [];
  try {
    await aead.decryptBlob(await (await fetch(`/${name}`)).blob(), async (b) => parts.push(b), key,
                           aead.modelAssociatedData(BigInt(modelId), 1n));
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
  const digest = await crypto.subtle.digest("SHA-256", await new Blob(parts).arrayBuffer());
  const bytes = [...new Uint8Array(digest)];
  return { sha256: bytes.map((b) => b.toString(16).padStart(2, "0")).join("") };
}
"""


def _python_encrypted(site: dict[str, Any], private: Any, size: int, name: str) -> bytes:
    plaintext = os.urandom(size)
    source = site["work"] / f"{name}.plain"
    source.write_bytes(plaintext)
    daimm("pack", "encrypt", source, "--recipient", str(public_key_of(private)),
          "--model-id", 7, "--model-version", 1, "-o", site["public"] / name)  # fmt: skip
    return plaintext


def test_python_encrypts__page_decrypts__same_bytes(
    site: dict[str, Any], page: Any, relayer: tuple[Path, Any]
) -> None:
    _, private = relayer
    plaintext = _python_encrypted(site, private, 2_500_000, "py.enc")
    answer = page.evaluate(
        DECRYPT_JS,
        {"name": "py.enc", "privateKey": private.private_bytes_raw().hex(), "modelId": 7},
    )
    assert answer == {"sha256": hashlib.sha256(plaintext).hexdigest()}


def test_python_encrypts__page_decrypts_as_another_model__commitment_refused(
    site: dict[str, Any], page: Any, relayer: tuple[Path, Any]
) -> None:
    _, private = relayer
    _python_encrypted(site, private, 1000, "other.enc")
    answer = page.evaluate(
        DECRYPT_JS,
        {"name": "other.enc", "privateKey": private.private_bytes_raw().hex(), "modelId": 8},
    )
    assert answer["error"].startswith("IntegrityError: key commitment mismatch")


def test_python_encrypts_then_bit_flipped__page_refuses_the_segment(
    site: dict[str, Any], page: Any, relayer: tuple[Path, Any]
) -> None:
    _, private = relayer
    _python_encrypted(site, private, 3_000_000, "flip.enc")
    path = site["public"] / "flip.enc"
    data = bytearray(path.read_bytes())
    data[83 + (1 << 20) + 100] ^= 1  # inside segment 1
    path.write_bytes(bytes(data))
    answer = page.evaluate(
        DECRYPT_JS,
        {"name": "flip.enc", "privateKey": private.private_bytes_raw().hex(), "modelId": 7},
    )
    assert answer["error"].startswith("IntegrityError: segment 1 (index 1) failed authentication")


CID_JS = """
async ({ name, options }) => {
  const { ipfs } = window.daimmCreator;
  const blob = await (await fetch(`/${name}`)).blob();
  const added = await ipfs.addBlob(blob, options);
  await fetch(`/sink/${name}.car`, { method: "POST", body: ipfs.carBlob([added]) });
  return added.cid.toString();
}
"""


@pytest.mark.parametrize(
    ("size", "flags", "options"),
    [
        (0, [], {}),
        (256 * 1024, [], {}),
        (256 * 1024 * 174 + 1, [], {}),  # a second tree level
        (700_001, ["--cid-version", "1"], {"cidVersion": 1}),
        (3 * (1 << 20) + 7, ["--profile", "unixfs-v1-2025"], {"profile": "unixfs-v1-2025"}),
    ],
    ids=["empty", "one-chunk", "two-levels", "cidv1", "unixfs-v1-2025"],
)
def test_page_cid__equals_daimm_ipfs_add__and_its_car_reads_in_python(
    site: dict[str, Any], page: Any, size: int, flags: list[str], options: dict[str, Any]
) -> None:
    name = f"cid-{size}-{len(flags)}.bin"
    data = os.urandom(size)
    (site["public"] / name).write_bytes(data)
    expected = daimm("ipfs", "add", site["public"] / name, "--only-hash", "--quiet", *flags)
    cid = page.evaluate(CID_JS, {"name": name, "options": options})
    assert cid == expected.strip()
    store = LocalBlockstore(site["work"] / f"car-{name}")
    with (site["sink"] / f"{name}.car").open("rb") as fh:
        reader = CarReader(fh)
        for block_cid, block in reader.blocks():  # each verified against its CID
            store.put_block(block_cid, block)
    assert [str(r) for r in reader.roots] == [cid]
    out = io.BytesIO()
    fetch_file(reader.roots[0], store, out)
    assert out.getvalue() == data


BIG_JS = """
async ({ megabytes, recipient }) => {
  const { aead, envelope } = window.daimmCreator;
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const mb = new Blob(Array.from({ length: 16 }, () => chunk));
  const plain = new Blob(Array.from({ length: megabytes }, () => mb));
  const key = aead.generateContentKey();
  const parts = [];
  const progress = [];
  // `peak`: the heap as V8 lets it grow (garbage included, collected when V8 chooses);
  // `retained`: the heap right after a forced collection every 4 pieces (what is held).
  let peak = 0, retained = 0;
  const sample = () => {
    peak = Math.max(peak, performance.memory.usedJSHeapSize);
    if (parts.length % 4 === 0) {
      window.gc();
      retained = Math.max(retained, performance.memory.usedJSHeapSize);
    }
  };
  window.gc();
  const before = performance.memory.usedJSHeapSize;
  await aead.encryptBlob(plain, async (bytes) => { parts.push(new Blob([bytes])); sample(); }, key,
                         aead.modelAssociatedData(7n, 1n),
                         { onProgress: (done, total) => progress.push(done / total) });
  const cipher = new Blob(parts);
  const wrapped = await envelope.wrapKey(key, [recipient]);
  await fetch("/sink/big.enc", { method: "POST", body: cipher });
  await fetch("/sink/big.env", { method: "POST", body: envelope.envelopeToJson(wrapped) });
  const firstMb = new Uint8Array(await mb.arrayBuffer());
  const digest = await crypto.subtle.digest("SHA-256", firstMb);
  const mbSha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { before, peak, retained, progress, size: cipher.size, mbSha256 };
}
"""


def test_page_encrypts_200_mb__bounded_heap_moving_progress__python_decrypts(
    site: dict[str, Any], page: Any, relayer: tuple[Path, Any], tmp_path: Path
) -> None:
    from daimm.crypto import KeyEnvelope, ciphertext_size, unwrap_key

    _, private = relayer
    answer = page.evaluate(BIG_JS, {"megabytes": BIG_MB, "recipient": str(public_key_of(private))})
    size = BIG_MB << 20
    assert answer["size"] == ciphertext_size(size)
    assert len(answer["progress"]) >= BIG_MB // 4 and answer["progress"][-1] == 1.0
    assert answer["progress"] == sorted(answer["progress"])
    mib = {k: answer[k] / (1 << 20) for k in ("before", "peak", "retained")}
    print(f"\n{BIG_MB} MB encrypted in the page: JS heap {mib['before']:.1f} MiB before, at most "
          f"{mib['retained']:.1f} MiB held (after GC), {mib['peak']:.1f} MiB peak before V8 "
          "collected")  # fmt: skip
    held = mib["retained"] - mib["before"]
    assert held < 48, f"the page held {held:.0f} MiB of JS heap while encrypting {BIG_MB} MB"
    content_key = unwrap_key(
        KeyEnvelope.from_json((site["sink"] / "big.env").read_bytes()), private
    )
    digest = hashlib.sha256()
    first = bytearray()

    class Sink(io.RawIOBase):
        def write(self, b: Any) -> int:
            if len(first) < 1 << 20:
                first.extend(bytes(b[: (1 << 20) - len(first)]))
            digest.update(b)
            return len(b)

    with (site["sink"] / "big.enc").open("rb") as fh:
        written = decrypt_stream(fh, Sink(), content_key, model_associated_data(7, 1))
    assert written == size
    assert hashlib.sha256(first).hexdigest() == answer["mbSha256"]


# ------------------------------------------------------------------ on anvil
@pytest.fixture
def wallet_page(site: dict[str, Any], browser: Any, chain: Any) -> Iterator[Any]:
    node = node_url_or_skip(chain, "the page's wallet signs with anvil's accounts")
    with open_page(site, browser, node) as opened:
        yield opened


def test_creator_key__page_and_daimm_keys_derive__same_key(wallet_page: Any) -> None:
    in_page = wallet_page.evaluate(
        "async (account) => (await window.daimmCreator.creatorkey.deriveCreatorKey("
        "window.ethereum, account)).text",
        ANVIL_ACCOUNT,
    )
    assert in_page == daimm("keys", "derive", "--account", "TEST::0").strip()
    assert in_page.startswith("x25519:")


UPLOAD_JS = """
async ({ account, recipient, registry, card }) => {
  const { aead, envelope, ipfs } = window.daimmCreator;
  const random = crypto.getRandomValues(new Uint8Array(60000));
  const plain = new Blob([random, random, random, random, random]);
  const key = aead.generateContentKey();
  const parts = [];
  await aead.encryptBlob(plain, async (b) => parts.push(b), key, aead.modelAssociatedData(7n, 1n));
  const wrapped = envelope.envelopeToJson(await envelope.wrapKey(key, [recipient]));
  const files = [new Blob(parts), new Blob([wrapped]), new Blob([card])];
  const added = [];
  for (const file of files) added.push(await ipfs.addBlob(file, { cidVersion: 1 }));
  const config = { chain_id: 31337, contracts: { ModelRegistry: registry } };
  const car = ipfs.carBlob(added);
  const answer = await ipfs.uploadCar(car, { provider: window.ethereum, account, config });
  let refusal;
  try {
    const cut = new Blob([car.slice(0, car.size - 1)]);
    await ipfs.uploadCar(cut, { provider: window.ethereum, account, config });
  } catch (error) {
    refusal = `${error.code}: ${error.message}`;
  }
  return { answer, cids: added.map((a) => a.cid.toString()), truncated: refusal };
}
"""


def _upload_args(private: Any, **more: Any) -> dict[str, Any]:
    """What the upload scripts take: the account, the relayer's key, the registry, a card."""
    return {
        "account": ANVIL_ACCOUNT,
        "recipient": str(public_key_of(private)),
        "registry": REGISTRY,
        "card": (ROOT / "src/daimm/samples/breast_cancer.card.json").read_text(),
        **more,
    }


def test_page_uploads_signed_car__stored_and_verified(
    site: dict[str, Any], wallet_page: Any, relayer: tuple[Path, Any]
) -> None:
    _, private = relayer
    result = wallet_page.evaluate(UPLOAD_JS, _upload_args(private))
    kinds = [r["kind"] for r in result["answer"]["roots"]]
    assert kinds == ["ciphertext", "envelope", "card"]
    assert [r["cid"] for r in result["answer"]["roots"]] == result["cids"]
    for cid in result["cids"]:
        from daimm.ipfs.multiformats import CID

        assert site["store"].has_block(CID.parse(cid))
    assert result["truncated"].startswith("bad_car: not a CAR v1 file: truncated CAR section")


PIECES_JS = """
async ({ account, recipient, registry, card, megabytes }) => {
  const { aead, envelope, ipfs } = window.daimmCreator;
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  let plain = new Blob(Array.from({ length: megabytes * 16 }, () => chunk));
  const key = aead.generateContentKey();
  let parts = [];
  await aead.encryptBlob(plain, async (b) => parts.push(new Blob([b])), key,
                         aead.modelAssociatedData(7n, 1n));
  // NOTE: Chromium keeps a page's Blobs in memory (no disk in a fresh profile); each copy the
  // page no longer needs is dropped before the next is made.
  let cipher = new Blob(parts);
  plain = parts = null;
  window.gc();
  const wrapped = envelope.envelopeToJson(await envelope.wrapKey(key, [recipient]));
  const added = [await ipfs.addBlob(cipher, { cidVersion: 1 })];
  cipher = null;
  window.gc();
  for (const file of [new Blob([wrapped]), new Blob([card])]) {
    added.push(await ipfs.addBlob(file, { cidVersion: 1 }));
  }
  const config = { chain_id: 31337, contracts: { ModelRegistry: registry } };
  const progress = [];
  const limits = await (await fetch("/api/uploads/limits")).json();
  const pieces = ipfs.carPieces(added, limits.piece_bytes).map((p) => p.size);
  const onProgress = (sent, total) => progress.push(sent / total);
  const options = { provider: window.ethereum, account, config, onProgress };
  const answer = await ipfs.uploadInPieces(added, options);
  return { answer, pieces, progress, cids: added.map((a) => a.cid.toString()) };
}
"""


def test_page_uploads_200_mb_in_pieces__each_piece_bounded__stored_and_decrypts(
    site: dict[str, Any], wallet_page: Any, relayer: tuple[Path, Any]
) -> None:
    from daimm.crypto import KeyEnvelope, unwrap_key
    from daimm.ipfs.multiformats import CID

    _, private = relayer
    result = wallet_page.evaluate(PIECES_JS, _upload_args(private, megabytes=PIECES_MB))
    # No request body was larger than the server's piece limit (it refuses larger ones).
    assert len(result["pieces"]) >= PIECES_MB // 16 and max(result["pieces"]) <= PIECE_BYTES
    assert result["progress"] == sorted(result["progress"]) and result["progress"][-1] == 1.0
    assert [r["kind"] for r in result["answer"]["roots"]] == ["ciphertext", "envelope", "card"]
    cipher_cid, envelope_cid, _ = (CID.parse(c) for c in result["cids"])
    envelope = io.BytesIO()
    fetch_file(envelope_cid, site["store"], envelope)
    content_key = unwrap_key(KeyEnvelope.from_json(envelope.getvalue()), private)
    ciphertext = site["work"] / "pieces.enc"
    with ciphertext.open("wb") as fh:
        fetch_file(cipher_cid, site["store"], fh)  # every block checked against its CID
    with ciphertext.open("rb") as fh, open(os.devnull, "wb") as null:
        written = decrypt_stream(fh, null, content_key, model_associated_data(7, 1))
    assert written == PIECES_MB << 20
    ciphertext.unlink()


STREAM_MB = 400
STREAM_JS = """
async ({ account, recipient, registry, card, megabytes }) => {
  const { aead, envelope, ipfs } = window.daimmCreator;
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const plain = new Blob(Array.from({ length: megabytes * 16 }, () => chunk));
  const key = aead.generateContentKey();
  const wrapped = envelope.envelopeToJson(await envelope.wrapKey(key, [recipient]));
  const config = { chain_id: 31337, contracts: { ModelRegistry: registry } };
  const phases = [];
  const onProgress = (phase, done, total) => phases.push([phase, done / total]);
  const { answer, cids } = await ipfs.encryptAndUploadInPieces(
    plain, key, aead.modelAssociatedData(7n, 1n), [new Blob([wrapped]), new Blob([card])],
    { provider: window.ethereum, account, config, onProgress });
  return { answer, cids, phases };
}
"""


def test_page_encrypts_and_uploads_400_mb_in_two_passes__nothing_gathered__decrypts(
    site: dict[str, Any], wallet_page: Any, relayer: tuple[Path, Any]
) -> None:
    from daimm.crypto import KeyEnvelope, unwrap_key
    from daimm.ipfs.multiformats import CID

    _, private = relayer
    result = wallet_page.evaluate(STREAM_JS, _upload_args(private, megabytes=STREAM_MB))
    assert [r["kind"] for r in result["answer"]["roots"]] == ["ciphertext", "envelope", "card"]
    hashing = [p for phase, p in result["phases"] if phase == "hash"]
    uploading = [p for phase, p in result["phases"] if phase == "upload"]
    assert len(uploading) >= STREAM_MB // 16 and uploading == sorted(uploading)
    assert hashing == sorted(hashing) and uploading[-1] == 1.0
    cipher_cid, envelope_cid, _ = (CID.parse(c) for c in result["cids"])
    envelope = io.BytesIO()
    fetch_file(envelope_cid, site["store"], envelope)
    content_key = unwrap_key(KeyEnvelope.from_json(envelope.getvalue()), private)
    ciphertext = site["work"] / "stream.enc"
    with ciphertext.open("wb") as fh:
        fetch_file(cipher_cid, site["store"], fh)
    with ciphertext.open("rb") as fh, open(os.devnull, "wb") as null:
        written = decrypt_stream(fh, null, content_key, model_associated_data(7, 1))
    assert written == STREAM_MB << 20
    ciphertext.unlink()
