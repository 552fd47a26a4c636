"""Image and text requests through the relayer: ``python bench/model_bench.py``.

One run, on loopback, on a real local chain (anvil, started through ape-foundry; ``anvil`` must be
on PATH, as the Makefile arranges). Two models are published encrypted with their cards, the
relayer (``daimm relayer serve``, its own process) is authorised for both and a user rents them:

- an image classifier built here with ``onnx.helper`` (224 x 224 RGB, NCHW, ImageNet mean/std:
  a global average pool and a Gemm over 4 classes), sent a 224 x 224 JPEG as ``{"image":
  {"b64": ...}}``: the relayer decodes, preprocesses and runs it in its worker;
- the review-sentiment sample daimm ships (``daimm.samples``: TF-IDF + logistic regression with a
  string input), sent ``{"text": "..."}``.

For each, the p50 of signed requests from one client against the p50 of ONNX Runtime on the
already-preprocessed tensor in this process; and the relayer's memory (RSS and PSS of it and its
workers) while 8 clients keep image requests in flight. The keys ``image_p50_ms``,
``image_direct_p50_ms``, ``text_p50_ms``, ``text_direct_p50_ms`` (and a few more, prefixed
``image_``/``text_``) are merged into bench/results/relayer.json: the file is read and updated,
never rewritten without the other benchmarks' keys.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "relayer.json"
SIZE = 224
LABELS = ["red", "green", "blue", "grey"]
SENTENCE = "The staff were friendly and the room was lovely, we will come back"


def _module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


#: The relayer benchmark's helpers: load generator, percentiles, memory of a process tree.
relayer_bench = _module("daimm_relayer_bench", ROOT / "bench" / "relayer_bench.py")


# ---------------------------------------------------------------------------- the models
def image_model() -> bytes:
    """A small 224 x 224 x 3 classifier: GlobalAveragePool -> Flatten -> Gemm -> Softmax."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array(
        [[4.0, -2.0, -2.0], [-2.0, 4.0, -2.0], [-2.0, -2.0, 4.0], [0.5, 0.5, 0.5]],
        dtype=np.float32,
    ).T
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "weights", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(LABELS)])],
        [
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.zeros(len(LABELS), dtype=np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def jpeg_224() -> bytes:
    """A 224 x 224 photo-like JPEG (smooth gradients and noise), quality 90."""
    from PIL import Image

    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    rgb = np.stack([200 * x + 30, 120 + 80 * np.sin(6 * y), 180 * (1 - x * y)], axis=-1)
    rgb += rng.normal(0, 12, rgb.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def image_card(jpeg: bytes) -> dict[str, Any]:
    return {
        "name": "Colour of a picture (benchmark)",
        "pipeline_tag": "image-classification",
        "framework": "onnx",
        "inputs": [
            {
                "name": "image",
                "dtype": "float32",
                "shape": [None, 3, SIZE, SIZE],
                "preprocessing": {
                    "type": "image",
                    "size": [SIZE, SIZE],
                    "channels": 3,
                    "layout": "NCHW",
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                },
            }
        ],
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [None, len(LABELS)]}],
        "labels": LABELS,
        "sample_input": {"image": {"b64": base64.b64encode(jpeg).decode()}},
    }


# ---------------------------------------------------------------------------- direct runs
def _median_ms(run: Any, count: int) -> float:
    for _ in range(20):
        run()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def direct_image(model: bytes, jpeg: bytes, card: dict[str, Any]) -> dict[str, float]:
    """ONNX Runtime on the preprocessed tensor, and the decode + preprocess step alone (ms)."""
    import onnxruntime as ort

    from daimm.modelformat import parse_card
    from daimm.modelformat.preprocess import image_to_array

    prep = parse_card(card).preprocessing["image"]
    tensor = image_to_array("image", jpeg, prep, "float32")  # type: ignore[arg-type]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return {
        "image_direct_p50_ms": _median_ms(lambda: session.run(None, {"image": tensor}), 2000),
        "image_preprocess_p50_ms": _median_ms(
            lambda: image_to_array("image", jpeg, prep, "float32"),  # type: ignore[arg-type]
            500,
        ),
    }


def direct_text(model_path: Path) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    feed = {"text": np.array([[SENTENCE]], dtype=object)}
    return _median_ms(lambda: session.run(None, feed), 2000)


# ---------------------------------------------------------------------------- the chain
def setup_chain(work: Path, model: bytes, card: dict[str, Any]) -> dict[str, Any]:
    """Deploy (the demo's marketplace), publish both models with their cards, register and
    authorise a relayer, rent both for the user."""
    from daimm.crypto import generate_private_key, public_key_of, save_private_key
    from daimm.ipfs import LocalBlockstore
    from daimm.market.publishing import (
        check_minted_id,
        parse_metadata,
        plan_authorise_relayer,
        plan_publish,
    )
    from daimm.market.types import Offer
    from daimm.samples import shipped_samples

    demo_module = _module("daimm_demo_for_bench", ROOT / "scripts" / "demo.py")
    demo = demo_module.Demo(demo_module.Story(echo=lambda _text: None), work)
    demo.deploy()
    market, creator, user, relayer = demo.market, demo.creator, demo.alice, demo.relayer
    blocks = LocalBlockstore(work / "blocks")
    creator_key = generate_private_key()
    x25519 = generate_private_key()
    save_private_key(work / "relayer.x25519", x25519)
    market.relayers.register(
        relayer.address, public_key_of(x25519).raw, "http://127.0.0.1", sender=relayer
    )
    (image_path := work / "colour.onnx").write_bytes(model)
    (sentiment,) = shipped_samples(("sentiment",))
    offer = Offer(
        currency=str(market.token.address),
        price_per_period=10**15,
        period_seconds=30 * 86400,
        min_periods=1,
        max_periods=12,
        active=True,
        perpetual_price=0,
        price_per_call=0,
    )
    ids = {}
    for key, path, document in (
        ("image", image_path, card),
        ("text", sentiment.path, sentiment.card),
    ):
        package, plan = plan_publish(market, path, parse_metadata(document), backend=blocks,
                                     creator_key=creator_key, sender=creator)  # fmt: skip
        published = plan.execute()
        check_minted_id(package, published)
        market.escrow.set_offer(published.model_id, offer, sender=creator)
        _, authorise = plan_authorise_relayer(market, published.model_id, relayer.address,
                                              backend=blocks, creator_key=creator_key,
                                              sender=creator)  # fmt: skip
        authorise.execute()
        market.escrow.rent(published.model_id, 1, sender=user, approve=True)
        ids[key] = published.model_id
    key_file = work / "relayer.eth"
    key = relayer.private_key
    key_file.write_text(key if isinstance(key, str) else "0x" + bytes(key).hex())
    key_file.chmod(0o600)
    user_key = user.private_key
    return {
        "ids": ids,
        "model_ids": list(ids.values()),
        "relayer": relayer.address,
        "key_file": key_file,
        "user_key": user_key if isinstance(user_key, str) else "0x" + bytes(user_key).hex(),
        "contracts": dict(demo.deployment.contracts),
        "blocks": work / "blocks",
    }


# ---------------------------------------------------------------------------- measuring
def p50_through_relayer(client: Any, url: str, model_id: int, document: dict, count: int) -> Any:
    body = json.dumps(document, separators=(",", ":")).encode()
    signed = [(body, client.signed_headers(model_id, body)) for _ in range(count)]
    run = asyncio.run(relayer_bench._load(f"{url}/v1/models/{model_id}/predict", signed, 1, 60))
    if run["errors"]:
        raise SystemExit(f"relayer errors for model {model_id}: {run['errors']}")
    return run


def memory_in_flight(client: Any, url: str, model_id: int, document: dict, pid: int) -> Any:
    """Peak RSS and PSS of the relayer's process tree while 8 clients send image requests."""
    body = json.dumps(document, separators=(",", ":")).encode()
    signed = [(body, client.signed_headers(model_id, body)) for _ in range(400)]
    peak = {"rss_mib": 0.0, "pss_mib": 0.0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = relayer_bench._memory(pid)
            if now["rss_mib"] > peak["rss_mib"]:
                peak.update(now)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    idle = relayer_bench._memory(pid)
    sampler.start()
    try:
        run = asyncio.run(relayer_bench._load(f"{url}/v1/models/{model_id}/predict", signed, 8, 60))
    finally:
        done.set()
        sampler.join()
    return idle, peak, run


def update_results(path: Path, new: dict[str, Any]) -> dict[str, Any]:
    """Merge ``new`` into the JSON object at ``path`` (other benchmarks' keys kept)."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = {}
    results.update(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from ape import networks

    from daimm.client import KeySigner, RelayerClient
    from daimm.samples import shipped_samples

    model, jpeg = image_model(), jpeg_224()
    card = image_card(jpeg)
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="daimm-model-bench-"))
    results: dict[str, Any] = {}
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        setup = setup_chain(work, model, card)
        port = relayer_bench._free_port()
        config = work / "relayer.toml"
        relayer_bench._write_config(config, setup, provider.uri, port, work)
        log = work / "relayer.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("daimm")), "relayer", "serve", "--config",
                 str(config)], stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            relayer_bench._wait_http(url + "/v1/health", process, log)
            client = RelayerClient(
                url, KeySigner(setup["user_key"]), expected_relayer=setup["relayer"]
            )
            image_doc = {"image": {"b64": base64.b64encode(jpeg).decode()}}
            text_doc = {"text": SENTENCE}
            for _ in range(5):  # load both models, warm the access cache
                answer = client.predict(setup["ids"]["image"], image=jpeg)
                client.predict(setup["ids"]["text"], text=SENTENCE)
            assert answer.predictions, "the image model answered no labels"
            direct = direct_image(model, jpeg, card)
            image = p50_through_relayer(client, url, setup["ids"]["image"], image_doc,
                                        args.requests)  # fmt: skip
            text_direct = direct_text(shipped_samples(("sentiment",))[0].path)
            text = p50_through_relayer(client, url, setup["ids"]["text"], text_doc,
                                       args.requests)  # fmt: skip
            idle, peak, loaded = memory_in_flight(client, url, setup["ids"]["image"], image_doc,
                                                  process.pid)  # fmt: skip
            client.close()
        finally:
            process.terminate()
            process.wait(timeout=60)

    results = {
        "image_p50_ms": round(image["p50_ms"], 3),
        "image_p99_ms": round(image["p99_ms"], 3),
        "image_direct_p50_ms": round(direct["image_direct_p50_ms"], 4),
        "image_preprocess_p50_ms": round(direct["image_preprocess_p50_ms"], 3),
        "image_overhead_p50_ms": round(image["p50_ms"] - direct["image_direct_p50_ms"], 3),
        "image_jpeg_bytes": len(jpeg),
        "image_rss_mib_idle": idle["rss_mib"],
        "image_rss_mib_in_flight_c8": peak["rss_mib"],
        "image_pss_mib_in_flight_c8": peak["pss_mib"],
        "image_rps_c8": round(loaded["rps"], 1),
        "text_p50_ms": round(text["p50_ms"], 3),
        "text_p99_ms": round(text["p99_ms"], 3),
        "text_direct_p50_ms": round(text_direct, 4),
        "text_overhead_p50_ms": round(text["p50_ms"] - text_direct, 3),
        "image_text_notes": {
            "image_model": "224x224x3 NCHW, GlobalAveragePool + Gemm + Softmax (onnx.helper)",
            "image_input": f"{len(jpeg)}-byte 224x224 JPEG (q90) as base64 in the signed body",
            "text_model": "daimm.samples sentiment: TF-IDF + logistic regression, string input",
            "direct": "ONNX Runtime in this process, one thread, on the preprocessed tensor",
            "clients": "one client for p50s; 8 for the memory in flight; requests pre-signed",
            "machine": f"{os.cpu_count()} cores shared, Python {platform.python_version()}",
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
    }
    update_results(args.out, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
