// "Try it": the wallet signs one session (EIP-712 `Session`, docs/RELAYER.md "Session keys") for a
// key made in this tab, and every run is then signed by that key with no prompt, until the session
// ends (expiry, its call cap, "End session", or a revocation). The request goes through the server's
// pass-through to the relayer (failing over to the model's other relayers, as `SessionClient` does),
// and the relayer's signed receipt is checked here before anything is shown. The body comes from the
// card's widget (widgets.js: a picture, a sentence, a form) or the raw JSON box.
//
// NOTE: the session key lives in sessionStorage (this tab only, gone when it closes): see
// docs/SECURITY.md, "Session keys in the page". Two places matter to other features:
// `sendRequest` (the one place a request is sent) and `showVerified` (the one place a verified
// receipt is handled).
import { getAddress } from "viem";
import { payPerCall } from "./credit.js";
import { explain, say } from "./errors.js";
import { offerProof } from "./proofs.js";
import { saveReceipt } from "./receipts.js";
import { SessionClient, parseApiKey } from "./session.js";
import { revokeSession, signSession } from "./sessionbook.js";
import { onWalletChange, wallet } from "./wallet.js";
import { setupWidget, showPredictions } from "./widgets.js";

const MSG = "tryit-message";
const REFUSALS = {
  no_licence: "you hold no live licence for this model: rent or buy it first",
  no_access: "you hold no live licence for this model: rent or buy it first",
  chain_unavailable: "the relayer cannot read the chain right now; try again in a moment",
  rate_limited: "too many requests; wait a moment",
  invalid_input: "the relayer cannot read these inputs",
  session_revoked: "this session was revoked on chain. Run again to sign a new session",
  session_revoked_all: "all your sessions were revoked on chain. Run again to sign a new session",
  session_expired: "this session has expired. Run again to sign a new session",
  session_call_cap: "this session has used all its calls at this relayer. Run again to sign a new session",
  sessions_unsupported: "this relayer does not accept session keys",
};
// Refusals that end the page's session: the next run asks the wallet for a new one.
const SESSION_ENDED = new Set(["session_revoked", "session_revoked_all", "session_expired", "session_call_cap",
  "session_wrong_model", "session_wrong_relayer", "session_wrong_domain", "session_bad_signature"]);
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

// ------------------------------------------------------------------ the tab's session
const storageKey = (config, data) => `daimm.tryit.${config.chain_id}.${wallet.account}.${data.model_id}`;

function stored(config, data) {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey(config, data)) || "null");
  } catch (_) {
    return null;
  }
}

function store(config, data, value) {
  if (value) sessionStorage.setItem(storageKey(config, data), JSON.stringify(value));
  else sessionStorage.removeItem(storageKey(config, data));
}

/** The tab's live session for this model and wallet, or a new one (the one wallet prompt). */
async function currentSession(config, data, relayer) {
  const saved = stored(config, data);
  if (saved) {
    const key = await parseApiKey(saved.apiKey);
    const used = BigInt(saved.calls[relayer] || 0);
    const soon = BigInt(Math.floor(Date.now() / 1000) + 30);
    if (key.session.holder === wallet.account && key.session.expiresAt > soon && used < key.session.maxCalls) {
      return { key, saved };
    }
  }
  say(MSG, "Sign the session in your wallet (once: this model, 24 hours; no prompt after that)…");
  const key = await signSession(config, { modelId: BigInt(data.model_id) }, "try-it");
  const fresh = { apiKey: key.text, calls: {} };
  store(config, data, fresh);
  return { key, saved: fresh };
}

function when(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

/** The session line: calls left at the chosen relayer, expiry, spend; and the "End session" button. */
async function showSession(config, data) {
  const state = document.getElementById("session-state");
  const end = document.getElementById("session-end");
  if (!state) return;
  state.dataset.idle ??= state.textContent; // the template's "no session yet" sentence
  const saved = wallet.account ? stored(config, data) : null;
  if (!saved) {
    end.hidden = true;
    state.textContent = state.dataset.idle;
    state.className = "muted small";
    delete state.dataset.callsLeft;
    return;
  }
  const { session } = await parseApiKey(saved.apiKey);
  const relayer = document.getElementById("tryit-relayer")?.value;
  const used = BigInt((relayer && saved.calls[getAddress(relayer)]) || 0);
  const minutes = Math.max(0, Math.floor((Number(session.expiresAt) - Date.now() / 1000) / 60));
  state.dataset.callsLeft = String(session.maxCalls - used);
  state.textContent =
    `Session key ${session.key.slice(0, 8)}… for model ${session.modelId}: ` +
    `${session.maxCalls - used} of ${session.maxCalls} calls left at this relayer (counted in this tab), ` +
    `expires ${when(session.expiresAt)} (in ${Math.floor(minutes / 60)} h ${minutes % 60} min), ` +
    (session.spendCap > 0n ? `spend cap ${session.spendCap}.` : "no pay-per-use spend.");
  state.className = "small";
  end.hidden = false;
}

async function endSession(config, data) {
  const saved = stored(config, data);
  if (!saved) return;
  const key = await parseApiKey(saved.apiKey);
  say(MSG, "End session: confirm the revocation in your wallet (one transaction)…");
  const receipt = await revokeSession(config, key.hash);
  store(config, data, null);
  await showSession(config, data);
  document.getElementById("session-state").textContent =
    `Session ended: revoked on chain in block ${receipt.blockNumber}; its key is forgotten. The next run signs a new session.`;
  say(MSG, "Session ended.", "ok");
}

// ------------------------------------------------------------------ sending and showing
/** The relayers to try: the chosen one first, then the model's others (as `SessionClient`). */
function relayersInOrder(data) {
  const chosen = getAddress(document.getElementById("tryit-relayer").value);
  const others = (data.relayers || []).map((r) => getAddress(r.address)).filter((a) => a !== chosen);
  return [chosen, ...others].map((address) => ({ address }));
}

// The page reaches relayers through the server's pass-through (`/api/relayers/{address}/...`).
const throughServer = (relayer, path) => `/api/relayers/${relayer.address}${path.replace(/^\/v1/, "")}`;

/**
 * Send `document_` for this model, signed by the session key, to the first relayer that answers;
 * the receipt is verified before this returns (`session.js`). The one place a request is sent.
 */
export async function sendRequest(config, data, key, document_) {
  const client = new SessionClient(key, relayersInOrder(data), { route: throughServer });
  return client.predict(data.model_id, document_);
}

/** Show a verified answer. The one place a verified receipt is handled. */
export function showVerified(prediction) {
  const { answer, receipt, text, body, relayer } = prediction;
  saveReceipt({ text, body, relayer, modelId: receipt.modelId, chainId: receipt.chainId });
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
  offerProof(prediction);
  document.getElementById("tryit-result").hidden = false;
}

/** One sentence for a relayer's refusal. */
function refusal(error) {
  if (error.code === "relayer_unavailable") return `The relayer is down: ${error.detail}`;
  const why = (INPUT_ERRORS.has(error.code) && error.detail) || REFUSALS[error.code] || error.detail || `status ${error.status}`;
  return `The relayer refused (${error.code}): ${why}.`;
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
  if (!wallet.account) throw new Error("Connect a wallet first: it signs the session the requests run under.");
  if (!wallet.onRightChain) throw new Error(`Switch your wallet to chain ${config.chain_id} first.`);
  const document_ = requestDocument(widget);
  if (document.getElementById("access-status")?.dataset.access === "no" && BigInt(document.getElementById("credit-balance")?.dataset.balance || "0") > 0n) {
    showVerified(await payPerCall(config, data, document_)); // no licence: pay from credit (credit.js)
    return say(MSG, "Done: paid from your credit.", "ok");
  }
  const relayer = getAddress(document.getElementById("tryit-relayer").value);
  const { key, saved } = await currentSession(config, data, relayer);
  say(MSG, "Running the model…");
  let prediction;
  try {
    prediction = await sendRequest(config, data, key, document_);
  } catch (error) {
    if (error.name === "RelayerError") throw new Error(`The relayer is down: ${error.message}. The rest of the page still works.`);
    if (error.name !== "RequestRefusedError") throw error;
    if (SESSION_ENDED.has(error.code)) store(config, data, null);
    throw new Error(refusal(error));
  } finally {
    await showSession(config, data).catch(() => {});
  }
  saved.calls[prediction.relayer] = (saved.calls[prediction.relayer] || 0) + 1;
  store(config, data, saved);
  await showSession(config, data);
  showVerified(prediction);
  say(MSG, "Done.", "ok");
}

export function setupTryIt(config, data) {
  const button = document.getElementById("tryit-run");
  if (!button) return;
  const widget = setupWidget(document);
  const end = document.getElementById("session-end");
  end.addEventListener("click", async () => {
    end.disabled = true;
    try {
      await endSession(config, data);
    } catch (error) {
      say(MSG, explain(error), "err");
    } finally {
      end.disabled = false;
    }
  });
  onWalletChange(() => showSession(config, data).catch(() => {}));
  document.getElementById("tryit-relayer").addEventListener("change", () => showSession(config, data).catch(() => {}));
  button.addEventListener("click", async () => {
    button.disabled = true;
    say(MSG, "Preparing the request…");
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
