"""The proof pass-through's refusals (the forwarding itself runs in tests/e2e/test_web_proofs.py,
against a real relayer proving with ezkl)."""

from __future__ import annotations

UNKNOWN = "0x" + "ab" * 20


def test_api_request_proof__unknown_relayer__is_404(client):
    answer = client.post(f"/api/relayers/{UNKNOWN}/proofs", json={"receipt": "0x" + "00" * 32})

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_relayer"


def test_api_request_proof__oversized_body__is_413_before_any_relayer_lookup(client):
    answer = client.post(f"/api/relayers/{UNKNOWN}/proofs", content=b"x" * 5000)

    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"


def test_api_proof_job__job_id_not_hex__is_404_without_asking_a_relayer(client):
    answer = client.get(f"/api/relayers/{UNKNOWN}/proofs/not-a-job?x=1")

    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_job"


def test_openapi__documents_the_proof_pass_through(client):
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/api/relayers/{address}/proofs", "/api/relayers/{address}/proofs/{job}"} <= set(paths)
