// The publish page (/publish, templates/publish.html) and the creator's actions on the dashboard.
// The ONNX file is read, checked and encrypted in this page; only ciphertext, key envelopes and
// the card are uploaded (POST /api/uploads), and the wallet signs everything else: the mint, the
// offer, the revenue split, each relayer's authorisation. Progress is kept in localStorage, so a
// signature refused half way resumes where it stopped, without uploading again.
import { decodeEventLog, getAddress, parseUnits } from "viem";
import * as aead from "./aead.js";
import { walletClient } from "./chain.js";
import { deriveCreatorKey } from "./creatorkey.js";
import * as envelope from "./envelope.js";
import { explain, isRejection, say } from "./errors.js";
import * as ipfs from "./ipfs.js";
import { initCard, OnnxError, readGraph, runSample } from "./onnxcard.js";

const MSG = "publish-message";
const STATE_PREFIX = "daimm-publish:";
// The pieces this page uploads (at most the server's piece limit): a file whose ciphertext fits in
// one goes as one CAR; a larger one in pieces, the page holding about three pieces at a time.
const PIECE_BYTES = 8 << 20;

/** A step of publishing the page refuses before asking anything of the wallet. */
class PublishError extends Error {
  constructor(message) {
    super(message);
    this.name = "PublishError";
  }
}

const $ = (id) => document.getElementById(id);

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function requireWallet(config, wallet) {
  if (!window.ethereum) throw new PublishError("No wallet found: install a browser wallet to publish.");
  if (!wallet.account) throw new PublishError("Connect your wallet first (the button at the top).");
  if (!wallet.onRightChain) {
    throw new PublishError(
      `Your wallet is on chain ${wallet.chainId}; this marketplace runs on chain ${config.chain_id}` +
        ` (${config.network}). Switch your wallet to chain ${config.chain_id}: nothing was uploaded or signed.`,
    );
  }
  return getAddress(wallet.account);
}

/** The key envelope or card stored under `cid` (GET /api/envelopes/{cid}). */
async function fetchEnvelope(cid) {
  const response = await fetch(`/api/envelopes/${cid}`);
  const answer = await response.text();
  if (!response.ok) {
    let detail = answer;
    try {
      detail = JSON.parse(answer).detail;
    } catch {}
    throw new PublishError(`cannot fetch key envelope ${cid}: ${detail}`);
  }
  return envelope.envelopeFromJson(answer);
}

/** The model's content key, unwrapped from the creator envelope its latest metadata names. */
async function contentKeyOf(modelId, creator) {
  const response = await fetch(`/api/models/${modelId}`);
  if (!response.ok) throw new PublishError(`model ${modelId} is not in the catalog yet; wait for it to sync`);
  const detail = await response.json();
  const cid = detail.metadata?.daimm?.key_envelope;
  if (!cid) {
    throw new PublishError(`the metadata of model ${modelId} names no creator key envelope: was it published by daimm?`);
  }
  try {
    return await envelope.unwrapKey(await fetchEnvelope(cid), creator.privateKey);
  } catch (error) {
    if (error instanceof PublishError) throw error;
    throw new PublishError(
      `your wallet's creator key does not open model ${modelId}'s key envelope (${error.message}): ` +
        "was it published with a key file? Use `daimm relayer authorise --key` from a terminal.",
    );
  }
}

/** A relayer's X25519 key as registered on chain, checked; a clear message if malformed. */
async function relayerKey(config, relayer) {
  const info = await config.publicClient.readContract({
    address: config.contracts.RelayerRegistry, abi: config.abi("RelayerRegistry"),
    functionName: "relayerOf", args: [relayer],
  });
  if (/^0x0+$/.test(info.operator)) throw new PublishError(`relayer ${relayer} is not registered on chain`);
  if (!info.active) throw new PublishError(`relayer ${relayer} is retired and serves no model; untick it`);
  const raw = Uint8Array.from(info.x25519PublicKey.slice(2).match(/../g), (h) => Number.parseInt(h, 16));
  const text = envelope.formatPublicKey(raw);
  try {
    await envelope.wrapKey(aead.generateContentKey(), [text]);
  } catch (error) {
    throw new PublishError(
      `relayer ${relayer}'s registered X25519 key (${info.x25519PublicKey}) is malformed (${error.message}):` +
        " nothing can be wrapped for it. Untick it, or ask its operator to fix it with `daimm relayer update`.",
    );
  }
  return text;
}

async function send(config, account, contract, functionName, args, label, onWallet) {
  const client = config.publicClient;
  const { request, result } = await client.simulateContract({
    address: config.contracts[contract], abi: config.abi(contract), functionName, args, account,
  });
  onWallet?.(`${label}: confirm in your wallet…`);
  const hash = await walletClient(config).writeContract(request);
  const receipt = await client.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new PublishError(`${label} failed (transaction ${hash})`);
  return { result, receipt };
}

/** The offer's on-chain struct from the form's human amounts (empty price = not offered). */
function readOffer(config, form) {
  const symbol = form.currency;
  const info = config.currencies[symbol];
  if (!info) throw new PublishError(`choose a currency this marketplace accepts (${Object.keys(config.currencies).join(", ")})`);
  const units = (value, what) => {
    const textValue = String(value || "").trim();
    if (!textValue) return 0n;
    try {
      return parseUnits(textValue, info.decimals);
    } catch {
      throw new PublishError(`the ${what} '${textValue}' is not an amount of ${symbol}`);
    }
  };
  const rent = units(form.rent, "rental price");
  const days = Number(form.periodDays || 0);
  if (rent > 0n && !(days > 0)) throw new PublishError("give the rental period in days (more than 0)");
  const minPeriods = Number(form.minPeriods || 1);
  const maxPeriods = Number(form.maxPeriods || 365);
  if (rent > 0n && !(minPeriods >= 1 && maxPeriods >= minPeriods && maxPeriods < 65536)) {
    throw new PublishError("periods: at least 1, and the most no fewer than the least");
  }
  const offer = {
    currency: info.address,
    pricePerPeriod: rent,
    periodSeconds: rent > 0n ? Math.round(days * 86400) : 0,
    minPeriods: rent > 0n ? minPeriods : 0,
    maxPeriods: rent > 0n ? maxPeriods : 0,
    active: true,
    perpetualPrice: units(form.buy, "purchase price"),
    pricePerCall: units(form.call, "price per call"),
  };
  offer.active = offer.pricePerPeriod > 0n || offer.perpetualPrice > 0n || offer.pricePerCall > 0n;
  return offer;
}

/** "0xabc… 7000\n0xdef… 3000" -> [[payees], [bps]] (empty text = no split). */
function readSplit(textValue) {
  const lines = String(textValue || "").split("\n").map((l) => l.trim()).filter(Boolean);
  const payees = [];
  const bps = [];
  for (const line of lines) {
    const [who, share] = line.split(/[\s,]+/);
    try {
      payees.push(getAddress(who));
    } catch {
      throw new PublishError(`revenue split: '${who}' is not an address`);
    }
    const n = Number(share);
    if (!Number.isInteger(n) || n <= 0) throw new PublishError(`revenue split: '${share}' is not a share in basis points`);
    bps.push(n);
  }
  if (payees.length && bps.reduce((a, b) => a + b, 0) !== 10000) {
    throw new PublishError("revenue split: the shares must add up to 10000 basis points (100%)");
  }
  return payees.length ? [payees, bps] : null;
}

// ------------------------------------------------------------------------------ the page
function renderPreview(card, summary) {
  const node = $("publish-preview");
  node.hidden = false;
  node.innerHTML = "";
  const h = (tag, textValue, cls) => {
    const el = document.createElement(tag);
    if (textValue !== undefined) el.textContent = textValue;
    if (cls) el.className = cls;
    return el;
  };
  node.append(h("h2", "Preview: the model page's card"));
  const head = h("div", undefined, "tags");
  for (const tag of [card.pipeline_tag, card.framework, ...(card.tags || [])].filter(Boolean)) head.append(h("span", tag, "tag tag-light"));
  node.append(h("h3", card.name), head, h("p", card.description || "No description.", "description"));
  const kv = h("table", undefined, "kv");
  for (const [k, v] of [["Framework", card.framework], ["Task", card.pipeline_tag], ["Licence terms", card.licence || card.license], ["Training data", card.training_data]]) {
    const tr = h("tr");
    tr.append(h("th", k), h("td", v || "-"));
    kv.append(tr);
  }
  node.append(kv);
  if (summary.metrics?.length) {
    node.append(h("h3", "Metrics"));
    const t = h("table", undefined, "grid");
    t.innerHTML = "<tr><th>metric</th><th>value</th><th>measured on</th></tr>";
    for (const m of summary.metrics) {
      const tr = h("tr");
      tr.append(h("td", m.name || m.type), h("td", String(m.value)), h("td", m.dataset || "-"));
      t.append(tr);
    }
    node.append(t);
  }
  node.append(h("h3", "Tensors"));
  const t = h("table", undefined, "grid");
  t.id = "preview-tensors";
  t.innerHTML = "<tr><th></th><th>name</th><th>dtype</th><th>shape</th></tr>";
  for (const [kind, list] of [["input", card.inputs], ["output", card.outputs]]) {
    for (const s of list || []) {
      const tr = h("tr");
      const code = h("code", s.name);
      const td = h("td");
      td.append(code);
      tr.append(h("td", kind), td, h("td", s.dtype), h("td", JSON.stringify(s.shape)));
      t.append(tr);
    }
  }
  node.append(t);
  if (summary.labels?.length) node.append(h("p", `Labels: ${summary.labels.join(", ")}`, "muted"));
}

function cardFromForm() {
  let card;
  try {
    card = JSON.parse($("card-json").value);
  } catch (error) {
    throw new PublishError(`the card is not valid JSON: ${error.message}`);
  }
  for (const [id, field] of [["card-name", "name"], ["card-description", "description"], ["card-license", "license"]]) {
    const value = $(id).value.trim();
    if (value) card[field] = value;
  }
  const tags = $("card-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) card.tags = tags;
  return card;
}

function showFields(card) {
  const plain = (v) => (typeof v === "string" && !v.startsWith("FILL IN") ? v : "");
  $("card-name").value = plain(card.name);
  $("card-description").value = plain(card.description);
  $("card-license").value = plain(card.license || card.licence);
  $("card-tags").value = (card.tags || []).join(", ");
}

function showCard(card) {
  $("card-json").value = JSON.stringify(card, null, 2);
  showFields(card);
}

async function checkCard(card) {
  const response = await fetch("/api/cards/check", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(card),
  });
  const answer = await response.json();
  if (!response.ok) throw new PublishError(`The card is not ready: ${answer.detail}`);
  return answer.summary;
}

function progress(label, done, total) {
  const bar = $("publish-progress");
  bar.hidden = false;
  bar.max = total || 1;
  bar.value = done;
  $("publish-progress-label").textContent = `${label} ${total ? Math.floor((100 * done) / total) : 100}%`;
}

function stepDone(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("publish-steps").append(li);
}

function stateKey(account, fingerprint) {
  return `${STATE_PREFIX}${account}:${fingerprint}`;
}

function loadState(key) {
  try {
    return JSON.parse(window.localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function saveState(key, state) {
  window.localStorage.setItem(key, JSON.stringify(state));
}

function summarise(state) {
  const done = [];
  if (state.uploaded) done.push(`encrypted and uploaded (weights ${state.weightsCid}, card ${state.metadataCid})`);
  if (state.minted) done.push(state.versionOf ? `version ${state.version} of model ${state.minted} published` : `model ${state.minted} minted`);
  if (state.offered) done.push("offer set");
  if (state.split) done.push("revenue split set");
  for (const r of Object.keys(state.authorised || {})) done.push(`relayer ${r} authorised`);
  return done.length ? done.join("; ") : "nothing";
}

/** Encrypt, upload, mint, offer, split, authorise: each step skipped if the saved state has it. */
async function publish(config, wallet, ctx) {
  const account = requireWallet(config, wallet);
  if (!ctx.file) throw new PublishError("Choose an ONNX model file first.");
  const card = cardFromForm();
  await checkCard(card);
  if (!ctx.checkedSample || ctx.checkedCard !== JSON.stringify(card)) await validate(ctx, card);
  const offer = readOffer(config, {
    currency: $("offer-currency").value, rent: $("offer-rent").value, periodDays: $("offer-period").value,
    minPeriods: $("offer-min").value, maxPeriods: $("offer-max").value, buy: $("offer-buy").value, call: $("offer-call").value,
  });
  const split = readSplit($("publish-split").value);
  const royalty = Number($("publish-royalty").value || 0);
  const relayers = [...document.querySelectorAll("input[name='publish-relayer']:checked")].map((i) => getAddress(i.value));
  const versionOf = ctx.versionOf;
  const fingerprint = `${versionOf || "new"}:${ctx.sha256}:${await sha256Hex(new TextEncoder().encode(JSON.stringify(card)))}`;
  const key = stateKey(account, fingerprint);
  const state = loadState(key) || { versionOf, authorised: {} };
  const registry = { address: config.contracts.ModelRegistry, abi: config.abi("ModelRegistry") };
  const client = config.publicClient;
  $("publish-steps").innerHTML = "";
  if (state.uploaded) stepDone(`Resuming: ${summarise(state)}.`);

  // 1. Encrypt and upload (skipped on resume).
  if (!state.uploaded) {
    let modelId;
    let version;
    say(MSG, "Sign the creator-key message in your wallet (derives your encryption key; no transaction)…");
    const creator = await deriveCreatorKey(window.ethereum, account);
    let contentKey;
    if (versionOf) {
      modelId = BigInt(versionOf);
      const owner = await client.readContract({ ...registry, functionName: "ownerOf", args: [modelId] });
      if (getAddress(owner) !== account) throw new PublishError(`model ${modelId} is owned by ${owner}, not by ${account}`);
      version = await client.readContract({ ...registry, functionName: "versionCount", args: [modelId] });
      contentKey = await contentKeyOf(modelId, creator);
    } else {
      modelId = (await client.readContract({ ...registry, functionName: "modelCount" })) + 1n;
      version = 0n;
      contentKey = aead.generateContentKey();
    }
    const relayerKeys = {};
    for (const r of relayers) relayerKeys[r] = await relayerKey(config, r);
    const envelopes = [envelope.envelopeToJson(await envelope.wrapKey(contentKey, [creator.text]))];
    for (const r of relayers) envelopes.push(envelope.envelopeToJson(await envelope.wrapKey(contentKey, [relayerKeys[r]])));
    const sealedSize = aead.ciphertextSize(ctx.file.size);
    const stored = (weightsCid, keyEnvelopeCid) => JSON.stringify({
      ...card,
      daimm: {
        model_id: Number(modelId), version: Number(version),
        weights: { cid: weightsCid, size: sealedSize, format: "daimm-aead-v1" },
        key_envelope: keyEnvelopeCid,
      },
    }, null, 2) + "\n";
    const associatedData = aead.modelAssociatedData(modelId, version);
    const wallet = { provider: window.ethereum, account, config };
    const limits = await fetch("/api/uploads/limits").then((r) => (r.ok ? r.json() : null), () => null);
    const pieceBytes = Math.min(PIECE_BYTES, limits?.piece_bytes ?? PIECE_BYTES);
    let cids; // the ciphertext's, each envelope's (creator first, then the relayers'), the card's
    if (!limits || sealedSize <= pieceBytes) {
      // One piece's worth: encrypted whole into Blob parts, uploaded as one signed CAR.
      const parts = [];
      say(MSG, "Encrypting in this page…");
      await aead.encryptBlob(ctx.file, async (piece) => parts.push(piece), contentKey, associatedData,
        { onProgress: (done, total) => progress("Encrypting", done, total) });
      const added = [await ipfs.addBlob(new Blob(parts), { onProgress: (done, total) => progress("Computing CIDs", done, total) })];
      for (const text of envelopes) added.push(await ipfs.addBlob(new Blob([text])));
      added.push(await ipfs.addBlob(new Blob([stored(added[0].cid.toString(), added[1].cid.toString())])));
      stepDone(`Encrypted in this page: ${sealedSize} bytes of ciphertext, weights ${added[0].cid}.`);
      say(MSG, "Sign the upload in your wallet (no transaction), then the ciphertext, envelopes and card are uploaded…");
      progress("Uploading", 0, 1);
      await ipfs.uploadCar(ipfs.carBlob(added), wallet);
      progress("Uploading", 1, 1);
      cids = added.map((a) => a.cid.toString());
    } else {
      // Larger: encrypted twice, never kept (pass 1 for the CIDs and piece digests, the wallet signs
      // the upload session, pass 2 sends each piece as it is cut); see ipfs.encryptAndUploadInPieces.
      say(MSG, "Encrypting in this page (pass 1 of 2: the CIDs)…");
      const others = async (root) => {
        const creatorEnvelope = await ipfs.addBlob(new Blob([envelopes[0]]));
        stepDone(`Encrypted in this page: ${sealedSize} bytes of ciphertext, weights ${root}.`);
        say(MSG, "Sign the upload in your wallet (no transaction), then the page encrypts again and uploads it in pieces…");
        return [...envelopes.map((text) => new Blob([text])), new Blob([stored(root.toString(), creatorEnvelope.cid.toString())])];
      };
      const onProgress = (phase, done, total) =>
        progress(phase === "hash" ? "Encrypting (pass 1 of 2)" : "Encrypting and uploading (pass 2 of 2)", done, total);
      ({ cids } = await ipfs.encryptAndUploadInPieces(ctx.file, contentKey, associatedData, others, {
        ...wallet, pieceBytes, addOptions: {}, onProgress,
      }));
    }
    const relayerEnvelopes = Object.fromEntries(relayers.map((r, i) => [r, cids[2 + i]]));
    Object.assign(state, {
      uploaded: true, modelId: modelId.toString(), version: version.toString(), weightsCid: cids[0],
      metadataCid: cids[cids.length - 1], envelopes: relayerEnvelopes,
    });
    saveState(key, state);
    stepDone(`Uploaded: ciphertext, key envelopes and card (${state.metadataCid}); only ciphertext left this page.`);
  }
  const onWallet = (text) => say(MSG, text);

  // 2. The mint (or the new version).
  if (!state.minted) {
    if (state.versionOf) {
      const count = await client.readContract({ ...registry, functionName: "versionCount", args: [BigInt(state.modelId)] });
      if (count !== BigInt(state.version)) {
        window.localStorage.removeItem(key);
        throw new PublishError(`another version of model ${state.modelId} was published meanwhile; publish again (the weights are re-encrypted for the new version)`);
      }
      await send(config, account, "ModelRegistry", "publishVersion", [BigInt(state.modelId), state.weightsCid, state.metadataCid],
        `Publish version ${state.version} of model ${state.modelId}`, onWallet);
    } else {
      const next = (await client.readContract({ ...registry, functionName: "modelCount" })) + 1n;
      if (next !== BigInt(state.modelId)) {
        window.localStorage.removeItem(key);
        throw new PublishError(`another model took id ${state.modelId} first; publish again (the weights are re-encrypted for id ${next}): nothing was minted`);
      }
      const { receipt } = await send(config, account, "ModelRegistry", "publishModel", [state.weightsCid, state.metadataCid, BigInt(royalty)],
        "Publish (mint) the model", onWallet);
      const minted = receipt.logs.map((log) => {
        try {
          return decodeEventLog({ abi: config.abi("ModelRegistry"), ...log });
        } catch {
          return null;
        }
      }).find((e) => e?.eventName === "ModelPublished");
      if (minted && minted.args.modelId !== BigInt(state.modelId)) {
        throw new PublishError(`minted as model ${minted.args.modelId}, but the weights are bound to ${state.modelId}`);
      }
    }
    state.minted = state.modelId;
    saveState(key, state);
    stepDone(state.versionOf ? `Version ${state.version} of model ${state.modelId} published.` : `Model ${state.modelId} minted.`);
  }
  const modelId = BigInt(state.modelId);

  // 3. The offer, the split, the relayers.
  if (offer.active && !state.offered) {
    await send(config, account, "RentalEscrow", "setOffer", [modelId, offer], "Set the offer", onWallet);
    state.offered = true;
    saveState(key, state);
    stepDone(`Offer set in ${$("offer-currency").value}.`);
  }
  if (split && !state.split) {
    await send(config, account, "RentalEscrow", "setSplit", [modelId, ...split], "Set the revenue split", onWallet);
    state.split = true;
    saveState(key, state);
    stepDone(`Revenue split set (${split[0].length} payees).`);
  }
  for (const [relayer, cid] of Object.entries(state.envelopes || {})) {
    if (state.authorised[relayer]) continue;
    const already = await client.readContract({
      address: config.contracts.RelayerRegistry, abi: config.abi("RelayerRegistry"), functionName: "isAuthorised", args: [modelId, relayer],
    }); // a new version's relayer gets its envelope replaced
    await send(config, account, "RelayerRegistry", already ? "setEnvelope" : "authorise", [modelId, relayer, cid],
      `Authorise relayer ${relayer}`, onWallet);
    state.authorised[relayer] = true;
    saveState(key, state);
    stepDone(`Relayer ${relayer} authorised (envelope ${cid}).`);
  }
  window.localStorage.removeItem(key);
  const link = `/models/${state.modelId}`;
  say(MSG, `Published: model ${state.modelId}${state.versionOf ? ` version ${state.version}` : ""}. It appears at ${link} once the catalog syncs.`, "ok");
  $("publish-message").dataset.modelId = state.modelId;
  return state;
}

/** The card is checked against the schema and its sample input run by ONNX Runtime Web. */
async function validate(ctx, card) {
  const summary = await checkCard(card);
  say("publish-check-message", "Running the sample input with ONNX Runtime (in this page)…");
  // NOTE: the model is read whole only while ONNX Runtime holds it; the page keeps just the File.
  const outputs = await runSample(window.ort, new Uint8Array(await ctx.file.arrayBuffer()), card);
  ctx.checkedSample = true;
  ctx.checkedCard = JSON.stringify(card);
  const shown = Object.entries(outputs).map(([n, o]) => `${n} ${JSON.stringify(o.dims)}: ${JSON.stringify(o.data.slice(0, 4))}`);
  say("publish-check-message", `The model runs its sample input: ${shown.join("; ")}.`, "ok");
  renderPreview(card, summary);
  return outputs;
}

async function relayerChoices() {
  const node = $("publish-relayers");
  const answer = await (await fetch("/api/relayers")).json();
  node.innerHTML = "";
  if (!answer.relayers.length) {
    node.textContent = "No relayer is registered yet: the model is published, and you authorise one later from the dashboard.";
    return;
  }
  for (const r of answer.relayers) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "publish-relayer";
    box.value = r.address;
    const address = document.createElement("code");
    address.textContent = r.address;
    const where = document.createElement("span");
    where.className = "muted";
    where.textContent = r.endpoint;
    label.append(box, address, where);
    node.append(label);
  }
}

export function setupPublish(config, data, { wallet }) {
  if (window.ort) {
    // NOTE: the runtime's .mjs and .wasm come from daimm itself (make web copies them), never a CDN;
    // one thread, as pages are not cross-origin isolated.
    window.ort.env.wasm.wasmPaths = "/static/";
    window.ort.env.wasm.numThreads = 1;
  }
  const ctx = { file: null, sha256: null, checkedSample: false, versionOf: data?.version_of || null };
  const select = $("offer-currency");
  for (const symbol of Object.keys(config.currencies)) select.append(new Option(symbol, symbol));
  relayerChoices().catch((error) => say(MSG, `Cannot list relayers: ${error.message}`, "err"));
  $("card-json").addEventListener("input", () => {
    ctx.checkedSample = false;
    try {
      showFields(JSON.parse($("card-json").value));
    } catch {} // NOTE: half-typed JSON; cardFromForm says what is wrong when it is used
  });

  $("publish-file").addEventListener("change", async () => {
    const file = $("publish-file").files[0];
    ctx.file = null;
    ctx.checkedSample = false;
    $("publish-preview").hidden = true;
    $("publish-card").hidden = true;
    if (!file) return;
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const graph = readGraph(bytes);
      const card = initCard(graph);
      Object.assign(ctx, { file, sha256: await sha256Hex(bytes) });
      showCard(card);
      $("publish-card").hidden = false;
      const tensors = graph.inputs.map((i) => `${i.name} ${i.dtype} ${JSON.stringify(i.shape)}`).join(", ");
      say("publish-file-message", `${file.name}: ONNX, inputs ${tensors}; task guessed: ${card.pipeline_tag}. Fill in the fields marked FILL IN.`, "ok");
    } catch (error) {
      say("publish-file-message", error instanceof OnnxError ? error.message : `Cannot read ${file.name}: ${error.message}`, "err");
    }
  });

  $("publish-check").addEventListener("click", async () => {
    try {
      if (!ctx.file) throw new PublishError("Choose an ONNX model file first.");
      await validate(ctx, cardFromForm());
    } catch (error) {
      say("publish-check-message", error.message, "err");
    }
  });

  const button = $("publish-button");
  button.addEventListener("click", async () => {
    button.disabled = true;
    let fingerprintState = null;
    try {
      fingerprintState = await publish(config, wallet, ctx);
    } catch (error) {
      const saved = Object.keys(window.localStorage).filter((k) => k.startsWith(STATE_PREFIX)).map((k) => loadState(k)).filter(Boolean);
      const progressNote = saved.length ? ` Done so far: ${summarise(saved[saved.length - 1])}. Click Publish again to resume: nothing is uploaded again.` : "";
      const reason = error instanceof PublishError || error instanceof OnnxError ? error.message
        : isRejection(error) ? "You rejected the request in your wallet." : explain(error, { errors: config.errors });
      say(MSG, `${reason}${progressNote}`, "err");
    } finally {
      button.disabled = false;
      if (fingerprintState) button.textContent = "Publish another";
    }
  });
  window.daimmPublish = { ctx, readGraph, initCard };
}

// ------------------------------------------------------------------------------ dashboard actions
/** The dashboard's per-model actions: new price, withdraw the offer, authorise or revoke a relayer. */
export function setupActions(config, data, { wallet }) {
  for (const form of document.querySelectorAll("form.creator-actions")) {
    const modelId = BigInt(form.dataset.modelId);
    const msg = `actions-message-${form.dataset.modelId}`;
    const select = form.querySelector("select[name='currency']");
    for (const symbol of Object.keys(config.currencies)) select.append(new Option(symbol, symbol));
    const run = async (label, fn) => {
      try {
        const account = requireWallet(config, wallet);
        await fn(account);
        say(msg, `${label}: done. The catalog shows it after its next sync.`, "ok");
      } catch (error) {
        say(msg, error instanceof PublishError ? error.message : explain(error, { errors: config.errors }), "err");
      }
    };
    const onWallet = (text) => say(msg, text);
    form.querySelector("[data-action='price']").addEventListener("click", () =>
      run("New price", async (account) => {
        const offer = readOffer(config, {
          currency: select.value, rent: form.rent.value, periodDays: form.period.value, minPeriods: 1, maxPeriods: 365,
          buy: form.buy.value, call: form.call.value,
        });
        if (!offer.active) throw new PublishError("give at least one price (rent, buy or per call)");
        await send(config, account, "RentalEscrow", "setOffer", [modelId, offer], "Set the new price", onWallet);
      }));
    form.querySelector("[data-action='withdraw']").addEventListener("click", () =>
      run("Offer withdrawn", async (account) => {
        const current = await config.publicClient.readContract({
          address: config.contracts.RentalEscrow, abi: config.abi("RentalEscrow"), functionName: "offerOf", args: [modelId],
        });
        await send(config, account, "RentalEscrow", "setOffer", [modelId, { ...current, active: false }], "Withdraw the offer", onWallet);
      }));
    form.querySelector("[data-action='authorise']").addEventListener("click", () =>
      run("Relayer authorised", async (account) => {
        const relayer = getAddress(form.relayer.value.trim());
        const key = await relayerKey(config, relayer);
        onWallet("Sign the creator-key message (no transaction) to open the model's content key…");
        const creator = await deriveCreatorKey(window.ethereum, account);
        const contentKey = await contentKeyOf(modelId, creator);
        const added = await ipfs.addBlob(new Blob([envelope.envelopeToJson(await envelope.wrapKey(contentKey, [key]))]));
        await ipfs.uploadCar(ipfs.carBlob([added]), { provider: window.ethereum, account, config });
        const authorised = await config.publicClient.readContract({
          address: config.contracts.RelayerRegistry, abi: config.abi("RelayerRegistry"), functionName: "isAuthorised", args: [modelId, relayer],
        });
        await send(config, account, "RelayerRegistry", authorised ? "setEnvelope" : "authorise", [modelId, relayer, added.cid.toString()],
          `Authorise relayer ${relayer}`, onWallet);
      }));
    form.querySelector("[data-action='revoke']").addEventListener("click", () =>
      run("Relayer revoked", async (account) => {
        const relayer = getAddress(form.relayer.value.trim());
        await send(config, account, "RelayerRegistry", "deauthorise", [modelId, relayer], `Revoke relayer ${relayer}`, onWallet);
      }));
  }
}

export function setupCreatorPage(page, config, data, walletApi) {
  if (page === "publish") setupPublish(config, data, walletApi);
  else if (page === "dashboard" && data) setupActions(config, data, walletApi);
}

