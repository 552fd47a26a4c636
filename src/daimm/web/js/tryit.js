// "Try it": sign the relayer request with the wallet (eth_signTypedData_v4, the same EIP-712
// PredictRequest `daimm infer` signs: src/daimm/client.py), send it through the server to the
// relayer, and verify the relayer's signed receipt here, as `daimm verify-receipt` does. The body
// comes from the card's widget (widgets.js: a picture, a sentence, a form) or the raw JSON box.
import { getAddress, hexToBigInt, keccak256, recoverTypedDataAddress, toBytes, toHex } from "viem";
import { walletClient } from "./chain.js";
import { explain, say } from "./errors.js";
import { wallet } from "./wallet.js";
import { setupWidget, showPredictions } from "./widgets.js";

const MSG = "tryit-message";
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const REFUSALS = {
  no_licence: "you hold no live licence for this model: rent or buy it first",
  no_access: "you hold no live licence for this model: rent or buy it first",
  chain_unavailable: "the relayer cannot read the chain right now; try again in a moment",
  rate_limited: "too many requests; wait a moment",
  invalid_input: "the relayer cannot read these inputs",
};
// Refusals of the inputs themselves: the relayer's own detail names the input and what is wrong.
const INPUT_ERRORS = new Set([
  "invalid_input",
  "invalid_image",
  "image_too_large",
  "invalid_text",
  "unknown_feature",
  "missing_feature",
  "invalid_feature",
]);

function randomNonce() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return hexToBigInt(toHex(bytes));
}

/**
 * The bytes of the relayer's answer its receipt hashes: ``{"outputs":...,"predictions":...}`` when
 * the answer has predictions, else the raw JSON text of ``outputs`` (docs/RELAYER.md).
 */
function hashedOutputs(text, answer) {
  const start = text.indexOf('{"outputs":');
  const end = text.lastIndexOf(',"receipt":');
  if (start !== 0 || end < 0) throw new Error("the relayer's answer is not {\"outputs\": ..., \"receipt\": ...}");
  if (answer.predictions != null) return `${text.slice(0, end)}}`;
  return text.slice('{"outputs":'.length, end);
}

/** Check the receipt: signed by ``relayer`` over ``body`` and the outputs received. */
export async function verifyReceipt(config, text, body, relayer, modelId) {
  const answer = JSON.parse(text);
  const r = answer.receipt;
  if (!r) throw new Error("the answer carries no receipt");
  if (r.inputsHash !== keccak256(toBytes(body))) throw new Error("receipt inputsHash does not match the request body sent");
  if (r.outputsHash !== keccak256(toBytes(hashedOutputs(text, answer)))) throw new Error("receipt outputsHash does not match the outputs received");
  if (BigInt(r.modelId) !== BigInt(modelId)) throw new Error(`receipt is for model ${r.modelId}, not ${modelId}`);
  if (Number(r.chainId) !== config.chain_id || getAddress(r.verifyingContract) !== getAddress(config.contracts.RelayerRegistry)) {
    throw new Error("receipt is for another chain or registry");
  }
  const signature = r.signature;
  const s = hexToBigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (signature.length !== 132 || s > HALF_N || (v !== 27 && v !== 28)) throw new Error("receipt signature is malformed");
  const signer = await recoverTypedDataAddress({
    domain: { ...config.eip712.domain, chainId: Number(r.chainId), verifyingContract: r.verifyingContract },
    types: { Receipt: config.eip712.types.Receipt },
    primaryType: "Receipt",
    message: {
      modelId: BigInt(r.modelId),
      weightsCid: r.weightsCid,
      inputsHash: r.inputsHash,
      outputsHash: r.outputsHash,
      timestamp: BigInt(r.timestamp),
    },
    signature,
  });
  if (getAddress(signer) !== getAddress(relayer)) throw new Error(`receipt was signed by ${signer}, not by relayer ${relayer}`);
  return { answer, receipt: r };
}

/** The request document: the widget's, or ``{"inputs": ...}`` from the raw JSON box. */
function requestDocument(widget) {
  const raw = document.getElementById("tryit-use-raw");
  if (widget && !(raw && raw.checked)) return widget();
  let inputs;
  try {
    inputs = JSON.parse(document.getElementById("tryit-inputs").value);
  } catch (error) {
    throw new Error(`The inputs are not JSON (${error.message}): write {"name": [[...]]}.`);
  }
  return { inputs };
}

async function tryIt(config, data, widget) {
  const relayer = getAddress(document.getElementById("tryit-relayer").value);
  if (!wallet.account) throw new Error("Connect a wallet first: the request is signed by your account.");
  if (!wallet.onRightChain) throw new Error(`Switch your wallet to chain ${config.chain_id} first.`);
  const document_ = requestDocument(widget);
  // 1. The relayer must answer, as the registered address, on this chain.
  say(MSG, "Asking the relayer…");
  const health = await fetch(`/api/relayers/${relayer}/health`);
  const info = await health.json().catch(() => ({}));
  if (!health.ok) throw new Error(`The relayer is down: ${info.detail || health.status}. The rest of the page still works.`);
  if (getAddress(info.relayer) !== relayer) throw new Error(`The relayer at this endpoint is ${info.relayer}, not ${relayer}.`);
  // 2. Sign the request.
  const body = JSON.stringify(document_);
  const request = {
    modelId: BigInt(data.model_id),
    bodyHash: keccak256(toBytes(body)),
    nonce: randomNonce(),
    deadline: BigInt(Math.floor(Date.now() / 1000) + 300),
    chainId: BigInt(config.chain_id),
    relayer,
  };
  say(MSG, "Sign the request in your wallet…");
  const signature = await walletClient(config).signTypedData({
    account: wallet.account,
    domain: { ...config.eip712.domain, chainId: config.chain_id, verifyingContract: config.contracts.RelayerRegistry },
    types: { PredictRequest: config.eip712.types.PredictRequest },
    primaryType: "PredictRequest",
    message: request,
  });
  // 3. Send it; the answer comes back byte for byte.
  say(MSG, "Running the model…");
  const response = await fetch(`/api/relayers/${relayer}/models/${data.model_id}/predict`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-daimm-address": wallet.account,
      "x-daimm-signature": signature,
      "x-daimm-nonce": request.nonce.toString(),
      "x-daimm-deadline": request.deadline.toString(),
      "x-daimm-chain-id": String(config.chain_id),
      "x-daimm-relayer": relayer,
    },
  });
  const text = await response.text();
  if (!response.ok) {
    let refusal = {};
    try {
      refusal = JSON.parse(text);
    } catch (_) {
      // not JSON
    }
    if (refusal.error === "relayer_unavailable") throw new Error(`The relayer is down: ${refusal.detail}`);
    const why =
      (INPUT_ERRORS.has(refusal.error) && refusal.detail) || REFUSALS[refusal.error] || refusal.detail || `status ${response.status}`;
    throw new Error(`The relayer refused (${refusal.error || response.status}): ${why}.`);
  }
  // 4. Verify the receipt before showing anything.
  const { answer, receipt } = await verifyReceipt(config, text, body, relayer, data.model_id);
  document.getElementById("tryit-outputs").textContent = JSON.stringify(answer.outputs, null, 2);
  showPredictions(document.getElementById("tryit-predictions"), answer.predictions);
  // Without labels, the outputs are the answer: show them open.
  document.getElementById("tryit-outputs-box").open = !answer.predictions;
  document.getElementById("tryit-answer").textContent = text;
  document.getElementById("tryit-body").textContent = body;
  const verified = document.getElementById("tryit-verified");
  verified.textContent =
    `✓ Receipt verified: signed by relayer ${relayer} over this request and these outputs ` +
    `(weights ${receipt.weightsCid}, at ${new Date(receipt.timestamp * 1000).toISOString()}).`;
  verified.className = "verified-ok";
  document.getElementById("tryit-result").hidden = false;
  say(MSG, "Done.", "ok");
}

export function setupTryIt(config, data) {
  const button = document.getElementById("tryit-run");
  if (!button) return;
  const widget = setupWidget(document);
  button.addEventListener("click", async () => {
    button.disabled = true;
    document.getElementById("tryit-result").hidden = true;
    try {
      await tryIt(config, data, widget);
    } catch (error) {
      say(MSG, explain(error), "err");
    } finally {
      button.disabled = false;
    }
  });
}
