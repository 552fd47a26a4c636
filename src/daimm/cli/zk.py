"""``daimm verify-proof``: check a zero-knowledge proof of a prediction offline (docs/ZK.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from daimm.errors import ValidationError


def _hex_int(value: str) -> int:
    try:
        return int(value, 16)
    except ValueError:
        raise ValidationError(f"not a hex number: {value!r}") from None


@click.command("verify-proof")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--circuit",
    "circuit_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with the model version's circuit.json, settings.json and vk.key.",
)
@click.option(
    "--srs",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The public ceremony's SRS file (its hash must be pinned).",
)
@click.option(
    "--weights-hash",
    required=True,
    help="The weights hash registered on chain for the model version (0x hex).",
)
@click.option("--instances-hash", default=None, help="The relayer's claimed instancesHash (0x).")
@click.option(
    "--input",
    "input_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='The request body ({"inputs": {name: [[...]]}}): its inputs must be the proof\'s.',
)
@click.option(
    "--allow-test-srs",
    is_flag=True,
    help="Accept an SRS whose hash is not pinned. TESTS ONLY: its maker can forge proofs.",
)
def verify_proof(
    proof_file: Path,
    circuit_dir: Path,
    srs: Path,
    weights_hash: str,
    instances_hash: str | None,
    input_file: Path | None,
    allow_test_srs: bool,
) -> None:
    """Check PROOF_FILE: the model version's weights, the receipt's claim, the request's inputs.

    Example:

        daimm verify-proof proof.json --circuit ./circuit --srs kzg15.srs \\
            --weights-hash 0x1790... --instances-hash 0xab12... --input request.json
    """
    from daimm.zk import Proof, load_circuit
    from daimm.zk.prover import check_proof

    circuit = load_circuit(circuit_dir)
    proof = Proof.from_file(proof_file)
    inputs = None
    if input_file is not None:
        try:
            (row,) = json.loads(input_file.read_text())["inputs"].values()
            inputs = [float(v) for v in (row[0] if isinstance(row[0], list) else row)]
        except (ValueError, KeyError, TypeError, IndexError):
            raise ValidationError(
                f'{input_file}: expected {{"inputs": {{name: [[numbers]]}}}} with one input'
            ) from None
    claimed = bytes.fromhex(instances_hash.removeprefix("0x")) if instances_hash else None
    check_proof(
        circuit,
        proof,
        srs,
        weights_hash=_hex_int(weights_hash),
        instances_hash=claimed,
        inputs=inputs,
        allow_test_srs=allow_test_srs,
    )
    click.echo(
        f"OK: the proof verifies with weights hash {proof.weights_hash:#x}"
        + (" and the relayer's claim" if claimed else "")
        + (" and the request's inputs" if inputs is not None else "")
    )


@click.command("prove")
@click.argument("answer_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--relayer-url", required=True, help="The relayer that answered, e.g. http://127.0.0.1:8700."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("proof.json"),
    show_default=True,
    help="Where to write the proof.",
)
@click.option("--timeout", "timeout_s", default=900.0, show_default=True, help="Seconds to wait.")
def prove(answer_file: Path, relayer_url: str, out: Path, timeout_s: float) -> None:
    """Ask the relayer to prove the answer in ANSWER_FILE (a provable model's), and save the proof.

    Example:

        daimm prove answer.json --relayer-url http://127.0.0.1:8700 --out proof.json
    """
    from daimm.client import fetch_proof

    try:
        claim = json.loads(answer_file.read_text())["proofClaim"]
        digest = str(claim["receipt"])
    except (ValueError, KeyError, TypeError):
        raise ValidationError(
            f"{answer_file} holds no proofClaim: only answers of provable models can be proven"
        ) from None
    document = fetch_proof(
        relayer_url, digest, timeout_s=timeout_s, on_state=lambda s: click.echo(f"proof: {s}")
    )
    out.write_text(json.dumps(document))
    click.echo(
        f"wrote {out}; check it with `daimm verify-proof {out} --instances-hash "
        f"{claim['instancesHash']} ...`"
    )
