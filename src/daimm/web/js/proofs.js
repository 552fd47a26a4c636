// Provable models (docs/ZK.md): the "provable" badge, and "Request proof" beside a verified receipt.
//
// A model version is provable when ProofChallenges records a verifier and a weights hash for it
// (`circuitOf(modelId, weightsCid)`, read through the server's read-only RPC pass-through). After
// "Try it" verified a receipt that carries the relayer's signed ProofClaim, "Request proof" asks
// that relayer for a proof (through `daimm web`'s pass-through), polls the job with backoff, and
// checks the proof here, as `daimm verify-proof` does: the claim is the relayer's, for this
// receipt; instance 0 is the weights hash the chain records for the receipt's model version; the
// other instances hash to the claim's instancesHash; the proof's inputs are this request's; and
// the version's verifier contract accepts the proof (an eth_call).
import {
  decodeFunctionResult,
  encodeFunctionData,
  encodePacked,
  getAddress,
  hashTypedData,
  keccak256,
  parseAbi,
  recoverTypedDataAddress,
} from "viem";
import { loadConfig } from "./chain.js";
import { explain } from "./errors.js";

const ZERO = "0x0000000000000000000000000000000000000000";
const CHALLENGES_ABI = parseAbi([
  "function circuitOf(uint256 modelId, string weightsCid) view returns ((address verifier, uint256 weightsHash))",
]);
const VERIFIER_ABI = parseAbi(["function verifyProof(bytes proof, uint256[] instances) returns (bool)"]);
const CLAIM_TYPES = {
  ProofClaim: [
    { name: "receipt", type: "bytes32" },
    { name: "instancesHash", type: "bytes32" },
  ],
};
const FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 5000;
const POLL_TOTAL_MS = 15 * 60 * 1000;
const MISMATCH = "✗ proof does not match this receipt";

/** Raised when a proof is valid-looking but answers for something else than this receipt. */
class Mismatch extends Error {}

function decodeCircuit(data) {
  const circuit = decodeFunctionResult({ abi: CHALLENGES_ABI, functionName: "circuitOf", data });
  return circuit.verifier === ZERO ? null : circuit;
}

/** The circuit ProofChallenges records for a model version: {verifier, weightsHash}, or null. */
export async function circuitOf(config, modelId, weightsCid) {
  const address = config.contracts.ProofChallenges;
  if (!address) return null;
  const data = encodeFunctionData({ abi: CHALLENGES_ABI, functionName: "circuitOf", args: [BigInt(modelId), weightsCid] });
  const { data: answer } = await config.publicClient.call({ to: address, data });
  return decodeCircuit(answer);
}

/** Show the "provable" badge of every model listed (one JSON-RPC batch for the page). */
export async function showProvableBadges(config) {
  const address = config.contracts.ProofChallenges;
  const badges = [...document.querySelectorAll("[data-provable-model]")];
  if (!address || badges.length === 0) return;
  const calls = badges.map((badge, id) => ({
    jsonrpc: "2.0",
    id,
    method: "eth_call",
    params: [
      {
        to: address,
        data: encodeFunctionData({
          abi: CHALLENGES_ABI,
          functionName: "circuitOf",
          args: [BigInt(badge.dataset.provableModel), badge.dataset.weightsCid],
        }),
      },
      "latest",
    ],
  }));
  const response = await fetch("/api/rpc", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(calls) });
  if (!response.ok) return;
  for (const answer of await response.json()) {
    const badge = badges[answer.id];
    if (!badge || !answer.result) continue;
    const circuit = decodeCircuit(answer.result);
    if (circuit) {
      badge.hidden = false;
      badge.title = `Predictions can be proven: verifier ${circuit.verifier} on chain (docs/ZK.md)`;
    }
  }
}

/** An ezkl field element (64 hex digits, little-endian) as a BigInt. */
function felt(hex) {
  const digits = hex.replace(/^0x/, "");
  if (!/^[0-9a-fA-F]{64}$/.test(digits)) throw new Mismatch("the proof's instances are not field elements");
  let big = "";
  for (let i = digits.length - 2; i >= 0; i -= 2) big += digits.slice(i, i + 2);
  const value = BigInt(`0x${big}`);
  if (value >= FIELD) throw new Mismatch("the proof's instances are not field elements");
  return value;
}

function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The request's first input row as the relayer reads it (float32), or null if not tabular. */
function requestRow(body) {
  const doc = JSON.parse(body);
  if (doc.features && typeof doc.features === "object") {
    const order = [...document.querySelectorAll("#widget-form [data-feature]")].map((input) => input.dataset.feature);
    if (order.length === 0 || order.some((name) => typeof doc.features[name] !== "number")) return null;
    return order.map((name) => Math.fround(doc.features[name]));
  }
  const tensors = doc.inputs && typeof doc.inputs === "object" ? Object.values(doc.inputs) : [];
  if (tensors.length !== 1 || !Array.isArray(tensors[0])) return null;
  const first = Array.isArray(tensors[0][0]) ? tensors[0][0] : tensors[0];
  const row = first.flat(Number.POSITIVE_INFINITY);
  return row.every((v) => typeof v === "number") ? row.map((v) => Math.fround(v)) : null;
}

/**
 * Whether ``inputs`` (the proof's, field elements) are ``row`` in fixed point: ``round(x * 2**s)``,
 * negatives as ``p - |x|``, for the one scale ``s`` the circuit uses (docs/ZK.md).
 */
function sameInputs(row, inputs) {
  const signed = inputs.map((f) => (f > FIELD / 2n ? f - FIELD : f));
  for (let scale = 0; scale <= 24; scale += 1) {
    const factor = 2 ** scale;
    if (row.every((x, i) => BigInt(roundHalfEven(x * factor)) === signed[i])) return true;
  }
  return false;
}

/** Check ``document`` (an ezkl proof) for this receipt; resolves, or throws Mismatch / Error. */
export async function checkProof(config, document_, { answer, receipt, body, relayer }) {
  const claim = answer.proofClaim;
  const domain = { ...config.eip712.domain, chainId: Number(receipt.chainId), verifyingContract: receipt.verifyingContract };
  // 1. The claim is the relayer's, for this receipt (whose hashes the page checked: tryit.js).
  const digest = hashTypedData({
    domain,
    types: { Receipt: config.eip712.types.Receipt },
    primaryType: "Receipt",
    message: {
      modelId: BigInt(receipt.modelId),
      weightsCid: receipt.weightsCid,
      inputsHash: receipt.inputsHash,
      outputsHash: receipt.outputsHash,
      timestamp: BigInt(receipt.timestamp),
    },
  });
  if (claim.receipt.toLowerCase() !== digest) throw new Mismatch("the relayer's claim is for another receipt");
  const signer = await recoverTypedDataAddress({
    domain,
    types: CLAIM_TYPES,
    primaryType: "ProofClaim",
    message: { receipt: claim.receipt, instancesHash: claim.instancesHash },
    signature: claim.signature,
  });
  if (getAddress(signer) !== getAddress(relayer)) throw new Mismatch(`the claim was signed by ${signer}, not by relayer ${relayer}`);
  // 2. The model version's circuit on chain.
  const circuit = await circuitOf(config, receipt.modelId, receipt.weightsCid);
  if (!circuit) throw new Error(`model ${receipt.modelId} version ${receipt.weightsCid} has no verifier on chain`);
  // 3. The instances: the registered weights, then this receipt's inputs and outputs.
  const column = document_?.instances?.[0];
  if (!Array.isArray(column) || column.length < 2 || typeof document_.hex_proof !== "string") {
    throw new Mismatch("the relayer's answer is not an ezkl proof");
  }
  const instances = column.map(felt);
  if (instances[0] !== circuit.weightsHash) throw new Mismatch("the proof was made with other weights than the model version registered on chain");
  const io = instances.slice(1);
  const hash = keccak256(encodePacked(io.map(() => "uint256"), io));
  if (hash !== claim.instancesHash.toLowerCase()) throw new Mismatch("the proof is for other inputs or outputs than the relayer claimed for this receipt");
  const row = requestRow(body);
  if (row && !(row.length < io.length && sameInputs(row, io.slice(0, row.length)))) {
    throw new Mismatch("the proof is for other inputs than this request's");
  }
  // 4. The verifier contract of the version accepts it (a reverting verifier refuses).
  const proof = document_.hex_proof.startsWith("0x") ? document_.hex_proof : `0x${document_.hex_proof}`;
  let valid = false;
  try {
    const { data } = await config.publicClient.call({
      to: circuit.verifier,
      data: encodeFunctionData({ abi: VERIFIER_ABI, functionName: "verifyProof", args: [proof, instances] }),
    });
    valid = decodeFunctionResult({ abi: VERIFIER_ABI, functionName: "verifyProof", data });
  } catch (_) {
    valid = false;
  }
  if (!valid) throw new Mismatch(`the verifier contract ${circuit.verifier} refuses the proof`);
  return circuit;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Ask the relayer for a proof of the receipt and wait for it, reporting each state. */
async function fetchProof(relayer, digest, onState) {
  const response = await fetch(`/api/relayers/${relayer}/proofs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ receipt: digest }),
  });
  let job = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`The relayer refused the proof request (${job.error || response.status}): ${job.detail || ""}`);
  const started = Date.now();
  let delay = POLL_FIRST_MS;
  while (job.state !== "done") {
    onState(job.state);
    if (job.state === "failed") throw new Error(`The relayer could not prove it: ${job.error || "no reason given"}`);
    if (Date.now() - started > POLL_TOTAL_MS) throw new Error("No proof after 15 minutes; ask again later.");
    await sleep(delay);
    delay = Math.min(POLL_MAX_MS, Math.round(delay * 1.5));
    const poll = await fetch(`/api/relayers/${relayer}/proofs/${job.job}`);
    const next = await poll.json().catch(() => ({}));
    if (!poll.ok) throw new Error(`The relayer lost the proof job (${next.error || poll.status}): ${next.detail || ""}`);
    job = next;
  }
  onState("done");
  return job.proof;
}

// Each verified receipt replaces the previous one: a proof still running for an older receipt
// must not write its verdict beside the new one.
let current = 0;

/**
 * Called by tryit.js once a receipt is verified (``prediction``: its answer, receipt, body and
 * relayer): offer "Request proof" if the answer carries a claim and the version is provable.
 */
export async function offerProof(prediction) {
  const box = document.getElementById("proof-box");
  if (!box) return;
  const mine = ++current;
  box.hidden = true;
  delete box.dataset.state;
  const config = await loadConfig(); // cached: the page loaded it at start
  const answered = prediction;
  const button = document.getElementById("proof-request");
  const state = document.getElementById("proof-state");
  const result = document.getElementById("proof-result");
  state.textContent = "";
  result.textContent = "";
  result.className = "";
  const { answer, receipt, relayer } = answered;
  let circuit;
  try {
    circuit = await circuitOf(config, receipt.modelId, receipt.weightsCid);
  } catch (_) {
    return; // the badge says nothing either: the page cannot read the chain
  }
  if (!circuit || mine !== current) return;
  box.hidden = false;
  if (!answer.proofClaim) {
    // A provable version whose relayer has not prepared its circuit yet (it starts on the
    // version's first answer and takes seconds: docs/ZK.md) answers without a claim.
    button.disabled = true;
    state.textContent =
      "This answer carries no proof claim: the relayer is still preparing this model's " +
      "circuit (it starts on the first answer and takes a few seconds). Run it again to get " +
      "an answer that can be proved.";
    return;
  }
  button.disabled = false;
  button.onclick = async () => {
    button.disabled = true;
    result.textContent = "";
    result.className = "";
    box.dataset.state = "requesting";
    try {
      const proof = await fetchProof(relayer, answer.proofClaim.receipt, (s) => {
        if (mine !== current) return;
        box.dataset.state = s;
        state.textContent = { queued: "Queued at the relayer…", proving: "Proving…", done: "Checking the proof…" }[s] || s;
      });
      await checkProof(config, proof, answered);
      if (mine !== current) return;
      state.textContent = "";
      result.textContent =
        `✓ proof verified: the verifier contract ${circuit.verifier} accepts it, and it proves that model ` +
        `${receipt.modelId}'s registered weights (hash 0x${circuit.weightsHash.toString(16)}) gave these outputs for this request.`;
      result.className = "verified-ok";
      box.dataset.state = "verified";
    } catch (error) {
      if (mine !== current) return;
      state.textContent = "";
      result.textContent = error instanceof Mismatch ? `${MISMATCH}: ${error.message}.` : explain(error);
      result.className = "err";
      box.dataset.state = error instanceof Mismatch ? "mismatch" : "error";
    } finally {
      button.disabled = false;
    }
  };
}
