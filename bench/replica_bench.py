"""Relayer replicas benchmark: ``python bench/replica_bench.py`` adds ``replicas_*`` keys to
bench/results/relayer.json (the other keys, from relayer_bench.py, are kept).

On anvil (through ape-foundry) with the iris model of relayer_bench.py, at 64 concurrent clients,
requests per second of:

- one relayer process on SQLite (the default store; the reference);
- one relayer process on PostgreSQL (``state_url``);
- two relayer processes sharing that PostgreSQL database, the clients split between them (half
  each, as a round-robin load balancer would; no balancer process runs, so none takes a core).

PostgreSQL is the tests' throwaway server (``tests/utils/postgres.py``) with ``fsync`` on; the
relayer commits vouchers with ``synchronous_commit = on`` and nonces with ``off``. Requests are
licence-paid (each spends a nonce in the shared store) and signed before timing.

On a shared machine the requests per second say more about the other load than about the relayer,
so each run also reports the CPU time per request of the relayer processes (with their model
workers) and of PostgreSQL, from /proc, less what they burn idle (measured for ``IDLE_S`` before
the run): the ceiling a core count allows is cores / that time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import relayer_bench as rb

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 64
#: Seconds of idle CPU measured before each run, subtracted from the run's CPU.
IDLE_S = 5.0


async def _spread(urls: list[str], signed: list[Any], max_s: float) -> dict[str, Any]:
    """``CLIENTS`` clients split evenly over ``urls``; requests per second over all of them."""
    share = len(signed) // len(urls)
    started = time.perf_counter()
    runs = await asyncio.gather(
        *(rb._load(url, signed[i * share : (i + 1) * share], CLIENTS // len(urls), max_s)
          for i, url in enumerate(urls))
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    errors: dict[int, int] = {}
    for run in runs:
        for status, n in run["errors"].items():
            errors[status] = errors.get(status, 0) + n
    return {
        "rps": sum(run["count"] for run in runs) / elapsed,
        "p50_ms": max(run["p50_ms"] for run in runs),
        "elapsed_s": elapsed,
        "errors": errors,
    }


def _cpu_s(roots: list[int]) -> float:
    """User + system CPU seconds of the process trees under ``roots`` (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in roots:
        for pid in rb._tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


def _store_us(location: str, count: int = 3000) -> dict[str, float]:
    """CPU and wall microseconds of the two store calls a licence-paid request makes."""
    from daimm.relayer.vouchers import VoucherStore

    store = VoucherStore(location)
    found: dict[str, float] = {}
    for op in ("nonce_used", "use_nonce"):
        cpu, wall = time.process_time(), time.perf_counter()
        for nonce in range(count):
            if op == "nonce_used":
                store.nonce_used("0x" + "aa" * 20, nonce)
            else:
                store.use_nonce("0x" + "aa" * 20, nonce, 2**40)
        found[f"{op}_cpu_us"] = round((time.process_time() - cpu) / count * 1e6, 1)
        found[f"{op}_wall_us"] = round((time.perf_counter() - wall) / count * 1e6, 1)
    store.close()
    return found


def _start(config: Path, log: Path, port: int) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config",
             str(config)], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
    rb._wait_http(f"http://127.0.0.1:{port}/v1/health", process, log)
    return process


def _measure(
    setup: dict[str, Any], uri: str, work: Path, name: str, state_url: str | None, replicas: int,
    body: bytes, args: argparse.Namespace, postgres_pid: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    from daimm.client import KeySigner, RelayerClient

    model_id = setup["model_ids"][0]
    processes, urls = [], []
    try:
        for i in range(replicas):
            port = rb._free_port()
            config = work / f"{name}-{i}.toml"
            rb._write_config(config, setup, uri, port, work)
            text = config.read_text().replace(
                f'db_path = "{work / "relayer.sqlite3"}"', f'db_path = "{work / name}.sqlite3"'
            )
            if state_url is not None:
                text = text.replace("[relayer.contracts]", f'state_url = "{state_url}"\n'
                                    "[relayer.contracts]")  # fmt: skip
            config.write_text(text)
            processes.append(_start(config, work / f"{name}.log", port))
            urls.append(f"http://127.0.0.1:{port}")
        client = RelayerClient(urls[0], KeySigner(setup["user_key"]),
                               expected_relayer=setup["relayer"])  # fmt: skip
        for url in urls:  # load the model, warm the access cache, in every replica
            for _ in range(5):
                rb.httpx.post(f"{url}/v1/models/{model_id}/predict", content=body,
                              headers=client.signed_headers(model_id, body),
                              timeout=60).raise_for_status()  # fmt: skip
        signed = rb._presign(client, model_id, body, args.requests)
        client.close()
        relayers = [process.pid for process in processes]
        servers = [] if postgres_pid is None else [postgres_pid]
        # What the processes burn idle (the log watcher's polls, timers) is not the requests'.
        idle = (_cpu_s(relayers), _cpu_s(servers), time.perf_counter())
        time.sleep(IDLE_S)
        before = (_cpu_s(relayers), _cpu_s(servers), time.perf_counter())
        idle_rate = [(before[i] - idle[i]) / (before[2] - idle[2]) for i in (0, 1)]
        run = asyncio.run(
            _spread([f"{u}/v1/models/{model_id}/predict" for u in urls], signed, args.max_seconds)
        )
        spent = time.perf_counter() - before[2]
        served = run["rps"] * run["elapsed_s"]
        for i, key in enumerate(("relayer_cpu_us", "postgres_cpu_us")):
            used = (_cpu_s([relayers, servers][i]) - before[i]) - idle_rate[i] * spent
            run[key] = max(0.0, used) / served * 1e6
        if run["errors"]:
            raise SystemExit(f"{name}: errors {run['errors']}")
        print(f"{name}: {run['rps']:.0f} rps, p50 {run['p50_ms']:.2f} ms, CPU per request:"
              f" relayer {run['relayer_cpu_us']:.0f} us, PostgreSQL {run['postgres_cpu_us']:.0f}"
              " us", flush=True)  # fmt: skip
        return run
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per run (max)")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="time limit per run")
    parser.add_argument("--out", type=Path, default=rb.RESULTS)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from ape import networks
    from tests.utils.postgres import PostgresServer

    model_bytes, rows = rb._onnx_helpers().iris_classifier()
    body = json.dumps({"inputs": {"input": rows[:1].tolist()}}).encode()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="daimm-replica-bench-"))
    found: dict[str, Any] = {}
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        setup = rb._setup_chain(work, model_bytes, 1)
        found["store_sqlite"] = _store_us(str(work / "store.sqlite3"))
        found["sqlite_1"] = _measure(setup, provider.uri, work, "sqlite", None, 1, body, args)
        with PostgresServer.running(durable=True) as server:
            found["store_pg"] = _store_us(server.create_database("store"))
            for n in (1, 2):
                url = server.create_database(f"replicas_{n}")
                pid = int((server.data / "postmaster.pid").read_text().split()[0])
                found[f"pg_{n}"] = _measure(setup, provider.uri, work, f"pg{n}", url, n, body,
                                            args, pid)  # fmt: skip

    cores = os.cpu_count() or 1
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update(
        {
            "replicas_rps_c64_1": round(found["pg_1"]["rps"], 1),
            "replicas_rps_c64_2": round(found["pg_2"]["rps"], 1),
            "replicas_rps_c64_sqlite": round(found["sqlite_1"]["rps"], 1),
            # CPU per request: the relayer process with its worker, and PostgreSQL's share.
            "replicas_cpu_us_per_request": {
                key: {
                    "relayer": round(run["relayer_cpu_us"], 1),
                    "postgres": round(run["postgres_cpu_us"], 1),
                }
                for key, run in (
                    ("sqlite", found["sqlite_1"]),
                    ("pg_1", found["pg_1"]),
                    ("pg_2", found["pg_2"]),
                )
            },  # fmt: skip
            # The store calls of one licence-paid request, in this process (the relayer's side).
            "replicas_store_us": {"sqlite": found["store_sqlite"], "pg": found["store_pg"]},
            # What the machine's cores allow the relayers and PostgreSQL at that CPU per request
            # (the load generator and anvil need their share too).
            "replicas_ceiling_rps": {
                key: round(cores * 1e6 / (run["relayer_cpu_us"] + run["postgres_cpu_us"]))
                for key, run in (
                    ("sqlite", found["sqlite_1"]),
                    ("pg_1", found["pg_1"]),
                    ("pg_2", found["pg_2"]),
                )
            },  # fmt: skip
            "replicas_notes": {
                "what": "licence-paid iris requests at 64 clients; _1 and _2 are relayer"
                " processes sharing one PostgreSQL state_url, _sqlite one process on SQLite",
                "balancing": "clients split evenly between replicas (no balancer process)",
                "postgres": "throwaway PostgreSQL 16 on a unix socket, fsync on, same machine",
                "machine": f"{os.cpu_count()} cores shared by the relayers, PostgreSQL, anvil"
                " and the load generator",
                "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            },
        }
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k.startswith("replicas_")}, indent=2))


if __name__ == "__main__":
    main()
