"""The ezkl worker: one ezkl step per process (``python -m daimm.zk._worker JOB.json``).

ezkl runs in a child process because its proofs take hundreds of megabytes the parent should not
keep, its EVM helpers are async and the interpreter may crash on exit after them, and a timeout must
be able to kill it. The job file names the step and its paths; the result is written as JSON to
``job["result"]`` (ezkl prints its own tables on stdout), then the process leaves with ``os._exit``
so no interpreter shutdown runs after ezkl's threads.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
from pathlib import Path
from typing import Any


def _run_args(job: dict[str, Any]) -> Any:
    import ezkl

    args = ezkl.PyRunArgs()
    # NOTE: inputs and outputs are public instances (the chain hashes them and compares with the
    # relayer's signed claim); the weights are hashed: private, bound to the public instance 0.
    # (ezkl's stub does not declare these attributes; they exist at run time.)
    args.input_visibility = "public"  # type: ignore[attr-defined]
    args.output_visibility = "public"  # type: ignore[attr-defined]
    args.param_visibility = "hashed"  # type: ignore[attr-defined]
    # NOTE: range checks decomposed in 4 legs of base 1024 (a 2**40 range) instead of ezkl's
    # default 2 legs of 16,384: the lookup table is 16x smaller, which brings the sample from
    # 2**15 to 2**13 rows (setup, proof and memory about 3-4x smaller).
    args.decomp_base = job.get("decomp_base", 1024)  # type: ignore[attr-defined]
    args.decomp_legs = job.get("decomp_legs", 4)  # type: ignore[attr-defined]
    return args


def _settings(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    ezkl.gen_settings(job["model"], job["settings"], py_run_args=_run_args(job))
    ezkl.calibrate_settings(
        job["calibration"],
        job["model"],
        job["settings"],
        "resources",
        2.0,
        [job["scale"]],
        [1],
        job["max_logrows"],
    )
    ezkl.compile_circuit(job["model"], job["compiled"], job["settings"])
    settings = json.loads(Path(job["settings"]).read_text())
    return {"logrows": settings["run_args"]["logrows"], "num_rows": settings.get("num_rows")}


def _compile(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    ezkl.compile_circuit(job["model"], job["compiled"], job["settings"])
    return {}


def _setup(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    ezkl.setup(job["compiled"], job["vk"], job["pk"], job["srs"], None, False)
    witness = ezkl.gen_witness(job["input"], job["compiled"], None, None, None)
    return {"weights_hash": witness["processed_params"]["poseidon_hash"][0]}


def _witness(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    witness = ezkl.gen_witness(job["input"], job["compiled"], None, None, None)
    return {"inputs": witness["inputs"][0], "outputs": witness["outputs"][0]}


def _prove(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    ezkl.gen_witness(job["input"], job["compiled"], job["witness"], None, None)
    ezkl.prove(job["witness"], job["compiled"], job["pk"], job["proof"], job["srs"])
    return {}


def _verify(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    try:
        ok = bool(ezkl.verify(job["proof"], job["settings"], job["vk"], job["srs"], False))
    except Exception as exc:  # noqa: BLE001 - ezkl raises RuntimeError/ValueError for bad proofs
        return {"valid": False, "reason": str(exc)[:300]}
    return {"valid": ok}


def _evm_verifier(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    async def render() -> Any:
        return await ezkl.create_evm_verifier(
            job["vk"], job["settings"], job["sol"], job["abi"], job["srs"], False
        )

    try:
        asyncio.run(render())
    except RuntimeError as exc:
        # NOTE: ezkl writes the Solidity file, then tries to download solc to compile it (no
        # network here, and we compile with our own solc bridge): only that failure is tolerated.
        if "svm" not in str(exc) or not Path(job["sol"]).is_file():
            raise
    return {}


def _gen_srs(job: dict[str, Any]) -> dict[str, Any]:
    import ezkl

    ezkl.gen_srs(job["srs"], job["logrows"])
    return {}


_STEPS = {
    "settings": _settings,
    "compile": _compile,
    "setup": _setup,
    "witness": _witness,
    "prove": _prove,
    "verify": _verify,
    "evm_verifier": _evm_verifier,
    "gen_srs": _gen_srs,
}


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    try:
        result = _STEPS[job["step"]](job)
        code = 0
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises ProofError
        result, code = {"error": f"{type(exc).__name__}: {exc}"[:2000]}, 1
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(job["result"]).write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1])
