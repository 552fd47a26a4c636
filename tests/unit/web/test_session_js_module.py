"""The JavaScript session module (``static/daimm-session.mjs``, from ``js/session.js``) in Node,
against the Python implementation (``daimm.sessions``, ``daimm.eip712``), byte for byte.

- A Python-made API key parses in JS to the same session, ``X-Daimm-Session`` token and hash.
- A JS-made key parses in Python; the JS-signed ``PredictRequest`` recovers to the session key.
- Every mangled key Python refuses, JS refuses with the same code (and accepts what Python accepts).
- A receipt Python signs verifies in JS; one over other outputs or by another key does not.

No chain: the end-to-end tests against a running relayer are in tests/e2e/test_session_js.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from tests.unit.test_session_keys import CHAIN_ID, HOLDER, KEY, OTHER, REGISTRY, make
from tests.unit.test_session_keys import _body as body_of_key
from tests.unit.test_session_keys import _reencode as reencode

from daimm import eip712
from daimm.errors import ApiKeyError
from daimm.sessions import API_KEY_PREFIX, ApiKey, parse_api_key

ROOT = Path(__file__).resolve().parents[3]
BUNDLE = ROOT / "src" / "daimm" / "web" / "static" / "daimm-session.mjs"
RELAYER_REGISTRY = "0x" + "7a" * 20

DRIVER = ROOT / "tests" / "utils" / "session_js_driver.mjs"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not on PATH")
    if not BUNDLE.exists():
        pytest.skip("the session module is not built: run `make web` (make setup does)")
    return found


def run_js(tmp_path: Path, command: dict[str, Any]) -> dict[str, Any]:
    viem = ROOT / "node_modules" / "viem" / "_esm" / "accounts" / "index.js"
    done = subprocess.run(
        [node(), str(DRIVER), str(BUNDLE), str(viem)], input=json.dumps(command),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def python_key(**changes: object) -> ApiKey:
    s = make(**changes)
    return ApiKey(KEY.key, s, eip712.sign_session(s, HOLDER.key))


def python_code(text: str) -> str | None:
    try:
        parse_api_key(text)
    except ApiKeyError as exc:
        return exc.code
    return None


def test_parse_api_key__a_python_key__same_session_token_and_hash_in_js(tmp_path: Path) -> None:
    key = python_key(model_id=2**255 + 7, max_calls=2**64 - 1, spend_cap=2**128 - 1,
                     relayer="0x" + "ab" * 20, nonce=2**256 - 1)  # fmt: skip

    parsed = run_js(tmp_path, {"parse": [key.encode(), "  " + key.encode() + "\n"]})["parsed"]

    s = key.session
    expected = {
        "holder": s.holder, "key": s.key, "modelId": str(s.model_id), "relayer": s.relayer,
        "expiresAt": str(s.expires_at), "maxCalls": str(s.max_calls),
        "spendCap": str(s.spend_cap), "nonce": str(s.nonce), "chainId": str(s.chain_id),
        "registry": s.registry,
    }  # fmt: skip
    for answer in parsed:
        assert answer["ok"], answer
        assert answer["session"] == expected
        assert answer["token"] == key.token
        assert answer["hash"] == "0x" + key.hash.hex()
        assert answer["key"] == KEY.address


def test_create_api_key__made_in_js__parses_in_python_and_signs_as_the_session_key(
    tmp_path: Path,
) -> None:
    relayer = "0x" + "cd" * 20
    made = run_js(
        tmp_path,
        {"parse": [], "make": {"holderKey": "0x" + "11" * 32, "chainId": CHAIN_ID,
                               "registry": REGISTRY, "relayer": relayer,
                               "relayerRegistry": RELAYER_REGISTRY}},
    )["made"]  # fmt: skip

    key = parse_api_key(made["text"])
    headers = made["headers"]
    request = eip712.PredictRequest(
        model_id=3, body_hash=eip712.keccak256(b'{"inputs":{}}'),
        nonce=int(headers["x-daimm-nonce"]), deadline=int(headers["x-daimm-deadline"]),
        chain_id=CHAIN_ID, relayer=relayer,
    )  # fmt: skip
    signer = eip712.recover_predict_request_signer(
        request, RELAYER_REGISTRY, headers["x-daimm-signature"]
    )
    assert (key.session.holder, key.session.model_id, key.session.nonce) == (HOLDER.address, 3, 2)
    assert key.session.max_calls == 7
    assert signer == key.session.key == headers["x-daimm-address"]
    assert headers["x-daimm-session"] == key.token


def _mangled() -> list[str]:
    key = python_key()
    good, body = key.encode(), body_of_key(key)
    high_s = bytearray(body)
    sig_at = 1 + 32 + 184
    v, r, s_ = eip712.split_signature(bytes(body[sig_at:]))
    high_s[sig_at:] = eip712.encode_signature(55 - v, r, eip712.SECP256K1_N - s_)
    return [
        good,
        good.replace(API_KEY_PREFIX, "daimm_pk_"),  # prefix
        good[:-10],  # cut
        good + "A",  # one character too many (a length no base64 has)
        good[:40] + "*" + good[41:],  # outside base64url
        good[:40] + "+" + good[41:],  # base64, not base64url
        good[:40] + ("B" if good[40] != "B" else "C") + good[41:],  # checksum
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # checksum or non-canonical last character
        reencode(b"\x02" + body[1:]),  # version
        reencode(body[:1] + OTHER.key + body[33:]),  # another private key
        reencode(body[:1] + b"\x00" * 32 + body[33:]),  # a private key of zero
        reencode(body[:1] + b"\xff" * 32 + body[33:]),  # a private key above the group order
        python_key(holder=OTHER.address).encode(),  # signed by someone else than its holder
        reencode(bytes(high_s)),  # the high-s twin of the holder's signature
        reencode(body[:-1] + b"\x1d"),  # v = 29
        reencode(body[:sig_at] + b"\x00" * 65),  # r = 0
    ]


def test_parse_api_key__mangled_keys__js_refuses_with_pythons_code(tmp_path: Path) -> None:
    texts = _mangled()

    parsed = run_js(tmp_path, {"parse": texts})["parsed"]

    codes = [None if answer["ok"] else answer["code"] for answer in parsed]
    assert codes == [python_code(text) for text in texts]
    assert codes[0] is None
    assert set(codes[1:]) == {
        "api_key_malformed", "api_key_checksum", "api_key_version", "api_key_mismatch",
        "api_key_bad_signature",
    }  # fmt: skip
    assert None not in codes[1:]


def test_verify_receipt__signed_in_python__verifies_in_js_and_tampering_is_refused(
    tmp_path: Path,
) -> None:
    relayer = Account.from_key(b"\x44" * 32)
    body = '{"inputs":{"input":[[5.1,3.5,1.4,0.2]]}}'
    outputs = '{"label":[0],"probabilities":[[0.9,0.05,0.05]]}'

    def answer(outputs_text: str, key: bytes = relayer.key, model_id: int = 4) -> str:
        inputs_hash = eip712.keccak256(body.encode())
        outputs_hash = eip712.keccak256(outputs_text.encode())
        receipt = eip712.Receipt(model_id, "bafyweights", inputs_hash, outputs_hash, 1_800_000_000)
        signature = eip712.sign_receipt(receipt, CHAIN_ID, RELAYER_REGISTRY, key)
        document = {**receipt.message(), "inputsHash": "0x" + receipt.inputs_hash.hex(),
                    "outputsHash": "0x" + receipt.outputs_hash.hex(), "chainId": CHAIN_ID,
                    "verifyingContract": eip712._address("r", RELAYER_REGISTRY),
                    "relayer": relayer.address, "signature": "0x" + signature.hex()}  # fmt: skip
        return '{"outputs":' + outputs_text + ',"receipt":' + json.dumps(document) + "}"

    expect = {"relayer": relayer.address, "chainId": CHAIN_ID, "registry": RELAYER_REGISTRY,
              "modelId": 4}  # fmt: skip
    cases = [
        {"text": answer(outputs), "body": body, "expect": expect},
        {"text": answer(outputs.replace("0.9", "0.8")), "body": body, "expect": expect},
        {"text": answer(outputs).replace("0.9", "0.8"), "body": body, "expect": expect},
        {"text": answer(outputs), "body": body + " ", "expect": expect},
        {"text": answer(outputs, key=OTHER.key), "body": body, "expect": expect},
        {"text": answer(outputs, model_id=5), "body": body, "expect": expect},
    ]

    results = run_js(tmp_path, {"parse": [], "receipts": cases})["receipts"]

    assert results[0] == "ok"
    assert results[1] == "ok"  # signed over what was received: still the relayer's
    assert "outputsHash does not match" in results[2]
    assert "inputsHash does not match" in results[3]
    assert f"not by relayer {relayer.address}" in results[4]
    assert "receipt is for model 5, not 4" in results[5]
