"""Web benchmark: ``python bench/web_bench.py`` writes bench/results/web.json.

Page latency of `daimm web` over a catalog of 10,000 models (``--models``), on loopback:

- the catalog is built by ``bench/catalog_data.py``'s :func:`populate` (synthetic events folded by
  the real indexer; cached in a SQLite file between runs, since building 10,000 models takes about
  a minute and a half);
- the server is :func:`daimm.web.app.create_app` under uvicorn (one worker, its own process, the
  way `daimm web` runs it), its RPC endpoint an anvil with the catalog's chain id (the pages probe
  it every two seconds for their "chain unreachable" banner);
- an async httpx client here requests, at 1 and 16 concurrent clients: the search page ``/`` with
  a text query, the same with filters (task, highest price, lowest rating, sort by price), the
  JSON search ``/api/models``, and the model page ``/models/{id}`` of random models; p50, p99 and
  requests per second each. Queries and ids are drawn before timing from a fixed seed; every
  answer must be 200.

And the creator's encryption, the browser against Python in the same run
(``--only-encrypt`` runs just this part and updates those keys of web.json):
``browser_encrypt_mb_s`` is ``daimm-creator.js``'s ``encryptBlob`` in headless Chromium (a File-like
Blob in, the ciphertext gathered by ``aead.blobSink`` as the publish page does),
``browser_seal_only_mb_s`` the same with the sealed segments dropped, and ``python_encrypt_mb_s``
``daimm.crypto.encrypt_stream`` from a file to a file (what `daimm pack encrypt` does), over the
same size of plaintext with 1 MiB segments, runs alternating, best of three each (MB = 10^6 bytes).
``browser_js_heap_*`` is the page's JS heap (CDP ``Performance.getMetrics`` ``JSHeapUsedSize``,
sampled every 50 ms) while it encrypts a 200 MB file with a progress callback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog_data import _ADDRESSES, _TASKS, AIMT_ADDRESS, CHAIN_ID, populate  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "web.json"
LEVELS = (1, 16)
NETWORK = "bench:synthetic"
ETH = "0x" + "00" * 20


# ---------------------------------------------------------------------------- encryption
ENCRYPT_MB = 256
MEMORY_MB = 200
RUNS = 3
_BROWSER_SETUP_JS = """
async (megabytes) => {
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  window.__plain = new Blob(Array.from({ length: megabytes * 16 }, () => chunk));
  await window.__plain.slice(0, 1).arrayBuffer();  // registered with the blob store
}
"""
# One timed run in the page: `collect` gathers the ciphertext as the publish page does
# (aead.blobSink: Blob parts of 16 MiB), otherwise the sealed segments are dropped (sealing only).
_BROWSER_ENCRYPT_JS = """
async ({ megabytes, collect }) => {
  const { aead } = window.daimmCreator;
  const key = aead.generateContentKey();
  const ad = aead.modelAssociatedData(7n, 1n);
  const gathered = aead.blobSink();
  const t0 = performance.now();
  await aead.encryptBlob(window.__plain, collect ? gathered.sink : async () => {}, key, ad);
  const sealed = gathered.blob();
  const seconds = (performance.now() - t0) / 1000;
  const expected = aead.ciphertextSize(megabytes << 20);
  if (collect && sealed.size !== expected) throw new Error("wrong size");
  return megabytes * 1.048576 / seconds;
}
"""
# The memory run: started without waiting, sampled from outside through CDP while it runs.
_BROWSER_MEMORY_JS = """
(megabytes) => {
  const { aead } = window.daimmCreator;
  window.__progress = [];
  const gathered = aead.blobSink();
  const onProgress = (done, total) => window.__progress.push(done / total);
  window.__memoryRun = aead.encryptBlob(window.__plain, gathered.sink, aead.generateContentKey(),
      aead.modelAssociatedData(7n, 1n), { onProgress })
    .then(() => { window.__sealedSize = gathered.blob().size; });
}
"""


def _chromium_rss_mib() -> tuple[float, float]:
    """(the largest renderer's RSS, all Chromium processes' RSS) in MiB: every Chromium process
    descends from this one, through Playwright's driver. (0, 0) without psutil."""
    try:
        import psutil
    except ImportError:
        return 0.0, 0.0
    renderer = total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chromium" not in child.name():
                continue
            rss = child.memory_info().rss
            total += rss
            if "--type=renderer" in child.cmdline():
                renderer = max(renderer, rss)
        except psutil.Error:
            continue
    return renderer / (1 << 20), total / (1 << 20)


def _heap_mib(cdp: Any) -> float:
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return float(metrics["JSHeapUsedSize"]) / (1 << 20)


def browser_memory(page: Any, url: str, megabytes: int = MEMORY_MB) -> dict[str, Any]:
    """JSHeapUsedSize (CDP Performance.getMetrics) while a fresh page encrypts ``megabytes``."""
    page.set_default_timeout(600_000)
    page.goto(url)
    page.wait_for_function("() => window.daimmCreator !== undefined")
    page.evaluate(_BROWSER_SETUP_JS, megabytes)  # the file the user picked, before the baseline
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("HeapProfiler.collectGarbage")
    before = _heap_mib(cdp)
    rss_before = _chromium_rss_mib()
    page.evaluate(_BROWSER_MEMORY_JS, megabytes)
    samples: list[float] = []
    rss: list[tuple[float, float]] = []
    progress_seen: set[float] = set()
    while True:
        samples.append(_heap_mib(cdp))
        rss.append(_chromium_rss_mib())
        state = page.evaluate("() => [window.__sealedSize, window.__progress.at(-1) ?? 0]")
        progress_seen.add(state[1])
        if state[0] is not None:
            break
        time.sleep(0.02)
    cdp.send("HeapProfiler.collectGarbage")
    after = _heap_mib(cdp)
    time.sleep(1)
    rss_after = _chromium_rss_mib()
    return {
        "browser_memory_test_mb": megabytes,
        "browser_js_heap_before_mib": round(before, 1),
        "browser_js_heap_peak_mib": round(max(samples), 1),
        "browser_js_heap_after_gc_mib": round(after, 1),
        "browser_renderer_rss_before_mib": round(rss_before[0], 1),
        "browser_renderer_rss_peak_mib": round(max(r for r, _ in rss), 1),
        "browser_renderer_rss_after_gc_mib": round(rss_after[0], 1),
        "browser_all_processes_rss_before_mib": round(rss_before[1], 1),
        "browser_all_processes_rss_peak_mib": round(max(t for _, t in rss), 1),
        "browser_memory_samples": len(samples),
        "browser_progress_values_seen": len(progress_seen),
    }


def encrypt_throughput(megabytes: int = ENCRYPT_MB) -> dict[str, Any]:
    """MB/s of the browser module's and the Python package's encryption, same machine, same run.

    The runs alternate (browser, Python, browser, ...) so both see the same load on the shared
    cores; best of ``RUNS`` each.
    """
    import shutil
    import threading

    from playwright.sync_api import sync_playwright

    from daimm.crypto import encrypt_stream, generate_content_key, model_associated_data

    bundle = ROOT / "src" / "daimm" / "web" / "static" / "daimm-creator.js"
    if not bundle.exists():
        raise SystemExit("the creator bundle is missing: run `make web`")
    with tempfile.TemporaryDirectory(prefix="daimm-encrypt-bench-") as tmp:
        folder = Path(tmp)
        shutil.copy(bundle, folder / "daimm-creator.js")
        (folder / "index.html").write_text('<script src="/daimm-creator.js"></script>')
        source, target = folder / "plain.bin", folder / "plain.bin.enc"
        with source.open("wb") as fh:
            for _ in range(megabytes):
                fh.write(os.urandom(1 << 20))
        key, ad = generate_content_key(), model_associated_data(7, 1)

        def python_run() -> float:
            start = time.perf_counter()
            with source.open("rb") as src, target.open("wb") as dst:
                encrypt_stream(src, dst, key, ad)
            return megabytes * 1.048576 / (time.perf_counter() - start)

        handler = functools.partial(_QuietHandler, directory=str(folder))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        rates: dict[str, list[float]] = {"browser": [], "seal": [], "python": []}
        load_before = os.getloadavg()[0]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
                )
                page = browser.new_page()
                page.set_default_timeout(600_000)
                url = f"http://127.0.0.1:{httpd.server_port}/index.html"
                page.goto(url)
                page.wait_for_function("() => window.daimmCreator !== undefined")
                page.evaluate(_BROWSER_SETUP_JS, megabytes)
                for _ in range(RUNS):
                    args = {"megabytes": megabytes, "collect": True}
                    rates["browser"].append(float(page.evaluate(_BROWSER_ENCRYPT_JS, args)))
                    rates["python"].append(python_run())
                    args["collect"] = False
                    rates["seal"].append(float(page.evaluate(_BROWSER_ENCRYPT_JS, args)))
                page.close()
                memory = browser_memory(browser.new_page(), url)
                version = browser.version
                browser.close()
        finally:
            httpd.shutdown()
    best = {k: max(v) for k, v in rates.items()}
    return {
        "browser_encrypt_mb_s": round(best["browser"], 1),
        "python_encrypt_mb_s": round(best["python"], 1),
        "browser_to_python_ratio": round(best["browser"] / best["python"], 3),
        "browser_seal_only_mb_s": round(best["seal"], 1),
        "encrypt_runs_mb_s": {k: [round(x, 1) for x in v] for k, v in rates.items()},
        "encrypt_load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "encrypt_bench": f"{megabytes} MiB, 1 MiB segments, best of {RUNS}, runs alternating;"
        f" Chromium {version} (WebCrypto, Blob in, ciphertext gathered by aead.blobSink) vs"
        " daimm.crypto.encrypt_stream file to file; seal only: the same without gathering",
        **memory,
    }


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


# ---------------------------------------------------------------------------- the catalog
def catalog_file(n_models: int, seed: int, folder: Path) -> Path:
    """A SQLite catalog of ``n_models`` synthetic models, built once and reused."""
    from daimm.catalog import CatalogStore
    from daimm.catalog.queries import catalog_status

    path = folder / f"daimm-web-bench-{n_models}-{seed}.sqlite"
    url = f"sqlite:///{path}"
    if path.exists():
        if catalog_status(CatalogStore(url)).models == n_models:
            return path
        for stale in folder.glob(path.name + "*"):
            stale.unlink()
    started = time.monotonic()
    print(f"building a catalog of {n_models} models in {path} ...", flush=True)
    populate(CatalogStore(url), n_models, seed)
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return path


def deployments_file(folder: Path) -> Path:
    """The deployment the synthetic catalog belongs to (the addresses its events come from)."""
    path = folder / "deployments.json"
    record = {
        "chain_id": CHAIN_ID,
        "block": 1,
        "contracts": {**_ADDRESSES, "AIModelToken": AIMT_ADDRESS},
        "currencies": {"ETH": ETH, "AIMT": AIMT_ADDRESS},
    }
    path.write_text(json.dumps({NETWORK: record}, indent=2))
    return path


# ---------------------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within 60 s")
        time.sleep(0.2)


def answers(url: str, method: str = "GET", **kwargs: Any) -> bool:
    try:
        return httpx.request(method, url, timeout=2, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False


def start_anvil(port: int) -> subprocess.Popen[bytes] | None:
    """anvil with the catalog's chain id, or None when anvil is not installed."""
    from daimm.errors import ConfigError
    from daimm.stack import find_anvil

    try:
        anvil = find_anvil()
    except ConfigError:
        return None
    process = subprocess.Popen(
        [anvil, "--port", str(port), "--chain-id", str(CHAIN_ID), "--silent"],
        start_new_session=True,
    )
    probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    wait_for(lambda: answers(f"http://127.0.0.1:{port}", "POST", json=probe), "anvil", process)
    return process


def start_server(port: int, catalog: Path, deployments: Path, rpc_url: str) -> Any:
    config = {
        "catalog_url": f"sqlite:///{catalog}",
        "rpc_url": rpc_url,
        "deployments": str(deployments),
        "network": NETWORK,
    }
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", json.dumps(config), "--port", str(port)],
        start_new_session=True,
    )
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/api/health"), "the web server", process)
    return process


def serve(config_json: str, port: int) -> None:
    """The server process: `daimm web`'s app under uvicorn, one worker."""
    import uvicorn

    from daimm.web.app import create_app
    from daimm.web.config import WebConfig

    app = create_app(WebConfig(**json.loads(config_json)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ---------------------------------------------------------------------------- the load
def scenarios(n_models: int, count: int, seed: int) -> dict[str, list[str]]:
    """Each scenario's request paths, drawn before timing."""
    rng = random.Random(seed)
    words = sorted({w for subjects, tags in _TASKS.values() for w in (*subjects, *tags)})
    tasks = sorted(_TASKS)

    def text() -> str:
        return str(httpx.QueryParams({"q": rng.choice(words)}))

    def filters() -> str:
        task = rng.choice(tasks)  # and a word of that task's vocabulary, as a user would
        subjects, tags = _TASKS[task]
        params = {
            "q": rng.choice((*subjects, *tags)),
            "task": task,
            "max_price": f"{rng.choice((5, 20, 50))} AIMT",
            "min_rating": str(rng.choice((2, 3, 4))),
            "sort": "price",
        }
        return str(httpx.QueryParams(params))

    return {
        "search_text": [f"/?{text()}" for _ in range(count)],
        "search_filters": [f"/?{filters()}" for _ in range(count)],
        "api_models": [f"/api/models?{text()}&sort=rating" for _ in range(count)],
        "model_page": [f"/models/{rng.randint(1, n_models)}" for _ in range(count)],
    }


async def run_level(
    base: str, paths: list[str], concurrency: int, time_limit_s: float
) -> dict[str, Any]:
    """Send ``paths`` with ``concurrency`` clients; latency of each answer.

    NOTE: each simulated client has its own httpx client (one keep-alive connection), as in
    relayer_bench.py: one pool shared by many tasks throttles the load generator itself.
    """
    latencies: list[float] = []
    failures: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(concurrency)]
    try:
        for i, path in enumerate(paths[: max(10, concurrency)]):  # warm-up: connections, caches
            await clients[i % concurrency].get(path)
        deadline = time.monotonic() + time_limit_s

        async def worker(client: httpx.AsyncClient) -> None:
            while time.monotonic() < deadline:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {path}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for client in clients))
        wall = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(ms),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "rps": round(len(ms) / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000, help="catalog size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300, help="per scenario and level")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per level")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-encrypt",
        action="store_true",
        help="measure only the browser vs Python encryption and update those keys of --out",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.only_encrypt:
        out = json.loads(args.out.read_text()) if args.out.exists() else {}
        out.update(encrypt_throughput())
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps({k: v for k, v in out.items() if k.startswith(("browser", "python"))}))
        return

    catalog = catalog_file(args.models, args.seed, args.cache_dir)
    work = Path(tempfile.mkdtemp(prefix="daimm-web-bench-"))
    anvil = server = None
    try:
        rpc_port = free_port()
        anvil = start_anvil(rpc_port)
        rpc_url = f"http://127.0.0.1:{rpc_port}"
        port = free_port()
        server = start_server(port, catalog, deployments_file(work), rpc_url)
        base = f"http://127.0.0.1:{port}"
        results: dict[str, dict[str, Any]] = {}
        for name, paths in scenarios(args.models, args.requests, args.seed).items():
            results[name] = {}
            for level in LEVELS:
                cell = asyncio.run(run_level(base, paths, level, args.time_limit))
                results[name][str(level)] = cell
                print(
                    f"{name:<15} {level:>2} clients: p50 {cell['p50_ms']:7.1f} ms"
                    f"  p99 {cell['p99_ms']:7.1f} ms  {cell['rps']:6.1f} req/s"
                    f"  ({cell['requests']} requests, {cell['failures']} failed)",
                    flush=True,
                )
    finally:
        stop(server)
        stop(anvil)
    out = {
        "models": args.models,
        "seed": args.seed,
        "requests_per_cell": args.requests,
        "server": "daimm.web.app.create_app under uvicorn, 1 worker, own process",
        "rpc": "anvil" if anvil is not None else "none (anvil not installed)",
        "catalog": "SQLite (FTS5), bench/catalog_data.py populate()",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": results,
        **encrypt_throughput(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    failed = sum(c["failures"] for s in results.values() for c in s.values())
    print(f"wrote {args.out}")
    if failed:
        sys.exit(f"{failed} requests did not answer 200 (see failure_examples in {args.out})")


if __name__ == "__main__":
    main()
