// "My licences" (/me): the connected wallet's licences (expiry in this browser's time zone, and
// "Extend" for a rental, paid as `daimm rent` pays: market.js's pay), its credit channels (read
// only), the sessions this browser signed (sessionbook.js: revoke one, or all), and the receipts "Try it"
// verified, kept in this browser (receipts.js) and verified again on demand (session.js's check).
import { walletClient } from "./chain.js";
import { explain, isRpcOutage, say, showRpcBanner } from "./errors.js";
import { pay } from "./market.js";
import { loadReceipts } from "./receipts.js";
import { verifyReceipt } from "./session.js";
import { remembered, revokeAllSessions, revokeSession, sessionStates } from "./sessionbook.js";
import { onWalletChange, wallet } from "./wallet.js";

/** A time in this browser's time zone, with the zone's short name. */
export function localTime(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}

function cell(row, text, className) {
  const td = document.createElement("td");
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function modelLink(modelId, name) {
  const a = document.createElement("a");
  a.href = `/models/${modelId}`;
  a.textContent = name ? `${name} #${modelId}` : `model #${modelId}`;
  return a;
}

const short = (address) => `${address.slice(0, 6)}…${address.slice(-4)}`;

// ------------------------------------------------------------------ licences
async function extend(config, licence, periodsInput, expiresCell) {
  const response = await fetch(`/api/models/${licence.model_id}`);
  const model = await response.json();
  if (!response.ok) throw new Error(model.detail || `model ${licence.model_id} is not in the catalog`);
  const periods = BigInt(Number.parseInt(periodsInput.value, 10) || 0);
  const message = await pay(config, model, "rent", periods);
  const licences = { address: config.contracts.LicenseNFT, abi: config.abi("LicenseNFT") };
  const expires = await config.publicClient.readContract({ ...licences, functionName: "userExpires", args: [BigInt(licence.licence_id)] });
  expiresCell.textContent = localTime(expires);
  expiresCell.dataset.expires = String(expires);
  return message;
}

function renderLicences(config, licences) {
  const table = document.getElementById("licences-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const licence of licences) {
    const row = document.createElement("tr");
    row.dataset.licenceId = String(licence.licence_id);
    row.dataset.modelId = String(licence.model_id);
    cell(row, modelLink(licence.model_id, licence.model_name));
    cell(row, `#${licence.licence_id}`);
    cell(row, licence.kind === "rental" ? "rent" : "buy");
    const expires = cell(row, licence.expires == null ? "never" : localTime(licence.expires), "licence-expires");
    if (licence.expires != null) {
      expires.dataset.expires = String(licence.expires);
      if (licence.expires <= now) expires.classList.add("warn");
    }
    const actions = cell(row, "");
    if (licence.kind === "rental") {
      const periods = document.createElement("input");
      periods.type = "number";
      periods.min = "1";
      periods.value = "1";
      periods.className = "extend-periods";
      periods.setAttribute("aria-label", "periods to add");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "extend-button";
      button.textContent = "Extend";
      button.disabled = !(wallet.onRightChain && config.walletClient);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          say("tx-message", await extend(config, licence, periods, expires), "ok");
        } catch (error) {
          say("tx-message", explain(error, { errors: config.errors }), "err");
        } finally {
          button.disabled = false;
        }
      });
      actions.append(periods, " ", button);
    }
    body.append(row);
  }
  table.hidden = licences.length === 0;
  document.getElementById("licences-none").hidden = licences.length !== 0;
}

function renderChannels(channels) {
  const table = document.getElementById("channels-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const c of channels) {
    const row = document.createElement("tr");
    row.dataset.modelId = String(c.model_id);
    cell(row, modelLink(c.model_id, c.model_name));
    const relayer = cell(row, short(c.relayer));
    relayer.title = c.relayer;
    cell(row, c.display.balance, "channel-balance");
    body.append(row);
  }
  table.hidden = channels.length === 0;
  document.getElementById("channels-none").hidden = channels.length !== 0;
}

// ------------------------------------------------------------------ sessions
async function revoking(config, action, done) {
  try {
    say("sessions-message", "Confirm in your wallet…");
    await action();
    say("sessions-message", done, "ok");
  } catch (error) {
    say("sessions-message", explain(error, { errors: config.errors }), "err");
  }
  await renderSessions(config);
}

async function renderSessions(config) {
  const list = document.getElementById("sessions-list");
  const entries = remembered(config, wallet.account);
  list.replaceChildren();
  document.getElementById("sessions-none").hidden = entries.length !== 0;
  document.getElementById("sessions-revoke-all").disabled = !(wallet.onRightChain && config.contracts.SessionRegistry);
  if (!entries.length) return;
  let states;
  try {
    states = await sessionStates(config, entries);
  } catch (error) {
    if (isRpcOutage(error)) showRpcBanner();
    states = entries.map(() => "unknown");
  }
  entries.forEach((e, i) => {
    const item = document.createElement("li");
    item.dataset.session = e.hash;
    item.dataset.state = states[i];
    const model = BigInt(e.modelId) === 0n ? "any model" : `model #${e.modelId}`;
    item.append(`${e.kind || "session"} · ${model} · until ${localTime(e.expiresAt)} · `);
    const status = document.createElement("strong");
    status.className = "session-state";
    status.textContent = states[i];
    item.append(status);
    if (states[i] === "live") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary session-revoke";
      button.textContent = "Revoke";
      button.addEventListener("click", () => {
        button.disabled = true;
        return revoking(config, () => revokeSession(config, e.hash), "Session revoked.");
      });
      item.append(" ", button);
    }
    list.append(item);
  });
}

// ------------------------------------------------------------------ receipts
function renderReceipts(config) {
  const table = document.getElementById("receipts-table");
  const body = table.querySelector("tbody");
  const receipts = loadReceipts().filter((r) => r.chainId == null || r.chainId === config.chain_id);
  body.replaceChildren();
  for (const r of receipts) {
    const row = document.createElement("tr");
    row.dataset.receipt = r.id;
    cell(row, modelLink(r.modelId, null));
    const relayer = cell(row, short(r.relayer));
    relayer.title = r.relayer;
    cell(row, r.signedAt ? localTime(r.signedAt) : "-");
    const status = cell(row, "saved as verified", "receipt-status");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary receipt-verify";
    button.textContent = "Verify again";
    button.addEventListener("click", async () => {
      try {
        const { receipt } = await verifyReceipt(r.text, r.body, {
          relayer: r.relayer, chainId: config.chain_id, registry: config.contracts.RelayerRegistry, modelId: r.modelId,
        });
        status.textContent = `✓ verified: signed by ${short(r.relayer)} (weights ${receipt.weightsCid})`;
        status.className = "receipt-status verified-ok";
        status.dataset.verified = "yes";
      } catch (error) {
        status.textContent = `✗ not verified: ${error.message}`;
        status.className = "receipt-status verified-bad";
        status.dataset.verified = "no";
      }
    });
    cell(row, button);
    body.append(row);
  }
  table.hidden = receipts.length === 0;
  document.getElementById("receipts-none").hidden = receipts.length !== 0;
}

export function setupLicences(config) {
  document.getElementById("licences-tz").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone;
  renderReceipts(config);
  document.getElementById("sessions-revoke-all").addEventListener("click", (event) => {
    event.target.disabled = true;
    return revoking(config, () => revokeAllSessions(config), "Every session you signed so far is revoked.");
  });
  onWalletChange(async () => {
    if (!wallet.account) return;
    config.walletClient = walletClient(config);
    document.getElementById("licences-who").textContent = `For ${wallet.account}.`;
    try {
      const response = await fetch(`/api/holders/${wallet.account}`);
      const holder = await response.json();
      if (!response.ok) throw new Error(holder.detail || `status ${response.status}`);
      renderLicences(config, holder.licences);
      renderChannels(holder.channels);
    } catch (error) {
      say("tx-message", `Cannot read your licences from the catalog: ${error.message}`, "err");
    }
    if (!wallet.onRightChain) say("tx-message", `Switch your wallet to chain ${config.chain_id} to extend a rental or revoke a session.`, "err");
    await renderSessions(config).catch((error) => say("sessions-message", explain(error), "err"));
    document.body.dataset.holderReady = "1";
  });
}
