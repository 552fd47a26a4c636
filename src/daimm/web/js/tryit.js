// "Try it": sign the relayer request with the wallet (eth_signTypedData_v4, the same EIP-712
// PredictRequest `daimm infer` signs: src/daimm/client.py), send it through the server to the
// relayer, and verify the relayer's signed receipt here, as `daimm verify-receipt` does.
import { getAddress, hexToBigInt, keccak256, recoverTypedDataAddress, toBytes, toHex } from "viem";
import { walletClient } from "./chain.js";
import { explain, say } from "./errors.js";
import { wallet } from "./wallet.js";

const MSG = "tryit-message";
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const REFUSALS = {
  no_licence: "you hold no live licence for this model: rent or buy it first",
  no_access: "you hold no live licence for this model: rent or buy it first",
  chain_unavailable: "the relayer cannot read the chain right now; try again in a moment",
  rate_limited: "too many requests; wait a moment",
  invalid_input: "the relayer cannot read these inputs",
};

function randomNonce() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return hexToBigInt(toHex(bytes));
}

/** The raw JSON text of ``outputs`` in the relayer's answer (the bytes its receipt hashes). */
function rawOutputs(text) {
  const start = text.indexOf('{"outputs":');
  const end = text.lastIndexOf(',"receipt":');
  if (start !== 0 || end < 0) throw new Error("the relayer's answer is not {\"outputs\": ..., \"receipt\": ...}");
  return text.slice('{"outputs":'.length, end);
}

/** Check the receipt: signed by ``relayer`` over ``body`` and the outputs received. */
export async function verifyReceipt(config, text, body, relayer, modelId) {
  const answer = JSON.parse(text);
  const r = answer.receipt;
  if (!r) throw new Error("the answer carries no receipt");
  if (r.inputsHash !== keccak256(toBytes(body))) throw new Error("receipt inputsHash does not match the request body sent");
  if (r.outputsHash !== keccak256(toBytes(rawOutputs(text)))) throw new Error("receipt outputsHash does not match the outputs received");
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

async function tryIt(config, data) {
  const relayer = getAddress(document.getElementById("tryit-relayer").value);
  if (!wallet.account) throw new Error("Connect a wallet first: the request is signed by your account.");
  if (!wallet.onRightChain) throw new Error(`Switch your wallet to chain ${config.chain_id} first.`);
  let inputs;
  try {
    inputs = JSON.parse(document.getElementById("tryit-inputs").value);
  } catch (error) {
    throw new Error(`The inputs are not JSON (${error.message}): write {"name": [[...]]}.`);
  }
  // 1. The relayer must answer, as the registered address, on this chain.
  say(MSG, "Asking the relayer…");
  const health = await fetch(`/api/relayers/${relayer}/health`);
  const info = await health.json().catch(() => ({}));
  if (!health.ok) throw new Error(`The relayer is down: ${info.detail || health.status}. The rest of the page still works.`);
  if (getAddress(info.relayer) !== relayer) throw new Error(`The relayer at this endpoint is ${info.relayer}, not ${relayer}.`);
  // 2. Sign the request.
  const body = JSON.stringify({ inputs });
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
    const why = REFUSALS[refusal.error] || refusal.detail || `status ${response.status}`;
    throw new Error(`The relayer refused (${refusal.error || response.status}): ${why}.`);
  }
  // 4. Verify the receipt before showing anything.
  const { answer, receipt } = await verifyReceipt(config, text, body, relayer, data.model_id);
  document.getElementById("tryit-outputs").textContent = JSON.stringify(answer.outputs, null, 2);
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
  button.addEventListener("click", async () => {
    button.disabled = true;
    document.getElementById("tryit-result").hidden = true;
    try {
      await tryIt(config, data);
    } catch (error) {
      say(MSG, explain(error), "err");
    } finally {
      button.disabled = false;
    }
  });
}
