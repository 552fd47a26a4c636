"""Proof jobs at the relayer: issued receipts kept for a time, a bounded queue, job lifecycle.

The lifecycle tests stand in for ezkl with a prover that returns the session's real proof of the
same row (tests/utils/zk.py): a fresh ezkl proof takes about a minute here, and what is tested is
the queue's plumbing; the proof itself is then checked for real with ``check_proof``.
"""

from __future__ import annotations

import time

import pytest

from daimm.errors import ProofError, RequestRefusedError
from daimm.relayer.proofs import IssuedReceipt, JobState, ProofJobs, ProvableModel
from daimm.zk import Proof, instances_hash
from daimm.zk.prover import check_proof

CID = "bafyweights"
DIGEST = bytes(range(32))


def _jobs(zk_sample, tmp_path, prover=None, **kwargs):
    models = {(1, CID): ProvableModel(zk_sample.circuit, zk_sample.srs)}
    if prover is None:

        def prover(model, row, out):
            return zk_sample.honest.document

    return ProofJobs(models, tmp_path, prover=prover, **kwargs)


def _issued(zk_sample, *, issued_at=None):
    return IssuedReceipt(
        1,
        CID,
        tuple(float(v) for v in zk_sample.sample.x_test[0]),
        zk_sample.honest.io_instances,
        time.time() if issued_at is None else issued_at,
    )


def _refused(call, *args):
    with pytest.raises(RequestRefusedError) as info:
        call(*args)
    return info.value.status, info.value.code


def test_submit__unknown_receipt__404(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path)

    assert _refused(jobs.submit, "0x" + DIGEST.hex()) == (404, "unknown_receipt")


def test_submit__not_a_digest__422(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path)

    assert _refused(jobs.submit, "0x1234") == (422, "invalid_request")


def test_submit__flood_beyond_the_queue__429_and_queued_jobs_kept(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path, max_queued=2)
    jobs.record(DIGEST, _issued(zk_sample))
    first, second = jobs.submit(DIGEST.hex()), jobs.submit(DIGEST.hex())

    refusals = {_refused(jobs.submit, DIGEST.hex()) for _ in range(50)}

    assert refusals == {(429, "proof_queue_full")}
    assert {jobs.get(first.job_id).state, jobs.get(second.job_id).state} == {JobState.QUEUED}


def test_run_one__queued_job__done_with_a_proof_bound_to_the_signed_instances(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path)
    issued = _issued(zk_sample)
    jobs.record(DIGEST, issued)
    job = jobs.submit("0x" + DIGEST.hex())

    assert jobs.run_one()

    done = jobs.get(job.job_id)
    assert done.state is JobState.DONE
    proof = Proof.from_document(done.proof)
    check_proof(
        zk_sample.circuit,
        proof,
        zk_sample.srs,
        weights_hash=zk_sample.circuit.weights_hash,
        instances_hash=instances_hash(issued.io_instances),
        inputs=issued.row,
        allow_test_srs=True,
    )


def test_run_one__prover_fails__job_failed_with_the_reason(zk_sample, tmp_path):
    def failing(model, row, out):
        raise ProofError("ezkl step 'prove' took longer than 600 s")

    jobs = _jobs(zk_sample, tmp_path, prover=failing)
    jobs.record(DIGEST, _issued(zk_sample))
    job = jobs.submit(DIGEST.hex())

    jobs.run_one()

    failed = jobs.get(job.job_id)
    assert (failed.state, failed.error) == (
        JobState.FAILED,
        "ezkl step 'prove' took longer than 600 s",
    )
    assert failed.to_json()["state"] == "failed"


def test_submit__receipt_older_than_the_retention__404(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path, retention_s=60)
    jobs.record(DIGEST, _issued(zk_sample, issued_at=time.time() - 61))

    assert _refused(jobs.submit, DIGEST.hex()) == (404, "unknown_receipt")


def test_record__beyond_max_receipts__oldest_dropped(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path, max_receipts=1)
    jobs.record(DIGEST, _issued(zk_sample))
    jobs.record(b"\x01" * 32, _issued(zk_sample))

    assert _refused(jobs.submit, DIGEST.hex()) == (404, "unknown_receipt")
    assert jobs.submit((b"\x01" * 32).hex()).state is JobState.QUEUED


def test_record__with_a_database__receipts_survive_a_restart_until_the_retention(
    zk_sample, tmp_path
):
    db = tmp_path / "receipts.sqlite3"
    jobs = _jobs(zk_sample, tmp_path, retention_s=60, db=db)
    jobs.record(DIGEST, _issued(zk_sample))
    jobs.record(b"\x01" * 32, _issued(zk_sample, issued_at=time.time() - 61))

    restarted = _jobs(zk_sample, tmp_path, retention_s=60, db=db)

    kept = restarted.receipt("0x" + DIGEST.hex())
    assert kept == _issued(zk_sample, issued_at=kept.issued_at)
    assert restarted.receipt((b"\x01" * 32).hex()) is None  # older than the retention
    assert restarted.prove_receipt(DIGEST.hex()) == zk_sample.honest.document


def test_get__finished_longer_than_keep__404(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path, keep_s=0)
    jobs.record(DIGEST, _issued(zk_sample))
    job = jobs.submit(DIGEST.hex())
    jobs.run_one()
    time.sleep(0.01)

    assert _refused(jobs.get, job.job_id) == (404, "unknown_job")


def test_thread__started__proves_queued_jobs(zk_sample, tmp_path):
    jobs = _jobs(zk_sample, tmp_path)
    jobs.record(DIGEST, _issued(zk_sample))
    jobs.start()
    try:
        job = jobs.submit(DIGEST.hex())
        for _ in range(500):
            if jobs.get(job.job_id).state is JobState.DONE:
                break
            time.sleep(0.01)
    finally:
        jobs.stop()

    assert jobs.get(job.job_id).state is JobState.DONE


# ------------------------------------------------------------------ through the relayer's HTTP API
@pytest.fixture
def provable_relayer(create_services, make_client, chain, user, zk_sample, tmp_path):
    """A relayer serving the provable sample as model 1 (weights ``bafy-model-1``), proving it.

    ``gate`` holds the stand-in prover (see the module's NOTE) until set.
    """
    import threading

    gate = threading.Event()

    def prover(model, row, out):
        gate.wait(30)
        return zk_sample.honest.document

    chain.authorised.add(1)
    chain.access.add((1, user.address))
    jobs = ProofJobs(
        {(1, "bafy-model-1"): ProvableModel(zk_sample.circuit, zk_sample.srs)},
        tmp_path / "proofs",
        prover=prover,
        max_queued=1,
    )
    services = create_services(models={1: zk_sample.sample.path.read_bytes()}, proofs=jobs)
    client, http = make_client(services, bytes(user.key))
    with http:
        yield client, http, gate
        gate.set()


def _predict(client, http, row):
    import json

    body = json.dumps({"inputs": {"input": [list(map(float, row))]}}).encode()
    return http.post("/v1/models/1/predict", content=body, headers=client.signed_headers(1, body))


def test_predict__provable_model__answer_carries_a_signed_claim_a_proof_then_honours(
    provable_relayer, zk_sample, relayer_account
):
    from daimm import eip712

    client, http, gate = provable_relayer
    gate.set()
    answer = _predict(client, http, zk_sample.sample.x_test[0]).json()
    claim, receipt = answer["proofClaim"], answer["receipt"]
    digest = eip712.receipt_digest(
        eip712.Receipt.from_message(receipt), receipt["chainId"], receipt["verifyingContract"]
    )
    eip712.verify_proof_claim(
        digest, bytes.fromhex(claim["instancesHash"][2:]), receipt["chainId"],
        receipt["verifyingContract"], claim["signature"], relayer_account.address,
    )  # fmt: skip
    assert claim["receipt"] == "0x" + digest.hex()

    job = http.post("/v1/proofs", json={"receipt": claim["receipt"]})
    assert job.status_code == 202
    for _ in range(500):
        state = http.get(f"/v1/proofs/{job.json()['job']}").json()
        if state["state"] == "done":
            break
        time.sleep(0.01)

    check_proof(
        zk_sample.circuit,
        Proof.from_document(state["proof"]),
        zk_sample.srs,
        weights_hash=zk_sample.circuit.weights_hash,
        instances_hash=bytes.fromhex(claim["instancesHash"][2:]),
        inputs=zk_sample.sample.x_test[0],
        allow_test_srs=True,
    )


def test_request_proof__queue_full__429_and_predictions_still_served(provable_relayer, zk_sample):
    client, http, _gate = provable_relayer  # the gate stays shut: the first proof keeps running
    claim = _predict(client, http, zk_sample.sample.x_test[0]).json()["proofClaim"]
    assert http.post("/v1/proofs", json={"receipt": claim["receipt"]}).status_code == 202

    flood = {
        http.post("/v1/proofs", json={"receipt": claim["receipt"]}).status_code for _ in range(20)
    }

    assert flood == {429}
    assert _predict(client, http, zk_sample.sample.x_test[1]).status_code == 200


def test_request_proof__relayer_without_provable_models__404(create_services, make_client, user):
    client, http = make_client(create_services(), bytes(user.key))

    response = http.post("/v1/proofs", json={"receipt": "0x" + "00" * 32})

    assert (response.status_code, response.json()["error"]) == (404, "proofs_disabled")


def test_fetch_proof__provable_answer__returns_the_proof_after_its_states(
    provable_relayer, zk_sample
):
    from daimm.client import fetch_proof

    client, http, gate = provable_relayer
    gate.set()
    claim = _predict(client, http, zk_sample.sample.x_test[0]).json()["proofClaim"]
    states = []

    document = fetch_proof(
        "http://testserver", claim["receipt"], http=http, poll_s=0.01, on_state=states.append
    )

    assert Proof.from_document(document).instances_hash.hex() == claim["instancesHash"][2:]
    assert states[-1] == "done" and set(states) <= {"queued", "proving", "done"}


def test_fetch_proof__receipt_not_issued_here__refused_404(provable_relayer):
    from daimm.client import fetch_proof

    _client, http, _gate = provable_relayer

    with pytest.raises(RequestRefusedError) as info:
        fetch_proof("http://testserver", "0x" + "ab" * 32, http=http)
    assert (info.value.status, info.value.code) == (404, "unknown_receipt")


def test_cli_prove__answer_without_a_claim__one_error_line(tmp_path, capsys):
    from daimm.cli import main

    answer = tmp_path / "answer.json"
    answer.write_text('{"outputs": {}, "receipt": {}}')

    with pytest.raises(SystemExit) as exit_info:
        main(["prove", str(answer), "--relayer-url", "http://127.0.0.1:9"])

    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.startswith("Error: ") and "holds no proofClaim" in err
